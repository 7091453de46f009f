#!/usr/bin/env node
// Long-context scaling on real DNA: train at sequence lengths 2^a .. 2^b with the same token budget per
// length, and record held-out bits per base (on a held-out strain), training tokens/s and peak memory.
// Linear scaling shows as flat tokens/s; the value of context as bits per base falling with length.
//   node pipelines/scaling.js              small, on the CPU: tiny model, 2^10..2^13, minutes
//   node pipelines/scaling.js --full       on a GPU: small preset (d_model 256, 8 layers), 2^10..2^20
import { join, resolve } from 'node:path';
import { cli, fmt, machine, pipelineArgs, summariseRun, writeResults } from './lib.js';
import { genomeByAccession, speciesSet } from './species-data.js';

const usage = `usage: node pipelines/scaling.js [--full] [--device auto|cpu|cuda] [--out DIR] [--lengths 10,12,14] [--budget-log2 N] [--step-log2 N]
Trains on H. pylori G27 (shipped) at each length, evaluates on the held-out strain SJM180 (NC_014560.1).`;
const a = pipelineArgs('scaling', usage, { lengths: { type: 'string' }, 'budget-log2': { type: 'string' }, 'step-log2': { type: 'string' } });
const full = a.full;
const exps = a.lengths ? a.lengths.split(',').map(Number) : full ? [10, 12, 14, 16, 18, 20] : [10, 11, 12, 13];
const budget = 2 ** Number(a['budget-log2'] ?? (full ? 25 : 20)); // training tokens per length
const perStep = 2 ** Number(a['step-log2'] ?? (full ? 18 : 14)); // tokens per optimizer step (at least one sequence)
const evalTokens = full ? 2 ** 20 : 2 ** 17; // the same held-out bases at every length
const preset = full ? ['--preset', 'small', '--lr', '2e-3'] : ['--lr', '4e-3'];
const device = a.device;

const manifest = speciesSet(resolve(a.out, 'species-data'));
const heldOut = genomeByAccession(manifest, 'NC_014560.1');
const dev = device === 'auto' ? (await import(join('..', 'dist', 'backend', 'index.js'))).resolveDevice('auto') : device;
/** Writes the results so far (after every length, so a failure late in a sweep keeps the rest). */
const report = (print) => writeResults(a.out, {
  title: `Scaling with sequence length (${full ? 'small preset, GPU' : 'tiny model, CPU'})`,
  command: `node pipelines/scaling.js ${process.argv.slice(2).join(' ')}`.trim(),
  meta: { machine: machine(dev), train: 'H. pylori G27 (NC_011333.1), shipped', eval: `held-out strain H. pylori SJM180 (NC_014560.1), first ${evalTokens.toLocaleString('en-US')} bases in windows of the training length`, budget_tokens_per_length: budget, tokens_per_step: perStep },
  columns: [
    { key: 'seq_len', label: 'seq len', format: fmt.pow2 },
    { key: 'batch', label: 'batch' },
    { key: 'steps', label: 'steps' },
    { key: 'eval_bits_per_token', label: 'held-out bits/base', format: fmt.bits },
    { key: 'tokens_per_s', label: 'train tokens/s', format: fmt.int },
    { key: 'peak_mem_bytes', label: 'peak memory', format: fmt.mib },
    { key: 'seconds', label: 'wall s', format: (v) => v.toFixed(0) },
  ],
  rows,
  plots: [
    { file: 'bits.svg', series: [{ name: 'held-out bits/base', points: rows.map((r) => [r.seq_len, r.eval_bits_per_token]) }], options: { title: 'Held-out bits per base vs context', xLabel: 'sequence length', yLabel: 'bits per base', logX: true, hline: { y: 2, label: '2 bits (uniform over ACGT)' } } },
    { file: 'throughput.svg', series: [{ name: 'train tokens/s', points: rows.map((r) => [r.seq_len, r.tokens_per_s]) }], options: { title: 'Training throughput vs sequence length', xLabel: 'sequence length', yLabel: 'tokens / s', logX: true, yMin: 0 } },
    { file: 'memory.svg', series: [{ name: 'peak memory (MiB)', points: rows.map((r) => [r.seq_len, r.peak_mem_bytes / 2 ** 20]) }], options: { title: 'Peak memory vs sequence length', xLabel: 'sequence length', yLabel: 'MiB', logX: true, yMin: 0 } },
  ],
}, { print });
const rows = [];
for (const e of exps) {
  const L = 2 ** e;
  // a step holds perStep tokens, or one sequence when a sequence is longer: equal tokens per length
  const stepTokens = Math.max(perStep, L);
  const batch = stepTokens / L;
  const steps = Math.max(4, Math.round(budget / stepTokens));
  const dir = join(a.out, `L${e}`);
  const { seconds } = cli('mamba-dna', ['train', ...preset, '--seq-len', String(L), '--batch', String(batch), '--steps', String(steps), '--warmup', String(Math.max(1, Math.floor(steps / 10))),
    '--eval-data', heldOut, '--eval-windows', String(Math.max(1, evalTokens / L)), '--eval-every', String(steps), '--device', device, '--out', dir, '--force',
    ...(L >= 2 ** 16 ? ['--recompute'] : [])]);
  const s = summariseRun(dir);
  rows.push({ seq_len: L, batch, steps, train_tokens: steps * stepTokens, seconds, ...s });
  await report(false);
}
await report(true);
