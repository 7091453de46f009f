// CPU selective scan: forward and backward against a plain sequential float64 recurrence written
// here, finite differences of the f64 forward, strided B/C/z (columns of wider tensors), and chunk
// boundaries of the backward's recomputation crossed (L > 64). The decoding step (decodeSsm) is checked
// against the forward in cpu-decode.test.ts.
import { describe, expect, it } from 'vitest';
import {
  TensorError,
  columns,
  cpuOp,
  selectiveScanBackward,
  selectiveScanForward,
  type ScanArgs,
} from '../../src/backend/index.js';
import { randn, randu, relErr } from '../helpers.js';
import { TOL, dotAll, f64, numericGrad, tensor, zeros, type FDType } from './cpu-helpers.js';
import type { Tensor } from '../../src/backend/index.js';

interface Cfg {
  B: number;
  L: number;
  D: number;
  N: number;
  sp: boolean;
  z: boolean;
  Dskip: boolean;
  bias: boolean;
}

interface Data {
  u: Float64Array;
  delta: Float64Array;
  bias: Float64Array;
  A: Float64Array;
  Bm: Float64Array;
  Cm: Float64Array;
  Ds: Float64Array;
  z: Float64Array;
}

function makeData(c: Cfg, seed: number): Data {
  const T = c.B * c.L;
  return {
    u: randn(T * c.D, seed + 1),
    // raw delta: around -1 before softplus (dt ~ 0.3), or a positive dt directly
    delta: c.sp ? randn(T * c.D, seed + 2, 0.7).map((v) => v - 1) : randu(T * c.D, seed + 2, 0.02, 0.6),
    bias: c.sp ? randn(c.D, seed + 3, 0.3) : randu(c.D, seed + 3, 0, 0.1),
    A: randn(c.D * c.N, seed + 4, 0.5).map((v) => -Math.exp(v)),
    Bm: randn(T * c.N, seed + 5),
    Cm: randn(T * c.N, seed + 6),
    Ds: randn(c.D, seed + 7),
    z: randn(T * c.D, seed + 8),
  };
}

const sig = (v: number) => 1 / (1 + Math.exp(-v));
const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

/** Sequential recurrence in float64, keeping every state, with its straightforward backward. */
function scanRef(c: Cfg, x: Data, dyIn?: Float64Array) {
  const { B, L, D, N } = c;
  const T = B * L;
  const y = new Float64Array(T * D),
    last = new Float64Array(B * D * N);
  const dt = new Float64Array(T * D),
    pre = new Float64Array(T * D);
  const H = new Float64Array(T * D * N); // states after each step (the reference may store them)
  for (let b = 0; b < B; b++)
    for (let d = 0; d < D; d++) {
      const h = new Float64Array(N);
      for (let t = 0; t < L; t++) {
        const r = b * L + t,
          i = r * D + d;
        const raw = x.delta[i]! + (c.bias ? x.bias[d]! : 0);
        const dtv = c.sp ? softplus(raw) : raw;
        dt[i] = dtv;
        let acc = c.Dskip ? x.Ds[d]! * x.u[i]! : 0;
        for (let n = 0; n < N; n++) {
          h[n] = Math.exp(dtv * x.A[d * N + n]!) * h[n]! + dtv * x.Bm[r * N + n]! * x.u[i]!;
          H[i * N + n] = h[n]!;
          acc += x.Cm[r * N + n]! * h[n]!;
        }
        pre[i] = acc;
        y[i] = c.z ? acc * x.z[i]! * sig(x.z[i]!) : acc;
      }
      for (let n = 0; n < N; n++) last[(b * D + d) * N + n] = h[n]!;
    }
  if (!dyIn) return { y, last };
  const g = {
    du: new Float64Array(T * D),
    ddelta: new Float64Array(T * D),
    dA: new Float64Array(D * N),
    dB: new Float64Array(T * N),
    dC: new Float64Array(T * N),
    dDs: new Float64Array(D),
    dbias: new Float64Array(D),
    dz: new Float64Array(T * D),
  };
  for (let b = 0; b < B; b++)
    for (let d = 0; d < D; d++) {
      const dh = new Float64Array(N);
      for (let t = L - 1; t >= 0; t--) {
        const r = b * L + t,
          i = r * D + d,
          dtv = dt[i]!,
          u = x.u[i]!;
        let gy = dyIn[i]!;
        if (c.z) {
          const zv = x.z[i]!,
            s = sig(zv);
          g.dz[i] = gy * pre[i]! * s * (1 + zv * (1 - s));
          gy *= zv * s;
        }
        if (c.Dskip) {
          g.dDs[d] += gy * u;
          g.du[i] += x.Ds[d]! * gy;
        }
        let ddt = 0;
        for (let n = 0; n < N; n++) {
          const a = Math.exp(dtv * x.A[d * N + n]!);
          const hp = t > 0 ? H[(i - D) * N + n]! : 0;
          g.dC[r * N + n] += gy * H[i * N + n]!;
          const dhv = dh[n]! + x.Cm[r * N + n]! * gy;
          g.dA[d * N + n] += dhv * a * hp * dtv;
          ddt += dhv * (x.A[d * N + n]! * a * hp + x.Bm[r * N + n]! * u);
          g.du[i] += dhv * dtv * x.Bm[r * N + n]!;
          g.dB[r * N + n] += dhv * dtv * u;
          dh[n] = a * dhv;
        }
        const raw = x.delta[i]! + (c.bias ? x.bias[d]! : 0);
        const dd = c.sp ? ddt * sig(raw) : ddt;
        g.ddelta[i] = dd;
        g.dbias[d] += dd;
      }
    }
  return { y, last, g };
}

