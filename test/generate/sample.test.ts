// Next-token choice (sampleTokens, CPU twin of the CUDA kernel; native/src/sample.h): greedy, temperature, top-k
// and top-p against a float64 reference of the distribution they sample, generation with device-side choice
// against a host loop over the returned logits with the same seeds, and the Decoder state kept per (model, B).
import { describe, expect, it } from 'vitest';
import { Tensor, sampleTokens } from '../../src/backend/index.js';
import { Decoder, generateMany, sampleToken, type SampleOptions } from '../../src/generate/index.js';
import { MambaLM, derived, makeConfig } from '../../src/model/index.js';
import { Rng } from '../../src/util/rng.js';

/** N draws (steps 0..N-1, one seed) from one row of logits, in one call of the op. */
function draws(logits: number[], o: Required<SampleOptions>, N: number, seed = 3): Int32Array {
  const V = logits.length;
  const rows = new Float32Array(N * V);
  for (let i = 0; i < N; i++) rows.set(logits, i * V);
  const tokens = Tensor.zeros([N], 'i32');
  sampleTokens(
    Tensor.from(rows, [N, V]),
    V,
    Tensor.from(Float32Array.of(o.temperature, o.topK, o.topP, 0)),
    Tensor.from(new Int32Array(N).fill(seed)),
    Tensor.from(Int32Array.from({ length: N }, (_, i) => i)),
    tokens,
  );
  return tokens.data as Int32Array;
}

/** The distribution top-k then top-p sampling draws from, in float64 (ties at the k-th logit kept). */
function reference(logits: number[], o: Required<SampleOptions>): number[] {
  const l = logits.map(Math.fround);
  const order = l.map((_, v) => v).sort((a, b) => l[b]! - l[a]! || a - b);
  const kth = o.topK > 0 && o.topK < l.length ? l[order[o.topK - 1]!]! : -Infinity;
  const mx = l[order[0]!]!;
  const w = l.map((x) => (x >= kth ? Math.exp((x - mx) / o.temperature) : 0));
  const total = w.reduce((a, b) => a + b, 0);
  let cut = -Infinity;
  if (o.topP < 1) {
    let c = 0;
    for (const v of order) {
      c += w[v]! / total;
      if (c >= o.topP) {
        cut = l[v]!;
        break;
      }
    }
  }
  const kept = w.map((x, v) => (l[v]! >= cut ? x : 0));
  const s = kept.reduce((a, b) => a + b, 0);
  return kept.map((x) => x / s);
}

describe('sampleTokens (CPU twin)', () => {
  it('greedy is the first largest logit of the real vocabulary', () => {
    const logits = [0.5, 3, -1, 3, 2, 9];
    expect(Array.from(draws(logits.slice(0, 5), { temperature: 0, topK: 0, topP: 1 }, 4))).toEqual([1, 1, 1, 1]);
    // padding past V is never chosen, whatever it holds
    const t = Tensor.zeros([1], 'i32');
    const steps = Tensor.from(Int32Array.of(5));
    sampleTokens(
      Tensor.from(Float32Array.from(logits), [1, 6]),
      5,
      Tensor.from(Float32Array.of(1, 0, 1, 0)),
      Tensor.from(Int32Array.of(1)),
      steps,
      t,
    );
    expect(t.data[0]).not.toBe(5);
    expect(steps.data[0]).toBe(6); // the draw counter moves on
  });

  const cases: [string, number[], Required<SampleOptions>][] = [
    ['temperature 1', [0.3, -0.2, 1.1, 0.9, -2, 0.05, 0.6, -0.7], { temperature: 1, topK: 0, topP: 1 }],
    ['temperature 0.6', [0.3, -0.2, 1.1, 0.9, -2, 0.05, 0.6, -0.7], { temperature: 0.6, topK: 0, topP: 1 }],
    ['top-k 3, T 1.5', [0.3, -0.2, 1.1, 0.9, -2, 0.05, 0.6, -0.7], { temperature: 1.5, topK: 3, topP: 1 }],
    ['top-p 0.7', [0.3, -0.2, 1.1, 0.9, -2, 0.05, 0.6, -0.7], { temperature: 1, topK: 0, topP: 0.7 }],
    ['top-k 5 + top-p 0.9, T 0.8', [2.1, 0.4, -0.3, 1.7, 1.2, 0.8, -1.5], { temperature: 0.8, topK: 5, topP: 0.9 }],
    ['top-k ties at the k-th value kept', [1, 3, 3, 2, 0.5], { temperature: 1, topK: 2, topP: 1 }],
  ];
  for (const [name, logits, o] of cases) {
    it(`draws from the float64 reference distribution: ${name}`, () => {
      const N = 40000;
      const got = new Array(logits.length).fill(0);
      for (const t of draws(logits, o, N)) got[t]++;
      const want = reference(logits, o);
      want.forEach((p, v) => {
        if (p === 0) expect(got[v], `token ${v} is outside the allowed set`).toBe(0);
        else
          expect(Math.abs(got[v] / N - p), `token ${v}: p ${p.toFixed(4)}`).toBeLessThan(
            5 * Math.sqrt((p * (1 - p)) / N) + 1e-3,
          );
      });
    });
  }

  it('rows are independent: a batch gives what each row gives alone', () => {
    const r = new Rng(4);
    const B = 5,
      V = 37,
      Vp = 40;
    const logits = Float32Array.from({ length: B * Vp }, () => 2 * r.normal());
    const o = { temperature: 0.9, topK: 7, topP: 0.95 };
    const tokens = Tensor.zeros([B], 'i32');
    const seeds = Int32Array.from({ length: B }, (_, b) => 100 + b);
    sampleTokens(
      Tensor.from(logits, [B, Vp]),
      V,
      Tensor.from(Float32Array.of(o.temperature, o.topK, o.topP, 0)),
      Tensor.from(seeds),
      Tensor.from(new Int32Array(B).fill(9)),
      tokens,
    );
    for (let b = 0; b < B; b++) expect(tokens.data[b]).toBe(sampleToken(logits, b * Vp, V, o, 100 + b, 9));
  });

  it('rejects bad arguments in one line', () => {
    const l = Tensor.zeros([2, 4]);
    const p = Tensor.from(Float32Array.of(1, 0, 1, 0));
    const i2 = () => Tensor.zeros([2], 'i32');
    expect(() => sampleTokens(l, 5, p, i2(), i2(), i2())).toThrow(/V must be 1\.\.4/);
    expect(() => sampleTokens(l, 4, p, Tensor.zeros([2]), i2(), i2())).toThrow(/i32/);
    expect(() => sampleTokens(l, 4, p, i2(), i2(), Tensor.zeros([3], 'i32'))).toThrow(/tokens must hold 2/);
  });
});

