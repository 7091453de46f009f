// The model on CUDA against the same model on the CPU (same seed, same init): loss, every gradient,
// an optimizer step and recurrent decoding, by relative error. Skips without a GPU.
import { describe, expect, it } from 'vitest';
import { cudaAvailable } from '../../src/backend/index.js';
import { Decoder } from '../../src/generate/index.js';
import { MambaClassifier, MambaLM, derived, makeConfig } from '../../src/model/index.js';
import { AdamW } from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from '../helpers.js';

const cfg = makeConfig({ d_model: 64, n_layer: 2, d_state: 16 });

function batch(B: number, L: number, seed: number) {
  const r = new Rng(seed);
  return {
    B,
    L,
    inputs: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
    targets: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
  };
}

describe.skipIf(!cudaAvailable())('model on CUDA vs CPU', () => {
  for (const recompute of [false, true]) {
    it(`bf16 activations: loss and gradients close to the f32 CPU model (recompute=${recompute})`, () => {
      const cpu = MambaLM.create(cfg, { seed: 1 }),
        gpu = MambaLM.create(cfg, { seed: 1, device: 'cuda', precision: 'bf16', recompute });
      expect(gpu.precision).toBe('bf16');
      const b = batch(2, 300, 2);
      const lc = cpu.forwardBackward(b).loss,
        lg = gpu.forwardBackward(b).loss;
      expect(Math.abs(lc - lg) / lc).toBeLessThan(1e-2);
      const pc = cpu.parameters(),
        pg = gpu.parameters();
      for (let i = 0; i < pc.length; i++)
        expect(relErr(pg[i]!.grad.toFloat64(), pc[i]!.grad.toFloat64()), pc[i]!.name).toBeLessThan(5e-2);
    });
  }

  it('bf16 activations train: a repeated batch is learned', () => {
    const m = MambaLM.create(cfg, { seed: 2, device: 'cuda', precision: 'bf16' });
    const opt = new AdamW(m.parameters());
    const b = batch(4, 128, 9);
    const first = m.forward(b).loss;
    for (let i = 0; i < 30; i++) {
      m.zeroGrad();
      m.forwardBackward(b);
      opt.update(3e-3);
    }
    expect(m.forward(b).loss).toBeLessThan(first - 0.05);
    // the update refreshes the bf16 matmul copies itself (the next forward skips its cast): bit for bit the copies
    // a cast gives, here after a clipped update
    m.zeroGrad();
    m.forwardBackward(b);
    opt.update(3e-3, 0.5);
    expect(m.parameters().some((p) => p.half && p.halfFresh)).toBe(true);
    const b2 = batch(4, 64, 10);
    const afterUpdate = m.forward(b2).loss;
    m.invalidate();
    expect(m.forward(b2).loss).toBe(afterUpdate);
    expect(() => MambaLM.create(cfg, { precision: 'bf16' })).toThrow(/needs a CUDA device/);
  });

  for (const recompute of [false, true]) {
    it(`LM loss and all gradients agree (recompute=${recompute})`, () => {
      const cpu = MambaLM.create(cfg, { seed: 1 }),
        gpu = MambaLM.create(cfg, { seed: 1, device: 'cuda', recompute });
      const b = batch(2, 300, 2);
      const lc = cpu.forwardBackward(b).loss,
        lg = gpu.forwardBackward(b).loss;
      expect(Math.abs(lc - lg) / lc).toBeLessThan(1e-4);
      const pc = cpu.parameters(),
        pg = gpu.parameters();
      for (let i = 0; i < pc.length; i++)
        expect(relErr(pg[i]!.grad.toFloat64(), pc[i]!.grad.toFloat64()), pc[i]!.name).toBeLessThan(1e-3);
      const oc = new AdamW(pc),
        og = new AdamW(pg);
      oc.update(1e-3);
      og.update(1e-3);
      const b2 = batch(2, 64, 3);
      expect(Math.abs(cpu.forward(b2).loss - gpu.forward(b2).loss)).toBeLessThan(1e-4);
    });
  }

  it('classifier agrees and recurrent decoding on CUDA matches the parallel logits', () => {
    const ccfg = makeConfig({ d_model: 32, n_layer: 2, task: 'classify', num_classes: 3, pooling: 'last' });
    const cpu = MambaClassifier.create(ccfg, { seed: 4 }),
      gpu = MambaClassifier.create(ccfg, { seed: 4, device: 'cuda' });
    const b = { ...batch(4, 50, 5), labels: Int32Array.from([0, 1, 2, 1]) };
    expect(relErr(gpu.forwardBackward(b).logits, cpu.forwardBackward(b).logits)).toBeLessThan(1e-4);
    const lm = MambaLM.create(cfg, { seed: 6, device: 'cuda' });
    const Vp = derived(cfg).paddedVocab;
    // B = 1 takes the fused step, B = 12 the unfused one (cuBLAS products and decodeSsm on x_proj)
    for (const B of [1, 12]) {
      const L = 12,
        P = 5,
        toks = batch(B, L, 7 + B).inputs;
      const par = lm.logits(toks, B, L);
      const dec = new Decoder(lm, B);
      const prompt = Int32Array.from({ length: B * P }, (_, i) => toks[Math.floor(i / P) * L + (i % P)]!);
      // got[t][b]: the logits of sequence b after its token t, from the prefill (t = P - 1) and the steps
      const got: Float64Array[] = [dec.prefill(prompt, P)];
      for (let t = P; t < L; t++) got.push(dec.step(Int32Array.from({ length: B }, (_, b) => toks[b * L + t]!)));
      const want: number[] = [],
        have: number[] = [];
      for (let b = 0; b < B; b++)
        for (let t = P - 1; t < L; t++) {
          want.push(...par.subarray((b * L + t) * Vp, (b * L + t + 1) * Vp));
          have.push(...got[t - P + 1]!.subarray(b * Vp, (b + 1) * Vp));
        }
      expect(relErr(have, want), `B = ${B}`).toBeLessThan(1e-4);
    }
  });
});