/** Kernel inputs: Bm, Cm as columns of one [T, 3 + 2N] "x_proj output", z as columns of a [T, 2D] "in_proj output". */
function kernelArgs(c: Cfg, x: Data, dt: FDType): ScanArgs {
  const T = c.B * c.L,
    W = 3 + 2 * c.N;
  const xp = randn(T * W, 77);
  for (let r = 0; r < T; r++)
    for (let n = 0; n < c.N; n++) {
      xp[r * W + 3 + n] = x.Bm[r * c.N + n]!;
      xp[r * W + 3 + c.N + n] = x.Cm[r * c.N + n]!;
    }
  const xpt = tensor(xp, [T, W], dt);
  const ip = randn(T * 2 * c.D, 78);
  for (let r = 0; r < T; r++) for (let d = 0; d < c.D; d++) ip[r * 2 * c.D + c.D + d] = x.z[r * c.D + d]!;
  return {
    u: tensor(x.u, [T, c.D], dt),
    delta: tensor(x.delta, [T, c.D], dt),
    deltaBias: c.bias ? tensor(x.bias, [c.D], dt) : null,
    A: tensor(x.A, [c.D, c.N], dt),
    Bm: columns(xpt, 3, c.N),
    Cm: columns(xpt, 3 + c.N, c.N),
    Dskip: c.Dskip ? tensor(x.Ds, [c.D], dt) : null,
    z: c.z ? columns(tensor(ip, [T, 2 * c.D], dt), c.D, c.D) : null,
    B: c.B,
    L: c.L,
    deltaSoftplus: c.sp,
  };
}

function cols(t: Tensor, col: number, width: number): Float64Array {
  const a = f64(t),
    [R, W] = t.shape as [number, number],
    o = new Float64Array(R * width);
  for (let r = 0; r < R; r++) for (let j = 0; j < width; j++) o[r * width + j] = a[r * W + col + j]!;
  return o;
}

