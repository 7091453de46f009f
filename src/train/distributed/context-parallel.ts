// The combine algebra of a context-parallel selective scan, in float64 with the ranks simulated in one
// process: the math the multi-GPU version must reproduce, checked here against the single-sequence kernel.
// A sequence of length L is cut into contiguous pieces; each rank scans its piece from a zero state, the
// ranks prefix-combine (piece decay, end state) pairs, and each rank adds its entering state's
// contribution. This works because the recurrence h_t = a_t h_{t-1} + b_t is linear in h.
// Layouts follow the CPU kernel (native/KERNELS.md): u, delta, z [B, L, D]; Bm, Cm [B, L, N]; A [D, N].

export interface ScanInputs {
  B: number;
  L: number;
  D: number;
  N: number;
  u: Float64Array;
  /** raw delta, before deltaBias and softplus */
  delta: Float64Array;
  deltaBias: Float64Array | null;
  A: Float64Array;
  Bm: Float64Array;
  Cm: Float64Array;
  Dskip: Float64Array | null;
  /** gate: y = (C.h + Dskip u) * SiLU(z) */
  z: Float64Array | null;
  deltaSoftplus: boolean;
}

/** One rank's piece [t0, t1) of every sequence, scanned from a zero state. */
export interface PieceResult {
  t0: number;
  t1: number;
  /** [B, t1 - t0, D] outputs before the gate and before the entering-state correction */
  yPre: Float64Array;
  /** [B, D, N] prod of a_t over the piece */
  decay: Float64Array;
  /** [B, D, N] the piece's end state from a zero start */
  end: Float64Array;
}

const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
const silu = (v: number) => v / (1 + Math.exp(-v));

function dtAt(x: ScanInputs, i: number, d: number): number {
  const raw = x.delta[i]! + (x.deltaBias ? x.deltaBias[d]! : 0);
  return x.deltaSoftplus ? softplus(raw) : raw;
}

/** Contiguous piece boundaries [0, ..., L] for N ranks; the first L % N pieces are one longer. */
export function pieceBounds(L: number, N: number): number[] {
  if (!Number.isInteger(N) || N < 1) throw new Error(`number of ranks must be an integer >= 1, got ${N}`);
  // an empty piece would leave a rank idle and is almost certainly a configuration mistake
  if (!Number.isInteger(L) || L < N)
    throw new Error(`sequence length L=${L} is shorter than the number of ranks N=${N}`);
  const base = Math.floor(L / N),
    extra = L % N;
  const b = [0];
  for (let r = 0; r < N; r++) b.push(b[r]! + base + (r < extra ? 1 : 0));
  return b;
}

export function scanPiece(x: ScanInputs, t0: number, t1: number): PieceResult {
  const { B, L, D, N } = x;
  const len = t1 - t0;
  const yPre = new Float64Array(B * len * D),
    decay = new Float64Array(B * D * N).fill(1),
    end = new Float64Array(B * D * N);
  for (let b = 0; b < B; b++)
    for (let d = 0; d < D; d++) {
      const s = (b * D + d) * N; // h and decay live in end / decay directly
      for (let t = t0; t < t1; t++) {
        const r = b * L + t,
          i = r * D + d;
        const dt = dtAt(x, i, d),
          u = x.u[i]!;
        let acc = x.Dskip ? x.Dskip[d]! * u : 0;
        for (let n = 0; n < N; n++) {
          const a = Math.exp(dt * x.A[d * N + n]!);
          end[s + n] = a * end[s + n]! + dt * x.Bm[r * N + n]! * u;
          decay[s + n] *= a;
          acc += x.Cm[r * N + n]! * end[s + n]!;
        }
        yPre[(b * len + t - t0) * D + d] = acc;
      }
    }
  return { t0, t1, yPre, decay, end };
}

/**
 * Exclusive prefix combine over ranks: entering[r] = decay[r-1] * entering[r-1] + end[r-1], entering[0] = 0.
 * final is the state after the last piece (the whole sequence's last state). Sequential here; the pairs
 * (decay, end) compose associatively, so real ranks can use a scan over log2(N) exchanges instead.
 */
