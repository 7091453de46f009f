#!/usr/bin/env node
// Spoken-digit classification from raw 16 kHz samples (mu-law tokens), accuracy on held-out voices.
//   node pipelines/audio-digits.js          the shipped set (12 voices), on the CPU, minutes
//   node pipelines/audio-digits.js --full   the espeak-ng recipe set (many voices, speeds, pitches), GPU
import { join, resolve } from 'node:path';
import { cli, fmt, machine, pipelineArgs, summariseRun, writeResults, root } from './lib.js';

const usage = `usage: node pipelines/audio-digits.js [--full] [--device auto|cpu|cuda] [--out DIR] [--steps N]`;
const a = pipelineArgs('audio-digits', usage, { steps: { type: 'string' } });
const full = a.full;
const device = a.device;
let data = join(root, 'datasets', 'audio', 'digits');
if (full) {
  data = resolve(a.out, 'digits-data');
  const { existsSync } = await import('node:fs');
  if (!existsSync(join(data, 'manifest.json')))
    cli('mamba-audio', ['dataset', 'build', 'digits', '--out', data, '--force']);
}
const L = 16000; // one second
const steps = Number(a.steps ?? (full ? 2000 : 120));
const dir = join(a.out, 'classifier');
const { seconds } = cli('mamba-audio', [
  'train',
  '--task',
  'classify',
  ...(full ? ['--preset', 'small', '--lr', '1e-3'] : ['--lr', '3e-3']),
  '--data',
  data,
  '--seq-len',
  String(L),
  '--batch',
  full ? '32' : '8',
  '--steps',
  String(steps),
  '--device',
  device,
  '--out',
  dir,
  '--force',
]);
const { stdout } = cli(
  'mamba-audio',
  ['eval', '--checkpoint', dir, '--split', 'test', '--batch', '8', '--device', device, '--json'],
  { quiet: true },
);
const test = JSON.parse(stdout);
const s = summariseRun(dir);
const dev =
  device === 'auto' ? (await import(join('..', 'dist', 'backend', 'index.js'))).resolveDevice('auto') : device;
await writeResults(a.out, {
  title: `Spoken digits from raw audio, held-out voices (${full ? 'GPU, recipe set' : 'CPU, shipped set'})`,
  command: `node pipelines/audio-digits.js ${process.argv.slice(2).join(' ')}`.trim(),
  meta: {
    machine: machine(dev),
    data,
    clip: '1 s at 16 kHz, mu-law tokens',
    chance: 0.1,
    classes: test.classes,
    confusion: test.confusion,
  },
  columns: [
    { key: 'steps', label: 'steps' },
    { key: 'seconds', label: 'train wall s', format: (v) => v.toFixed(0) },
    { key: 'tokens_per_s', label: 'train tokens/s', format: fmt.int },
    { key: 'test_accuracy', label: 'test accuracy (held-out voices)', format: fmt.acc },
    { key: 'test_examples', label: 'test clips' },
  ],
  rows: [
    { steps: s.steps, seconds, tokens_per_s: s.tokens_per_s, test_accuracy: test.accuracy, test_examples: test.count },
  ],
  plots: [],
});
