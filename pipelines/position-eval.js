#!/usr/bin/env node
// Held-out bits per token of a trained next-token model, overall and by position inside the window
// (src/train/position-loss.ts), written as JSON. A separate process per model, so the pipelines that call
// it (dna-scaling, music-scaling) free the GPU between models.
//   node pipelines/position-eval.js --checkpoint RUN --data FILE|FOLDER --seq-len L --windows N --out curve.json
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './lib.js';

const usage =
  'usage: node pipelines/position-eval.js --checkpoint RUN --data PATH --seq-len L --windows N --out FILE.json [--batch B] [--device auto|cpu|cuda]';
let v;
try {
  v = parseArgs({
    options: {
      checkpoint: { type: 'string' },
      data: { type: 'string' },
      'seq-len': { type: 'string' },
      windows: { type: 'string' },
      batch: { type: 'string' },
      device: { type: 'string', default: 'auto' },
      out: { type: 'string' },
    },
  }).values;
} catch (e) {
  console.error(`position-eval: ${e.message}\n${usage}`);
  process.exit(2);
}
for (const k of ['checkpoint', 'data', 'seq-len', 'windows', 'out']) {
  if (!v[k]) {
    console.error(`position-eval: --${k} is required\n${usage}`);
    process.exit(2);
  }
}
const dist = (p) => import(join(root, 'dist', p));
const { resolveDevice } = await dist('backend/index.js');
const { loadModel } = await dist('model/index.js');
const { positionLoss } = await dist('train/index.js');
const { readRunInfo } = await dist('cli/run-folder.js');
const dir = resolve(v.checkpoint);
const device = resolveDevice(v.device);
const run = readRunInfo(dir);
const precision = device === 'cuda' ? (run?.precision ?? 'f32') : 'f32';
// recompute: inference keeps one block's activations at a time, so a 2^20-token forward fits
const model = loadModel(dir, { device, precision, recompute: true });
if (model.config.task !== 'lm') {
  console.error(`position-eval: ${dir} is not a next-token model`);
  process.exit(1);
}
const L = Number(v['seq-len']);
const src =
  model.config.domain === 'dna'
    ? (await dist('data/dna/index.js')).openDnaSource(resolve(v.data), {})
    : await (await dist('data/audio/index.js')).openAudioWindows(resolve(v.data), {});
const batch = Number(v.batch ?? Math.max(1, Math.floor(2 ** 18 / L))); // at most 2^18 tokens a forward pass, or one window
const t0 = Date.now();
const curve = await positionLoss(model, src, { seqLen: L, windows: Number(v.windows), batch });
const seconds = (Date.now() - t0) / 1000;
const state = join(dir, 'trainer_state.json');
const step = existsSync(state) ? JSON.parse(readFileSync(state, 'utf8')).step : undefined;
writeFileSync(
  v.out,
  `${JSON.stringify({ checkpoint: dir, step, data: resolve(v.data), seconds, ...curve }, null, 1)}\n`,
);
console.log(
  `position-eval: ${curve.windows} windows of ${L.toLocaleString('en-US')} (${curve.tokens.toLocaleString('en-US')} predictions): ${curve.bitsPerToken.toFixed(4)} bits/token in ${seconds.toFixed(1)} s`,
);
