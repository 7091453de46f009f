// The CUDA selective scan (forward, backward) against a float64 TypeScript reference, and against
// the CPU twin where it exists (the decoding step, decodeSsm, against the forward: cuda-decode.test.ts). The reference's backward is itself checked by finite differences here,
// so this file also runs (that part) on machines without a GPU.
import { describe, expect, it } from 'vitest';
import { native } from '../../src/backend/native.js';
import { cudaAvailable } from '../../src/backend/device.js';
import { Tensor, bf16BitsToF32, f32ToBf16Bits } from '../../src/backend/tensor.js';
import { randn, randu, relErr } from '../helpers.js';
import * as ops from '../../src/backend/ops.js';

interface Case {
  B: number;
  L: number;
  D: number;
  N: number;
  softplus: boolean;
  bias: boolean;
  skip: boolean;
  gate: boolean;
  R: number; // extra leading columns of the x_proj-like buffer holding B and C (they are strided columns)
}

interface Inputs {
  u: Float64Array;
  delta: Float64Array;
  deltaBias: Float64Array | null;
  A: Float64Array;
  xp: Float64Array;
  bcStride: number;
  bOff: number;
  cOff: number; // B = xp[t*bcStride + bOff + n], C likewise
  Dskip: Float64Array | null;
  zp: Float64Array | null;
  zStride: number;
  zOff: number; // z = zp[t*zStride + zOff + d]
}

const bfRound = (x: number) => bf16BitsToF32(f32ToBf16Bits(x));

function makeInputs(c: Case, seed: number, bf16: boolean): Inputs {
  const T = c.B * c.L,
    D = c.D,
    N = c.N;
  const round = (a: Float64Array) => (bf16 ? a.map(bfRound) : a.map((x) => Math.fround(x)));
  const bcStride = c.R + 2 * N;
  const zStride = 2 * D;
  // with softplus, raw delta around -1.2 gives dt around 0.3; without, dt must stay positive itself
  const delta = c.softplus ? randn(T * D, seed + 1, 0.7).map((x) => x - 1.2) : randu(T * D, seed + 1, 0.6, 1.0);
  return {
    u: round(randn(T * D, seed)),
    delta: round(delta),
    deltaBias: c.bias ? randu(D, seed + 2, -0.5, 0.5).map(Math.fround) : null,
    A: randu(D * N, seed + 3, -1.5, 1.5).map((x) => Math.fround(-Math.exp(x))),
    xp: round(randn(T * bcStride, seed + 4)),
    bcStride,
    bOff: c.R,
    cOff: c.R + N,
    Dskip: c.skip ? randn(D, seed + 5).map(Math.fround) : null,
    zp: c.gate ? round(randn(T * zStride, seed + 6)) : null,
    zStride,
    zOff: D,
  };
}

const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** float64 forward: y [T, D] and the final state [B, D, N]. */
function refForward(c: Case, x: Inputs): { y: Float64Array; last: Float64Array } {
  const { B, L, D, N } = c;
  const y = new Float64Array(B * L * D),
    last = new Float64Array(B * D * N);
  const h = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < D; d++) {
      h.fill(0);
      for (let l = 0; l < L; l++) {
        const t = b * L + l,
          i = t * D + d;
        const v = x.delta[i]! + (x.deltaBias ? x.deltaBias[d]! : 0);
        const dt = c.softplus ? softplus(v) : v;
        const u = x.u[i]!;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          h[n] = Math.exp(dt * x.A[d * N + n]!) * h[n]! + dt * u * x.xp[t * x.bcStride + x.bOff + n]!;
          acc += x.xp[t * x.bcStride + x.cOff + n]! * h[n]!;
        }
        let out = acc + (x.Dskip ? x.Dskip[d]! * u : 0);
        if (x.zp) {
          const z = x.zp[t * x.zStride + x.zOff + d]!;
          out *= z * sigmoid(z);
        }
        y[i] = out;
      }
      for (let n = 0; n < N; n++) last[(b * D + d) * N + n] = h[n]!;
    }
  }
  return { y, last };
}

