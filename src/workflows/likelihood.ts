// Batched log-likelihoods of token windows under a next-token model: the building block of `score`
// (per-base tracks), `variants` (allele log-likelihood ratios) and their audio twins.
//
// A window of W tokens w[0..W-1] is one row of a forward pass: inputs w[0..W-2], targets w[1..W-1], so
// it yields log2 P(w[i] | w[0..i-1]) for i = 1..W-1 (w[0] has no context and no value). Windows of a
// pass are right-padded to the longest one with ignored targets; the model is causal, so padding after
// a window never changes its values.
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

/** Default tokens per forward pass: large on a GPU (throughput), modest on the CPU (memory, latency). */
export function defaultBatchTokens(device: string): number {
  return device === 'cuda' ? 1 << 21 : 1 << 15;
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
  forEachWindow(model, windows, opts, (i, lp) => (out[i] = lp)); // each lp is a fresh array
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

/** Runs the windows in batched forward passes and hands each window's log2 P of [from, W) to `take`. */
function forEachWindow(
  model: MambaLM,
  windows: readonly LikelihoodWindow[],
  opts: LikelihoodOptions,
  take: (i: number, lp: Float64Array) => void,
): void {
  const order = windows.map((_, i) => i).sort((a, b) => windows[a]!.tokens.length - windows[b]!.tokens.length);
  let done = 0;
  for (let k = 0; k < order.length;) {
    // rows of this pass: as many as fit the budget at the length of the longest (the last, sorted)
    let end = k + 1;
    while (end < order.length) {
      const L = windows[order[end]!]!.tokens.length - 1;
      if ((end - k + 1) * L > opts.batchTokens) break;
      end++;
    }
    const rows = order.slice(k, end);
    const L = Math.max(1, ...rows.map((i) => windows[i]!.tokens.length - 1));
    const B = rows.length;
    const inputs = new Int32Array(B * L),
      targets = new Int32Array(B * L).fill(-1);
    const froms = rows.map((i) => Math.max(1, windows[i]!.from ?? 1));
    rows.forEach((i, b) => {
      const w = windows[i]!.tokens;
      for (let t = 0; t < w.length - 1; t++) inputs[b * L + t] = w[t]!;
      for (let t = froms[b]!; t < w.length; t++) targets[b * L + t - 1] = w[t]!;
    });
    const r = model.forward({ B, L, inputs, targets });
    rows.forEach((i, b) => {
      const W = windows[i]!.tokens.length,
        from = froms[b]!;
      const lp = new Float64Array(Math.max(0, W - from));
      for (let t = from; t < W; t++) lp[t - from] = -r.losses[b * L + t - 1]! / Math.LN2;
      take(i, lp);
    });
    done += B;
    opts.onPass?.(done, B * L);
    k = end;
  }
}
