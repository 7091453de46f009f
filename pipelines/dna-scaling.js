#!/usr/bin/env node
// What long context buys on human DNA: next-token models of the human (Hsap) rows of the great-apes
// alignment (repeat-rich primate DNA of chr22) at L = 2^10 .. 2^20, each with the same tokens per
// optimizer step (B = tokens/L, gradient accumulation where a step holds more than one forward pass),
// the same total budget and the same learning-rate schedule. Reported per L: held-out bits per base on
// the Hsap test region at the model's own length, and bits per base by position inside the window.
//   node pipelines/dna-scaling.js                 toy size on the CPU (seconds to minutes)
//   node pipelines/dna-scaling.js --full          one H200: small preset, 2^10..2^20, 300 steps of 2^20 tokens
//                                                 per L with a sequence-length warmup from 2^10 (about 22 minutes;
//                                                 the budget at which the 2^10 model has stopped improving, see
//                                                 pipelines/results/dna-scaling-300-h200; --steps 48: 3.6 minutes)
// Rerunning with the same --out continues: finished lengths are kept, a cut run resumes.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  checkpointStep,
  fmt,
  lmLengthArgs,
  lmRowFields,
  lmScheduleText,
  budgetCheckMeta,
  notRunMeta,
  pipelineArgs,
  positionCurve,
  positionSeries,
  reportOrigin,
  seriesOf,
  stepShape,
  sweepLengths,
  timeBudget,
  trainResumable,
  trainSeconds,
  wallSeconds,
  writeResults,
} from './lib.js';
import { greatApesFasta, greatApesSet, greatApesSplit } from './great-apes-data.js';

const usage = `usage: node pipelines/dna-scaling.js [--full] [--device auto|cpu|cuda] [--out DIR] [--dataset DIR] [--maf FILE]
    [--lengths 10,20,...] [--step-log2 N] [--steps N] [--eval-log2 N] [--warmup-from-log2 N] [--warmup-share F]
    [--time-limit-s S] [--report-only]
Builds the great-apes set (mamba-dna dataset build great-apes) into --dataset if it is missing. Every L above
2^warmup-from-log2 (default 2^10) starts there and doubles its length over the first warmup-share (default 0.5)
of the steps, with the same tokens per step (--warmup-share 0: none). A cut run continues when rerun with the
same --out (e.g. one GPU call per part: --lengths 10,20 then --lengths 12,14,16,18).`;
const a = pipelineArgs('dna-scaling', usage, {
  dataset: { type: 'string' },
  maf: { type: 'string' },
  lengths: { type: 'string' },
  'step-log2': { type: 'string' },
  steps: { type: 'string' },
  'eval-log2': { type: 'string' },
  'time-limit-s': { type: 'string' },
  'warmup-from-log2': { type: 'string' },
  'warmup-share': { type: 'string' },
  'report-only': { type: 'boolean', default: false },
});
const full = a.full;
const exps = sweepLengths(a.lengths, full ? [10, 20, 14, 12, 16, 18] : [6, 8]);
const stepTokens = 2 ** Number(a['step-log2'] ?? (full ? 20 : 10)); // tokens per optimizer step, every L
const microTokens = Math.min(stepTokens, full ? 2 ** 18 : 2 ** 10); // tokens per forward pass (memory)
const steps = Number(a.steps ?? (full ? 300 : 12));
const warmupFrom = 2 ** Number(a['warmup-from-log2'] ?? (full ? 10 : 6));
const warmupShare = Number(a['warmup-share'] ?? 0.5);
const evalTokens = 2 ** Number(a['eval-log2'] ?? (full ? 23 : 12)); // held-out predictions per L
const budget = timeBudget(Number(a['time-limit-s'] ?? 0), 1.2); // growth: wall time of one L over the previous
const model = full ? ['--preset', 'small', '--lr', '2e-3'] : ['--config', resolve(a.out, 'model.json'), '--lr', '4e-3'];
if (!full)
  (await import('node:fs')).writeFileSync(resolve(a.out, 'model.json'), JSON.stringify({ d_model: 32, n_layer: 2 }));
const device = a.device;
const dev =
  device === 'auto' ? (await import(join('..', 'dist', 'backend', 'index.js'))).resolveDevice('auto') : device;

const manifest = greatApesSet(resolve(a.dataset ?? join(a.out, '..', 'great-apes-data')), a.maf);
const train = greatApesFasta(manifest, 'Hsap', 'train'),
  valid = greatApesFasta(manifest, 'Hsap', 'valid'),
  test = greatApesFasta(manifest, 'Hsap', 'test');

