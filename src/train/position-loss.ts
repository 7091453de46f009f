// Loss as a function of position inside the window: does a model use its long context? For each held-out
// window of L + 1 tokens the model predicts tokens 2..L+1; the prediction at position p (1-based) has seen
// p tokens of context. Losses are averaged over windows in log-spaced bins of p (octaves: [1], [2, 3],
// [4, 7], ..., the last one ending at L), so a curve still falling at p = 2^14 shows the model gaining from
// context that far back.
import type { TokenWindow, WindowSource } from '../data/types.js';
import type { MambaLM } from '../model/model.js';

export interface PositionBin {
  /** first and last position of the bin (1-based, inclusive) */
  from: number;
  to: number;
  /** mean bits per token over every window's predictions at these positions */
  bits: number;
  /** predictions averaged */
  count: number;
}

export interface PositionCurve {
  seqLen: number;
  windows: number;
  /** predictions evaluated (windows x seqLen) */
  tokens: number;
  /** mean bits per token over all positions */
  bitsPerToken: number;
  bins: PositionBin[];
}

/**
 * Octave bins [2^k, 2^(k+1) - 1] covering positions 1..L; the last bin runs to L itself, so it holds the
 * last half of the window (for L = 2^n: [2^(n-1), 2^n]) rather than a lone position.
 */
export function positionBins(L: number): { from: number; to: number }[] {
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`sequence length must be a whole number >= 1, got ${L}`);
  const out: { from: number; to: number }[] = [];
  let from = 1;
  while (from * 2 <= L) {
    out.push({ from, to: from * 2 - 1 });
    from *= 2;
  }
  const last = out[out.length - 1];
  if (last && from === L)
    last.to = L; // a bin of the single position L joins the one before it
  else out.push({ from, to: L });
  return out;
}

interface SpreadSource {
  spreadWindows(length: number, count: number): Iterable<TokenWindow>;
}
interface RecordsSource {
  records: readonly { name: string; tokens: Uint8Array; offset?: number }[];
}

const hasSpread = (s: WindowSource): s is WindowSource & SpreadSource =>
  typeof (s as Partial<SpreadSource>).spreadWindows === 'function';
const hasRecords = (s: WindowSource): s is WindowSource & RecordsSource =>
  Array.isArray((s as Partial<RecordsSource>).records);

/** `count` windows spread evenly over every window position of in-memory records (audio files, tests). */
function* spreadOverRecords(records: RecordsSource['records'], length: number, count: number): Iterable<TokenWindow> {
  const fits = records.filter((r) => r.tokens.length >= length);
  const positions = fits.map((r) => r.tokens.length - length + 1);
  const total = positions.reduce((a, b) => a + b, 0);
  if (total === 0) return;
  let rec = 0,
    before = 0;
  for (let i = 0; i < count; i++) {
    const k = Math.min(total - 1, Math.floor(((i + 0.5) * total) / count));
    while (k >= before + positions[rec]!) before += positions[rec++]!;
    const r = fits[rec]!,
      start = k - before;
    yield { tokens: r.tokens.subarray(start, start + length), source: r.name, start: (r.offset ?? 0) + start };
  }
}

/**
 * `count` windows of `length` tokens spread evenly over the source, overlapping where it holds fewer
 * disjoint windows (FASTA sources and in-memory records); other sources give their disjoint windows in
 * order (at most `count`).
 */
export async function* heldOutWindows(src: WindowSource, length: number, count: number): AsyncIterable<TokenWindow> {
  if (hasSpread(src)) {
    yield* src.spreadWindows(length, count);
    return;
  }
  if (hasRecords(src)) {
    yield* spreadOverRecords(src.records, length, count);
    return;
  }
  let n = 0;
  for await (const w of src.sequentialWindows(length)) {
    if (n++ >= count) return;
    yield w;
  }
}

/**
 * Per-position held-out loss of a next-token model: forwards `windows` windows of L + 1 tokens in batches
 * of `batch` and bins the per-token losses by position. Uses the model's evaluation forward (no gradients).
 */
export async function positionLoss(
  model: MambaLM,
  src: WindowSource,
  opts: { seqLen: number; windows: number; batch: number },
): Promise<PositionCurve> {
  const L = opts.seqLen;
  const bins = positionBins(L);
  const sums = new Float64Array(bins.length),
    counts = new Float64Array(bins.length);
  // bin index of every 0-based output position t (position t + 1)
  const binOf = new Uint8Array(L);
  bins.forEach((b, i) => binOf.fill(i, b.from - 1, b.to));
  const B = Math.max(1, opts.batch);
  let pending: Uint8Array[] = [];
  let windows = 0,
    total = 0,
    n = 0;
  const flush = () => {
    const nb = pending.length;
    const inputs = new Int32Array(nb * L),
      targets = new Int32Array(nb * L);
    pending.forEach((w, b) => {
      for (let t = 0; t < L; t++) {
        inputs[b * L + t] = w[t]!;
        targets[b * L + t] = w[t + 1]!;
      }
    });
    const r = model.forward({ B: nb, L, inputs, targets });
    for (let b = 0; b < nb; b++) {
      for (let t = 0; t < L; t++) {
        const l = r.losses[b * L + t]!;
        sums[binOf[t]!] += l;
        counts[binOf[t]!]++;
        total += l;
        n++;
      }
    }
    windows += nb;
    pending = [];
  };
  for await (const w of heldOutWindows(src, L + 1, opts.windows)) {
    pending.push(w.tokens);
    if (pending.length === B) flush();
  }
  if (pending.length) flush();
  if (n === 0) throw new RangeError(`the held-out data holds no window of ${L + 1} tokens`);
  return {
    seqLen: L,
    windows,
    tokens: n,
    bitsPerToken: total / n / Math.LN2,
    bins: bins.map((b, i) => ({ ...b, bits: sums[i]! / counts[i]! / Math.LN2, count: counts[i]! })),
  };
}
