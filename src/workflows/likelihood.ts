// Batched log-likelihoods of token windows under a next-token model: the building block of `score`
// (per-base tracks), `variants` (allele log-likelihood ratios) and their audio twins.
//
// A window of W tokens w[0..W-1] is one row of a forward pass: inputs w[0..W-2], targets w[1..W-1], so
// it yields log2 P(w[i] | w[0..i-1]) for i = 1..W-1 (w[0] has no context and no value). Windows of a
// pass are right-padded to the longest one with ignored targets; the model is causal, so padding after
// a window never changes its values.
//
// Passes are pipelined (LogProbPipeline): a pass is queued on the device, and only when the next one is
// ready is the previous one collected and its windows handed out, so on a GPU the host reads, assembles and
// writes while the device computes. The forward is the model's no-gradient forward, and the per-token losses
// come back from the device (B*L numbers), never the logits.
import { cudaOp } from '../backend/index.js';
import type { MambaLM } from '../model/model.js';

export interface LikelihoodOptions {
  /** tokens per forward pass (rows x length): windows are grouped into passes of at most this many */
  batchTokens: number;
  /** called after every forward pass with the windows done so far (progress) */
  onPass?: (windowsDone: number, tokens: number) => void;
}

/** A window of tokens and the first of its positions whose log-probabilities are wanted (>= 1). */
export interface LikelihoodWindow {
  tokens: Uint8Array;
  /** first window position to return (default 1) */
  from?: number;
}

/** Most tokens per pass: past this, passes are long enough that a bigger one buys nothing. */
const MAX_BATCH_TOKENS = 1 << 23;

/**
 * Default tokens per forward pass: on a GPU, as many as half of its available memory holds for the model's
 * no-gradient forward (a power of two, 2^16 .. 2^23); on the CPU a modest 2^15 (memory, latency).
 */
export function defaultBatchTokens(model: { device: string; inferenceBytesPerToken(): number }): number {
  if (model.device !== 'cuda') return 1 << 15;
  const m = cudaOp('memoryStats')() as { free: number; cached: number; inUse: number };
  const budget = (m.free + Math.max(0, m.cached - m.inUse)) / 2;
  const fit = Math.floor(budget / model.inferenceBytesPerToken());
  return Math.max(1 << 16, Math.min(MAX_BATCH_TOKENS, 2 ** Math.floor(Math.log2(Math.max(fit, 1)))));
}

/** A window's row in a pass: its length, the first position it wants and who takes the values. */
interface PassRow {
  from: number;
  W: number;
  take: (lp: Float64Array) => void;
}

interface CollectedPass {
  losses: Float32Array | Float64Array;
  rows: PassRow[];
  L: number;
}

/**
 * Runs windows through pipelined forward passes. `add` queues a window and the function that takes its
 * log2 P values; `launch` sends the queued windows as a pass (a pass also starts when the next window would
 * not fit the budget); `finish` waits for everything. A window's `take` runs after the pass after its own
 * was launched (or at finish), with log2 P of its positions [from, W) in bits: a view valid during the call.
 */
export class LogProbPipeline {
  readonly #model: MambaLM;
  readonly #opts: LikelihoodOptions;
  #queued: { w: LikelihoodWindow; take: (lp: Float64Array) => void }[] = [];
  #queuedL = 1;
  #inFlight: { collect: () => Float32Array | Float64Array; rows: PassRow[]; L: number } | null = null;
  #inputs = new Int32Array(0);
  #targets = new Int32Array(0);
  #bits = new Float64Array(0);
  #windowsDone = 0;

  constructor(model: MambaLM, opts: LikelihoodOptions) {
    this.#model = model;
    this.#opts = opts;
  }

