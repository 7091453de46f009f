// Whole-model gradient checks (float64, central differences) for the LM (tied and untied head) and the
// classifier (mean and last pooling), plus config validation and workspace reuse.
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  MambaClassifier,
  MambaLM,
  ModelError,
  derived,
  makeConfig,
  type MambaConfig,
} from '../../src/model/index.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from '../helpers.js';
import { checkGradients, paramTargets, worst } from '../nn/gradcheck.js';

const TOL = 1e-4;

function tokens(n: number, V: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(V));
}

function tinyConfig(over: Partial<MambaConfig> = {}): MambaConfig {
  return makeConfig({ d_model: 8, n_layer: 2, d_state: 4, expand: 2, vocab_size: 6, pad_vocab_size_multiple: 4 }, over);
}

describe('MambaLM', () => {
  for (const tie of [true, false]) {
    it(`whole-model gradients match finite differences (tie_embeddings=${tie})`, () => {
      const cfg = tinyConfig({ tie_embeddings: tie });
      const model = MambaLM.create(cfg, { dtype: 'f64', seed: 1 });
      const B = 2,
        L = 6;
      const batch = { B, L, inputs: tokens(B * L, 6, 2), targets: tokens(B * L, 6, 3) };
      batch.targets[3] = -1; // an ignored target
      model.zeroGrad();
      const r = model.forwardBackward(batch);
      expect(r.count).toBe(B * L - 1);
      expect(Number.isFinite(r.loss)).toBe(true);
      const m = checkGradients(paramTargets(model.parameters()), () => model.forward(batch).loss, 4, 5);
      expect(m.has('backbone.embeddings.weight')).toBe(true);
      expect(m.has('lm_head.weight')).toBe(!tie);
      const [name, err] = worst(m);
      expect(err, `worst ${err} at ${name}`).toBeLessThan(TOL);
    });
  }

  it('the same seed gives the same model; workspaces are reused across steps of one shape', () => {
    const cfg = tinyConfig();
    const a = MambaLM.create(cfg, { seed: 7 }),
      b = MambaLM.create(cfg, { seed: 7 });
    const batch = { B: 2, L: 8, inputs: tokens(16, 6, 1), targets: tokens(16, 6, 2) };
    expect(a.forward(batch).loss).toBe(b.forward(batch).loss);
    a.forwardBackward(batch);
    const bytes = a.backbone.workspaceBytes();
    a.forwardBackward(batch);
    a.forwardBackward({ B: 1, L: 8, inputs: tokens(8, 6, 3), targets: tokens(8, 6, 4) });
    expect(a.backbone.workspaceBytes()).toBe(bytes);
    // initial loss near ln(padded vocab) for a fresh model
    expect(Math.abs(a.forward(batch).loss - Math.log(derived(cfg).paddedVocab))).toBeLessThan(0.5);
  });

  it('recomputation gives the same gradients (up to rounding: its in_proj products run by row block)', () => {
    const cfg = tinyConfig();
    const batch = { B: 2, L: 9, inputs: tokens(18, 6, 5), targets: tokens(18, 6, 6) };
    const a = MambaLM.create(cfg, { dtype: 'f64', seed: 3 }),
      b = MambaLM.create(cfg, { dtype: 'f64', seed: 3, recompute: true });
    a.forwardBackward(batch);
    b.forwardBackward(batch);
    const pa = a.parameters(),
      pb = b.parameters();
    for (let i = 0; i < pa.length; i++)
      expect(relErr(pb[i]!.grad.data, pa[i]!.grad.data), pa[i]!.name).toBeLessThan(1e-13);
  });

  it('recomputation keeps less activation memory with several layers', () => {
    const cfg = tinyConfig({ n_layer: 4 });
    const batch = { B: 2, L: 64, inputs: tokens(128, 6, 7), targets: tokens(128, 6, 8) };
    const plain = MambaLM.create(cfg, { seed: 1 }),
      rec = MambaLM.create(cfg, { seed: 1, recompute: true });
    plain.forwardBackward(batch);
    rec.forwardBackward(batch);
    expect(rec.backbone.workspaceBytes()).toBeLessThan(0.6 * plain.backbone.workspaceBytes());
  });

  it('keeps per layer only xz, dtIn, B/C, y and the residual stream: xc, delta and norm(r) are rebuilt in backward', () => {
    // the workspace of n_layer + 1 layers minus that of n_layer: what one more layer keeps until backward
    const batch = { B: 2, L: 32, inputs: tokens(64, 6, 9), targets: tokens(64, 6, 10) };
    const bytes = (n: number) => {
      const m = MambaLM.create(tinyConfig({ n_layer: n }), { seed: 1 });
      m.forwardBackward(batch);
      return m.backbone.workspaceBytes();
    };
    const { dInner: E, dtRank: R } = derived(tinyConfig());
    const { d_model: D, d_state: N } = tinyConfig();
    const T = batch.B * batch.L;
    // f32 activations and parameters on the CPU: xz 2E + dtIn R + bc 2N + y E, then r D and rstd 1
    expect(bytes(3) - bytes(2)).toBe(T * 4 * (3 * E + R + 2 * N + D + 1));
  });

  it('rejects bad batches with one clear message', () => {
    const m = MambaLM.create(tinyConfig());
    expect(() => m.forward({ B: 1, L: 3, inputs: Int32Array.from([0, 9, 1]), targets: new Int32Array(3) })).toThrow(
      /token 9 at position 1 is outside the vocabulary 0..5/,
    );
    expect(() => m.forward({ B: 2, L: 3, inputs: new Int32Array(5), targets: new Int32Array(6) })).toThrow(ModelError);
  });
});

describe('MambaClassifier', () => {
  for (const pooling of ['mean', 'last'] as const) {
    it(`whole-model gradients match finite differences (${pooling} pooling)`, () => {
      const cfg = tinyConfig({ task: 'classify', num_classes: 3, pooling });
      const model = MambaClassifier.create(cfg, { dtype: 'f64', seed: 2 });
      const B = 3,
        L = 5;
      const batch = { B, L, inputs: tokens(B * L, 6, 8), labels: Int32Array.from([0, 2, 1]) };
      model.zeroGrad();
      const r = model.forwardBackward(batch);
      expect(r.predictions).toHaveLength(B);
      const m = checkGradients(paramTargets(model.parameters()), () => model.forward(batch).loss, 9, 5);
      expect(m.has('classifier.weight')).toBe(true);
      const [name, err] = worst(m);
      expect(err, `worst ${err} at ${name}`).toBeLessThan(TOL);
    });
  }
});

describe('MambaConfig', () => {
  it('presets, derived sizes and validation messages', () => {
    const c = makeConfig('small');
    expect(c.d_model).toBe(256);
    expect(derived(c)).toEqual({ dInner: 512, dtRank: 16, paddedVocab: 16 });
    expect(derived(makeConfig('130m', { domain: 'audio' })).paddedVocab).toBe(256);
    expect(() => makeConfig('tiny', { d_model: 0 })).toThrow('d_model must be a positive integer, got 0');
    expect(() => makeConfig('tiny', { dt_rank: 1.5 })).toThrow(/dt_rank must be a positive integer/);
    expect(() => makeConfig('tiny', { task: 'classify', num_classes: 1 })).toThrow(/num_classes must be at least 2/);
    expect(() => makeConfig('huge' as never)).toThrow(ConfigError);
    expect(() => makeConfig('tiny', { norm_epsilon: -1 })).toThrow(/norm_epsilon/);
  });
});
