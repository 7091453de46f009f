#!/usr/bin/env node
// Great apes from DNA alone: which of human, chimpanzee, gorilla and orangutan a window of L bases comes
// from, at L = 2^10 .. 2^20. Each classifier is fine-tuned from the human next-token model of the same L
// (pipelines/dna-scaling.js), with the same number of training sequences per optimizer step and the same
// steps at every L (gradient accumulation at long L). Test windows come from the test region of the
// alignment (contiguous in human order; no base shared with training), with a 95% Wilson interval.
//   node pipelines/great-apes.js                 toy size on the CPU (after pipelines/dna-scaling.js)
//   node pipelines/great-apes.js --full          one H200, after dna-scaling.js --full: 24 steps of 8 sequences
//                                                at every L (about 3.5 minutes)
// pipelines/great-apes-baseline.js is the model-free reference: a k-mer classifier on the same windows.
// Rerunning with the same --out continues: finished lengths are kept, a cut run resumes.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  checkpointStep,
  fmt,
  notRunMeta,
  pipelineArgs,
  reportOrigin,
  stepShape,
  summariseRun,
  sweepLengths,
  testEval,
  timeBudget,
  trainResumable,
  trainSeconds,
  wilson,
  writeResults,
} from './lib.js';
import { greatApesSet, greatApesSplit } from './great-apes-data.js';

const usage = `usage: node pipelines/great-apes.js [--full] [--device auto|cpu|cuda] [--out DIR] [--dataset DIR] [--maf FILE]
    [--pretrained DIR | --no-pretrain] [--lengths 10,20,...] [--seqs-per-step N] [--steps N] [--time-limit-s S] [--report-only]
--pretrained: the --out folder of pipelines/dna-scaling.js (default: beside --out), holding L<k>/ per length.`;
const a = pipelineArgs('great-apes', usage, {
  dataset: { type: 'string' },
  maf: { type: 'string' },
  pretrained: { type: 'string' },
  'no-pretrain': { type: 'boolean', default: false },
  lengths: { type: 'string' },
  'seqs-per-step': { type: 'string' },
  steps: { type: 'string' },
  'time-limit-s': { type: 'string' },
  'report-only': { type: 'boolean', default: false },
});
const full = a.full;
const exps = sweepLengths(a.lengths, full ? [10, 20, 14, 12, 16, 18] : [6, 8]);
const seqsPerStep = Number(a['seqs-per-step'] ?? (full ? 8 : 4));
const steps = Number(a.steps ?? (full ? 24 : 6));
const microTokens = full ? 2 ** 18 : 2 ** 10; // tokens per forward pass
const budget = timeBudget(Number(a['time-limit-s'] ?? 0));
// the lengths come far ends first, so the time a length needs is estimated from its tokens: 15 s of start-up
// and evaluation plus its training tokens at the last length's rate (a first guess of 1 M tokens/s)
let tokensPerS = 1e6;
const needS = (L) => 15 + (1.2 * seqsPerStep * steps * L) / tokensPerS;
const model = full ? ['--preset', 'small', '--lr', '1e-3'] : ['--config', resolve(a.out, 'model.json'), '--lr', '3e-3'];
if (!full) writeFileSync(resolve(a.out, 'model.json'), JSON.stringify({ d_model: 32, n_layer: 2 })); // the toy dna-scaling model
const device = a.device;
const dev =
  device === 'auto' ? (await import(join('..', 'dist', 'backend', 'index.js'))).resolveDevice('auto') : device;
const manifest = greatApesSet(resolve(a.dataset ?? join(a.out, '..', 'great-apes-data')), a.maf);
const m = JSON.parse(readFileSync(manifest, 'utf8'));
const testBases = Math.min(...m.sources.filter((s) => s.split === 'test').map((s) => s.bases));
const pretrained = a['no-pretrain'] ? undefined : resolve(a.pretrained ?? join(a.out, '..', 'dna-scaling'));

/** Test windows per species: many at short L, at least 16 at long L (overlapping where the region is short). */
const testWindows = (L) => Math.max(16, Math.min(256, Math.floor(2 ** 22 / L)));