const origin = reportOrigin(
  a.out,
  a['report-only'],
  `node pipelines/dna-scaling.js ${process.argv.slice(2).join(' ')}`.trim(),
  dev,
);
const rows = [];
const skipped = [];
const unfinished = []; // --report-only: lengths asked for without a finished run folder
const report = (print) =>
  writeResults(
    a.out,
    {
      title: `Human DNA next-token scaling with context (${full ? 'small preset, GPU' : 'toy model, CPU'})`,
      command: origin.command,
      meta: {
        machine: origin.machine,
        data:
          `Hsap rows of the great-apes EPO alignment (human chr22 subset): train ${train.bases.toLocaleString('en-US')} bases` +
          ` (the trainer holds out its last 5% unused), valid ${valid.bases.toLocaleString('en-US')} (evaluated during training),` +
          ` test ${test.bases.toLocaleString('en-US')}`,
        split: greatApesSplit(manifest).human_regions,
        tokens_per_step: stepTokens,
        tokens_per_forward: microTokens,
        steps_per_length: steps,
        budget_tokens_per_length: stepTokens * steps,
        schedule: lmScheduleText({ steps, warmupFrom, warmupShare }),
        test_eval: `${evalTokens.toLocaleString('en-US')} predictions per L: max(8, ${evalTokens}/L) windows of L+1 bases spread evenly over the Hsap test region (overlapping where it holds fewer disjoint windows)`,
        position_curve:
          'bits per base by position p in the window (octave bins [2^k, 2^(k+1)-1], the last one [L/2, L]), averaged over the test windows',
        ...notRunMeta(skipped, unfinished),
        ...budgetCheckMeta(a.out, rows, 'bits per base'),
      },
      columns: [
        { key: 'seq_len', label: 'L', format: fmt.pow2 },
        { key: 'batch', label: 'batch' },
        { key: 'accum', label: 'accum' },
        { key: 'seq_warmup', label: 'sequence-length warmup' },
        { key: 'steps', label: 'steps' },
        { key: 'train_tokens', label: 'train tokens', format: fmt.int },
        { key: 'valid_bits', label: 'valid bits/base', format: fmt.bits },
        { key: 'test_bits', label: 'test bits/base', format: fmt.bits },
        { key: 'tail_bits', label: 'test bits/base, last half of window', format: fmt.bits },
        { key: 'test_windows', label: 'test windows' },
        { key: 'tokens_per_s', label: 'train tokens/s', format: fmt.int },
        { key: 'peak_mem_bytes', label: 'peak memory', format: fmt.mib },
        { key: 'seconds', label: 'train s', format: (v) => (v === undefined ? '-' : v.toFixed(0)) },
      ],
      rows,
      plots: [
        {
          file: 'bits.svg',
          series: [seriesOf(rows, 'test_bits', 'test bits/base'), seriesOf(rows, 'valid_bits', 'valid bits/base')],
          options: {
            title: 'Held-out bits per base (human chr22) vs context',
            xLabel: 'context length L (bases)',
            yLabel: 'bits per base',
            logX: true,
          },
        },
        {
          file: 'position.svg',
          series: positionSeries(rows),
          options: {
            title: 'Bits per base by position in the window (Hsap test)',
            xLabel: 'position in window (bases of context seen)',
            yLabel: 'bits per base',
            logX: true,
          },
        },
        {
          file: 'throughput.svg',
          series: [seriesOf(rows, 'tokens_per_s', 'train tokens/s')],
          options: {
            title: 'Training throughput vs sequence length',
            xLabel: 'sequence length',
            yLabel: 'tokens / s',
            logX: true,
            yMin: 0,
          },
        },
      ],
    },
    { print },
  );

for (const e of exps) {
  const L = 2 ** e;
  if (budget.skipRest('dna-scaling', exps, e, skipped)) break;
  const { batch, accum } = stepShape(Math.max(1, stepTokens / L), microTokens, L); // sequences per step
  const dir = join(a.out, `L${e}`);
  const args = [
    ...model,
    '--data',
    train.path,
    '--eval-data',
    valid.path,
    ...lmLengthArgs({ L, batch, accum, steps, evalTokens: full ? 2 ** 20 : 2 ** 12, warmupFrom, warmupShare }),
  ];
  const t0 = Date.now();
  const curveFile = join(dir, 'position-curve.json');
  if (a['report-only']) {
    if (checkpointStep(dir) < steps || !existsSync(curveFile)) {
      unfinished.push(e);
      continue;
    }
  } else trainResumable('mamba-dna', dir, steps, args, device);
  const curve = positionCurve(dir, { data: test.path, L, evalTokens, device });
  rows.push({
    seq_len: L,
    ...lmRowFields({ dir, L, batch, accum, steps, stepTokens, warmupFrom, warmupShare, curve }),
    seconds: trainSeconds(dir),
    wall_s: wallSeconds(origin, L, t0),
  });
  budget.took((Date.now() - t0) / 1000);
  console.log(
    `dna-scaling: L = 2^${e} done: test ${curve.bitsPerToken.toFixed(4)} bits/base, ${budget.elapsed().toFixed(0)} s elapsed`,
  );
  rows.sort((x, y) => x.seq_len - y.seq_len); // --lengths may come in any order (e.g. the far ends first)
  await report(false);
}
await report(true);
