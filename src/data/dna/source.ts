// Window samplers over one or several FASTA files (plain or bgzip, random access through the index).
// Windows never cross a record boundary. A hold-out option splits every record into a leading train part
// and a trailing valid part, so next-token training and evaluation on one genome never share a base.
import type { Rng } from '../../util/rng.js';
import type { TokenWindow, WindowSource } from '../types.js';
import { DnaDataError } from './errors.js';
import type { FaiRecord } from './fai.js';
import { IndexedFasta, type OpenFastaOptions } from './indexed.js';
import { DNA_VOCAB_SIZE, PAD, reverseComplement } from './tokenizer.js';

export interface DnaSourceOptions extends OpenFastaOptions {
  /** keep soft-masked lowercase as tokens 9..13 (default: fold to upper case) */
  keepCase?: boolean;
  /** records (or record parts) shorter than the window: 'drop' (default) skips them, 'pad' fills the window's tail with PAD tokens */
  shortRecords?: 'drop' | 'pad';
  /** use only the first (1 - fraction) of every record ('train') or the last fraction ('valid') */
  holdout?: { part: 'train' | 'valid'; fraction: number };
  /** reverse-complement each random window with probability 1/2 (augmentation; sequential windows are never flipped) */
  reverseComplement?: boolean;
  /** name used by describe() (default: the file names) */
  name?: string;
}

interface Segment {
  fasta: IndexedFasta;
  rec: FaiRecord;
  /** the usable base range of the record [start, end) */
  start: number;
  end: number;
}

export class FastaWindowSource implements WindowSource {
  readonly domain = 'dna' as const;
  readonly vocabSize = DNA_VOCAB_SIZE;
  readonly files: readonly IndexedFasta[];
  readonly options: Readonly<DnaSourceOptions>;
  #segs: Segment[];
  #cum = new Map<number, Float64Array>(); // window length -> cumulative count of window positions per segment

  constructor(files: IndexedFasta[], opts: DnaSourceOptions = {}) {
    this.files = files;
    this.options = opts;
    const h = opts.holdout;
    if (h && !(h.fraction > 0 && h.fraction < 1))
      throw new DnaDataError(`holdout fraction must be in (0, 1), got ${h.fraction}`);
    if (h && h.part !== 'train' && h.part !== 'valid')
      throw new DnaDataError(`holdout part must be 'train' or 'valid', got '${h.part as string}'`);
    this.#segs = [];
    for (const f of files) {
      for (const rec of f.records) {
        let start = 0,
          end = rec.length;
        if (h) {
          const cut = Math.floor(rec.length * (1 - h.fraction));
          if (h.part === 'train') end = cut;
          else start = cut;
        }
        if (end > start) this.#segs.push({ fasta: f, rec, start, end });
      }
    }
    if (this.#segs.length === 0)
      throw new DnaDataError(`${files.map((f) => f.path).join(', ')}: no bases to sample from`);
  }

  get segments(): readonly { source: string; start: number; end: number }[] {
    return this.#segs.map((s) => ({ source: s.rec.name, start: s.start, end: s.end }));
  }

  describe(): string {
    const name = this.options.name ?? this.files.map((f) => f.path.split('/').pop()).join(', ');
    const nrec = this.files.reduce((a, f) => a + f.records.length, 0);
    const all = this.files.reduce((a, f) => a + f.records.reduce((b, r) => b + r.length, 0), 0);
    let s = `${name}: ${nrec.toLocaleString('en-US')} record${nrec === 1 ? '' : 's'}, ${all.toLocaleString('en-US')} bases`;
    const h = this.options.holdout;
    if (h) {
      const pct = Math.round((1 - h.fraction) * 1000) / 10;
      s +=
        h.part === 'train'
          ? `; train part: first ${pct}% of each record`
          : `; valid part: last ${Math.round(h.fraction * 1000) / 10}% of each record`;
      s += ` (${this.totalTokens().toLocaleString('en-US')} bases)`;
    }
    if (this.options.shortRecords === 'pad') s += '; records shorter than a window are padded with PAD tokens';
    else s += '; records shorter than a window are skipped';
    if (this.options.keepCase) s += '; soft-masked case kept';
    return s;
  }

  maxWindowLength(): number {
    return this.#segs.reduce((m, s) => Math.max(m, s.end - s.start), 0);
  }

  totalTokens(): number {
    return this.#segs.reduce((a, s) => a + (s.end - s.start), 0);
  }

  #pad(): boolean {
    return this.options.shortRecords === 'pad';
  }

  #cumFor(length: number): Float64Array {
    let c = this.#cum.get(length);
    if (c) return c;
    c = new Float64Array(this.#segs.length);
    let acc = 0;
    for (let i = 0; i < this.#segs.length; i++) {
      const n = this.#segs[i]!.end - this.#segs[i]!.start;
      acc += n >= length ? n - length + 1 : this.#pad() ? 1 : 0;
      c[i] = acc;
    }
    if (this.#cum.size > 64) this.#cum.clear();
    this.#cum.set(length, c);
    return c;
  }

  #checkLength(length: number): void {
    if (!Number.isSafeInteger(length) || length < 1)
      throw new DnaDataError(`window length must be a whole number >= 1, got ${length}`);
  }

