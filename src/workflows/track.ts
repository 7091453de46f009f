// Per-position log-likelihood tracks of long sequences (a chromosome, a recording) with bounded context:
// every position is scored by one window of up to N tokens of left context, and memory stays bounded by
// the chunk being scored, whatever the sequence length.
//
// The windows (planWindows): with H = floor(N / 2), window k (k >= 0) reads positions [kH, kH + N] and
// keeps the predictions of positions (kH + N - H, kH + N] (window 0 keeps [1, N]), so a kept position
// sees between N - H + 1 >= N/2 and N positions of context, except the first N of a sequence, which see
// all that precedes them. A last window aligned to the end covers the tail. The layout depends only on the
// sequence length and N, so a position gets the same value whatever region around it is asked for.
// Position 0 has no context and gets no value (NaN).
import type { MambaLM } from '../model/model.js';
import { windowLogProbs, type LikelihoodWindow } from './likelihood.js';

export interface PlannedWindow {
  /** first position the window reads */
  start: number;
  /** kept predictions: positions [keepFrom, keepTo) (the window reads [start, keepTo)) */
  keepFrom: number;
  keepTo: number;
}

/** The windows that score positions [a, b) of a sequence of `len` positions with context N (see above). */
export function* planWindows(len: number, N: number, a: number, b: number): Generator<PlannedWindow> {
  if (!(Number.isInteger(N) && N >= 2)) throw new RangeError(`context must be an integer >= 2, got ${N}`);
  a = Math.max(a, 1);
  b = Math.min(b, len);
  if (a >= b) return;
  if (len - 1 <= N) {
    yield { start: 0, keepFrom: a, keepTo: b };
    return;
  }
  const H = Math.floor(N / 2);
  const keepFrom = (k: number) => (k === 0 ? 1 : k * H + N - H + 1);
  const keepTo = (k: number) => k * H + N + 1;
  const kmax = Math.floor((len - 1 - N) / H);
  for (let k = a <= N ? 0 : Math.floor((a - N - 1) / H) + 1; k <= kmax; k++) {
    const f = Math.max(keepFrom(k), a),
      t = Math.min(keepTo(k), b);
    if (f >= b) return;
    if (f < t) yield { start: k * H, keepFrom: f, keepTo: t };
  }
  const tail = keepTo(kmax);
  if (tail < b) yield { start: len - 1 - N, keepFrom: Math.max(tail, a), keepTo: b };
}

/** A sequence to score: its length and a reader of its tokens [start, end). */
export interface TrackSequence {
  length: number;
  read(start: number, end: number): Uint8Array;
  /** the reverse complement of a token window (DNA), for strand 'both' */
  reverseComplement?: (tokens: Uint8Array) => Uint8Array;
}

export interface TrackOptions {
  context: number;
  /** 'both' also scores the reverse complement (left context = the other strand's right) and averages */
  strand: 'forward' | 'both';
  batchTokens: number;
  /** positions per chunk (default max(2^20, 16 N)) */
  chunk?: number;
  onPass?: (tokens: number) => void;
}

/**
 * Scores positions [a, b) chunk by chunk: yields { start, values } with values[i] = log2 P of position
 * start + i in bits (NaN where no strand gives a value). With strand 'both' a value is the mean of the two
 * strands' log-probabilities of the base (each strand's where only one has one).
 */
export function* scoreTrack(
  model: MambaLM,
  seq: TrackSequence,
  a: number,
  b: number,
  o: TrackOptions,
): Generator<{ start: number; values: Float64Array }> {
  const N = o.context,
    H = Math.floor(N / 2),
    len = seq.length;
  if (o.strand === 'both' && !seq.reverseComplement) throw new RangeError('strand both needs a reverse complement');
  const C = o.chunk ?? Math.max(1 << 20, 16 * N);
  const lp = { batchTokens: o.batchTokens, onPass: (_: number, t: number) => o.onPass?.(t) };
  for (let c0 = a; c0 < b;) {
    let c1 = c0 + C;
    // end chunks on the forward windows' keep boundaries (N + 1 + mH), so no window is split between two chunks
    if (c1 > N + 1) c1 = N + 1 + Math.ceil((c1 - N - 1) / H) * H;
    c1 = Math.min(c1, b);
    const n = c1 - c0;
    const fwd = new Float64Array(n).fill(NaN);
    const plans: { w: LikelihoodWindow; put: (v: Float64Array) => void }[] = [];
    for (const p of planWindows(len, N, c0, c1)) {
      plans.push({
        w: { tokens: seq.read(p.start, p.keepTo), from: p.keepFrom - p.start },
        put: (v) => fwd.set(v, p.keepFrom - c0),
      });
    }
    let rev: Float64Array | undefined;
    if (o.strand === 'both') {
      const r = (rev = new Float64Array(n).fill(NaN));
      // reverse-strand position q is forward position len - 1 - q
      for (const p of planWindows(len, N, len - c1, len - c0)) {
        plans.push({
          w: { tokens: seq.reverseComplement!(seq.read(len - p.keepTo, len - p.start)), from: p.keepFrom - p.start },
          put: (v) => {
            for (let k = 0; k < v.length; k++) r[len - 1 - (p.keepFrom + k) - c0] = v[k]!;
          },
        });
      }
    }
    const vals = windowLogProbs(
      model,
      plans.map((p) => p.w),
      lp,
    );
    plans.forEach((p, i) => p.put(vals[i]!));
    if (rev) {
      for (let i = 0; i < n; i++) {
        const f = fwd[i]!,
          r = rev[i]!;
        fwd[i] = Number.isNaN(f) ? r : Number.isNaN(r) ? f : (f + r) / 2;
      }
    }
    yield { start: c0, values: fwd };
    c0 = c1;
  }
}