interface Grads {
  du: Float64Array;
  ddelta: Float64Array;
  dA: Float64Array;
  dB: Float64Array;
  dC: Float64Array;
  dD: Float64Array;
  dBias: Float64Array;
  dz: Float64Array;
}

/** float64 backward (stores all states: fine at test sizes). dB, dC, dz are dense [T, N] / [T, D]. */
function refBackward(c: Case, x: Inputs, dy: Float64Array): Grads {
  const { B, L, D, N } = c;
  const T = B * L;
  const g: Grads = {
    du: new Float64Array(T * D),
    ddelta: new Float64Array(T * D),
    dA: new Float64Array(D * N),
    dB: new Float64Array(T * N),
    dC: new Float64Array(T * N),
    dD: new Float64Array(D),
    dBias: new Float64Array(D),
    dz: new Float64Array(T * D),
  };
  const hs = new Float64Array((L + 1) * N); // hs[(l+1)*N + n] = h after step l; hs[0..N) = 0
  const carry = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < D; d++) {
      const dtOf = (i: number) => {
        const v = x.delta[i]! + (x.deltaBias ? x.deltaBias[d]! : 0);
        return { v, dt: c.softplus ? softplus(v) : v };
      };
      for (let l = 0; l < L; l++) {
        const t = b * L + l,
          i = t * D + d,
          { dt } = dtOf(i);
        for (let n = 0; n < N; n++)
          hs[(l + 1) * N + n] =
            Math.exp(dt * x.A[d * N + n]!) * hs[l * N + n]! + dt * x.u[i]! * x.xp[t * x.bcStride + x.bOff + n]!;
      }
      carry.fill(0);
      for (let l = L - 1; l >= 0; l--) {
        const t = b * L + l,
          i = t * D + d,
          { v, dt } = dtOf(i);
        const u = x.u[i]!;
        let gate = 1,
          sg = 1,
          z = 0;
        if (x.zp) {
          z = x.zp[t * x.zStride + x.zOff + d]!;
          sg = sigmoid(z);
          gate = z * sg;
        }
        const gy = dy[i]! * gate;
        let ysum = 0,
          ddt = 0,
          dus = 0;
        for (let n = 0; n < N; n++) {
          const Bn = x.xp[t * x.bcStride + x.bOff + n]!,
            Cn = x.xp[t * x.bcStride + x.cOff + n]!;
          const hc = hs[(l + 1) * N + n]!,
            hp = hs[l * N + n]!,
            An = x.A[d * N + n]!;
          ysum += Cn * hc;
          const G = Cn * gy + carry[n]!;
          const a = Math.exp(dt * An);
          ddt += G * (An * a * hp + u * Bn);
          dus += G * Bn;
          g.dA[d * N + n] += G * dt * a * hp;
          g.dB[t * N + n] += G * dt * u;
          g.dC[t * N + n] += gy * hc;
          carry[n] = a * G;
        }
        if (x.zp) g.dz[i] = dy[i]! * (ysum + (x.Dskip ? x.Dskip[d]! * u : 0)) * sg * (1 + z * (1 - sg));
        g.du[i] = gy * (x.Dskip ? x.Dskip[d]! : 0) + dt * dus;
        const dd = c.softplus ? ddt * sigmoid(v) : ddt;
        g.ddelta[i] = dd;
        g.dBias[d] += dd;
        g.dD[d] += gy * u;
      }
    }
  }
  return g;
}

// ---- device plumbing -------------------------------------------------------------------------------

type DT = 'f32' | 'bf16';
function up(a: Float64Array, dt: DT): Tensor {
  if (dt === 'f32') return Tensor.from(Float32Array.from(a), [a.length], 'f32', 'cuda');
  const bits = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) bits[i] = f32ToBf16Bits(a[i]!);
  return Tensor.from(bits, [a.length], 'bf16', 'cuda');
}
const upF = (a: Float64Array | null) => (a ? Tensor.from(Float32Array.from(a), [a.length], 'f32', 'cuda') : null);
const buf = (t: Tensor | null) => (t ? t.buffer : null);
/** A view starting `off` elements into t (how a strided column argument is passed). */
const at = (t: Tensor, off: number) => t.view(off, [t.numel - off]);

