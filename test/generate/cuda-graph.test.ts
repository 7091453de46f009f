// The decoding step replayed from a captured CUDA graph gives the same logits as the eager step, token
// for token (same kernels, same buffers); a graph kept for a later Decoder of the same batch gives the same
// tokens, before and after the weights change in place. Skips without a GPU.
import { describe, expect, it } from 'vitest';
import { cudaAvailable } from '../../src/backend/index.js';
import { Tensor } from '../../src/backend/index.js';
import { Decoder, type SampleOptions } from '../../src/generate/index.js';
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

  /** n tokens per sequence with the token chosen on the device, a new Decoder (eager or graph) per call. */
  function decodeTokens(model: MambaLM, prompts: number[][], n: number, o: SampleOptions, graph: boolean) {
    const dec = new Decoder(model, prompts.length, { cudaGraph: graph });
    dec.startSampling(o, 9);
    const out = [Array.from(dec.sampleFirst(prompts))];
    for (let i = 1; i < n; i++) out.push(Array.from(dec.sampleNext()));
    return out;
  }

  for (const precision of ['f32', 'bf16'] as const)
    for (const B of [1, 12]) {
      it(`a later Decoder of the same batch replays the kept graph: the same tokens, and weights changed in place are seen (${precision}, B=${B})`, () => {
        const cfg = makeConfig({ d_model: 64, n_layer: 3, d_state: 16, vocab_size: 200 });
        const model = MambaLM.create(cfg, { seed: 3, device: 'cuda', precision });
        const r = new Rng(4);
        const prompts = Array.from({ length: B }, () => Array.from({ length: 5 }, () => r.int(200)));
        const o = { temperature: 1, topK: 8 };
        const first = decodeTokens(model, prompts, 16, o, true);
        expect(model.decodeSessions.size).toBe(1);
        expect(decodeTokens(model, prompts, 16, o, true)).toEqual(first);
        expect(decodeTokens(model, prompts, 16, o, false)).toEqual(first);
        // every weight moved in place (as a checkpoint load does); the kept graph reads the new values
        for (const p of model.parameters()) {
          const v = p.value.toFloat64().map((x) => x + 0.3 * r.normal());
          p.value.copyFrom(Tensor.from(Float32Array.from(v), [...p.value.shape]).to('cuda'));
        }
        model.invalidate();
        const after = decodeTokens(model, prompts, 16, o, true);
        expect(after).not.toEqual(first);
        expect(after).toEqual(decodeTokens(model, prompts, 16, o, false));
        model.dispose();
        expect(model.decodeSessions.size).toBe(0);
      });
    }
});
