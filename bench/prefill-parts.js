#!/usr/bin/env node
// Where a prefill's time goes, host against GPU: the parts of what bench/generate.js times as "prefill" (a new
// Decoder, its sampling settings, then sampleFirst: the prompts through the parallel scan, the last positions'
// logits and the first token, read back), each a median over the runs after one warm-up, on the 130m shape
// (bf16 on CUDA). With MAMBA_OP_PROFILE=1 it also prints one more prefill's GPU time and call count per op. Run it
// under `node --cpu-prof` to see the host side.
// usage: node bench/prefill-parts.js [B] [L] [runs]     (DEV=cpu runs it on the CPU)
import { cudaOp, synchronize } from '../dist/backend/index.js';
import { Decoder } from '../dist/generate/index.js';
import { MambaLM, makeConfig } from '../dist/model/index.js';

if (process.argv.includes('--help')) {
  console.log(`usage: node bench/prefill-parts.js [B] [L] [runs]

  B     prompts (default 64)
  L     tokens per prompt (default 16)
  runs  timed runs after one warm-up (default 20)

example: MAMBA_OP_PROFILE=1 node bench/prefill-parts.js 64 16 20`);
  process.exit(0);
}
const DEV = process.env.DEV ?? 'cuda';
const B = Number(process.argv[2] ?? 64),
  L = Number(process.argv[3] ?? 16),
  reps = Number(process.argv[4] ?? 20);
const cfg = makeConfig('130m', { vocab_size: 50280, pad_vocab_size_multiple: 16 });
const model = MambaLM.create(cfg, { device: DEV, seed: 1, ...(DEV === 'cuda' ? { precision: 'bf16' } : {}) });
const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: L }, (_, i) => (i * 7 + b * 13 + 4) % 50280));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// ctor: the Decoder's constructor as the host sees it; ctorSync: until the GPU has done its work too
const t = { ctor: [], ctorSync: [], start: [], first: [], total: [] };
for (let r = 0; r <= reps; r++) {
  synchronize(DEV);
  const t0 = performance.now();
  const dec = new Decoder(model, B);
  const t1 = performance.now();
  synchronize(DEV);
  const t1s = performance.now();
  dec.startSampling({ temperature: 0 });
  const t2 = performance.now();
  dec.sampleFirst(prompts);
  const t3 = performance.now();
  if (r === 0) continue;
  t.ctor.push(t1 - t0);
  t.ctorSync.push(t1s - t0);
  t.start.push(t2 - t1s);
  t.first.push(t3 - t2);
  t.total.push(t3 - t0);
}
const parts = Object.entries(t).map(([k, v]) => `${k} ${median(v).toFixed(2)}`);
console.log(`B=${B} L=${L}: ${parts.join(', ')} ms (median)`);
if (DEV === 'cuda' && process.env.MAMBA_OP_PROFILE === '1') {
  synchronize(DEV);
  cudaOp('opProfile')();
  const dec = new Decoder(model, B);
  dec.startSampling({ temperature: 0 });
  dec.sampleFirst(prompts);
  for (const [name, calls, ms] of cudaOp('opProfile')()) console.log(`${name}: ${calls} calls, ${ms.toFixed(3)} ms`);
}
