// CPU kernels: embedding, bias, rmsnorm, cross-entropy, pooling, AdamW and the elementwise ops,
// against float64 references written here, plus finite-difference checks of every backward.
import { describe, expect, it } from 'vitest';
import {
  Tensor,
  TensorError,
  add,
  adamwStep,
  biasBackward,
  biasForward,
  cpuOp,
  crossEntropyForward,
  embeddingBackward,
  embeddingForward,
  fill,
  poolBackward,
  poolForward,
  rmsnormBackward,
  rmsnormForward,
  scale,
  sumSquares,
} from '../../src/backend/index.js';
import { randn, randu, relErr } from '../helpers.js';
import { TOL, dotAll, f64, numericGrad, tensor, zeros, type FDType } from './cpu-helpers.js';

const DTYPES: FDType[] = ['f32', 'f64'];

function ids(n: number, V: number, seed: number): Tensor {
  return Tensor.from(Int32Array.from(randu(n, seed, 0, V), Math.floor), [n]);
}

// ---- references (float64) ---------------------------------------------------------------------

function rmsRef(x: Float64Array, res: Float64Array | null, w: Float64Array, T: number, D: number, eps: number) {
  const out = new Float64Array(T * D),
    r = new Float64Array(T * D),
    rstd = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let d = 0; d < D; d++) {
      const v = x[t * D + d]! + (res ? res[t * D + d]! : 0);
      r[t * D + d] = v;
      ss += v * v;
    }
    const s = 1 / Math.sqrt(ss / D + eps);
    rstd[t] = s;
    for (let d = 0; d < D; d++) out[t * D + d] = r[t * D + d]! * s * w[d]!;
  }
  return { out, r, rstd };
}

function ceRef(logits: Float64Array, tg: Int32Array, T: number, V: number, ignore: number) {
  const loss = new Float64Array(T),
    dl = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    if (tg[t] === ignore) continue;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[t * V + v]!);
    let se = 0;
    for (let v = 0; v < V; v++) se += Math.exp(logits[t * V + v]! - mx);
    const lse = mx + Math.log(se);
    loss[t] = lse - logits[t * V + tg[t]!]!;
    for (let v = 0; v < V; v++) dl[t * V + v] = Math.exp(logits[t * V + v]! - lse) - (v === tg[t] ? 1 : 0);
  }
  return { loss, dl };
}

describe('cpu embedding', () => {
  for (const dt of DTYPES) {
    it(`forward and backward match the reference (${dt})`, () => {
      const T = 37,
        V = 11,
        D = 13;
      const id = ids(T, V, 1);
      const W = randn(V * D, 2);
      const out = zeros([T, D], dt);
      embeddingForward(id, tensor(W, [V, D], dt), out);
      const ref = new Float64Array(T * D);
      for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) ref[t * D + d] = W[id.data[t]! * D + d]!;
      expect(relErr(f64(out), ref)).toBeLessThan(TOL[dt]);
      const g = randn(T * D, 3);
      const dW0 = randn(V * D, 4);
      const dW = tensor(dW0, [V, D], dt);
      embeddingBackward(id, tensor(g, [T, D], dt), dW);
      const dref = Float64Array.from(dW0);
      for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) dref[id.data[t]! * D + d] += g[t * D + d]!;
      expect(relErr(f64(dW), dref)).toBeLessThan(TOL[dt]);
    });
  }
  it('embeddingBackward is the gradient of embeddingForward (finite differences, f64)', () => {
    const T = 9,
      V = 4,
      D = 3;
    const id = ids(T, V, 50);
    const W = randn(V * D, 51),
      G = randn(T * D, 52);
    const f = () => {
      const o = zeros([T, D], 'f64');
      embeddingForward(id, tensor(W, [V, D], 'f64'), o);
      return dotAll(f64(o), G);
    };
    const dW = zeros([V, D], 'f64');
    embeddingBackward(id, tensor(G, [T, D], 'f64'), dW);
    expect(relErr(f64(dW), numericGrad(W, f))).toBeLessThan(1e-6);
  });
  it('rejects ids out of range with a RangeError and wrong arrays with a TypeError', () => {
    const W = tensor(randn(12, 5), [4, 3], 'f32');
    const bad = Tensor.from(Int32Array.from([0, 4]), [2]);
    expect(() => embeddingForward(bad, W, zeros([2, 3], 'f32'))).toThrow(RangeError);
    expect(() => embeddingBackward(Tensor.from(Int32Array.from([-1]), [1]), zeros([1, 3], 'f32'), W)).toThrow(
      RangeError,
    );
    expect(() => cpuOp('embeddingForward')(new Float32Array(2), W.data, new Float32Array(6), 2, 4, 3)).toThrow(
      TypeError,
    );
    expect(() => cpuOp('embeddingForward')(new Int32Array(2), W.data, new Float32Array(5), 2, 4, 3)).toThrow(
      RangeError,
    );
    expect(() => cpuOp('embeddingForward')(new Int32Array(2), W.data, new Float64Array(6), 2, 4, 3)).toThrow(TypeError);
    expect(() => embeddingForward(Tensor.from(Int32Array.from([0]), [1]), W, zeros([1, 3], 'f64'))).toThrow(
      TensorError,
    );
  });
});

