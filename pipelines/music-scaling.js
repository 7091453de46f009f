#!/usr/bin/env node
// What long context buys on music: next-sample models of the Wesnoth soundtrack (16 kHz mu-law, split by
// track; mamba-audio dataset build music) at L = 2^12 .. 2^20 samples (0.26 s to 65.5 s), the audio twin
// of dna-scaling.js: the same tokens per optimizer step (gradient accumulation where one forward pass
// holds fewer), the same budget and learning-rate schedule at every L. Reported per L: held-out bits per
// sample on the test tracks at the model's own length, bits by position in the window, and a generated
// continuation of a held-out prompt (WAV) with its spectrogram (PNG).
//   node pipelines/music-scaling.js               toy size on the CPU (needs sox, or --dataset)
//   node pipelines/music-scaling.js --full        one H200: small preset, 2^12..2^20, 48 steps of 2^20 samples
//                                                 per L with a sequence-length warmup from 2^12 (about 3.7 minutes)
// Rerunning with the same --out continues: finished lengths are kept, a cut run resumes.
import { existsSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  checkpointStep,
  cli,
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
  root,
  seriesOf,
  stepShape,
  sweepLengths,
  timeBudget,
  trainResumable,
  trainSeconds,
  wallSeconds,
  writeResults,
} from './lib.js';
import { spectrogramPng } from './spectrogram.js';

const usage = `usage: node pipelines/music-scaling.js [--full] [--device auto|cpu|cuda] [--out DIR] [--dataset DIR]
    [--lengths 12,20,...] [--step-log2 N] [--steps N] [--eval-log2 N] [--warmup-from-log2 N] [--warmup-share F]
    [--time-limit-s S] [--prompt-seconds S] [--gen-seconds S] [--report-only]
--dataset: a folder made by \`mamba-audio dataset build music\` (train/, valid/, test/; WAV or .tokens); built with
the recipe if missing (needs sox and wesnoth-1.16-music). Every L above 2^warmup-from-log2 (default 2^12)
starts there and doubles its length over the first warmup-share (default 0.5) of the steps, with the same
samples per step (--warmup-share 0: none). A cut run continues when rerun with the same --out.`;
const a = pipelineArgs('music-scaling', usage, {
  dataset: { type: 'string' },
  lengths: { type: 'string' },
  'step-log2': { type: 'string' },
  steps: { type: 'string' },
  'eval-log2': { type: 'string' },
  'time-limit-s': { type: 'string' },
  'warmup-from-log2': { type: 'string' },
  'warmup-share': { type: 'string' },
  'prompt-seconds': { type: 'string' },
  'gen-seconds': { type: 'string' },
  'report-only': { type: 'boolean', default: false },
});
const full = a.full;
const RATE = 16000;
const exps = sweepLengths(a.lengths, full ? [12, 20, 16, 14, 18] : [7, 9]);
const stepTokens = 2 ** Number(a['step-log2'] ?? (full ? 20 : 11));
const microTokens = Math.min(stepTokens, full ? 2 ** 18 : 2 ** 11);
const steps = Number(a.steps ?? (full ? 48 : 6));
const warmupFrom = 2 ** Number(a['warmup-from-log2'] ?? (full ? 12 : 7));
const warmupShare = Number(a['warmup-share'] ?? 0.5);
const evalTokens = 2 ** Number(a['eval-log2'] ?? (full ? 23 : 12));
const promptSeconds = Number(a['prompt-seconds'] ?? (full ? 2 : 0.05));
const genSeconds = Number(a['gen-seconds'] ?? (full ? 1 : 0.05));
const budget = timeBudget(Number(a['time-limit-s'] ?? 0), 1.2);
const model = full ? ['--preset', 'small', '--lr', '2e-3'] : ['--config', resolve(a.out, 'model.json'), '--lr', '4e-3'];
if (!full) writeFileSync(resolve(a.out, 'model.json'), JSON.stringify({ d_model: 32, n_layer: 2 }));
const device = a.device;
const dev =
  device === 'auto' ? (await import(join('..', 'dist', 'backend', 'index.js'))).resolveDevice('auto') : device;
