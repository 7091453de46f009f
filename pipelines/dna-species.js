#!/usr/bin/env node
// Species classification from DNA alone, on real complete genomes (5 species, 20 strains; test strains
// never seen in training). Pretrain a next-token model on the training genomes, then fine-tune a
// classifier from it at each context length and report accuracy on the held-out strains.
//   node pipelines/dna-species.js           small, on the CPU: 2^10..2^12, minutes
//   node pipelines/dna-species.js --full    one H200: small preset, pretrain 200 steps of 64 x 4096, then 24 steps of
//                                           8 sequences at every L = 2^10..2^20 (about 4 minutes)
// Rerunning with the same --out continues: finished runs are kept, a cut run resumes (--time-limit-s cuts cleanly).
import { join, resolve } from 'node:path';
import {
  fmt,
  machine,
  notRunMeta,
  pipelineArgs,
  stepShape,
  summariseRun,
  sweepLengths,
  testEval,
  timeBudget,
  trainResumable,
  trainSeconds,
  writeResults,
} from './lib.js';
import { speciesSet } from './species-data.js';

const usage = `usage: node pipelines/dna-species.js [--full] [--device auto|cpu|cuda] [--out DIR] [--dataset DIR] [--lengths 10,20,...]
    [--steps N] [--seqs-per-step N] [--no-pretrain] [--time-limit-s S]
--dataset: a folder made by \`mamba-dna dataset build species\` (default: built into --out/species-data).
Every length trains on the same number of sequences per optimizer step (--accum where one forward pass holds fewer).`;
const a = pipelineArgs('dna-species', usage, {
  lengths: { type: 'string' },
  steps: { type: 'string' },
  'seqs-per-step': { type: 'string' },
  'no-pretrain': { type: 'boolean', default: false },
  dataset: { type: 'string' },
  'time-limit-s': { type: 'string' },
});
const full = a.full;
const exps = sweepLengths(a.lengths, full ? [10, 20, 14, 12, 16, 18] : [10, 11, 12]);
const model = full ? ['--preset', 'small'] : ['--config', resolve(a.out, 'model.json')];
const device = a.device;
const manifest = speciesSet(resolve(a.dataset ?? join(a.out, 'species-data')));
const budget = timeBudget(Number(a['time-limit-s'] ?? 0));
const skipped = [];
if (!full) {
  // the CPU model: the default lm width, 2 layers
  (await import('node:fs')).writeFileSync(resolve(a.out, 'model.json'), JSON.stringify({ d_model: 64, n_layer: 2 }));
}

// 1. pretrain on the training genomes (next-token), evaluated on the held-out (valid) genomes
const pre = join(a.out, 'pretrain');
let pretrain;
if (!a['no-pretrain']) {
  const L = full ? 4096 : 1024;
  const args = [...model, '--data', manifest, '--seq-len', String(L), '--batch', String(full ? 64 : 8)];
  args.push('--lr', full ? '2e-3' : '4e-3', '--eval-windows', '32');
  trainResumable('mamba-dna', pre, full ? 200 : 150, args, device);
  pretrain = summariseRun(pre);
}

// 2. fine-tune a classifier at each context length; 3. accuracy on the test strains
const dev =
  device === 'auto' ? (await import(join('..', 'dist', 'backend', 'index.js'))).resolveDevice('auto') : device;
/** Writes the results so far (after every length, so a failure late in a sweep keeps the rest). */
const report = (print) =>
  writeResults(
    a.out,
    {
      title: `Species from DNA on held-out strains (${full ? 'small preset, GPU' : 'CPU'})`,
      command: `node pipelines/dna-species.js ${process.argv.slice(2).join(' ')}`.trim(),
      meta: {
        machine: machine(dev),
        data: '20 complete genomes of 5 species (Debian ragout-examples, kleborate-examples); test = one held-out strain per species',
        pretrain: pretrain ? { held_out_bits_per_base: pretrain.eval_bits_per_token, steps: pretrain.steps } : 'none',
        chance: 0.2,
        ...notRunMeta(skipped),
      },
      columns: [
        { key: 'seq_len', label: 'context', format: fmt.pow2 },
        { key: 'batch', label: 'batch' },
        { key: 'accum', label: 'accum' },
        { key: 'steps', label: 'steps' },
        { key: 'valid_accuracy', label: 'valid acc (held-out strains)', format: fmt.acc },
        { key: 'test_accuracy', label: 'test acc (held-out strains)', format: fmt.acc },
        { key: 'test_examples', label: 'test windows' },
        { key: 'tokens_per_s', label: 'train tokens/s', format: fmt.int },
      ],
      rows,
      plots: [
        {
          file: 'accuracy.svg',
          series: [
            { name: 'test accuracy', points: rows.map((r) => [r.seq_len, r.test_accuracy]) },
            { name: 'valid accuracy', points: rows.map((r) => [r.seq_len, r.valid_accuracy]) },
          ],
          options: {
            title: 'Species accuracy on held-out strains vs context',
            xLabel: 'context length (bases)',
            yLabel: 'accuracy',
            logX: true,
            hline: { y: 0.2, label: 'chance (5 classes)' },
          },
        },
      ],
    },
    { print },
  );
const rows = [];
// the same sequences per optimizer step at every length; a forward pass holds at most microTokens
const seqsPerStep = Number(a['seqs-per-step'] ?? 8);
const microTokens = full ? 2 ** 18 : 2 ** 13;
const steps = Number(a.steps ?? (full ? 24 : 60));
// start-up and evaluation, plus the training tokens at the last length's rate (a first guess of 1 M tokens/s)
let tokensPerS = 1e6;
const needS = (L) => 15 + (1.2 * seqsPerStep * steps * L) / tokensPerS;
for (const e of exps) {
  const L = 2 ** e;
  if (budget.skipRest('dna-species', exps, e, skipped, needS(L))) break;
  const dir = join(a.out, `cls-L${e}`);
  const { batch, accum } = stepShape(seqsPerStep, microTokens, L);
  const t0 = Date.now();
  trainResumable(
    'mamba-dna',
    dir,
    steps,
    [
      '--task',
      'classify',
      ...model,
      '--data',
      manifest,
      '--seq-len',
      String(L),
      '--batch',
      String(batch),
      '--accum',
      String(accum),
      '--steps',
      String(steps),
      '--lr',
      full ? '1e-3' : '3e-3',
      '--eval-windows',
      L > 2 ** 16 ? '2' : '4',
      '--eval-every',
      String(steps),
      ...(pretrain ? ['--init', pre] : []),
      ...(L >= 2 ** 16 ? ['--recompute'] : []),
    ],
    device,
  );
  const seconds = (Date.now() - t0) / 1000;
  const test = testEval(dir, { windows: L > 2 ** 16 ? 8 : 16, batch: Math.min(batch, 8), device });
  rows.push({
    seq_len: L,
    batch,
    accum,
    steps,
    seconds: trainSeconds(dir) ?? seconds,
    test_accuracy: test.accuracy,
    test_examples: test.count,
    valid_accuracy: summariseRun(dir).eval_accuracy,
    tokens_per_s: summariseRun(dir).tokens_per_s,
    confusion: test.confusion,
    classes: test.classes,
  });
  if (rows.at(-1).tokens_per_s > 0) tokensPerS = rows.at(-1).tokens_per_s;
  rows.sort((x, y) => x.seq_len - y.seq_len);
  await report(false);
}
await report(true);