describe('cpu bias', () => {
  for (const dt of DTYPES) {
    it(`forward adds and backward sums rows (${dt})`, () => {
      const T = 53,
        C = 19;
      const y0 = randn(T * C, 5),
        b = randn(C, 6);
      const y = tensor(y0, [T, C], dt);
      biasForward(y, tensor(b, [C], dt));
      expect(
        relErr(
          f64(y),
          y0.map((v, i) => v + b[i % C]!),
        ),
      ).toBeLessThan(TOL[dt]);
      const db0 = randn(C, 7);
      const db = tensor(db0, [C], dt);
      biasBackward(tensor(y0, [T, C], dt), db);
      const ref = Float64Array.from(db0);
      for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) ref[c] += y0[t * C + c]!;
      expect(relErr(f64(db), ref)).toBeLessThan(TOL[dt]);
    });
  }
  it('biasBackward is the gradient of biasForward (finite differences, f64)', () => {
    const T = 5,
      C = 3;
    const y0 = randn(T * C, 8),
      b = randn(C, 9),
      G = randn(T * C, 10);
    const f = () => {
      const y = tensor(y0, [T, C], 'f64');
      biasForward(y, tensor(b, [C], 'f64'));
      return dotAll(f64(y), G);
    };
    const db = zeros([C], 'f64');
    biasBackward(tensor(G, [T, C], 'f64'), db);
    expect(relErr(f64(db), numericGrad(b, f))).toBeLessThan(1e-6);
  });
});

