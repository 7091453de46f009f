// The property the unfused decoding step (MambaMixer.step) rests on: decodeSsm on x_proj whole ({ proj }), fed one
// token per sequence with its state carried from zero, gives the parallel scan forward's y at every token and its
// final state, when the forward takes delta = dtIn Wdt^T, deltaBias = dtBias, softplus, B and C the columns of the
// x_proj rows and z the gate columns of xz. Shared by cpu-decode.test.ts and cuda-decode.test.ts; the reference is
// the CPU selectiveScanForward in float64 on the same (rounded) inputs.
import { Tensor, columns, decodeSsm, selectiveScanForward } from '../../src/backend/index.js';
import { randn, randu } from '../helpers.js';

export interface StepCase {
  B: number;
  L: number;
  /** d_inner */
  E: number;
  /** dt_rank */
  R: number;
  /** d_state */
  N: number;
}

/** L tokens of B sequences in float64, sequence-major rows (row b * L + t), as the forward takes them. */
export interface StepInputs {
  /** [T, E]: the conv output, the scan's u */
  xc: Float64Array;
  /** [T, R + 2N]: dtIn, B, C */
  xProj: Float64Array;
  /** [T, 2E]: z is its columns E..2E */
  xz: Float64Array;
  /** [E, R] */
  Wdt: Float64Array;
  dtBias: Float64Array;
  /** [E, N] = -exp(A_log) */
  A: Float64Array;
  Dskip: Float64Array;
}

/** Random inputs holding the values their tensors will: `act` rounds activations and Wdt, `par` the parameters. */
export function stepInputs(
  c: StepCase,
  seed: number,
  act: (v: number) => number,
  par: (v: number) => number,
): StepInputs {
  const T = c.B * c.L;
  return {
    xc: randn(T * c.E, seed).map(act),
    xProj: randn(T * (c.R + 2 * c.N), seed + 1).map(act),
    xz: randn(T * 2 * c.E, seed + 2).map(act),
    Wdt: randn(c.E * c.R, seed + 3, 1 / Math.sqrt(c.R)).map(act),
    // with delta ~ N(0, 1), dt = softplus(delta + dtBias) lies mostly in 0.05..1
    dtBias: randu(c.E, seed + 4, -2, -0.5).map(par),
    A: randn(c.E * c.N, seed + 5, 0.5).map((v) => par(-Math.exp(v))),
    Dskip: randn(c.E, seed + 6).map(par),
  };
}

/**
 * selectiveScanForward (CPU, float64) over all L tokens: y [T, E] and the final state [B, E, N]. delta = dtIn Wdt^T
 * is rounded by `act` because decodeSsm rounds its product to the activation dtype, as a stored delta would be.
 */
export function forwardReference(
  c: StepCase,
  x: StepInputs,
  act: (v: number) => number,
): { y: Float64Array; last: Float64Array } {
  const { B, L, E, R, N } = c,
    T = B * L,
    J = R + 2 * N;
  const delta = new Float64Array(T * E);
  for (let t = 0; t < T; t++)
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let k = 0; k < R; k++) s += x.xProj[t * J + k]! * x.Wdt[e * R + k]!;
      delta[t * E + e] = act(s);
    }
  const f64 = (a: Float64Array, shape: number[]) => Tensor.from(Float64Array.from(a), shape);
  const xp = f64(x.xProj, [T, J]);
  const y = Tensor.zeros([T, E], 'f64'),
    last = Tensor.zeros([B, E, N], 'f64');
  selectiveScanForward(
    {
      u: f64(x.xc, [T, E]),
      delta: f64(delta, [T, E]),
      deltaBias: f64(x.dtBias, [E]),
      A: f64(x.A, [E, N]),
      Bm: columns(xp, R, N),
      Cm: columns(xp, R + N, N),
      Dskip: f64(x.Dskip, [E]),
      z: columns(f64(x.xz, [T, 2 * E]), E, E),
      B,
      L,
      deltaSoftplus: true,
    },
    y,
    last,
  );
  return { y: y.toFloat64(), last: last.toFloat64() };
}

/** How the step's tensors are made: activations (xc, x_proj, xz, Wdt, y) and parameters (dtBias, A, Dskip, state). */
export interface StepTensors {
  act: (a: Float64Array, shape: number[]) => Tensor;
  par: (a: Float64Array, shape: number[]) => Tensor;
}

/** decodeSsm({ proj }) token after token from a zero state: y in the forward's row order, and the final state. */
export function stepOverTokens(
  c: StepCase,
  x: StepInputs,
  make: StepTensors,
): { y: Float64Array; state: Float64Array } {
  const { B, L, E, R, N } = c,
    J = R + 2 * N;
  // token t of every sequence: B rows of width w
  const rows = (src: Float64Array, w: number, t: number) => {
    const o = new Float64Array(B * w);
    for (let b = 0; b < B; b++) o.set(src.subarray((b * L + t) * w, (b * L + t + 1) * w), b * w);
    return o;
  };
  const Wdt = make.act(x.Wdt, [E, R]),
    dtBias = make.par(x.dtBias, [E]),
    A = make.par(x.A, [E, N]),
    Dskip = make.par(x.Dskip, [E]);
  const state = make.par(new Float64Array(B * E * N), [B, E, N]);
  const y = new Float64Array(B * L * E);
  for (let t = 0; t < L; t++) {
    const yt = make.act(new Float64Array(B * E), [B, E]);
    decodeSsm(
      { proj: make.act(rows(x.xProj, J, t), [B, J]) },
      make.act(rows(x.xc, E, t), [B, E]),
      columns(make.act(rows(x.xz, 2 * E, t), [B, 2 * E]), E, E),
      Wdt,
      dtBias,
      A,
      Dskip,
      state,
      yt,
    );
    const yh = yt.toFloat64();
    for (let b = 0; b < B; b++) y.set(yh.subarray(b * E, (b + 1) * E), (b * L + t) * E);
  }
  return { y, state: state.toFloat64() };
}
