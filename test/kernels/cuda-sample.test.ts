// sampleTokens on CUDA (native/cuda/sample.cu) against its CPU twin on random logits (f32 and bf16, several B,
// Vp, temperatures, top-k and top-p): the same tokens for greedy, temperature and top-k; top-p within the
// float64 nucleus and nearly always the twin's token (its mass sums differ in order). Then generation on the
// GPU with the token chosen there against a host loop over the returned logits. Skips without a GPU.
import { describe, expect, it } from 'vitest';
import { Tensor, bf16BitsToF32, cudaAvailable, f32ToBf16Bits, sampleTokens } from '../../src/backend/index.js';
import { Decoder, generateMany, sampleToken, type SampleOptions } from '../../src/generate/index.js';
import { MambaLM, derived, makeConfig } from '../../src/model/index.js';
import { Rng } from '../../src/util/rng.js';

type DT = 'f32' | 'bf16';

/** Tokens of every row, from the GPU kernel and from the CPU twin on the same (rounded) logits. */
function both(
  logits: Float32Array,
  B: number,
  V: number,
  Vp: number,
  o: Required<SampleOptions>,
  dt: DT,
  step: number,
) {
  const vals = dt === 'bf16' ? logits.map((x) => bf16BitsToF32(f32ToBf16Bits(x))) : logits;
  const params = Float32Array.of(o.temperature, o.topK, o.topP, 0);
  const seeds = Int32Array.from({ length: B }, (_, b) => 1000 + 7 * b);
  const steps = new Int32Array(B).fill(step);
  const cpuTok = Tensor.zeros([B], 'i32');
  const cpuSteps = Tensor.from(steps.slice());
  sampleTokens(Tensor.from(vals, [B, Vp]), V, Tensor.from(params), Tensor.from(seeds), cpuSteps, cpuTok);
  const dev =
    dt === 'f32'
      ? Tensor.from(vals, [B, Vp], 'f32', 'cuda')
      : Tensor.from(Uint16Array.from(vals, f32ToBf16Bits), [B, Vp], 'bf16', 'cuda');
  const gpuTok = Tensor.zeros([B], 'i32', 'cuda');
  const gpuSteps = Tensor.from(steps.slice()).to('cuda');
  sampleTokens(dev, V, Tensor.from(params).to('cuda'), Tensor.from(seeds).to('cuda'), gpuSteps, gpuTok);
  expect(Array.from(gpuSteps.toArray())).toEqual(Array.from(cpuSteps.data));
  return { vals, gpu: Array.from(gpuTok.toArray()), cpu: Array.from(cpuTok.data) };
}

/**
 * Whether token t of row `row` is inside the float64 top-k + top-p set, topP loosened by `slack`. Tokens tied with
 * the last one the mass takes are inside too: the kernel keeps every token at its threshold key, as top-k keeps
 * every tie (bf16 logits of a 50k vocabulary hold many ties).
 */
function inNucleus(row: Float32Array, t: number, o: Required<SampleOptions>, slack: number): boolean {
  const l = Array.from(row);
  const order = l.map((_, v) => v).sort((a, b) => l[b]! - l[a]! || a - b);
  const kth = o.topK > 0 && o.topK < l.length ? l[order[o.topK - 1]!]! : -Infinity;
  const mx = l[order[0]!]!;
  const w = l.map((x) => (x >= kth ? Math.exp((x - mx) / o.temperature) : 0));
  const total = w.reduce((a, b) => a + b, 0);
  let c = 0,
    boundary = Infinity;
  for (const v of order) {
    if (w[v] === 0) break;
    boundary = l[v]!;
    c += w[v]! / total;
    if (c >= o.topP + slack) break;
  }
  return w[t]! > 0 && l[t]! >= boundary;
}

