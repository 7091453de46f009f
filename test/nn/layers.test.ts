// Gradient checks (central differences, float64 on the CPU) for every layer: Linear, RMSNorm (fused
// residual), Embedding, MambaMixer, MambaBlock (plain and recomputing) and the classifier head.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/backend/index.js';
import {
  ClassifierHead,
  Embedding,
  LMHead,
  Linear,
  MambaBlock,
  MambaMixer,
  RMSNorm,
  Workspace,
  type NNContext,
} from '../../src/nn/index.js';
import { Rng } from '../../src/util/rng.js';
import { checkGradients, f64Tensor, paramTargets, weightedSum, worst } from './gradcheck.js';

const ctx: NNContext = { device: 'cpu', dtype: 'f64' };
const TOL = 1e-4;
const dims = { dModel: 6, dInner: 12, dtRank: 2, dState: 4, dConv: 4 };

function expectAllSmall(m: Map<string, number>): void {
  const [name, err] = worst(m);
  expect(m.size).toBeGreaterThan(0);
  expect(err, `worst relative error ${err} at ${name}`).toBeLessThan(TOL);
}

/** Perturbs the non-default init of a mixer so D, A_log and biases are not at special values. */
function jitter(params: { value: Tensor }[], seed: number, s = 0.1): void {
  const r = new Rng(seed);
  for (const p of params) {
    const d = p.value.data;
    for (let i = 0; i < d.length; i++) d[i] = d[i]! + s * r.normal();
  }
}

describe('Workspace', () => {
  it('hands each layer its typed buffer set once per workspace, and counts and frees its memory', () => {
    const set = { name: 'test set', make: (ws: Workspace) => ({ a: ws.buffer(), b: ws.buffer('f32') }) };
    const w1 = new Workspace('cpu', 'f64'),
      w2 = new Workspace('cpu', 'f64');
    const s1 = w1.buffers(set);
    expect(w1.buffers(set)).toBe(s1);
    expect(w2.buffers(set)).not.toBe(s1);
    const a = s1.a.take([3, 4]);
    expect([a.dtype, a.shape]).toEqual(['f64', [3, 4]]);
    expect(s1.b.take([2]).dtype).toBe('f32');
    // grow-only: a smaller take reuses the buffer, a larger one replaces it
    a.data[0] = 7;
    expect(s1.a.take([2]).data[0]).toBe(7);
    expect(w1.bytes()).toBe(12 * 8 + 2 * 4);
    s1.a.take([20]);
    expect(w1.bytes()).toBe(20 * 8 + 2 * 4);
    expect(w2.bytes()).toBe(0);
    w1.dispose();
    expect(w1.bytes()).toBe(0);
  });
});

describe('Linear', () => {
  it('gradients of W, b and x match finite differences', () => {
    const T = 5,
      I = 4,
      O = 3;
    const lin = new Linear('lin', I, O, true, ctx, new Rng(1));
    const x = f64Tensor([T, I], 2),
      w = f64Tensor([T, O], 3),
      y = Tensor.zeros([T, O], 'f64');
    const loss = () => {
      lin.forward(x, y);
      return weightedSum(y, w);
    };
    loss();
    const dx = Tensor.zeros([T, I], 'f64');
    lin.backward(w, dx);
    const m = checkGradients(
      [...paramTargets(lin.parameters()), { name: 'x', value: x, grad: dx.toFloat64() }],
      loss,
      4,
    );
    expectAllSmall(m);
  });
});

describe('RMSNorm with fused residual', () => {
  it('gradients of w, x and residualIn match (dR is the gradient of both)', () => {
    const T = 4,
      D = 7;
    const norm = new RMSNorm('n', D, 1e-5, ctx);
    jitter(norm.parameters(), 5);
    const x = f64Tensor([T, D], 6),
      res = f64Tensor([T, D], 7),
      w = f64Tensor([T, D], 8),
      w2 = f64Tensor([T, D], 9);
    const out = Tensor.zeros([T, D], 'f64'),
      rOut = Tensor.zeros([T, D], 'f64'),
      rstd = Tensor.zeros([T], 'f64');
    // the loss reads both outputs, as the next block does
    const loss = () => {
      norm.forward(x, res, out, rOut, rstd);
      return weightedSum(out, w) + weightedSum(rOut, w2);
    };
    loss();
    const dR = Tensor.zeros([T, D], 'f64');
    norm.backward(w, w2, dR);
    const g = dR.toFloat64();
    expectAllSmall(
      checkGradients(
        [...paramTargets(norm.parameters()), { name: 'x', value: x, grad: g }, { name: 'res', value: res, grad: g }],
        loss,
        10,
      ),
    );
  });
});