describe('cpu rmsnorm', () => {
  for (const dt of DTYPES) {
    for (const withRes of [false, true]) {
      it(`forward and backward match the reference (${dt}, residual ${withRes})`, () => {
        const T = 29,
          D = 37,
          eps = 1e-5;
        const x = randn(T * D, 11),
          res = randn(T * D, 12),
          w = randn(D, 13, 0.5).map((v) => 1 + v);
        const out = zeros([T, D], dt),
          rout = zeros([T, D], dt),
          rstd = zeros([T], dt);
        rmsnormForward(
          tensor(x, [T, D], dt),
          withRes ? tensor(res, [T, D], dt) : null,
          tensor(w, [D], dt),
          out,
          rout,
          rstd,
          eps,
        );
        const ref = rmsRef(x, withRes ? res : null, w, T, D, eps);
        expect(relErr(f64(out), ref.out)).toBeLessThan(TOL[dt]);
        expect(relErr(f64(rout), ref.r)).toBeLessThan(TOL[dt]);
        expect(relErr(f64(rstd), ref.rstd)).toBeLessThan(TOL[dt]);
        // backward vs a direct float64 formula
        const g = randn(T * D, 14),
          gres = randn(T * D, 15);
        const dR = zeros([T, D], dt),
          dW0 = randn(D, 16),
          dW = tensor(dW0, [D], dt);
        rmsnormBackward(
          tensor(g, [T, D], dt),
          withRes ? tensor(gres, [T, D], dt) : null,
          tensor(ref.r, [T, D], dt),
          tensor(w, [D], dt),
          tensor(ref.rstd, [T], dt),
          dR,
          dW,
        );
        const dRref = new Float64Array(T * D),
          dWref = Float64Array.from(dW0);
        for (let t = 0; t < T; t++) {
          const s = ref.rstd[t]!;
          let c = 0;
          for (let d = 0; d < D; d++) c += g[t * D + d]! * w[d]! * ref.r[t * D + d]!;
          for (let d = 0; d < D; d++) {
            const i = t * D + d;
            dRref[i] = (withRes ? gres[i]! : 0) + s * g[i]! * w[d]! - (s * s * s * ref.r[i]! * c) / D;
            dWref[d] += g[i]! * ref.r[i]! * s;
          }
        }
        expect(relErr(f64(dR), dRref)).toBeLessThan(TOL[dt]);
        expect(relErr(f64(dW), dWref)).toBeLessThan(TOL[dt]);
      });
    }
  }
  for (const dt of DTYPES) {
    it(`the norm of a kept residual (x null, residualOut null) equals the full forward's out and rstd (${dt})`, () => {
      const T = 13,
        D = 37,
        eps = 1e-5;
      const x = randn(T * D, 31),
        res = randn(T * D, 32),
        w = randn(D, 33, 0.5).map((v) => 1 + v);
      const out = zeros([T, D], dt),
        rout = zeros([T, D], dt),
        rstd = zeros([T], dt);
      rmsnormForward(tensor(x, [T, D], dt), tensor(res, [T, D], dt), tensor(w, [D], dt), out, rout, rstd, eps);
      const out2 = zeros([T, D], dt),
        rstd2 = zeros([T], dt);
      rmsnormForward(null, rout, tensor(w, [D], dt), out2, null, rstd2, eps);
      expect(Array.from(f64(out2))).toEqual(Array.from(f64(out)));
      expect(Array.from(f64(rstd2))).toEqual(Array.from(f64(rstd)));
      expect(() => rmsnormForward(tensor(x, [T, D], dt), null, tensor(w, [D], dt), out2, null, rstd2, eps)).toThrow(
        /residualOut may be null only/,
      );
      expect(() => rmsnormForward(null, null, tensor(w, [D], dt), out2, null, rstd2, eps)).toThrow(
        /cannot both be null/,
      );
    });
  }
  it('backward matches finite differences of the forward (f64)', () => {
    const T = 3,
      D = 5,
      eps = 1e-5;
    const x = randn(T * D, 17),
      res = randn(T * D, 18),
      w = randn(D, 19),
      G = randn(T * D, 20),
      GR = randn(T * D, 21);
    const loss = () => {
      const out = zeros([T, D], 'f64'),
        rout = zeros([T, D], 'f64'),
        rstd = zeros([T], 'f64');
      rmsnormForward(tensor(x, [T, D], 'f64'), tensor(res, [T, D], 'f64'), tensor(w, [D], 'f64'), out, rout, rstd, eps);
      return dotAll(f64(out), G) + dotAll(f64(rout), GR);
    };
    const out = zeros([T, D], 'f64'),
      rout = zeros([T, D], 'f64'),
      rstd = zeros([T], 'f64');
    rmsnormForward(tensor(x, [T, D], 'f64'), tensor(res, [T, D], 'f64'), tensor(w, [D], 'f64'), out, rout, rstd, eps);
    const dR = zeros([T, D], 'f64'),
      dW = zeros([D], 'f64');
    rmsnormBackward(tensor(G, [T, D], 'f64'), tensor(GR, [T, D], 'f64'), rout, tensor(w, [D], 'f64'), rstd, dR, dW);
    expect(relErr(f64(dR), numericGrad(x, loss))).toBeLessThan(1e-6);
    expect(relErr(f64(dR), numericGrad(res, loss))).toBeLessThan(1e-6);
    expect(relErr(f64(dW), numericGrad(w, loss))).toBeLessThan(1e-6);
  });
});