// alias: ddelta written over delta, dz over z and the rebuilt y over dy, as the mixer does (native/KERNELS.md allows
// it); otherwise each output has a buffer of its own. The backward always rebuilds y (yBack).
function runKernel(c: Cfg, x: Data, dy: Float64Array, dt: FDType, alias = false) {
  const T = c.B * c.L,
    W = 3 + 2 * c.N;
  const a = kernelArgs(c, x, dt);
  const y = zeros([T, c.D], dt),
    last = zeros([c.B, c.D, c.N], dt);
  selectiveScanForward(a, y, last);
  const dxp = tensor(randn(T * W, 79), [T, W], dt); // columns 0..2 must stay untouched
  const dip = tensor(randn(T * 2 * c.D, 80), [T, 2 * c.D], dt);
  const dA0 = randn(c.D * c.N, 81),
    dD0 = randn(c.D, 82),
    dB0 = randn(c.D, 83);
  const dyT = tensor(dy, [T, c.D], dt);
  const g = {
    du: zeros([T, c.D], dt),
    ddelta: alias ? a.delta : zeros([T, c.D], dt),
    dA: tensor(dA0, [c.D, c.N], dt),
    dB: columns(dxp, 3, c.N),
    dC: columns(dxp, 3 + c.N, c.N),
    dDskip: c.Dskip ? tensor(dD0, [c.D], dt) : null,
    dDeltaBias: c.bias ? tensor(dB0, [c.D], dt) : null,
    dz: c.z ? (alias ? a.z : columns(dip, c.D, c.D)) : null,
    y: alias ? dyT : zeros([T, c.D], dt),
  };
  const before = cols(dxp, 0, 3);
  selectiveScanBackward(a, dyT, g);
  expect(cols(dxp, 0, 3)).toEqual(before);
  // accumulators start from random values: subtract them as stored (rounded to f32 where f32)
  const r = (v: number) => (dt === 'f32' ? Math.fround(v) : v);
  return {
    y: f64(y),
    last: f64(last),
    du: f64(g.du),
    ddelta: f64(g.ddelta),
    dA: f64(g.dA).map((v, i) => v - r(dA0[i]!)),
    dB: cols(dxp, 3, c.N),
    dC: cols(dxp, 3 + c.N, c.N),
    dDs: g.dDskip ? f64(g.dDskip).map((v, i) => v - r(dD0[i]!)) : null,
    dbias: g.dDeltaBias ? f64(g.dDeltaBias).map((v, i) => v - r(dB0[i]!)) : null,
    dz: c.z ? (alias ? cols(a.z!.base, c.D, c.D) : cols(dip, c.D, c.D)) : null,
    yBack: f64(g.y),
  };
}

const CASES: Cfg[] = [
  { B: 2, L: 37, D: 13, N: 7, sp: true, z: true, Dskip: true, bias: true },
  { B: 1, L: 150, D: 5, N: 3, sp: true, z: false, Dskip: true, bias: false },
  { B: 2, L: 300, D: 9, N: 4, sp: false, z: true, Dskip: false, bias: true },
  { B: 3, L: 1, D: 7, N: 5, sp: false, z: false, Dskip: false, bias: false },
  { B: 1, L: 70, D: 71, N: 3, sp: true, z: true, Dskip: true, bias: true },
  { B: 3, L: 65, D: 17, N: 16, sp: true, z: true, Dskip: false, bias: true },
  { B: 2, L: 70, D: 130, N: 2, sp: true, z: true, Dskip: true, bias: true },
];

