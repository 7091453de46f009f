// Recurrent decoding against the parallel scan: the same logits at every position, for prompts shorter
// and longer than the conv width and several sequences at once; seeded sampling with top-k / top-p.
import { describe, expect, it } from 'vitest';
import { MambaLM, derived, makeConfig } from '../../src/model/index.js';
import { Decoder, generate, generateMany, sampleToken } from '../../src/generate/index.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from '../helpers.js';

const cfg = makeConfig({ d_model: 16, n_layer: 2, d_state: 4 });

function perturbed(dtype: 'f32' | 'f64'): MambaLM {
  const m = MambaLM.create(cfg, { seed: 3, dtype });
  // move A_log, D and dt bias off their init so every path of the step kernels matters
  const r = new Rng(5);
  for (const p of m.parameters()) {
    if (/A_log|\.D$|dt_proj\.bias|conv1d/.test(p.name)) {
      const d = p.value.data;
      for (let i = 0; i < d.length; i++) d[i] = d[i]! + 0.3 * r.normal();
    }
  }
  return m;
}

describe('recurrent decoding', () => {
  for (const dtype of ['f64', 'f32'] as const) {
    for (const P of [1, 3, 7]) {
      it(`prefill of ${P} tokens + steps gives the parallel logits (${dtype}, B=2)`, () => {
        const m = perturbed(dtype);
        const B = 2,
          L = 20;
        const r = new Rng(11);
        const toks = Int32Array.from({ length: B * L }, () => 4 + r.int(4));
        const Vp = derived(cfg).paddedVocab;
        const par = m.logits(toks, B, L);
        const dec = new Decoder(m, B);
        const prompt = new Int32Array(B * P);
        for (let b = 0; b < B; b++) prompt.set(toks.subarray(b * L, b * L + P), b * P);
        const got: number[] = [],
          want: number[] = [];
        const push = (lg: Float64Array, t: number) => {
          for (let b = 0; b < B; b++)
            for (let v = 0; v < Vp; v++) {
              got.push(lg[b * Vp + v]!);
              want.push(par[(b * L + t) * Vp + v]!);
            }
        };
        push(dec.prefill(prompt, P), P - 1);
        for (let t = P; t < L; t++) push(dec.step(Int32Array.from({ length: B }, (_, b) => toks[b * L + t]!)), t);
        expect(relErr(got, want)).toBeLessThan(dtype === 'f64' ? 1e-10 : 1e-5);
      });
    }
  }
});

describe('prompts of different lengths', () => {
  for (const dtype of ['f64', 'f32'] as const) {
    it(`prefillMany + batched steps give each sequence's own parallel logits (${dtype}, lengths 1, 9, 4)`, () => {
      const m = perturbed(dtype);
      const lens = [1, 9, 4],
        more = 6,
        B = lens.length;
      const r = new Rng(12);
      const seqs = lens.map((n) => Int32Array.from({ length: n + more }, () => 4 + r.int(4)));
      const Vp = derived(cfg).paddedVocab;
      const dec = new Decoder(m, B);
      const got: number[][] = lens.map(() => []);
      const keep = (lg: Float64Array) => {
        for (let b = 0; b < B; b++) got[b]!.push(...lg.subarray(b * Vp, (b + 1) * Vp));
      };
      keep(dec.prefillMany(seqs.map((s, b) => s.subarray(0, lens[b]))));
      for (let t = 0; t < more - 1; t++) keep(dec.step(Int32Array.from(seqs.map((s, b) => s[lens[b]! + t]!))));
      for (let b = 0; b < B; b++) {
        // the same tokens through the parallel pass alone: logits at positions len-1 .. len+more-2
        const par = m.logits(seqs[b]!, 1, seqs[b]!.length);
        const want = Array.from(par.subarray((lens[b]! - 1) * Vp, (lens[b]! + more - 1) * Vp));
        expect(relErr(got[b]!, want), `sequence ${b}`).toBeLessThan(dtype === 'f64' ? 1e-10 : 1e-5);
      }
      expect(() => dec.prefillMany([[4], [5]])).toThrow(/needs 3 prompts/);
      expect(() => dec.prefillMany([[4], [], [5]])).toThrow(/prompt 1 is empty/);
      expect(() => dec.prefillMany([[4], [99], [5]])).toThrow(/outside the vocabulary/);
    });
  }
});

describe('generateMany', () => {
  it('greedy continuations of prompts of different lengths equal one-at-a-time generation; a stop token ends one sequence only', () => {
    const m = perturbed('f64');
    const prompts = [[4, 5], [6, 7, 4, 4, 5, 6, 7], [5]];
    const many = generateMany(m, prompts, { maxNewTokens: 12, temperature: 0 });
    prompts.forEach((p, b) =>
      expect(Array.from(many[b]!), `prompt ${b}`).toEqual(
        Array.from(generate(m, p, { maxNewTokens: 12, temperature: 0 })),
      ),
    );
    const stop = many[1]![3]!;
    const stopped = generateMany(m, prompts, { maxNewTokens: 12, temperature: 0, stopToken: stop });
    stopped.forEach((t, b) => {
      const first = Array.from(many[b]!).indexOf(stop);
      expect(Array.from(t)).toEqual(Array.from(many[b]!.subarray(0, first >= 0 ? first + 1 : 12)));
    });
    // sampled: sequence b draws from seed + b
    const a = generateMany(m, [[4], [4]], { maxNewTokens: 30, temperature: 1, seed: 7 });
    expect(Array.from(a[0]!)).toEqual(Array.from(generate(m, [4], { maxNewTokens: 30, temperature: 1, seed: 7 })));
    expect(Array.from(a[1]!)).toEqual(Array.from(generate(m, [4], { maxNewTokens: 30, temperature: 1, seed: 8 })));
    expect(() => generateMany(m, [], { maxNewTokens: 3 })).toThrow(/at least one prompt/);
  });
});

describe('sampling', () => {
  it('greedy, top-k, top-p and seeds', () => {
    const logits = [0.1, 2, 1.5, -1, 0.2, 5];
    expect(sampleToken(logits, 0, 5, { temperature: 0 }, 1, 0)).toBe(1); // padding column 5 is excluded
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 2000; i++) counts[sampleToken(logits, 0, 5, { topK: 2 }, 1, i)]++;
    expect(counts[0] + counts[3] + counts[4]).toBe(0);
    // p(1) = e^2/(e^2+e^1.5) = 0.62 within the top 2
    expect(counts[1] / 2000).toBeGreaterThan(0.55);
    expect(counts[1] / 2000).toBeLessThan(0.69);
    for (let i = 0; i < 200; i++) expect(sampleToken(logits, 0, 5, { topP: 0.3 }, 1, i)).toBe(1);
    expect(() => sampleToken(logits, 0, 5, { topP: 0 }, 1, 0)).toThrow(/topP must be in/);
    expect(() => sampleToken(logits, 0, 5, {}, 1, -1)).toThrow(/step must be an integer >= 0/);
    const m = MambaLM.create(cfg, { seed: 1 });
    const a = generate(m, [4, 5, 6], { maxNewTokens: 30, seed: 7, temperature: 1 });
    const b = generate(m, [4, 5, 6], { maxNewTokens: 30, seed: 7, temperature: 1 });
    expect(a).toHaveLength(30);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a).every((t) => t >= 0 && t < cfg.vocab_size)).toBe(true);
    expect(() => generate(m, [], { maxNewTokens: 3 })).toThrow(/at least one token/);
  });
});