describe('cpu cross-entropy', () => {
  for (const dt of DTYPES) {
    it(`losses and dLogits match the reference, ignored rows are zero (${dt})`, () => {
      const T = 41,
        V = 7,
        scaleG = 0.37;
      const logits = randn(T * V, 22, 3);
      const tg = Int32Array.from(randu(T, 23, 0, V), Math.floor);
      tg[3] = -100;
      tg[17] = -100;
      const losses = zeros([T], dt),
        dl = zeros([T, V], dt);
      crossEntropyForward(tensor(logits, [T, V], dt), Tensor.from(tg, [T]), losses, dl, scaleG, -100);
      const ref = ceRef(logits, tg, T, V, -100);
      expect(relErr(f64(losses), ref.loss)).toBeLessThan(TOL[dt]);
      expect(
        relErr(
          f64(dl),
          ref.dl.map((v) => v * scaleG),
        ),
      ).toBeLessThan(TOL[dt]);
      expect(f64(losses)[3]).toBe(0);
      // without dLogits, and with large logits (stability)
      const big = logits.map((v) => v * 100);
      const l2 = zeros([T], dt);
      crossEntropyForward(tensor(big, [T, V], dt), Tensor.from(tg, [T]), l2, null, 1, -100);
      expect(relErr(f64(l2), ceRef(big, tg, T, V, -100).loss)).toBeLessThan(TOL[dt]);
    });
  }
  it('dLogits is the gradient of gradScale * sum(losses) (finite differences, f64)', () => {
    const T = 4,
      V = 5,
      gs = 0.7;
    const logits = randn(T * V, 24);
    const tg = Int32Array.from([1, -1, 4, 0]);
    const f = () => {
      const l = zeros([T], 'f64');
      crossEntropyForward(tensor(logits, [T, V], 'f64'), Tensor.from(tg, [T]), l, null, 1);
      return gs * f64(l).reduce((a, b) => a + b, 0);
    };
    const dl = zeros([T, V], 'f64');
    crossEntropyForward(tensor(logits, [T, V], 'f64'), Tensor.from(tg, [T]), zeros([T], 'f64'), dl, gs);
    expect(relErr(f64(dl), numericGrad(logits, f))).toBeLessThan(1e-6);
  });
  it('rejects targets out of range', () => {
    expect(() =>
      crossEntropyForward(
        tensor(randn(6, 1), [2, 3], 'f32'),
        Tensor.from(Int32Array.from([0, 3]), [2]),
        zeros([2], 'f32'),
        null,
        1,
      ),
    ).toThrow(RangeError);
    expect(() =>
      crossEntropyForward(
        tensor(randn(6, 1), [2, 3], 'f32'),
        Tensor.from(Int32Array.from([0, 1]), [2]),
        zeros([2], 'f64'),
        null,
        1,
      ),
    ).toThrow(TensorError);
  });
});

describe('cpu pooling', () => {
  for (const dt of DTYPES) {
    for (const mode of ['mean', 'last'] as const) {
      it(`${mode} pool forward/backward match the reference and finite differences (${dt})`, () => {
        const B = 3,
          L = 7,
          D = 5;
        const x = randn(B * L * D, 25);
        const out = zeros([B, D], dt);
        poolForward(tensor(x, [B * L, D], dt), out, B, L, mode);
        const ref = new Float64Array(B * D);
        for (let b = 0; b < B; b++)
          for (let d = 0; d < D; d++) {
            if (mode === 'last') ref[b * D + d] = x[(b * L + L - 1) * D + d]!;
            else {
              let s = 0;
              for (let l = 0; l < L; l++) s += x[(b * L + l) * D + d]!;
              ref[b * D + d] = s / L;
            }
          }
        expect(relErr(f64(out), ref)).toBeLessThan(TOL[dt]);
        const G = randn(B * D, 26);
        const dx = tensor(randn(B * L * D, 27), [B * L, D], dt); // overwritten
        poolBackward(tensor(G, [B, D], dt), dx, B, L, mode);
        const f = () => {
          const o = zeros([B, D], 'f64');
          poolForward(tensor(x, [B * L, D], 'f64'), o, B, L, mode);
          return dotAll(f64(o), G);
        };
        expect(relErr(f64(dx), numericGrad(x, f))).toBeLessThan(dt === 'f64' ? 1e-6 : 1e-4);
      });
    }
  }
  it('rejects a bad mode and L = 0', () => {
    expect(() => poolForward(zeros([4, 2], 'f32'), zeros([2, 2], 'f32'), 2, 2, 'max' as 'mean')).toThrow(TensorError);
    expect(() => cpuOp('poolForward')(new Float32Array(4), new Float32Array(4), 2, 2, 1, 7)).toThrow(RangeError);
  });
});

