// Programmatic dependent launch (native/cuda/common.cuh launch_pdl) changes only when the decoding step's kernels
// are scheduled, never what they compute: the logits and tokens of generation with it (the default on sm_90) are
// bit-equal to those with MAMBA_PDL=0, for the fused (B=1), residual (B=12) and unfused (B=40) steps, eager and
// replayed from a CUDA graph. The switch is read once per process, so each side runs in its own. Skips without a GPU.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cudaAvailable } from '../../src/backend/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// the child: a small bf16 model, a prompt of 6 tokens per sequence, 10 greedy steps; prints every logit's bits
const child = `
import { MambaLM, makeConfig, Decoder, Rng } from ${JSON.stringify(pathToFileURL(join(root, 'dist', 'index.js')).href)};
const cfg = makeConfig({ d_model: 64, n_layer: 3, d_state: 16, vocab_size: 96 });
const model = MambaLM.create(cfg, { seed: 5, device: 'cuda', precision: 'bf16' });
const out = {};
for (const B of [1, 12, 40])
  for (const cudaGraph of [false, true]) {
    const r = new Rng(B), L = 6;
    const dec = new Decoder(model, B, { cudaGraph });
    let logits = dec.prefill(Int32Array.from({ length: B * L }, () => r.int(96)), L);
    const bits = [];
    for (let s = 0; s < 10; s++) {
      bits.push(Buffer.from(Float64Array.from(logits).buffer).toString('base64'));
      const V = logits.length / B, next = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let v = 1; v < V; v++) if (logits[b * V + v] > logits[b * V + best]) best = v;
        next[b] = best;
      }
      logits = dec.step(next);
    }
    out[B + (cudaGraph ? ' graph' : ' eager')] = bits;
  }
process.stdout.write(JSON.stringify(out));
`;

function run(pdl: '0' | '1'): Record<string, string[]> {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], {
    env: { ...process.env, MAMBA_PDL: pdl },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`child with MAMBA_PDL=${pdl} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string[]>;
}

describe.skipIf(!cudaAvailable())('programmatic dependent launch (CUDA)', () => {
  it('decoding gives bit-equal logits with and without it (B = 1, 12, 40; eager and graph)', () => {
    const on = run('1'),
      off = run('0');
    expect(Object.keys(on)).toEqual(['1 eager', '1 graph', '12 eager', '12 graph', '40 eager', '40 graph']);
    for (const k of Object.keys(off)) {
      expect(on[k]!.length).toBe(10);
      on[k]!.forEach((s, i) => expect(s, `${k}, step ${i}`).toBe(off[k]![i]));
    }
  }, 120_000);
});
