// CPU causal depthwise conv1d: forward, backward and step against float64 references written here,
// finite differences of the f64 forward, strided (column-slice) inputs and gradients.
import { describe, expect, it } from 'vitest';
import { TensorError, columns, conv1dBackward, conv1dForward, conv1dStep, cpuOp } from '../../src/backend/index.js';
import { randn, relErr } from '../helpers.js';
import { TOL, dotAll, f64, numericGrad, tensor, zeros, type FDType } from './cpu-helpers.js';

const sig = (v: number) => 1 / (1 + Math.exp(-v));

function convRef(
  x: Float64Array,
  w: Float64Array,
  bias: Float64Array | null,
  B: number,
  L: number,
  D: number,
  K: number,
  silu: boolean,
) {
  const pre = new Float64Array(B * L * D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < L; t++)
      for (let d = 0; d < D; d++) {
        let s = bias ? bias[d]! : 0;
        for (let k = 0; k < K; k++) {
          const src = t - K + 1 + k;
          if (src >= 0) s += w[d * K + k]! * x[(b * L + src) * D + d]!;
        }
        pre[(b * L + t) * D + d] = s;
      }
  return { pre, out: silu ? pre.map((p) => p * sig(p)) : pre };
}

function convBwdRef(
  x: Float64Array,
  w: Float64Array,
  bias: Float64Array | null,
  g: Float64Array,
  B: number,
  L: number,
  D: number,
  K: number,
  silu: boolean,
) {
  const { pre } = convRef(x, w, bias, B, L, D, K, silu);
  const gp = silu
    ? g.map((v, i) => {
        const s = sig(pre[i]!);
        return v * s * (1 + pre[i]! * (1 - s));
      })
    : g;
  const dx = new Float64Array(B * L * D),
    dw = new Float64Array(D * K),
    db = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < L; t++)
      for (let d = 0; d < D; d++) {
        const gv = gp[(b * L + t) * D + d]!;
        db[d] += gv;
        for (let k = 0; k < K; k++) {
          const src = t - K + 1 + k;
          if (src < 0) continue;
          dx[(b * L + src) * D + d] += w[d * K + k]! * gv;
          dw[d * K + k] += gv * x[(b * L + src) * D + d]!;
        }
      }
  return { dx, dw, db };
}

/** A [T, D] block embedded as columns [2, 2+D) of a [T, D+5] tensor (strided argument). */
function embed(data: Float64Array, T: number, D: number, dt: FDType) {
  const W = D + 5,
    big = randn(T * W, 999);
  for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) big[t * W + 2 + d] = data[t * D + d]!;
  const base = tensor(big, [T, W], dt);
  return {
    slice: columns(base, 2, D),
    read: () => {
      const a = f64(base),
        o = new Float64Array(T * D);
      for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) o[t * D + d] = a[t * W + 2 + d]!;
      return o;
    },
  };
}