describe('cpu vectorised exp (used by the scan and SiLU)', () => {
  it('has relative error below 3e-7 over [-87, 88] and gives exactly 0 below -87', () => {
    const n = 100003;
    const x = Float32Array.from(randu(n, 60, -87, 88));
    const out = new Float32Array(n);
    cpuOp('expF32')(x, out, n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.exp(x[i]!);
      if (want < 1.2e-38) continue; // float denormal range: absolute accuracy only
      worst = Math.max(worst, Math.abs(out[i]! - want) / want);
    }
    expect(worst).toBeLessThan(3e-7);
    const neg = Float32Array.from([-87.5, -100, -1e4, -Infinity, -88, -90, -200, -1e30, -87.01]);
    const o2 = new Float32Array(neg.length);
    cpuOp('expF32')(neg, o2, neg.length);
    expect(Array.from(o2.slice(0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(o2[8]).toBe(0);
    expect(() => cpuOp('expF32')(new Float64Array(4), new Float32Array(4), 4)).toThrow(TypeError);
  });
});

describe('cpu adamw and elementwise ops', () => {
  for (const dt of DTYPES) {
    it(`adamwStep matches the reference over 3 steps (${dt})`, () => {
      const n = 1001;
      const p0 = randn(n, 30),
        m0 = randn(n, 31, 0.1),
        v0 = randu(n, 32, 0.01, 0.1);
      const o = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
      const p = tensor(p0, [n], dt),
        m = tensor(m0, [n], dt),
        v = tensor(v0, [n], dt);
      const rp = Float64Array.from(p0),
        rm = Float64Array.from(m0),
        rv = Float64Array.from(v0);
      for (let step = 1; step <= 3; step++) {
        // the gradient read times gradScale (the third step's scale is the default, 1)
        const gradScale = step === 3 ? undefined : 0.3 * step;
        const g0 = randn(n, 33 + step);
        adamwStep(p, tensor(g0, [n], dt), m, v, { ...o, step, gradScale });
        const g = g0.map((x) => x * (gradScale ?? 1));
        for (let i = 0; i < n; i++) {
          rm[i] = o.beta1 * rm[i]! + (1 - o.beta1) * g[i]!;
          rv[i] = o.beta2 * rv[i]! + (1 - o.beta2) * g[i]! * g[i]!;
          const mh = rm[i]! / (1 - o.beta1 ** step),
            vh = rv[i]! / (1 - o.beta2 ** step);
          rp[i] -= o.lr * (mh / (Math.sqrt(vh) + o.eps) + o.weightDecay * rp[i]!);
        }
      }
      expect(relErr(f64(p), rp)).toBeLessThan(TOL[dt]);
      expect(relErr(f64(m), rm)).toBeLessThan(TOL[dt]);
      expect(relErr(f64(v), rv)).toBeLessThan(TOL[dt]);
    });
    it(`sumSquares, scale, add, fill (${dt})`, () => {
      const n = 200003;
      const a = randn(n, 40),
        b = randn(n, 41);
      const ss = a.reduce((s, v) => s + v * v, 0);
      expect(Math.abs(sumSquares(tensor(a, [n], dt)) - ss) / ss).toBeLessThan(dt === 'f64' ? 1e-12 : 1e-6);
      const x = tensor(a, [n], dt);
      scale(x, -1.75);
      expect(
        relErr(
          f64(x),
          a.map((v) => v * -1.75),
        ),
      ).toBeLessThan(TOL[dt]);
      const ta = tensor(a, [n], dt);
      add(ta, tensor(b, [n], dt), ta); // aliasing out = a
      expect(
        relErr(
          f64(ta),
          a.map((v, i) => v + b[i]!),
        ),
      ).toBeLessThan(TOL[dt]);
      fill(ta, 0.25);
      expect(f64(ta).every((v) => v === 0.25)).toBe(true);
    });
  }
  it('rejects bad arguments', () => {
    const p = zeros([4], 'f32');
    expect(() => adamwStep(p, p, p, p, { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 0 })).toThrow(
      TensorError,
    );
    const raw = {
      param: p.data,
      grad: p.data,
      m: p.data,
      v: p.data,
      n: 4,
      lr: 1,
      beta1: 0.9,
      beta2: 0.9,
      eps: 1e-8,
      weightDecay: 0,
      step: 1,
    };
    expect(() => cpuOp('adamwStep')(raw)).not.toThrow();
    expect(() => cpuOp('adamwStep')({ ...raw, step: 0 })).toThrow(/adamwStep: step is 1-based and must be >= 1, got 0/);
    expect(() => cpuOp('adamwStep')({ ...raw, beta2: 1 })).toThrow(/beta1 and beta2 must be in \[0, 1\)/);
    expect(() => cpuOp('adamwStep')({ ...raw, gradScale: 0 })).toThrow(/gradScale must be a finite number > 0, got 0/);
    expect(() => cpuOp('adamwStep')({ ...raw, gradScale: NaN })).toThrow(/gradScale must be a finite number > 0/);
    expect(() => cpuOp('adamwStep')({ ...raw, n: 5 })).toThrow(/adamwStep param: has 4 elements, needs 5/);
    expect(() => cpuOp('scale')(new Float32Array(3), 4, 2)).toThrow(RangeError);
    expect(() => cpuOp('scale')([1, 2, 3], 3, 2)).toThrow(TypeError);
    expect(() => cpuOp('add')(new Float32Array(3), new Float64Array(3), new Float32Array(3), 3)).toThrow(TypeError);
    expect(() => add(zeros([3], 'f32'), zeros([3], 'f64'), zeros([3], 'f32'))).toThrow(TensorError);
  });
});