describe('Embedding and LM head (tied)', () => {
  it('gradient into the shared weight from both uses matches', () => {
    const V = 9,
      D = 5,
      T = 6;
    const emb = new Embedding('e', V, D, ctx, new Rng(3), 0.5);
    const head = new LMHead(emb.weight, V, D, ctx, new Rng(4));
    const ids = Tensor.from(Int32Array.from([1, 4, 4, 8, 0, 3]), [T]);
    const h = Tensor.zeros([T, D], 'f64'),
      logits = Tensor.zeros([T, V], 'f64'),
      w = f64Tensor([T, V], 11);
    const loss = () => {
      emb.forward(ids, h);
      head.forward(h, logits);
      return weightedSum(logits, w);
    };
    loss();
    const dh = Tensor.zeros([T, D], 'f64');
    head.backward(w, dh);
    emb.backward(dh);
    expect(head.parameters()).toHaveLength(0);
    expectAllSmall(checkGradients(paramTargets(emb.parameters()), loss, 12, 12));
  });
});

describe('MambaMixer', () => {
  it('gradients of every parameter and of the input match finite differences', () => {
    const B = 2,
      L = 7,
      T = B * L;
    const mixer = new MambaMixer('m', dims, ctx, new Rng(20), { nLayer: 2 });
    jitter([mixer.Dskip, mixer.ALog, mixer.dtProjBias], 21, 0.2);
    const ws = new Workspace('cpu', 'f64');
    const x = f64Tensor([T, dims.dModel], 22),
      w = f64Tensor([T, dims.dModel], 23),
      out = Tensor.zeros([T, dims.dModel], 'f64');
    const loss = () => {
      mixer.forward(x, out, B, L, ws);
      return weightedSum(out, w);
    };
    loss();
    const dx = Tensor.zeros([T, dims.dModel], 'f64');
    mixer.backward(w, dx, new Workspace('cpu', 'f64'));
    const m = checkGradients(
      [...paramTargets(mixer.parameters()), { name: 'x', value: x, grad: dx.toFloat64() }],
      loss,
      24,
      8,
    );
    expect([...m.keys()]).toEqual(
      expect.arrayContaining([
        'm.in_proj.weight',
        'm.conv1d.weight',
        'm.x_proj.weight',
        'm.dt_proj.bias',
        'm.A_log',
        'm.D',
        'm.out_proj.weight',
      ]),
    );
    expectAllSmall(m);
  });
});

describe('MambaBlock', () => {
  for (const recompute of [false, true]) {
    it(`gradients match finite differences (recompute=${recompute})`, () => {
      const B = 2,
        L = 5,
        T = B * L,
        D = dims.dModel;
      const block = new MambaBlock('b', dims, 1e-5, ctx, new Rng(30), { nLayer: 2 }, recompute);
      jitter([block.norm.weight, block.mixer.Dskip], 31);
      const ws = new Workspace('cpu', 'f64');
      const hIn = f64Tensor([T, D], 32),
        rIn = f64Tensor([T, D], 33),
        w = f64Tensor([T, D], 34);
      const hOut = Tensor.zeros([T, D], 'f64'),
        rOut = Tensor.zeros([T, D], 'f64'),
        rstd = Tensor.zeros([T], 'f64');
      // the next layer consumes hOut + rOut
      const loss = () => {
        block.forward(hIn, rIn, hOut, rOut, rstd, B, L, ws);
        return weightedSum(hOut, w) + weightedSum(rOut, w);
      };
      loss();
      if (recompute) ws.get('xz', [T, 2 * dims.dInner]).data.fill(123); // backward must not rely on stale intermediates
      const dIn = Tensor.zeros([T, D], 'f64');
      block.backward(w, dIn, new Workspace('cpu', 'f64'));
      const g = dIn.toFloat64();
      expectAllSmall(
        checkGradients(
          [
            ...paramTargets(block.parameters()),
            { name: 'hIn', value: hIn, grad: g },
            { name: 'rIn', value: rIn, grad: g },
          ],
          loss,
          35,
          6,
        ),
      );
    });
  }
});

describe('ClassifierHead', () => {
  for (const pooling of ['mean', 'last'] as const) {
    it(`gradients of the linear layer and of h match (${pooling} pooling)`, () => {
      const B = 3,
        L = 4,
        D = 5,
        C = 3;
      const head = new ClassifierHead(D, C, pooling, ctx, new Rng(40));
      const ws = new Workspace('cpu', 'f64');
      const h = f64Tensor([B * L, D], 41),
        w = f64Tensor([B, C], 42),
        logits = Tensor.zeros([B, C], 'f64');
      const loss = () => {
        head.forward(h, logits, B, L, ws);
        return weightedSum(logits, w);
      };
      loss();
      const dh = Tensor.zeros([B * L, D], 'f64');
      head.backward(w, dh, ws);
      expectAllSmall(
        checkGradients(
          [...paramTargets(head.parameters()), { name: 'h', value: h, grad: dh.toFloat64() }],
          loss,
          43,
          10,
        ),
      );
    });
  }
});