const audio = await import(join(root, 'dist', 'data', 'audio', 'index.js'));

const data = resolve(a.dataset ?? join(a.out, '..', 'music-data'));
if (!existsSync(join(data, 'train')) && !a['report-only'])
  cli('mamba-audio', ['dataset', 'build', 'music', '--out', data, '--force']);
const info = existsSync(join(data, 'music.json'))
  ? JSON.parse(readFileSync(join(data, 'music.json'), 'utf8'))
  : undefined;
const min = (split) => `${((info.hours[split] * 3600) / 60).toFixed(1)} min`;
const minutes = !info
  ? ''
  : `: train ${min('train')}, valid ${min('valid')}, test ${min('test')}` +
    (/subset/.test(info.split) ? ' (a subset of the full split, carried to the GPU machine as token files)' : '');

// the prompt: promptSeconds of the first test track, starting a tenth of the way in (past any fade-in)
const promptLen = Math.round(promptSeconds * RATE);
const promptWav = join(a.out, 'prompt.wav');
let generation;
if (!a['report-only']) {
  const testFiles = readdirSync(join(data, 'test'))
    .filter((f) => /\.(wav|tokens)$/.test(f))
    .sort();
  const first = join(data, 'test', testFiles[0]);
  const testTokens = first.endsWith('.tokens')
    ? audio.readTokenFile(first)
    : audio.tokenizeWav(first, { rate: RATE }).tokens;
  const promptAt = Math.min(Math.floor(testTokens.length / 10), testTokens.length - promptLen);
  audio.writeTokensAsWav(promptWav, testTokens.subarray(promptAt, promptAt + promptLen), RATE);
  generation = `prompt: ${promptSeconds} s of test track ${testFiles[0]} from ${(promptAt / RATE).toFixed(1)} s; continuation: ${genSeconds} s, temperature 1, seed 1; WAV = prompt + continuation`;
}

const origin = reportOrigin(
  a.out,
  a['report-only'],
  `node pipelines/music-scaling.js ${process.argv.slice(2).join(' ')}`.trim(),
  dev,
);
const rows = [];
const skipped = [];
const images = [];
const report = (print) =>
  writeResults(
    a.out,
    {
      title: `Music next-sample scaling with context (${full ? 'small preset, GPU' : 'toy model, CPU'})`,
      command: origin.command,
      meta: {
        machine: origin.machine,
        data:
          `Battle for Wesnoth soundtrack (Debian wesnoth-1.16-music), 16 kHz mono mu-law, split by track${minutes}` +
          '; the trainer holds out the last 10% of every train track unused',
        split: info?.split ?? 'train/, valid/, test/ folders',
        tokens_per_step: stepTokens,
        tokens_per_forward: microTokens,
        steps_per_length: steps,
        budget_tokens_per_length: stepTokens * steps,
        schedule: lmScheduleText({ steps, warmupFrom, warmupShare }),
        test_eval: `max(8, ${evalTokens}/L) windows of L+1 samples spread evenly over the test tracks (overlapping where they hold fewer disjoint windows)`,
        position_curve:
          'bits per sample by position p in the window (octave bins [2^k, 2^(k+1)-1], the last one [L/2, L]), averaged over the test windows',
        generation: generation ?? origin.previous?.generation,
        ...notRunMeta(skipped),
        ...budgetCheckMeta(a.out, rows, 'bits per sample'),
      },
      columns: [
        { key: 'seq_len', label: 'L (samples)', format: fmt.pow2 },
        { key: 'seconds_context', label: 'context s', format: (v) => v.toFixed(2) },
        { key: 'batch', label: 'batch' },
        { key: 'accum', label: 'accum' },
        { key: 'seq_warmup', label: 'sequence-length warmup' },
        { key: 'steps', label: 'steps' },
        { key: 'valid_bits', label: 'valid bits/sample', format: fmt.bits },
        { key: 'test_bits', label: 'test bits/sample', format: fmt.bits },
        { key: 'tail_bits', label: 'test bits/sample, last half of window', format: fmt.bits },
        { key: 'test_windows', label: 'test windows' },
        { key: 'tokens_per_s', label: 'train tokens/s', format: fmt.int },
        { key: 'continuation', label: 'continuation' },
      ],
      rows,
      plots: [
        {
          file: 'bits.svg',
          series: [seriesOf(rows, 'test_bits', 'test bits/sample'), seriesOf(rows, 'valid_bits', 'valid bits/sample')],
          options: {
            title: 'Held-out bits per sample (music) vs context',
            xLabel: 'context length L (samples at 16 kHz)',
            yLabel: 'bits per sample',
            logX: true,
          },
        },
        {
          file: 'position.svg',
          series: positionSeries(rows),
          options: {
            title: 'Bits per sample by position in the window (test tracks)',
            xLabel: 'position in window (samples of context seen)',
            yLabel: 'bits per sample',
            logX: true,
          },
        },
      ],
      images,
    },
    { print },
  );

