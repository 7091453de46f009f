// bedGraph output: `chrom start end value` lines, 0-based half-open, after a `track type=bedGraph` line.
// Values are rounded to a fixed number of decimals; consecutive positions with the same rounded value
// share one line unless every base gets its own (perBase). Positions without a value (NaN) leave a gap.

export interface BedGraphSink {
  writeBytes(bytes: Uint8Array): void;
}

/**
 * Streams bedGraph lines into a sink. Lines are encoded straight into a byte buffer (digits by hand, no
 * number-to-string per base): a genome-wide per-base track has one line per base.
 */
export class BedGraphWriter {
  readonly #out: BedGraphSink;
  readonly #decimals: number;
  readonly #scale: number;
  readonly #perBase: boolean;
  #prefix: Buffer = Buffer.alloc(0);
  #chrom = '';
  #start = -1;
  #end = -1;
  /** the pending line's value as an integer number of 10^-decimals (runs compare integers) */
  #q = 0;
  #buf = Buffer.allocUnsafe(1 << 20);
  #pos = 0;
  /** the last line's end and where its digits sit in the buffer (-1: not in the buffer) */
  #lastEnd = -1;
  #lastEndAt = 0;
  #lastEndLen = 0;

  constructor(out: BedGraphSink, opts: { decimals: number; perBase: boolean }) {
    this.#out = out;
    this.#decimals = opts.decimals;
    this.#scale = 10 ** opts.decimals;
    this.#perBase = opts.perBase;
  }

  /** The track line; name and description must not contain double quotes. */
  static trackLine(name: string, description: string): string {
    const q = (s: string) => s.replace(/"/g, "'");
    return `track type=bedGraph name="${q(name)}" description="${q(description)}"\n`;
  }

  /** Values of consecutive positions start, start + 1, ... of chrom (positions must come in increasing order). */
  add(chrom: string, start: number, values: ArrayLike<number>): void {
    if (chrom !== this.#chrom) {
      this.#emit();
      this.#chrom = chrom;
      this.#prefix = Buffer.from(`${chrom}\t`, 'utf8');
    }
    const scale = this.#scale;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      const pos = start + i;
      if (Number.isNaN(v)) {
        this.#emit();
        continue;
      }
      const q = Math.round(v * scale);
      if (!this.#perBase && this.#start >= 0 && pos === this.#end && q === this.#q) {
        this.#end++;
        continue;
      }
      this.#emit();
      this.#start = pos;
      this.#end = pos + 1;
      this.#q = q;
    }
  }

  #emit(): void {
    if (this.#start < 0) return;
    const pre = this.#prefix;
    if (this.#pos + pre.length + 80 > this.#buf.length) this.#flush();
    const buf = this.#buf;
    let pos = this.#pos;
    // a byte loop: a native copy per line costs more than the few bytes of a chromosome name
    for (let i = 0; i < pre.length; i++) buf[pos++] = pre[i]!;
    // a line that starts where the last one ended (every line of a per-base track) copies its digits
    if (this.#start === this.#lastEnd) {
      const from = this.#lastEndAt,
        n = this.#lastEndLen;
      for (let i = 0; i < n; i++) buf[pos + i] = buf[from + i]!;
      pos += n;
    } else pos = putDigits(buf, pos, this.#start, 1);
    buf[pos++] = 9;
    const endAt = pos;
    pos = putDigits(buf, pos, this.#end, 1);
    this.#lastEnd = this.#end;
    this.#lastEndAt = endAt;
    this.#lastEndLen = pos - endAt;
    buf[pos++] = 9;
    // the value in fixed point, as toFixed prints it (no "-0")
    let q = this.#q;
    if (q < 0) {
      buf[pos++] = 45;
      q = -q;
    }
    const dec = this.#decimals;
    if (dec === 0) pos = putDigits(buf, pos, q, 1);
    else {
      const whole = Math.floor(q / this.#scale);
      pos = putDigits(buf, pos, whole, 1);
      buf[pos++] = 46;
      pos = putDigits(buf, pos, q - whole * this.#scale, dec);
    }
    buf[pos++] = 10;
    this.#pos = pos;
    this.#start = -1;
  }

  #flush(): void {
    if (!this.#pos) return;
    this.#out.writeBytes(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    this.#lastEnd = -1;
  }

  /** Writes the pending line and everything buffered. */
  finish(): void {
    this.#emit();
    this.#flush();
  }
}

const POW10 = Float64Array.from({ length: 17 }, (_, i) => 10 ** i);

/**
 * Writes the decimal digits of a non-negative integer n (at least minDigits, zero-padded) at buf[pos] and returns
 * the position after them: the digits are counted first and written right to left, integer arithmetic below 2^31.
 */
function putDigits(buf: Uint8Array, pos: number, n: number, minDigits: number): number {
  let digits = 1;
  while (digits < 16 && n >= POW10[digits]!) digits++;
  if (digits < minDigits) digits = minDigits;
  let at = pos + digits;
  if (n < 0x80000000) {
    let m = n | 0;
    while (at > pos) {
      const next = (m / 10) | 0;
      buf[--at] = 48 + m - next * 10;
      m = next;
    }
  } else {
    let m = n;
    while (at > pos) {
      buf[--at] = 48 + (m % 10);
      m = Math.floor(m / 10);
    }
  }
  return pos + digits;
}