function strided(src: Float64Array, rows: number, stride: number, off: number, width: number): Float64Array {
  const o = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) o[r * width + j] = src[r * stride + off + j]!;
  return o;
}

interface DevRun {
  y: Float64Array;
  last: Float64Array;
  g?: Grads;
  /** y as the backward rebuilds it from its recomputed states */
  yBack?: Float64Array;
}

// alias: ddelta is written over delta, dz over z and the rebuilt y over dy (what the mixer does to save memory;
// native/KERNELS.md allows it); otherwise each output has a buffer of its own. The backward always rebuilds y.
function runCuda(c: Case, x: Inputs, dt: DT, dy: Float64Array | null, alias = false): DevRun {
  const cu = native().cuda!;
  const { B, L, D, N } = c;
  const T = B * L;
  const u = up(x.u, dt),
    delta = up(x.delta, dt),
    xp = up(x.xp, dt),
    zp = x.zp ? up(x.zp, dt) : null;
  const A = upF(x.A)!,
    bias = upF(x.deltaBias),
    Dk = upF(x.Dskip);
  const y = Tensor.empty([T * D], dt, 'cuda'),
    last = Tensor.empty([B * D * N], 'f32', 'cuda');
  const Bv = at(xp, x.bOff),
    Cv = at(xp, x.cOff),
    zv = zp ? at(zp, x.zOff) : null;
  const inputs = {
    u: u.buffer,
    delta: delta.buffer,
    deltaBias: buf(bias),
    A: A.buffer,
    Bm: Bv.buffer,
    Cm: Cv.buffer,
    bcStride: x.bcStride,
    Dskip: buf(Dk),
    z: buf(zv),
    zStride: x.zStride,
    B,
    L,
    D,
    N,
    deltaSoftplus: c.softplus,
    dtype: dt,
  };
  cu.selectiveScanForward({ ...inputs, y: y.buffer, lastState: last.buffer });
  const out: DevRun = { y: y.toFloat64(), last: last.toFloat64() };
  if (dy) {
    const dyT = up(dy, dt);
    const du = Tensor.empty([T * D], dt, 'cuda'),
      ddelta = alias ? delta : Tensor.empty([T * D], dt, 'cuda');
    const yBack = alias ? dyT : Tensor.empty([T * D], dt, 'cuda');
    const dA = Tensor.from(new Float32Array(D * N).fill(0.25), [D * N], 'f32', 'cuda'); // acc: starts non-zero on purpose
    const dxp = Tensor.zeros([T * x.bcStride], dt, 'cuda');
    const dD = x.Dskip ? Tensor.from(new Float32Array(D).fill(0.5), [D], 'f32', 'cuda') : null;
    const dBias = x.deltaBias ? Tensor.from(new Float32Array(D).fill(-0.5), [D], 'f32', 'cuda') : null;
    const dzp = zp ? (alias ? zp : Tensor.zeros([T * x.zStride], dt, 'cuda')) : null;
    cu.selectiveScanBackward({
      ...inputs,
      dy: dyT.buffer,
      du: du.buffer,
      ddelta: ddelta.buffer,
      dA: dA.buffer,
      dB: at(dxp, x.bOff).buffer,
      dC: at(dxp, x.cOff).buffer,
      dDskip: buf(dD),
      dDeltaBias: buf(dBias),
      dz: dzp ? at(dzp, x.zOff).buffer : null,
      y: yBack.buffer,
    });
    out.yBack = yBack.toFloat64();
    const dxpH = dxp.toFloat64();
    out.g = {
      du: du.toFloat64(),
      ddelta: ddelta.toFloat64(),
      dA: dA.toFloat64().map((v) => v - 0.25),
      dB: strided(dxpH, T, x.bcStride, x.bOff, N),
      dC: strided(dxpH, T, x.bcStride, x.cOff, N),
      dD: dD ? dD.toFloat64().map((v) => v - 0.5) : new Float64Array(D),
      dBias: dBias ? dBias.toFloat64().map((v) => v + 0.5) : new Float64Array(D),
      dz: dzp ? strided(dzp.toFloat64(), T, x.zStride, x.zOff, D) : new Float64Array(T * D),
    };
    // the B/C gradient columns were written, the dt columns (0..R) untouched
    if (x.bOff > 0) expect(strided(dxpH, T, x.bcStride, 0, x.bOff).every((v) => v === 0)).toBe(true);
  }
  return out;
}

