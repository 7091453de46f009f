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
import { LogProbPipeline } from './likelihood.js';

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
  /** positions per chunk (default: what one pass of batchTokens scores, at least 16 N) */
  chunk?: number;
  onPass?: (tokens: number) => void;
}

/** A chunk being scored: its values per strand and how many of its windows are still out. */
interface PendingChunk {
  start: number;
  fwd: Float64Array;
  rev: Float64Array | null;
  windowsLeft: number;
}

/**
 * Scores positions [a, b) chunk by chunk: yields { start, values } with values[i] = log2 P of position
 * start + i in bits (NaN where no strand gives a value). With strand 'both' a value is the mean of the two
 * strands' log-probabilities of the base (each strand's where only one has one). Chunks are pipelined: the
 * next chunk's pass is on the device while the caller handles the one yielded.
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
  // every position costs about two window tokens per strand: size a chunk to fill one pass
  const strands = o.strand === 'both' ? 2 : 1;
  const C = o.chunk ?? Math.max(16 * N, Math.floor(o.batchTokens / (2 * strands)));
  const pipe = new LogProbPipeline(model, { batchTokens: o.batchTokens, onPass: (_, t) => o.onPass?.(t) });
  const pending: PendingChunk[] = [];
  function* ready(): Generator<{ start: number; values: Float64Array }> {
    while (pending.length && pending[0]!.windowsLeft === 0) {
      const c = pending.shift()!;
      if (c.rev) {
        const f = c.fwd,
          r = c.rev;
        for (let i = 0; i < f.length; i++) {
          const x = f[i]!,
            y = r[i]!;
          f[i] = Number.isNaN(x) ? y : Number.isNaN(y) ? x : (x + y) / 2;
        }
      }
      yield { start: c.start, values: c.fwd };
    }
  }
  for (let c0 = a; c0 < b;) {
    let c1 = c0 + C;
    // end chunks on the forward windows' keep boundaries (N + 1 + mH), so no window is split between two chunks
    if (c1 > N + 1) c1 = N + 1 + Math.ceil((c1 - N - 1) / H) * H;
    c1 = Math.min(c1, b);
    const n = c1 - c0,
      from = c0; // the callbacks run after c0 moves on
    const chunk: PendingChunk = {
      start: from,
      fwd: new Float64Array(n).fill(NaN),
      rev: o.strand === 'both' ? new Float64Array(n).fill(NaN) : null,
      windowsLeft: 0,
    };
    pending.push(chunk);
    const fwd = chunk.fwd;
    for (const p of planWindows(len, N, c0, c1)) {
      chunk.windowsLeft++;
      pipe.add({ tokens: seq.read(p.start, p.keepTo), from: p.keepFrom - p.start }, (v) => {
        fwd.set(v, p.keepFrom - from);
        chunk.windowsLeft--;
      });
    }
    if (chunk.rev) {
      const r = chunk.rev;
      // reverse-strand position q is forward position len - 1 - q
      for (const p of planWindows(len, N, len - c1, len - c0)) {
        chunk.windowsLeft++;
        const tokens = seq.reverseComplement!(seq.read(len - p.keepTo, len - p.start));
        pipe.add({ tokens, from: p.keepFrom - p.start }, (v) => {
          const top = len - 1 - p.keepFrom - from;
          for (let k = 0; k < v.length; k++) r[top - k] = v[k]!;
          chunk.windowsLeft--;
        });
      }
    }
    // this chunk goes to the device; the one before it comes back and is yielded while this one computes
    pipe.launch();
    yield* ready();
    c0 = c1;
  }
  pipe.finish();
  yield* ready();
}