const origin = reportOrigin(
  a.out,
  a['report-only'],
  `node pipelines/great-apes.js ${process.argv.slice(2).join(' ')}`.trim(),
  dev,
);
const rows = [];
const skipped = [];
const incomplete = [];
/** A dna-scaling run folder trained to the end of its schedule. */
function pretrainedComplete(dir) {
  const p = join(dir, 'trainer_state.json');
  if (!existsSync(p)) return false;
  const st = JSON.parse(readFileSync(p, 'utf8'));
  return st.step > 0 && st.step === st.options?.steps;
}
const report = (print) =>
  writeResults(
    a.out,
    {
      title: `Great apes: species from DNA vs context (${full ? 'small preset, GPU' : 'toy model, CPU'})`,
      command: origin.command,
      meta: {
        machine: origin.machine,
        data: `4 species (${m.classes.join(', ')}) of the great-apes EPO alignment of human chr22; test region about ${testBases.toLocaleString('en-US')} bases per species`,
        split: greatApesSplit(manifest).human_regions,
        pretrain: pretrained
          ? `each L starts from the human next-token model of the same L (${pretrained}/L<k>)`
          : 'none (random init)',
        sequences_per_step: seqsPerStep,
        steps_per_length: steps,
        test_windows:
          'per species: max(16, min(256, 2^22 / L)) windows spread evenly over its test region; where that is more than the region holds disjointly (see the overlap column) the windows overlap',
        interval: '95% Wilson score interval over the test windows',
        chance: 0.25,
        ...(incomplete.length
          ? {
              not_pretrained: `no completely pretrained model for L = ${incomplete.map((e) => `2^${e}`).join(', ')}: not run`,
            }
          : {}),
        ...notRunMeta(skipped),
      },
      columns: [
        { key: 'seq_len', label: 'context', format: fmt.pow2 },
        { key: 'batch', label: 'batch' },
        { key: 'accum', label: 'accum' },
        { key: 'steps', label: 'steps' },
        { key: 'valid_accuracy', label: 'valid acc', format: fmt.acc },
        { key: 'test_accuracy', label: 'test acc', format: fmt.acc },
        { key: 'ci', label: '95% interval', format: (v) => (v ? `${v[0].toFixed(3)}-${v[1].toFixed(3)}` : '-') },
        { key: 'test_windows', label: 'test windows' },
        { key: 'overlap', label: 'windows per species / disjoint', format: (v) => v ?? '-' },
        { key: 'tokens_per_s', label: 'train tokens/s', format: fmt.int },
        { key: 'seconds', label: 'train s', format: (v) => (v === undefined ? '-' : v.toFixed(0)) },
      ],
      rows,
      plots: [
        {
          file: 'accuracy.svg',
          series: [
            { name: 'test accuracy', points: rows.map((r) => [r.seq_len, r.test_accuracy]) },
            { name: '95% low', points: rows.map((r) => [r.seq_len, r.ci[0]]) },
            { name: '95% high', points: rows.map((r) => [r.seq_len, r.ci[1]]) },
          ],
          options: {
            title: 'Great apes species accuracy (test region) vs context',
            xLabel: 'context length (bases)',
            yLabel: 'accuracy',
            logX: true,
            yMin: 0,
            hline: { y: 0.25, label: 'chance (4 species)' },
          },
        },
      ],
    },
    { print },
  );

for (const e of exps) {
  const L = 2 ** e;
  if (budget.skipRest('great-apes', exps, e, skipped, needS(L))) break;
  const init = pretrained ? join(pretrained, `L${e}`) : undefined;
  const dir = join(a.out, `cls-L${e}`);
  const testFile = join(dir, 'test-eval.json');
  if (a['report-only'] && (checkpointStep(dir) < steps || !existsSync(testFile))) continue;
  if (init && !a['report-only'] && !pretrainedComplete(init)) {
    // a cut dna-scaling run leaves a partial model: fine-tuning from it would not be the same-L pretrained model
    console.log(
      `great-apes: ${init} holds no completely pretrained model; run pipelines/dna-scaling.js (same --lengths, same --out) first; skipping L = 2^${e}`,
    );
    incomplete.push(e);
    continue;
  }
  const { batch, accum } = stepShape(seqsPerStep, microTokens, L);
  const args = [
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
    '--warmup',
    String(Math.max(1, Math.floor(steps / 10))),
    '--eval-every',
    String(steps),
    '--eval-windows',
    String(Math.max(2, Math.min(32, Math.floor(2 ** 21 / L)))),
    ...(init ? ['--init', init] : []),
    ...(L >= 2 ** 16 ? ['--recompute'] : []),
  ];
  if (!a['report-only']) trainResumable('mamba-dna', dir, steps, args, device);
  const perSpecies = testWindows(L);
  const test = testEval(dir, {
    windows: perSpecies,
    batch: Math.max(1, Math.floor(2 ** 18 / L)),
    device,
    extra: { per_species: perSpecies },
  });
  const s = summariseRun(dir);
  const k = Math.round(test.accuracy * test.count);
  const disjoint = Math.floor(testBases / L);
  rows.push({
    seq_len: L,
    batch,
    accum,
    steps: s.steps,
    seconds: trainSeconds(dir),
    valid_accuracy: s.eval_accuracy,
    test_accuracy: test.accuracy,
    test_correct: k,
    test_windows: test.count,
    ci: wilson(k, test.count),
    overlap: `${test.per_species} / ${disjoint}${test.per_species > disjoint ? ' (overlapping)' : ''}`,
    tokens_per_s: s.tokens_per_s,
    confusion: test.confusion,
    classes: test.classes,
  });
  if (s.tokens_per_s > 0) tokensPerS = s.tokens_per_s;
  console.log(
    `great-apes: L = 2^${e} done: test accuracy ${test.accuracy.toFixed(3)} (${k}/${test.count}), ${budget.elapsed().toFixed(0)} s elapsed`,
  );
  rows.sort((x, y) => x.seq_len - y.seq_len); // --lengths may come in any order (e.g. the far ends first)
  await report(false);
}
await report(true);