  /** Reads a window at `start` of segment `seg` (padded when the segment is shorter). */
  #read(seg: Segment, start: number, length: number, out?: Uint8Array): TokenWindow {
    if (out && out.length !== length)
      throw new DnaDataError(`window buffer has ${out.length} tokens, expected ${length}`);
    const tokens = out ?? new Uint8Array(length);
    const n = Math.min(length, seg.end - start);
    seg.fasta.tokens(seg.rec, start, start + n, this.options, tokens, 0);
    if (n < length) tokens.fill(PAD, n);
    // with several files, record names may repeat: name the file too
    const source = this.files.length > 1 ? `${seg.fasta.path.split('/').pop()}:${seg.rec.name}` : seg.rec.name;
    return { tokens, source, start };
  }

  async randomWindow(length: number, rng: Rng): Promise<TokenWindow> {
    return this.randomWindowSync(length, rng);
  }

  /** The same as randomWindow, without the promise (reads are synchronous preads); `out` reuses a buffer. */
  randomWindowSync(length: number, rng: Rng, out?: Uint8Array): TokenWindow {
    this.#checkLength(length);
    const cum = this.#cumFor(length);
    const total = cum[cum.length - 1]!;
    if (total === 0) {
      throw new DnaDataError(
        `no record${this.options.holdout ? ' part' : ''} is at least ${length.toLocaleString('en-US')} bases long (the longest is ${this.maxWindowLength().toLocaleString('en-US')}); use a shorter window or shortRecords: 'pad'`,
      );
    }
    const k = rng.int(total);
    // binary search: the first segment whose cumulative count exceeds k
    let lo = 0,
      hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! > k) hi = mid;
      else lo = mid + 1;
    }
    const seg = this.#segs[lo]!;
    const within = k - (lo > 0 ? cum[lo - 1]! : 0);
    const w = this.#read(seg, seg.start + within, length, out);
    if (this.options.reverseComplement && rng.next() < 0.5) {
      const n = Math.min(length, seg.end - w.start);
      reverseComplement(w.tokens.subarray(0, n), w.tokens.subarray(0, n));
    }
    return w;
  }

  async *sequentialWindows(length: number): AsyncIterable<TokenWindow> {
    yield* this.sequentialWindowsSync(length);
  }

  *sequentialWindowsSync(length: number): Iterable<TokenWindow> {
    this.#checkLength(length);
    for (const seg of this.#segs) {
      const n = seg.end - seg.start;
      if (n < length) {
        if (this.#pad()) yield this.#read(seg, seg.start, length);
        continue;
      }
      for (let s = seg.start; s + length <= seg.end; s += length) yield this.#read(seg, s, length);
    }
  }

  /** `count` windows spread evenly over all window positions, in order (deterministic; for per-source evaluation). */
  *spreadWindows(length: number, count: number): Iterable<TokenWindow> {
    this.#checkLength(length);
    const cum = this.#cumFor(length);
    const total = cum[cum.length - 1]!;
    if (total === 0) return;
    let seg = 0;
    for (let i = 0; i < count; i++) {
      const k = Math.min(total - 1, Math.floor(((i + 0.5) * total) / count));
      while (cum[seg]! <= k) seg++;
      const s = this.#segs[seg]!;
      yield this.#read(s, s.start + k - (seg > 0 ? cum[seg - 1]! : 0), length);
    }
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/**
 * Decompressed 64 KiB BGZF blocks a window source keeps, shared by its files (512 MiB at most): random windows
 * then inflate each block of a set up to that size once, not once per window. Without it, training at 2^10 on the
 * 16 Mbp great-apes human row inflated a whole block for each of the 1,024 windows of a step, 0.2-0.5 s per step.
 */
export const WINDOW_CACHE_BLOCKS = 8192;

/** Each file's share of the window cache when `files` files are read together (at least the reader's 4 blocks). */
export function windowCacheBlocks(files: number): number {
  return Math.max(4, Math.floor(WINDOW_CACHE_BLOCKS / files));
}

/** Opens plain, indexed or bgzip FASTA (one path or several) as a WindowSource; builds missing indexes. */
export function openDnaSource(path: string | readonly string[], opts: DnaSourceOptions = {}): FastaWindowSource {
  const paths = typeof path === 'string' ? [path] : [...path];
  if (paths.length === 0) throw new DnaDataError('openDnaSource: no FASTA files given');
  const files: IndexedFasta[] = [];
  const cacheBlocks = opts.cacheBlocks ?? windowCacheBlocks(paths.length);
  try {
    for (const p of paths) files.push(IndexedFasta.open(p, { ...opts, cacheBlocks }));
    return new FastaWindowSource(files, opts);
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
}

/**
 * The train and valid parts of the same FASTA for next-token modelling on one genome: train windows from
 * the first (1 - fraction) of every record, valid windows from the last fraction; they never overlap.
 */
export function openHoldoutSplits(
  path: string | readonly string[],
  fraction = 0.05,
  opts: Omit<DnaSourceOptions, 'holdout'> = {},
): { train: FastaWindowSource; valid: FastaWindowSource } {
  const train = openDnaSource(path, { ...opts, holdout: { part: 'train', fraction } });
  try {
    return {
      train,
      valid: openDnaSource(path, { ...opts, reverseComplement: false, holdout: { part: 'valid', fraction } }),
    };
  } catch (e) {
    train.close();
    throw e;
  }
}
