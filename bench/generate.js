#!/usr/bin/env node
// Recurrent generation throughput: tokens/s at batch 1 and 64 (one new token per sequence per step,
// greedy, logits to the host each step), by model shape and activation precision. Prompt of 16 tokens
// processed by the parallel scan first. Medians of 3 runs of `steps` steps after a warm-up.
// usage: node bench/generate.js [--device cuda|cpu] [--no-write]
import { cudaDeviceInfo, resolveDevice } from '../dist/backend/index.js';
import { Decoder } from '../dist/generate/index.js';
import { MambaLM, derived, makeConfig } from '../dist/model/index.js';
import { writeReadmeSection } from './readme.js';

const di = process.argv.indexOf('--device');
const device = resolveDevice(di > 0 ? process.argv[di + 1] : 'auto');
const cases =
  device === 'cuda'
    ? [
        ['130m', 'bf16', 1],
        ['130m', 'bf16', 64],
        ['130m', 'f32', 1],
        ['130m', 'f32', 64],
        ['small', 'bf16', 1],
        ['small', 'bf16', 64],
      ]
    : [
        ['tiny', 'f32', 1],
        ['tiny', 'f32', 64],
        ['small', 'f32', 1],
        ['small', 'f32', 8],
      ];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const rows = [];
for (const [preset, precision, B] of cases) {
  const cfg = makeConfig(preset, { vocab_size: 16 });
  const model = MambaLM.create(cfg, { device, seed: 1, ...(device === 'cuda' ? { precision } : {}) });
  const Vp = derived(cfg).paddedVocab;
  const L = 16,
    steps = device === 'cuda' ? 200 : 50;
  const prompt = Int32Array.from({ length: B * L }, (_, i) => 4 + ((i * 7) % 4));
  const times = [];
  for (let run = 0; run < 4; run++) {
    const dec = new Decoder(model, B);
    let logits = dec.prefill(prompt, L);
    const next = new Int32Array(B);
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let v = 1; v < 16; v++) if (logits[b * Vp + v] > logits[b * Vp + best]) best = v;
        next[b] = best;
      }
      logits = dec.step(next);
    }
    if (run > 0) times.push((performance.now() - t0) / steps);
  }
  const ms = median(times);
  rows.push({ preset, precision, B, ms, tps: (B * 1000) / ms });
  console.log(
    `${preset} ${precision} B=${B}: ${ms.toFixed(3)} ms/step, ${Math.round((B * 1000) / ms).toLocaleString('en-US')} tokens/s`,
  );
  model.dispose?.();
}

if (!process.argv.includes('--no-write')) {
  const name = device === 'cuda' ? cudaDeviceInfo(0).name : 'CPU';
  const table = [
    device === 'cuda' ? `## Generation (cuda, ${name})` : `## Generation (${device})`,
    '',
    `Command: \`node bench/generate.js --device ${device}\` on ${name}. One new token per sequence per step through every layer's conv and SSM state (O(1) in the prompt length), greedy, logits copied to the host each step; prompt 16 tokens through the parallel scan first; median of 3 runs after a warm-up.${device === 'cuda' ? ' On CUDA the step is captured once into a CUDA graph and replayed with one launch (`MAMBA_CUDA_GRAPH=0` runs it eagerly).' : ''}`,
    '',
    '| model | activations | batch | ms/step | tokens/s |',
    '| --- | --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.preset} | ${r.precision} | ${r.B} | ${r.ms.toFixed(3)} | ${Math.round(r.tps).toLocaleString('en-US')} |`,
    ),
    '',
  ].join('\n');
  writeReadmeSection(table);
}