  add(w: LikelihoodWindow, take: (lp: Float64Array) => void): void {
    const L = Math.max(1, w.tokens.length - 1);
    const Lmax = Math.max(this.#queuedL, L);
    if (this.#queued.length && (this.#queued.length + 1) * Lmax > this.#opts.batchTokens) this.launch();
    this.#queued.push({ w, take });
    this.#queuedL = Math.max(this.#queuedL, L);
  }

  /** Sends the queued windows as one pass; the pass before it is collected and handed out meanwhile. */
  launch(): void {
    if (!this.#queued.length) return;
    const queued = this.#queued,
      L = this.#queuedL,
      B = queued.length;
    this.#queued = [];
    this.#queuedL = 1;
    // assemble while the previous pass may still run; its buffers were uploaded, so they can be reused
    const n = B * L;
    if (this.#inputs.length !== n) {
      this.#inputs = new Int32Array(n);
      this.#targets = new Int32Array(n);
    }
    const inputs = this.#inputs,
      targets = this.#targets;
    targets.fill(-1);
    const rows = queued.map(({ w, take }, b): PassRow => {
      const t = w.tokens,
        W = t.length,
        from = Math.max(1, w.from ?? 1);
      const row = b * L;
      // plain loops: TypedArray.set between element types is slower than this in V8
      for (let k = 0; k < W - 1; k++) inputs[row + k] = t[k]!;
      inputs.fill(0, row + Math.max(0, W - 1), row + L); // padding: any token, it never reaches the window
      for (let k = from; k < W; k++) targets[row + k - 1] = t[k]!;
      return { from, W, take };
    });
    const prev = this.#collect();
    const collect = this.#model.launchTokenLosses({ B, L, inputs, targets });
    this.#inFlight = { collect, rows, L };
    if (prev) this.#handOut(prev);
  }

  /** Runs every queued window and hands all out. */
  finish(): void {
    this.launch();
    const last = this.#collect();
    if (last) this.#handOut(last);
  }

  #collect(): CollectedPass | null {
    const f = this.#inFlight;
    if (!f) return null;
    this.#inFlight = null;
    return { losses: f.collect(), rows: f.rows, L: f.L };
  }

  #handOut(p: CollectedPass): void {
    const { losses, rows, L } = p;
    if (this.#bits.length < L) this.#bits = new Float64Array(L);
    const bits = this.#bits;
    const toBits = -1 / Math.LN2;
    rows.forEach(({ from, W, take }, b) => {
      const n = Math.max(0, W - from),
        o = b * L + from - 1;
      for (let k = 0; k < n; k++) bits[k] = losses[o + k]! * toBits;
      take(bits.subarray(0, n));
    });
    this.#windowsDone += rows.length;
    this.#opts.onPass?.(this.#windowsDone, rows.length * L);
  }
}

/**
 * log2 P of positions [from, W) of every window, in bits (<= 0), as one Float64Array per window (its
 * element k is position from + k). Windows are batched in order of length to keep padding small.
 */
export function windowLogProbs(
  model: MambaLM,
  windows: readonly LikelihoodWindow[],
  opts: LikelihoodOptions,
): Float64Array[] {
  const out = new Array<Float64Array>(windows.length);
  forEachWindow(model, windows, opts, (i, lp) => (out[i] = lp.slice()));
  return out;
}

/** The sum of log2 P over positions [from, W) of every window, in bits. */
export function windowLogProbSums(
  model: MambaLM,
  windows: readonly LikelihoodWindow[],
  opts: LikelihoodOptions,
): Float64Array {
  const out = new Float64Array(windows.length);
  forEachWindow(model, windows, opts, (i, lp) => {
    let s = 0;
    for (let k = 0; k < lp.length; k++) s += lp[k]!;
    out[i] = s;
  });
  return out;
}

/** Runs the windows, shortest first, and hands each window's log2 P of [from, W) to `take`. */
function forEachWindow(
  model: MambaLM,
  windows: readonly LikelihoodWindow[],
  opts: LikelihoodOptions,
  take: (i: number, lp: Float64Array) => void,
): void {
  const order = windows.map((_, i) => i).sort((a, b) => windows[a]!.tokens.length - windows[b]!.tokens.length);
  const pipe = new LogProbPipeline(model, opts);
  for (const i of order) pipe.add(windows[i]!, (lp) => take(i, lp));
  pipe.finish();
}