describe('cpu selective scan', () => {
  for (const c of CASES) {
    for (const dt of ['f32', 'f64'] as FDType[]) {
      const tag = `${dt} B=${c.B} L=${c.L} D=${c.D} N=${c.N} softplus=${c.sp} z=${c.z} Dskip=${c.Dskip} bias=${c.bias}`;
      it(`forward and backward match the sequential reference (${tag})`, () => {
        const x = makeData(c, c.L * 7 + c.D);
        const dy = randn(c.B * c.L * c.D, 5);
        const ref = scanRef(c, x, dy);
        const k = runKernel(c, x, dy, dt);
        const tol = TOL[dt];
        expect(relErr(k.y, ref.y)).toBeLessThan(tol);
        expect(relErr(k.last, ref.last)).toBeLessThan(tol);
        const g = ref.g!;
        expect(relErr(k.du, g.du)).toBeLessThan(tol);
        expect(relErr(k.ddelta, g.ddelta)).toBeLessThan(tol);
        expect(relErr(k.dA, g.dA)).toBeLessThan(TOL[dt]); // accumulated on top of random values
        expect(relErr(k.dB, g.dB)).toBeLessThan(tol);
        expect(relErr(k.dC, g.dC)).toBeLessThan(tol);
        if (c.Dskip) expect(relErr(k.dDs!, g.dDs)).toBeLessThan(TOL[dt]);
        if (c.bias) expect(relErr(k.dbias!, g.dbias)).toBeLessThan(TOL[dt]);
        if (c.z) expect(relErr(k.dz!, g.dz)).toBeLessThan(tol);
        // the y the backward rebuilds from its recomputed states is the forward's, bit for bit
        expect(Array.from(k.yBack)).toEqual(Array.from(k.y));
      });
    }
  }

  // finite differences of the f64 kernel forward; L = 70 crosses the backward's 64-step chunk boundary
  for (const c of [
    { B: 2, L: 4, D: 3, N: 2, sp: true, z: true, Dskip: true, bias: true },
    { B: 1, L: 70, D: 2, N: 3, sp: false, z: false, Dskip: true, bias: false },
    { B: 1, L: 66, D: 3, N: 1, sp: true, z: true, Dskip: false, bias: true },
  ] as Cfg[]) {
    it(`backward matches finite differences of the forward (f64, L=${c.L} D=${c.D} N=${c.N} softplus=${c.sp} z=${c.z})`, () => {
      const x = makeData(c, 100 + c.L);
      const T = c.B * c.L;
      const G = randn(T * c.D, 9);
      // loss = <y, G> (the lastState output has no gradient input, so it is left out)
      const loss = () => {
        const y = zeros([T, c.D], 'f64');
        selectiveScanForward(kernelArgs(c, x, 'f64'), y, null);
        return dotAll(f64(y), G);
      };
      const k = runKernel(c, x, G, 'f64');
      expect(relErr(k.du, numericGrad(x.u, loss))).toBeLessThan(1e-6);
      expect(relErr(k.ddelta, numericGrad(x.delta, loss))).toBeLessThan(1e-6);
      expect(relErr(k.dA, numericGrad(x.A, loss))).toBeLessThan(1e-6);
      expect(relErr(k.dB, numericGrad(x.Bm, loss))).toBeLessThan(1e-6);
      expect(relErr(k.dC, numericGrad(x.Cm, loss))).toBeLessThan(1e-6);
      if (c.Dskip) expect(relErr(k.dDs!, numericGrad(x.Ds, loss))).toBeLessThan(1e-6);
      if (c.bias) expect(relErr(k.dbias!, numericGrad(x.bias, loss))).toBeLessThan(1e-6);
      if (c.z) expect(relErr(k.dz!, numericGrad(x.z, loss))).toBeLessThan(1e-6);
    });
  }

  // CI has 2 cores; laptops have more. Thread counts change how work items and partial sums are split.
  it('ddelta, dz and y may overwrite delta, z and dy: the same results as with separate buffers', () => {
    for (const c of [CASES[0]!, CASES[4]!, CASES[6]!, CASES[1]!]) {
      const x = makeData(c, 9 + c.L);
      const dy = randn(c.B * c.L * c.D, 6);
      const sep = runKernel(c, x, dy, 'f32'),
        alias = runKernel(c, x, dy, 'f32', true);
      for (const k of ['du', 'ddelta', 'dA', 'dB', 'dC', 'yBack'] as const)
        expect(Array.from(alias[k]), k).toEqual(Array.from(sep[k]));
      if (c.z) expect(Array.from(alias.dz!)).toEqual(Array.from(sep.dz!));
    }
  });

  it('gives the same results at 1, 3 and 5 threads', () => {
    const nt = cpuOp('numThreads')() as number;
    try {
      for (const threads of [1, 3, 5]) {
        cpuOp('setNumThreads')(threads);
        for (const c of [
          { B: 3, L: 1, D: 7, N: 5, sp: false, z: false, Dskip: false, bias: false },
          { B: 5, L: 9, D: 13, N: 3, sp: true, z: true, Dskip: true, bias: true },
          { B: 2, L: 70, D: 130, N: 2, sp: true, z: true, Dskip: true, bias: true },
        ] as Cfg[]) {
          const x = makeData(c, 400 + c.D);
          const dy = randn(c.B * c.L * c.D, 6);
          const ref = scanRef(c, x, dy);
          const k = runKernel(c, x, dy, 'f64');
          expect(relErr(k.y, ref.y)).toBeLessThan(1e-10);
          expect(relErr(k.du, ref.g!.du)).toBeLessThan(1e-10);
          expect(relErr(k.dA, ref.g!.dA)).toBeLessThan(1e-10);
          expect(relErr(k.dB, ref.g!.dB)).toBeLessThan(1e-10);
          expect(relErr(k.dC, ref.g!.dC)).toBeLessThan(1e-10);
        }
      }
    } finally {
      cpuOp('setNumThreads')(nt);
    }
  });

  it('rejects bad arguments', () => {
    const c: Cfg = { B: 1, L: 4, D: 3, N: 2, sp: true, z: false, Dskip: false, bias: false };
    const x = makeData(c, 300);
    const a = kernelArgs(c, x, 'f32');
    expect(() => selectiveScanForward(a, zeros([4, 3], 'f64'), null)).toThrow(TensorError);
    expect(() => selectiveScanForward({ ...a, L: 5 }, zeros([5, 3], 'f32'), null)).toThrow(TensorError);
    // the binding itself: one argument object, every field checked by name
    const u = new Float32Array(12),
      A = new Float32Array(6),
      bc = new Float32Array(8),
      y = new Float32Array(12);
    const base = {
      u,
      delta: u,
      deltaBias: null,
      A,
      Bm: bc,
      Cm: bc,
      bcStride: 2,
      Dskip: null,
      z: null,
      B: 1,
      D: 3,
      N: 2,
      deltaSoftplus: true,
    };
    const ok = { ...base, L: 4, y, lastState: null };
    const fwd = cpuOp('selectiveScanForward');
    expect(() => fwd(ok)).not.toThrow();
    expect(() => fwd({ ...ok, dtype: 'f32' })).not.toThrow();
    expect(() => fwd({ ...ok, dtype: 'f64' })).toThrow(/dtype 'f64' does not match the f32 arrays/);
    expect(() => fwd({ ...ok, y: new Float32Array(11) })).toThrow(/selectiveScanForward y: has 11 elements, needs 12/);
    expect(() => fwd({ ...ok, A: new Float64Array(6) })).toThrow(TypeError);
    expect(() => fwd({ ...ok, bcStride: 1 })).toThrow(/bcStride 1 is smaller than N = 2/);
    expect(() => fwd({ ...ok, N: 0 })).toThrow(RangeError);
    expect(() => fwd({ ...ok, L: undefined })).toThrow(/selectiveScanForward L: missing/);
    expect(() => fwd({ ...ok, Dskp: u })).toThrow(/unknown field 'Dskp'/);
    expect(() => fwd(u, u)).toThrow(/expected one argument object/);
    const f32 = (n: number) => new Float32Array(n);
    const bwd = { ...base, L: 4, dy: u, du: f32(12), ddelta: f32(12), dA: f32(6), dB: f32(8), dC: f32(8) };
    expect(() => cpuOp('selectiveScanBackward')(bwd)).not.toThrow();
    expect(() => cpuOp('selectiveScanBackward')({ ...bwd, dz: f32(12) })).toThrow(/dz must be given exactly when z is/);
  });
});