for (const e of exps) {
  const L = 2 ** e;
  if (budget.skipRest('music-scaling', exps, e, skipped)) break;
  const t0 = Date.now();
  const { batch, accum } = stepShape(Math.max(1, stepTokens / L), microTokens, L); // sequences per step
  const dir = join(a.out, `L${e}`);
  const args = [
    '--task',
    'lm',
    ...model,
    '--data',
    join(data, 'train'),
    '--eval-data',
    join(data, 'valid'),
    ...lmLengthArgs({ L, batch, accum, steps, evalTokens: full ? 2 ** 20 : 2 ** 12, warmupFrom, warmupShare }),
  ];
  const curveFile = join(dir, 'position-curve.json');
  if (a['report-only']) {
    if (checkpointStep(dir) < steps || !existsSync(curveFile) || !existsSync(join(a.out, `spectrogram-L${e}.png`)))
      continue;
  } else trainResumable('mamba-audio', dir, steps, args, device);
  const step = checkpointStep(dir);
  const curve = positionCurve(dir, { data: join(data, 'test'), L, evalTokens, device });
  const wav = `continuation-L${e}.wav`,
    png = `spectrogram-L${e}.png`;
  const gen = join(dir, 'continuation.wav');
  if (!existsSync(gen) || curve.step !== step || !existsSync(join(a.out, png))) {
    cli('mamba-audio', [
      'generate',
      '--checkpoint',
      dir,
      '--prompt',
      promptWav,
      '--with-prompt',
      '--prompt-seconds',
      String(promptSeconds),
      '--seconds',
      String(genSeconds),
      '--seed',
      '1',
      '--device',
      device,
      '-o',
      gen,
      '--force',
    ]);
    copyFileSync(gen, join(a.out, wav));
    const { samples } = audio.readWavMono(gen);
    writeFileSync(join(a.out, png), spectrogramPng(samples, { markAt: promptLen }));
  }
  if (!images.includes(png)) images.push(png);
  rows.push({
    seq_len: L,
    seconds_context: L / RATE,
    ...lmRowFields({ dir, L, batch, accum, steps, stepTokens, warmupFrom, warmupShare, curve }),
    train_seconds: trainSeconds(dir),
    continuation: wav,
    spectrogram: png,
    wall_s: wallSeconds(origin, L, t0),
  });
  budget.took((Date.now() - t0) / 1000);
  console.log(
    `music-scaling: L = 2^${e} done: test ${curve.bitsPerToken.toFixed(4)} bits/sample, ${budget.elapsed().toFixed(0)} s elapsed`,
  );
  rows.sort((x, y) => x.seq_len - y.seq_len); // --lengths may come in any order (e.g. the far ends first)
  await report(false);
}
await report(true);