const cfg = makeConfig({ d_model: 16, n_layer: 2, d_state: 4 });
function perturbed(seed = 3): MambaLM {
  const m = MambaLM.create(cfg, { seed, dtype: 'f32' });
  const r = new Rng(5);
  for (const p of m.parameters()) {
    const d = p.value.data;
    for (let i = 0; i < d.length; i++) d[i] = d[i]! + 0.3 * r.normal();
  }
  m.invalidate();
  return m;
}

/** The host loop: logits of every step to the host, sampleToken with the same seeds and draw counts. */
function hostGenerate(m: MambaLM, prompts: number[][], n: number, o: SampleOptions, seed: number): number[][] {
  const B = prompts.length,
    V = m.config.vocab_size,
    Vp = derived(m.config).paddedVocab;
  const dec = new Decoder(m, B, { shared: false });
  let logits = dec.prefillMany(prompts);
  const out: number[][] = prompts.map(() => []);
  for (let i = 0; i < n; i++) {
    const next = Int32Array.from({ length: B }, (_, b) => sampleToken(logits, b * Vp, V, o, seed + b, i));
    next.forEach((t, b) => out[b]!.push(t));
    if (i + 1 < n) logits = dec.step(next);
  }
  return out;
}

describe('generation with the token chosen on the device', () => {
  const prompts = [[4, 5, 6], [7], [5, 5, 4, 6, 7, 4]];
  const settings: [string, SampleOptions][] = [
    ['greedy', { temperature: 0 }],
    ['seeded top-k', { temperature: 1, topK: 3 }],
    ['seeded temperature', { temperature: 0.7 }],
    ['seeded top-p', { temperature: 1, topP: 0.8 }],
  ];
  for (const [name, o] of settings) {
    it(`gives exactly the host loop's tokens (${name})`, () => {
      const m = perturbed();
      const got = generateMany(m, prompts, { maxNewTokens: 20, seed: 11, ...o });
      expect(got.map((t) => Array.from(t))).toEqual(hostGenerate(m, prompts, 20, o, 11));
      // with a callback the tokens come back every step instead of at the end: the same tokens
      const steps: number[] = [];
      const watched = generateMany(m, prompts, { maxNewTokens: 20, seed: 11, ...o, onStep: (i) => steps.push(i) });
      expect(watched).toEqual(got);
      expect(steps).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });
  }
});

describe('Decoder state kept per (model, B)', () => {
  it('a new Decoder of the same B takes the state over; the old one says so; shared: false keeps its own', () => {
    const m = perturbed();
    const a = new Decoder(m, 2);
    const caches = a.caches;
    const b = new Decoder(m, 2);
    expect(b.caches[0]).toBe(caches[0]);
    expect(() => a.step(Int32Array.of(4, 5))).toThrow(/taken over by a newer Decoder of batch 2/);
    expect(new Decoder(m, 3).caches[0]).not.toBe(caches[0]);
    expect(new Decoder(m, 2, { shared: false }).caches[0]).not.toBe(caches[0]);
    expect(m.decodeSessions.size).toBe(2);
    m.dispose();
    expect(m.decodeSessions.size).toBe(0);
  });

  it('a reused state starts from the prompt alone, and sees weights changed in place', () => {
    const m = perturbed();
    const prompts = [
      [4, 5],
      [6, 7, 7],
    ];
    const o = { maxNewTokens: 15, temperature: 1, topK: 4, seed: 2 };
    const first = generateMany(m, prompts, o);
    expect(generateMany(m, prompts, o)).toEqual(first);
    // change every weight in place (as a checkpoint load does), then compare with a model built with them
    const bump = (x: MambaLM) => {
      const r = new Rng(9);
      for (const p of x.parameters()) {
        const d = p.value.data;
        for (let i = 0; i < d.length; i++) d[i] = d[i]! + 0.2 * r.normal();
      }
      x.invalidate();
    };
    bump(m);
    const fresh = perturbed();
    bump(fresh);
    const after = generateMany(m, prompts, o);
    expect(after).toEqual(generateMany(fresh, prompts, o));
    expect(after).not.toEqual(first);
  });
});
