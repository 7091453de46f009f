#!/usr/bin/env node
// Autoregressive modelling of speech: pretrain on long read-aloud audio (mu-law tokens at 16 kHz), report
// held-out bits per sample, and generate a WAV continuation of a held-out prompt.
//   node pipelines/audio-lm.js          the shipped 82 s recording, on the CPU, minutes
//   node pipelines/audio-lm.js --full   the long-speech recipe (minutes per file), GPU
import { join, resolve } from 'node:path';
import { cli, fmt, machine, pipelineArgs, summariseRun, writeResults, root } from './lib.js';

const usage = `usage: node pipelines/audio-lm.js [--full] [--device auto|cpu|cuda] [--out DIR] [--steps N]`;
const a = pipelineArgs('audio-lm', usage, { steps: { type: 'string' } });
const full = a.full;
const device = a.device;
let data = join(root, 'datasets', 'audio', 'speech', 'gettysburg-en-us.wav');
if (full) {
  data = resolve(a.out, 'speech-data');
  const { existsSync } = await import('node:fs');
  if (!existsSync(data)) cli('mamba-audio', ['dataset', 'build', 'long-speech', '--out', data, '--force']);
}
const L = full ? 65536 : 4096;
const steps = Number(a.steps ?? (full ? 1000 : 300));
const dir = join(a.out, 'lm');
const { seconds } = cli('mamba-audio', [
  'train',
  '--task',
  'lm',
  ...(full ? ['--preset', 'small', '--lr', '2e-3'] : ['--lr', '3e-3']),
  '--data',
  data,
  '--seq-len',
  String(L),
  '--batch',
  full ? '16' : '4',
  '--steps',
  String(steps),
  '--device',
  device,
  '--out',
  dir,
  '--force',
]);
const s = summariseRun(dir);
// continue the last second of the recording (inside the held-out last 10%)
const wav = join(a.out, 'continuation.wav');
const prompt = join(root, 'datasets', 'audio', 'speech', 'gettysburg-en-us.wav');
const gen = cli('mamba-audio', [
  'generate',
  '--checkpoint',
  dir,
  '--prompt',
  prompt,
  '--prompt-seconds',
  '1',
  '--seconds',
  full ? '4' : '1',
  '--temperature',
  '0.9',
  '--with-prompt',
  '-o',
  wav,
  '--force',
  '--device',
  device,
]);
const dev =
  device === 'auto' ? (await import(join('..', 'dist', 'backend', 'index.js'))).resolveDevice('auto') : device;
await writeResults(a.out, {
  title: `Speech next-sample modelling (${full ? 'GPU, long-speech recipe' : 'CPU, shipped recording'})`,
  command: `node pipelines/audio-lm.js ${process.argv.slice(2).join(' ')}`.trim(),
  meta: {
    machine: machine(dev),
    data,
    held_out: 'last 10% of each file',
    generated: wav,
    order0_note: 'mu-law tokens: 8 bits/sample uncompressed',
  },
  columns: [
    { key: 'seq_len', label: 'seq len' },
    { key: 'steps', label: 'steps' },
    { key: 'eval_bits_per_token', label: 'held-out bits/sample', format: fmt.bits },
    { key: 'tokens_per_s', label: 'train tokens/s', format: fmt.int },
    { key: 'seconds', label: 'train wall s', format: (v) => v.toFixed(0) },
    { key: 'gen_seconds', label: 'generate wall s', format: (v) => v.toFixed(1) },
  ],
  rows: [
    {
      seq_len: L,
      steps: s.steps,
      eval_bits_per_token: s.eval_bits_per_token,
      tokens_per_s: s.tokens_per_s,
      seconds,
      gen_seconds: gen.seconds,
    },
  ],
  plots: [],
});