describe('cpu conv1d', () => {
  for (const dt of ['f32', 'f64'] as FDType[]) {
    for (const silu of [false, true]) {
      for (const [B, L, D, K] of [
        [2, 37, 13, 4],
        [3, 1, 5, 4],
        [1, 3, 7, 4],
        [2, 70, 9, 3],
      ] as const) {
        it(`forward/backward match the reference (${dt}, silu ${silu}, B=${B} L=${L} D=${D} K=${K})`, () => {
          const T = B * L;
          const x = randn(T * D, 1),
            w = randn(D * K, 2, 0.5),
            bias = randn(D, 3),
            g = randn(T * D, 4);
          const useBias = D !== 5;
          const xs = embed(x, T, D, dt);
          const out = zeros([T, D], dt);
          conv1dForward(xs.slice, tensor(w, [D, K], dt), useBias ? tensor(bias, [D], dt) : null, out, B, L, silu);
          const ref = convRef(x, w, useBias ? bias : null, B, L, D, K, silu);
          expect(relErr(f64(out), ref.out)).toBeLessThan(TOL[dt]);
          const dxs = embed(randn(T * D, 5), T, D, dt);
          const dw0 = randn(D * K, 6),
            db0 = randn(D, 7);
          const dw = tensor(dw0, [D, K], dt),
            db = tensor(db0, [D], dt);
          conv1dBackward(
            xs.slice,
            tensor(w, [D, K], dt),
            useBias ? tensor(bias, [D], dt) : null,
            tensor(g, [T, D], dt),
            dxs.slice,
            dw,
            useBias ? db : null,
            B,
            L,
            silu,
          );
          const bref = convBwdRef(x, w, useBias ? bias : null, g, B, L, D, K, silu);
          expect(relErr(dxs.read(), bref.dx)).toBeLessThan(TOL[dt]);
          expect(
            relErr(
              f64(dw),
              dw0.map((v, i) => v + bref.dw[i]!),
            ),
          ).toBeLessThan(TOL[dt]);
          if (useBias)
            expect(
              relErr(
                f64(db),
                db0.map((v, i) => v + bref.db[i]!),
              ),
            ).toBeLessThan(TOL[dt]);
          else expect(f64(db)).toEqual(dt === 'f64' ? db0 : Float64Array.from(Float32Array.from(db0)));
        });
      }
    }
  }

  for (const silu of [false, true]) {
    it(`backward matches finite differences of the f64 forward (silu ${silu})`, () => {
      const B = 2,
        L = 5,
        D = 3,
        K = 4,
        T = B * L;
      const x = randn(T * D, 11),
        w = randn(D * K, 12),
        bias = randn(D, 13),
        G = randn(T * D, 14);
      const f = () => {
        const o = zeros([T, D], 'f64');
        conv1dForward(tensor(x, [T, D], 'f64'), tensor(w, [D, K], 'f64'), tensor(bias, [D], 'f64'), o, B, L, silu);
        return dotAll(f64(o), G);
      };
      const dx = zeros([T, D], 'f64'),
        dw = zeros([D, K], 'f64'),
        db = zeros([D], 'f64');
      conv1dBackward(
        tensor(x, [T, D], 'f64'),
        tensor(w, [D, K], 'f64'),
        tensor(bias, [D], 'f64'),
        tensor(G, [T, D], 'f64'),
        dx,
        dw,
        db,
        B,
        L,
        silu,
      );
      expect(relErr(f64(dx), numericGrad(x, f))).toBeLessThan(1e-6);
      expect(relErr(f64(dw), numericGrad(w, f))).toBeLessThan(1e-6);
      expect(relErr(f64(db), numericGrad(bias, f))).toBeLessThan(1e-6);
    });
  }

  for (const dt of ['f32', 'f64'] as FDType[]) {
    it(`conv1dStep over L tokens equals conv1dForward (${dt})`, () => {
      const B = 3,
        L = 9,
        D = 7,
        K = 4;
      const x = randn(B * L * D, 21),
        w = randn(D * K, 22),
        bias = randn(D, 23);
      const full = zeros([B * L, D], dt);
      conv1dForward(tensor(x, [B * L, D], dt), tensor(w, [D, K], dt), tensor(bias, [D], dt), full, B, L, true);
      const state = zeros([B, D, K], dt),
        out = zeros([B, D], dt);
      const fa = f64(full);
      for (let t = 0; t < L; t++) {
        const xt = new Float64Array(B * D);
        for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) xt[b * D + d] = x[(b * L + t) * D + d]!;
        const xs = embed(xt, B, D, dt);
        conv1dStep(state, xs.slice, tensor(w, [D, K], dt), tensor(bias, [D], dt), out, true);
        const want = new Float64Array(B * D);
        for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) want[b * D + d] = fa[(b * L + t) * D + d]!;
        expect(relErr(f64(out), want)).toBeLessThan(TOL[dt]);
      }
    });
  }

  it('rejects bad arguments', () => {
    const w = tensor(randn(12, 1), [3, 4], 'f32');
    expect(() => conv1dForward(zeros([10, 3], 'f32'), w, null, zeros([10, 3], 'f32'), 2, 4, false)).toThrow(
      TensorError,
    );
    expect(() => conv1dForward(zeros([8, 3], 'f32'), w, null, zeros([8, 3], 'f64'), 2, 4, false)).toThrow(TensorError);
    // the binding itself: one argument object, every field checked by name
    const f32 = (n: number) => new Float32Array(n);
    const ok = { x: f32(24), xStride: 3, w: w.data, bias: null, out: f32(24), B: 2, L: 4, D: 3, K: 4, silu: false };
    const fwd = cpuOp('conv1dForward');
    expect(() => fwd(ok)).not.toThrow();
    expect(() => fwd({ ...ok, x: f32(23) })).toThrow(/conv1dForward x: has 23 elements, needs 24/);
    expect(() => fwd({ ...ok, xStride: 2 })).toThrow(/xStride 2 is smaller than D = 3/);
    expect(() => fwd({ ...ok, w: new Float64Array(12) })).toThrow(TypeError);
    expect(() => fwd({ ...ok, K: 0 })).toThrow(/K must be >= 1/);
    expect(() => fwd({ ...ok, bais: f32(3) })).toThrow(/unknown field 'bais'/);
    const bwd = {
      x: f32(24),
      xStride: 3,
      w: w.data,
      bias: null,
      dOut: f32(24),
      dx: f32(24),
      dxStride: 3,
      dw: f32(12),
      B: 2,
      L: 4,
      D: 3,
      K: 4,
      silu: true,
    };
    expect(() => cpuOp('conv1dBackward')(bwd)).not.toThrow();
    expect(() => cpuOp('conv1dBackward')({ ...bwd, dxStride: 1 })).toThrow(/dxStride 1 is smaller than D = 3/);
    const step = {
      convState: f32(24),
      x: f32(6),
      xStride: 3,
      w: w.data,
      bias: null,
      out: f32(6),
      B: 2,
      D: 3,
      K: 4,
      silu: true,
    };
    expect(() => cpuOp('conv1dStep')(step)).not.toThrow();
    expect(() => cpuOp('conv1dStep')({ ...step, silu: 'yes' })).toThrow(/conv1dStep silu: expected a boolean/);
  });
});
