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
  readonly #digits = new Uint8Array(24);

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

  /** Writes the decimal digits of a non-negative integer, at least `minDigits` of them. */
  #putInt(n: number, minDigits = 1): void {
    const d = this.#digits;
    let k = 0;
    do {
      d[k++] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0 || k < minDigits);
    while (k > 0) this.#buf[this.#pos++] = d[--k]!;
  }

  #emit(): void {
    if (this.#start < 0) return;
    if (this.#pos + this.#prefix.length + 80 > this.#buf.length) this.#flush();
    this.#pos += this.#prefix.copy(this.#buf, this.#pos);
    this.#putInt(this.#start);
    this.#buf[this.#pos++] = 9;
    this.#putInt(this.#end);
    this.#buf[this.#pos++] = 9;
    // the value in fixed point, as toFixed prints it (no "-0")
    let q = this.#q;
    if (q < 0) {
      this.#buf[this.#pos++] = 45;
      q = -q;
    }
    const dec = this.#decimals;
    if (dec === 0) this.#putInt(q);
    else {
      this.#putInt(Math.floor(q / this.#scale));
      this.#buf[this.#pos++] = 46;
      this.#putInt(q % this.#scale, dec);
    }
    this.#buf[this.#pos++] = 10;
    this.#start = -1;
  }

  #flush(): void {
    if (!this.#pos) return;
    this.#out.writeBytes(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
  }

  /** Writes the pending line and everything buffered. */
  finish(): void {
    this.#emit();
    this.#flush();
  }
}
