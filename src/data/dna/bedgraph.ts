// bedGraph output: `chrom start end value` lines, 0-based half-open, after a `track type=bedGraph` line.
// Values are rounded to a fixed number of decimals; consecutive positions with the same rounded value
// share one line unless every base gets its own (perBase). Positions without a value (NaN) leave a gap.

export interface BedGraphSink {
  write(text: string): void;
}

export class BedGraphWriter {
  readonly #out: BedGraphSink;
  readonly #decimals: number;
  readonly #perBase: boolean;
  #chrom = '';
  #start = -1;
  #end = -1;
  #value = '';

  constructor(out: BedGraphSink, opts: { decimals: number; perBase: boolean }) {
    this.#out = out;
    this.#decimals = opts.decimals;
    this.#perBase = opts.perBase;
  }

  /** The track line; name and description must not contain double quotes. */
  static trackLine(name: string, description: string): string {
    return `track type=bedGraph name="${name.replace(/"/g, "'")}" description="${description.replace(/"/g, "'")}"\n`;
  }

  /** Values of consecutive positions start, start + 1, ... of chrom (positions must come in increasing order). */
  add(chrom: string, start: number, values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      const pos = start + i;
      if (Number.isNaN(v)) {
        this.#emit();
        continue;
      }
      // -0 prints as 0
      const s = (Math.abs(v) < 0.5 * 10 ** -this.#decimals ? 0 : v).toFixed(this.#decimals);
      if (!this.#perBase && this.#start >= 0 && chrom === this.#chrom && pos === this.#end && s === this.#value) {
        this.#end++;
        continue;
      }
      this.#emit();
      this.#chrom = chrom;
      this.#start = pos;
      this.#end = pos + 1;
      this.#value = s;
    }
  }

  #emit(): void {
    if (this.#start < 0) return;
    this.#out.write(`${this.#chrom}\t${this.#start}\t${this.#end}\t${this.#value}\n`);
    this.#start = -1;
  }

  /** Writes the pending line. */
  finish(): void {
    this.#emit();
  }
}
