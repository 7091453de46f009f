// The decoding step replayed from a captured CUDA graph gives the same logits as the eager step, token
// for token (same kernels, same buffers). Skips without a GPU.
import { describe, expect, it } from 'vitest';
import { cudaAvailable } from '../../src/backend/index.js';
import { Decoder } from '../../src/generate/index.js';
import { MambaLM, makeConfig } from '../../src/model/index.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from '../helpers.js';

describe.skipIf(!cudaAvailable())('CUDA-graph decoding', () => {
  for (const precision of ['f32', 'bf16'] as const) {
    it(`graph replay matches eager steps (${precision}, B=3)`, () => {
      const cfg = makeConfig({ d_model: 64, n_layer: 3, d_state: 16 });
      const model = MambaLM.create(cfg, { seed: 7, device: 'cuda', precision });
      const B = 3,
        L = 5,
        r = new Rng(1);
      const prompt = Int32Array.from({ length: B * L }, () => 4 + r.int(4));
      const eager = new Decoder(model, B, { cudaGraph: false });
      const graph = new Decoder(model, B, { cudaGraph: true });
      let le = eager.prefill(prompt, L);
      let lg = graph.prefill(prompt, L);
      for (let s = 0; s < 12; s++) {
        expect(relErr(lg, le), `step ${s}`).toBeLessThan(1e-6);
        const next = Int32Array.from({ length: B }, () => 4 + r.int(4));
        le = Float64Array.from(eager.step(next));
        lg = Float64Array.from(graph.step(next));
      }
      expect(relErr(lg, le)).toBeLessThan(1e-6);
    });
  }
});