function expectClose(name: string, got: Float64Array, want: Float64Array, tol: number): void {
  const e = relErr(got, want);
  if (!(e < tol)) console.error(`${name}: relative error ${e.toExponential(2)} >= ${tol}`);
  expect(e, name).toBeLessThan(tol);
}

function compareGrads(tag: string, c: Case, got: Grads, want: Grads, tol: number): void {
  expectClose(`${tag} du`, got.du, want.du, tol);
  expectClose(`${tag} ddelta`, got.ddelta, want.ddelta, tol);
  expectClose(`${tag} dA`, got.dA, want.dA, tol);
  expectClose(`${tag} dB`, got.dB, want.dB, tol);
  expectClose(`${tag} dC`, got.dC, want.dC, tol);
  if (c.skip) expectClose(`${tag} dDskip`, got.dD, want.dD, tol);
  if (c.bias) expectClose(`${tag} dDeltaBias`, got.dBias, want.dBias, tol);
  if (c.gate) expectClose(`${tag} dz`, got.dz, want.dz, tol);
}

const full = { softplus: true, bias: true, skip: true, gate: true };

// ---- the reference checks itself (runs everywhere) ------------------------------------------------------

describe('scan float64 reference', () => {
  it('backward matches central finite differences of sum(y * w)', () => {
    const c: Case = { B: 2, L: 6, D: 3, N: 4, R: 2, ...full };
    const x = makeInputs(c, 11, false);
    const T = c.B * c.L;
    const w = randn(T * c.D, 99);
    const loss = () => refForward(c, x).y.reduce((s, v, i) => s + v * w[i]!, 0);
    const g = refBackward(c, x, w);
    const fd = (arr: Float64Array, i: number) => {
      const h = 1e-6,
        v0 = arr[i]!;
      arr[i] = v0 + h;
      const lp = loss();
      arr[i] = v0 - h;
      const lm = loss();
      arr[i] = v0;
      return (lp - lm) / (2 * h);
    };
    const probe = (name: string, arr: Float64Array, grad: (i: number) => number, idx: number[]) => {
      for (const i of idx)
        expect(Math.abs(fd(arr, i) - grad(i)), `${name}[${i}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(grad(i))));
    };
    const some = (n: number) => [0, 1, Math.floor(n / 2), n - 1];
    probe('u', x.u, (i) => g.du[i]!, some(T * c.D));
    probe('delta', x.delta, (i) => g.ddelta[i]!, some(T * c.D));
    probe('A', x.A, (i) => g.dA[i]!, some(c.D * c.N));
    probe('deltaBias', x.deltaBias!, (i) => g.dBias[i]!, [0, 2]);
    probe('Dskip', x.Dskip!, (i) => g.dD[i]!, [0, 1]);
    for (const t of [0, 5, T - 1])
      for (const n of [0, c.N - 1]) {
        expect(Math.abs(fd(x.xp, t * x.bcStride + x.bOff + n) - g.dB[t * c.N + n]!)).toBeLessThan(
          1e-6 * Math.max(1, Math.abs(g.dB[t * c.N + n]!)),
        );
        expect(Math.abs(fd(x.xp, t * x.bcStride + x.cOff + n) - g.dC[t * c.N + n]!)).toBeLessThan(
          1e-6 * Math.max(1, Math.abs(g.dC[t * c.N + n]!)),
        );
      }
    for (const t of [0, 7, T - 1])
      for (const d of [0, 2]) {
        const gi = g.dz[t * c.D + d]!;
        expect(Math.abs(fd(x.zp!, t * x.zStride + x.zOff + d) - gi)).toBeLessThan(1e-6 * Math.max(1, Math.abs(gi)));
      }
  });
});

// ---- CUDA against the reference -------------------------------------------------------------------------

describe.skipIf(!cudaAvailable())('cuda selective scan', () => {
  const cases: [string, Case, DT, number][] = [
    ['awkward shape, every option, f32', { B: 2, L: 37, D: 5, N: 16, R: 3, ...full }, 'f32', 1e-4],
    [
      'L = 1, no options, N = 4, f32',
      { B: 1, L: 1, D: 3, N: 4, R: 0, softplus: false, bias: false, skip: false, gate: false },
      'f32',
      1e-4,
    ],
    ['many chunks, D across blocks, N = 8, f32', { B: 3, L: 1000, D: 130, N: 8, R: 5, ...full }, 'f32', 1e-4],
    [
      'N = 13, softplus off, f32',
      { B: 2, L: 301, D: 17, N: 13, R: 1, softplus: false, bias: true, skip: true, gate: false },
      'f32',
      1e-4,
    ],
    ['bf16 storage, every option', { B: 2, L: 777, D: 33, N: 16, R: 2, ...full }, 'bf16', 1e-2],
    // even D with rows on channel pairs: the backward's first pass on lanes (4 threads per channel), chunks that end
    // inside a tile of 32 steps; odd D above takes the thread-per-channel pass
    ['first backward pass on lanes, bf16', { B: 2, L: 777, D: 34, N: 16, R: 2, ...full }, 'bf16', 1e-2],
    ['first backward pass on lanes, N = 5, f32', { B: 3, L: 1000, D: 66, N: 5, R: 2, ...full }, 'f32', 1e-4],
    // B x ceil(D / 32) blocks of 32 channels past 4 per SM (1,100 at least; an H200 has 132 SMs): the one-pass forward
    ['one-pass forward, every option, f32', { B: 400, L: 45, D: 70, N: 16, R: 3, ...full }, 'f32', 1e-4],
    [
      'one-pass forward, N = 5, softplus and gate off, bf16',
      { B: 1100, L: 33, D: 20, N: 5, R: 2, softplus: false, bias: true, skip: true, gate: false },
      'bf16',
      1e-2,
    ],
    [
      'one-pass forward, L = 1, N = 4, f32',
      { B: 1100, L: 1, D: 8, N: 4, R: 0, softplus: true, bias: false, skip: false, gate: true },
      'f32',
      1e-4,
    ],
    // between 2 and 4 blocks per SM (264 to 527 on an H200): the 8-lane one-pass forward, for N > 4
    ['8-lane one-pass forward, every option, f32', { B: 150, L: 70, D: 70, N: 16, R: 3, ...full }, 'f32', 1e-4],
    [
      '8-lane one-pass forward, N = 7, gate off, bf16',
      { B: 300, L: 41, D: 20, N: 7, R: 2, softplus: true, bias: true, skip: true, gate: false },
      'bf16',
      1e-2,
    ],
  ];
  for (const [name, c, dt, tol] of cases) {
    it(`forward and backward: ${name} (B=${c.B} L=${c.L} D=${c.D} N=${c.N})`, () => {
      const x = makeInputs(c, 1234 + c.L, dt === 'bf16');
      const T = c.B * c.L;
      const dy = randn(T * c.D, 77).map(dt === 'bf16' ? bfRound : Math.fround);
      const ref = refForward(c, x);
      const got = runCuda(c, x, dt, dy);
      expectClose('y', got.y, ref.y, tol);
      expectClose('lastState', got.last, ref.last, tol);
      compareGrads('cuda', c, got.g!, refBackward(c, x, dy), tol);
      expectClose('y rebuilt by the backward', got.yBack!, ref.y, tol);
    });
  }

  it('forward at L = 2^20 (B=1, D=3, N=16): chunked state carried over the whole length', () => {
    const c: Case = { B: 1, L: 1 << 20, D: 3, N: 16, R: 0, ...full };
    const x = makeInputs(c, 5, false);
    const ref = refForward(c, x);
    const got = runCuda(c, x, 'f32', null);
    expectClose('y', got.y, ref.y, 1e-4);
    expectClose('lastState', got.last, ref.last, 1e-4);
  });

  it('backward at L = 2^16 (B=1, D=4, N=16)', () => {
    const c: Case = { B: 1, L: 1 << 16, D: 4, N: 16, R: 0, ...full };
    const x = makeInputs(c, 6, false);
    const dy = randn(c.L * c.D, 8).map(Math.fround);
    const got = runCuda(c, x, 'f32', dy);
    compareGrads('long', c, got.g!, refBackward(c, x, dy), 1e-4);
    expectClose('y rebuilt by the backward', got.yBack!, refForward(c, x).y, 1e-4);
  });

  // The cases above store each piece's checkpoint in the first backward pass (their scratch is small); with
  // MAMBA_SCAN_CHECKPOINT_MB=0 the main pass sweeps each chunk forward itself, as it does at 2^20 tokens.
  it('backward with its own forward sweep instead of stored checkpoints', () => {
    const cases: [Case, DT, number][] = [
      [{ B: 3, L: 1000, D: 130, N: 8, R: 5, ...full }, 'f32', 1e-4],
      [{ B: 2, L: 777, D: 33, N: 16, R: 2, ...full }, 'bf16', 1e-2],
      [{ B: 2, L: 301, D: 17, N: 13, R: 1, softplus: false, bias: true, skip: true, gate: false }, 'f32', 1e-4],
    ];
    const saved = process.env.MAMBA_SCAN_CHECKPOINT_MB;
    try {
      for (const [c, dt, tol] of cases) {
        const x = makeInputs(c, 99 + c.L, dt === 'bf16');
        const dy = randn(c.B * c.L * c.D, 17).map(dt === 'bf16' ? bfRound : Math.fround);
        process.env.MAMBA_SCAN_CHECKPOINT_MB = '0';
        const sweep = runCuda(c, x, dt, dy);
        delete process.env.MAMBA_SCAN_CHECKPOINT_MB;
        const stored = runCuda(c, x, dt, dy);
        const want = refBackward(c, x, dy);
        compareGrads('sweep', c, sweep.g!, want, tol);
        compareGrads('stored', c, stored.g!, want, tol);
        expectClose('y rebuilt, sweep', sweep.yBack!, refForward(c, x).y, tol);
        // the same math but for how a piece's starting state is formed: close to f32 rounding, not bit-equal
        if (dt === 'f32') expectClose('du, sweep against stored', sweep.g!.du, stored.g!.du, 1e-5);
        // bf16 inputs store bf16 checkpoints: against the sweep's f32 states, no more than a bf16 rounding
        else compareGrads('stored bf16 checkpoints against the f32 sweep', c, stored.g!, sweep.g!, 4e-3);
      }
      const [c, dt] = cases[0]!;
      const x = makeInputs(c, 5, false);
      process.env.MAMBA_SCAN_CHECKPOINT_MB = 'lots';
      expect(() => runCuda(c, x, dt, randn(c.B * c.L * c.D, 3))).toThrow(
        /MAMBA_SCAN_CHECKPOINT_MB must be a whole number of MiB from 0 to 2\^30, got 'lots'/,
      );
    } finally {
      if (saved === undefined) delete process.env.MAMBA_SCAN_CHECKPOINT_MB;
      else process.env.MAMBA_SCAN_CHECKPOINT_MB = saved;
    }
  });

  it('ddelta, dz and y may overwrite delta, z and dy (the same results as with separate buffers)', () => {
    for (const c of [
      { B: 2, L: 1000, D: 130, N: 16, R: 3, ...full },
      { B: 1, L: 70000, D: 33, N: 16, R: 2, ...full },
    ] as Case[]) {
      const x = makeInputs(c, 555 + c.L, false);
      const dy = randn(c.B * c.L * c.D, 81).map(Math.fround);
      const sep = runCuda(c, x, 'f32', dy),
        alias = runCuda(c, x, 'f32', dy, true);
      // per-element outputs are bit-identical; dA, dB, dC are sums by atomics, whose order varies from run to run
      for (const k of ['du', 'ddelta', 'dz'] as const)
        expect(Array.from(alias.g![k]), `${k} L=${c.L}`).toEqual(Array.from(sep.g![k]));
      expect(Array.from(alias.yBack!), `y L=${c.L}`).toEqual(Array.from(sep.yBack!));
      for (const k of ['dA', 'dB', 'dC'] as const) expectClose(`${k} L=${c.L}`, alias.g![k], sep.g![k], 1e-6);
    }
  });

  it('matches the CPU twin where it exists', () => {
    const cpu = native().cpu;
    if (!cpu.selectiveScanForward || !cpu.selectiveScanBackward) {
      console.warn('cpu.selectiveScanForward/Backward not in this build: compared with the float64 reference only');
      return;
    }
    const c: Case = { B: 2, L: 123, D: 9, N: 16, R: 3, ...full };
    const x = makeInputs(c, 31, false);
    const { B, L, D, N } = c;
    const T = B * L;
    const f = (a: Float64Array) => Float32Array.from(a);
    const xp = f(x.xp),
      zp = f(x.zp!);
    const y = new Float32Array(T * D),
      last = new Float32Array(B * D * N);
    const inputs = {
      u: f(x.u),
      delta: f(x.delta),
      deltaBias: f(x.deltaBias!),
      A: f(x.A),
      Bm: xp.subarray(x.bOff),
      Cm: xp.subarray(x.cOff),
      bcStride: x.bcStride,
      Dskip: f(x.Dskip!),
      z: zp.subarray(x.zOff),
      zStride: x.zStride,
      B,
      L,
      D,
      N,
      deltaSoftplus: true,
    };
    cpu.selectiveScanForward({ ...inputs, y, lastState: last });
    const dy = randn(T * D, 3).map(Math.fround);
    const du = new Float32Array(T * D),
      ddelta = new Float32Array(T * D),
      dA = new Float32Array(D * N),
      dxp = new Float32Array(T * x.bcStride);
    const dD = new Float32Array(D),
      dBias = new Float32Array(D),
      dzp = new Float32Array(T * x.zStride);
    cpu.selectiveScanBackward({
      ...inputs,
      dy: f(dy),
      du,
      ddelta,
      dA,
      dB: dxp.subarray(x.bOff),
      dC: dxp.subarray(x.cOff),
      dDskip: dD,
      dDeltaBias: dBias,
      dz: dzp.subarray(x.zOff),
    });
    const got = runCuda(c, x, 'f32', dy);
    const F = (a: Float32Array) => Float64Array.from(a);
    expectClose('cpu y', got.y, F(y), 1e-4);
    expectClose('cpu lastState', got.last, F(last), 1e-4);
    compareGrads(
      'cpu',
      c,
      got.g!,
      {
        du: F(du),
        ddelta: F(ddelta),
        dA: F(dA),
        dB: strided(F(dxp), T, x.bcStride, x.bOff, N),
        dC: strided(F(dxp), T, x.bcStride, x.cOff, N),
        dD: F(dD),
        dBias: F(dBias),
        dz: strided(F(dzp), T, x.zStride, x.zOff, D),
      },
      1e-4,
    );
  });

  it('the public wrappers (src/backend/ops.ts) dispatch to the CUDA kernels, f32 and bf16', () => {
    const c: Case = { B: 2, L: 50, D: 6, N: 16, R: 4, ...full };
    const { B, L, D, N } = c;
    const T = B * L;
    for (const dt of ['f32', 'bf16'] as DT[]) {
      const x = makeInputs(c, 41, dt === 'bf16');
      const xp = up(x.xp, dt).reshape([T, x.bcStride]),
        zp = up(x.zp!, dt).reshape([T, x.zStride]);
      const args: ops.ScanArgs = {
        u: up(x.u, dt).reshape([T, D]),
        delta: up(x.delta, dt).reshape([T, D]),
        deltaBias: upF(x.deltaBias),
        A: upF(x.A)!.reshape([D, N]),
        Bm: ops.columns(xp, x.bOff, N),
        Cm: ops.columns(xp, x.cOff, N),
        Dskip: upF(x.Dskip),
        z: ops.columns(zp, x.zOff, D),
        B,
        L,
        deltaSoftplus: true,
      };
      const y = Tensor.empty([T, D], dt, 'cuda'),
        last = Tensor.empty([B, D, N], 'f32', 'cuda');
      ops.selectiveScanForward(args, y, last);
      const ref = refForward(c, x);
      const tol = dt === 'f32' ? 1e-4 : 1e-2;
      expectClose(`wrapper y ${dt}`, y.toFloat64(), ref.y, tol);
      expectClose(`wrapper lastState ${dt}`, last.toFloat64(), ref.last, tol);
      const dy = randn(T * D, 42).map(dt === 'bf16' ? bfRound : Math.fround);
      const dxp = Tensor.zeros([T, x.bcStride], dt, 'cuda'),
        dzp = Tensor.zeros([T, x.zStride], dt, 'cuda');
      const g: ops.ScanGrads = {
        du: Tensor.empty([T, D], dt, 'cuda'),
        ddelta: Tensor.empty([T, D], dt, 'cuda'),
        dA: Tensor.zeros([D, N], 'f32', 'cuda'),
        dB: ops.columns(dxp, x.bOff, N),
        dC: ops.columns(dxp, x.cOff, N),
        dDskip: Tensor.zeros([D], 'f32', 'cuda'),
        dDeltaBias: Tensor.zeros([D], 'f32', 'cuda'),
        dz: ops.columns(dzp, x.zOff, D),
      };
      ops.selectiveScanBackward(args, up(dy, dt).reshape([T, D]), g);
      const want = refBackward(c, x, dy);
      expectClose(`wrapper du ${dt}`, g.du.toFloat64(), want.du, tol);
      expectClose(`wrapper ddelta ${dt}`, g.ddelta.toFloat64(), want.ddelta, tol);
      expectClose(`wrapper dA ${dt}`, g.dA.toFloat64(), want.dA, tol);
      expectClose(`wrapper dB ${dt}`, strided(dxp.toFloat64(), T, x.bcStride, x.bOff, N), want.dB, tol);
      expectClose(`wrapper dC ${dt}`, strided(dxp.toFloat64(), T, x.bcStride, x.cOff, N), want.dC, tol);
      expectClose(`wrapper dz ${dt}`, strided(dzp.toFloat64(), T, x.zStride, x.zOff, D), want.dz, tol);
    }
  });

  it('rejects bad arguments with one-line errors', () => {
    const cu = native().cuda!;
    const sb = Tensor.zeros([4], 'f32', 'cuda').buffer;
    const base = {
      u: sb,
      delta: sb,
      deltaBias: null,
      A: sb,
      Bm: sb,
      Cm: sb,
      bcStride: 1,
      Dskip: null,
      z: null,
      B: 1,
      L: 1,
      D: 1,
      N: 1,
      deltaSoftplus: true,
    };
    expect(() => cu.selectiveScanForward({ ...base, L: 8, D: 2, y: sb })).toThrow(/needs/);
    expect(() => cu.selectiveScanForward({ ...base, N: 17, bcStride: 17, y: sb })).toThrow(/N <= 16/);
    expect(() => cu.selectiveScanForward({ ...base, y: sb, dtype: 'f16' })).toThrow(/dtype/);
    expect(() => cu.selectiveScanForward({ ...base, y: sb, lastSate: sb })).toThrow(/unknown field 'lastSate'/);
    expect(() =>
      cu.selectiveScanBackward({ ...base, dy: sb, du: sb, ddelta: sb, dA: sb, dB: sb, dC: sb, variant: 'v2' }),
    ).toThrow(/unknown field 'variant'/);
  });
});