describe.skipIf(!cudaAvailable())('sampleTokens: CUDA vs the CPU twin', () => {
  const shapes: [number, number, number][] = [
    [1, 16, 16],
    [3, 50, 56],
    [9, 1000, 1000],
    [64, 50280, 50288],
    [16, 4099, 4104],
  ];
  const settings: Required<SampleOptions>[] = [
    { temperature: 0, topK: 0, topP: 1 },
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 0, topP: 1 },
    { temperature: 1, topK: 1, topP: 1 },
    { temperature: 1.3, topK: 5, topP: 1 },
    { temperature: 0.9, topK: 50, topP: 1 },
  ];
  const nucleus: Required<SampleOptions>[] = [
    { temperature: 1, topK: 0, topP: 0.9 },
    { temperature: 0.8, topK: 40, topP: 0.5 },
  ];
  for (const dt of ['f32', 'bf16'] as const)
    for (const [B, V, Vp] of shapes) {
      it(`the same tokens for greedy, temperature and top-k (${dt}, B=${B}, V=${V}, Vp=${Vp})`, () => {
        const r = new Rng(B * 31 + V);
        const logits = Float32Array.from({ length: B * Vp }, () => 3 * r.normal());
        for (const o of settings)
          for (const step of [0, 17]) {
            const { gpu, cpu } = both(logits, B, V, Vp, o, dt, step);
            expect(gpu, JSON.stringify(o)).toEqual(cpu);
            expect(gpu.every((t) => t >= 0 && t < V)).toBe(true);
          }
      });
      it(`top-p: inside the float64 nucleus, nearly always the twin's token (${dt}, B=${B}, V=${V})`, () => {
        const r = new Rng(B * 17 + V);
        const logits = Float32Array.from({ length: B * Vp }, () => 2 * r.normal());
        let same = 0,
          n = 0;
        for (const o of nucleus)
          for (const step of [0, 1, 2]) {
            const { vals, gpu, cpu } = both(logits, B, V, Vp, o, dt, step);
            gpu.forEach((t, b) => {
              expect(inNucleus(vals.subarray(b * Vp, b * Vp + V), t, o, 1e-4), `row ${b} token ${t}`).toBe(true);
              same += t === cpu[b] ? 1 : 0;
              n++;
            });
          }
        expect(same / n).toBeGreaterThan(0.9);
      });
    }
});

describe.skipIf(!cudaAvailable())('generation on CUDA with the token chosen on the device', () => {
  for (const precision of ['f32', 'bf16'] as const)
    for (const B of [1, 9]) {
      it(`the host loop's tokens, greedy and seeded top-k; a second run reuses the graph (${precision}, B=${B})`, () => {
        const cfg = makeConfig({ d_model: 64, n_layer: 3, d_state: 16, vocab_size: 300 });
        const model = MambaLM.create(cfg, { seed: 5, device: 'cuda', precision });
        const Vp = derived(cfg).paddedVocab,
          V = cfg.vocab_size;
        const r = new Rng(2);
        const prompts = Array.from({ length: B }, () => Array.from({ length: 6 }, () => r.int(V)));
        for (const o of [{ temperature: 0 }, { temperature: 1, topK: 20 }] as SampleOptions[]) {
          const n = 24,
            seed = 4;
          const got = generateMany(model, prompts, { maxNewTokens: n, seed, ...o }).map((t) => Array.from(t));
          const dec = new Decoder(model, B, { shared: false });
          let logits = dec.prefillMany(prompts);
          const want: number[][] = prompts.map(() => []);
          for (let i = 0; i < n; i++) {
            const next = Int32Array.from({ length: B }, (_, b) => sampleToken(logits, b * Vp, V, o, seed + b, i));
            next.forEach((t, b) => want[b]!.push(t));
            if (i + 1 < n) logits = dec.step(next);
          }
          expect(got, JSON.stringify(o)).toEqual(want);
          // a new Decoder of the same B replays the graph captured by the first
          expect(generateMany(model, prompts, { maxNewTokens: n, seed, ...o }).map((t) => Array.from(t))).toEqual(got);
        }
        model.dispose();
      });
    }
});