export function combineRanks(pieces: readonly Pick<PieceResult, 'decay' | 'end'>[]): {
  entering: Float64Array[];
  final: Float64Array;
} {
  if (pieces.length === 0) throw new Error('combineRanks: no pieces');
  const size = pieces[0]!.end.length;
  const entering: Float64Array[] = [];
  let h = new Float64Array(size);
  for (const p of pieces) {
    entering.push(h);
    const next = new Float64Array(size);
    for (let k = 0; k < size; k++) next[k] = p.decay[k]! * h[k]! + p.end[k]!;
    h = next;
  }
  return { entering, final: h };
}

/**
 * The rank's final outputs [B, t1 - t0, D]: y_t = (yPre_t + sum_n C_t[n] (prod_{s<=t} a_s) hIn[n]) * SiLU(z_t).
 * The running decay is recomputed from delta and A rather than stored, as a GPU rank would do.
 */
export function correctPiece(x: ScanInputs, piece: PieceResult, hIn: Float64Array): Float64Array {
  const { B, L, D, N } = x;
  const { t0, t1 } = piece;
  const len = t1 - t0;
  const y = new Float64Array(piece.yPre);
  const carry = new Float64Array(N);
  for (let b = 0; b < B; b++)
    for (let d = 0; d < D; d++) {
      const s = (b * D + d) * N;
      for (let n = 0; n < N; n++) carry[n] = hIn[s + n]!;
      for (let t = t0; t < t1; t++) {
        const r = b * L + t,
          i = r * D + d,
          o = (b * len + t - t0) * D + d;
        const dt = dtAt(x, i, d);
        let acc = 0;
        for (let n = 0; n < N; n++) {
          carry[n] = Math.exp(dt * x.A[d * N + n]!) * carry[n]!;
          acc += x.Cm[r * N + n]! * carry[n]!;
        }
        // the gate multiplies the full pre-activation, so it is applied only after the correction
        y[o] = x.z ? (y[o]! + acc) * silu(x.z[i]!) : y[o]! + acc;
      }
    }
  return y;
}

/**
 * The whole scan with N simulated ranks (or explicit piece boundaries): y [B, L, D] and the last state
 * [B, D, N], equal to a single-sequence scan up to rounding.
 */
export function contextParallelScan(
  x: ScanInputs,
  N: number,
  bounds: readonly number[] = pieceBounds(x.L, N),
): { y: Float64Array; lastState: Float64Array } {
  if (
    bounds.length !== N + 1 ||
    bounds[0] !== 0 ||
    bounds[N] !== x.L ||
    bounds.some((v, k) => k > 0 && v <= bounds[k - 1]!)
  )
    throw new Error(`piece bounds [${bounds.join(', ')}] must rise strictly from 0 to L=${x.L} in ${N} pieces`);
  const pieces = Array.from({ length: N }, (_, r) => scanPiece(x, bounds[r]!, bounds[r + 1]!));
  const { entering, final } = combineRanks(pieces);
  const y = new Float64Array(x.B * x.L * x.D);
  pieces.forEach((p, r) => {
    const yr = correctPiece(x, p, entering[r]!);
    const len = p.t1 - p.t0;
    for (let b = 0; b < x.B; b++) y.set(yr.subarray(b * len * x.D, (b + 1) * len * x.D), (b * x.L + p.t0) * x.D);
  });
  return { y, lastState: final };
}

/**
 * The causal conv1d halo: rank r's d_conv - 1 rows before its piece (pieces [L_r, C], row-major), zeros
 * before the sequence start. Normally all from rank r - 1; a piece shorter than d_conv - 1 rows makes the
 * halo reach further back, so this walks back over as many ranks as needed.
 */
export function convHalos(pieces: readonly Float64Array[], C: number, dConv: number): Float64Array[] {
  if (!Number.isInteger(dConv) || dConv < 1) throw new Error(`d_conv must be an integer >= 1, got ${dConv}`);
  const H = dConv - 1;
  pieces.forEach((p, r) => {
    if (p.length % C !== 0) throw new Error(`piece ${r} has ${p.length} values, not a multiple of C=${C}`);
  });
  return pieces.map((_, r) => {
    const halo = new Float64Array(H * C); // rows not reached stay zero: the sequence's causal padding
    let need = H; // halo rows still to fill, from the bottom up
    for (let q = r - 1; q >= 0 && need > 0; q--) {
      const rows = pieces[q]!.length / C,
        take = Math.min(need, rows);
      halo.set(pieces[q]!.subarray((rows - take) * C), (need - take) * C);
      need -= take;
    }
    return halo;
  });
}
