// The .fai index (samtools faidx format): one line per record, NAME LENGTH OFFSET LINEBASES LINEWIDTH.
// FaiBuilder scans FASTA bytes chunk by chunk (plain or decompressed bgzip) and produces the same index
// samtools does: an empty record followed by another record is left out of the index, a NUL byte ends a
// header line (as it ends the C string samtools reads). It gives clear errors where samtools fails or
// where its silent choice would lose data: a trailing empty record, duplicate names, ragged lines.
import { DnaDataError } from './errors.js';

export interface FaiRecord {
  name: string;
  /** bases in the record */
  length: number;
  /** byte offset of the first base (in the uncompressed file) */
  offset: number;
  /** bases per full line */
  lineBases: number;
  /** bytes per full line, line end included (lineBases + 1, or + 2 for CR LF) */
  lineWidth: number;
}

export function formatFai(records: readonly FaiRecord[]): string {
  return records.map((r) => `${r.name}\t${r.length}\t${r.offset}\t${r.lineBases}\t${r.lineWidth}\n`).join('');
}

export function parseFai(text: string, path: string): FaiRecord[] {
  const out: FaiRecord[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i]!.split('\t');
    const nums = f.slice(1, 5).map(Number);
    if (
      f.length < 5 ||
      !f[0] ||
      nums.some((n) => !Number.isSafeInteger(n) || n < 0) ||
      nums[2]! < 1 ||
      nums[3]! < nums[2]! + 1
    ) {
      throw new DnaDataError(
        `${path}: line ${i + 1} is not a valid .fai line (NAME LENGTH OFFSET LINEBASES LINEWIDTH); delete the .fai and re-index`,
      );
    }
    if (seen.has(f[0])) throw new DnaDataError(`${path}: line ${i + 1}: duplicate record name '${f[0]}'`);
    seen.add(f[0]);
    out.push({ name: f[0], length: nums[0]!, offset: nums[1]!, lineBases: nums[2]!, lineWidth: nums[3]! });
  }
  if (out.length === 0) throw new DnaDataError(`${path}: empty .fai index; delete it and re-index`);
  return out;
}

/** Bytes a record spans from its first base to its last base (inclusive). */
export function recordSpan(r: FaiRecord): number {
  if (r.length === 0) return 0;
  const last = r.length - 1;
  return Math.floor(last / r.lineBases) * r.lineWidth + (last % r.lineBases) + 1;
}

export interface FastaHeader {
  name: string;
  description: string;
}

interface RecordScan {
  header: FastaHeader;
  short: number;
  shortBases: number;
  blankAt: number;
  crlf: boolean;
  headerLine: number;
}

/**
 * Incremental FASTA scanner. push() chunks of the (uncompressed) file in order, then finish().
 * `onSeqLine` (optional) receives the bases of every sequence line, for streaming readers.
 */
export class FaiBuilder {
  readonly records: FaiRecord[] = [];
  readonly headers: FastaHeader[] = [];
  /** empty records left out of the index (a header with no bases, followed by another record), as samtools does */
  readonly skipped: { name: string; line: number }[] = [];
  #where: string;
  #names = new Set<string>();
  #carry: Buffer | null = null;
  #pos = 0; // file offset of the next unconsumed byte (start of #carry if any)
  #line = 0;
  // the record being scanned; short: line number of a line shorter than the first (0: none yet)
  #cur: (FaiRecord & RecordScan) | null = null;
  #onSeqLine?: (bases: Uint8Array, rec: FaiRecord) => void;
  #onRecord?: (rec: FaiRecord, header: FastaHeader) => void;

  constructor(
    where: string,
    hooks: {
      onSeqLine?: (bases: Uint8Array, rec: FaiRecord) => void;
      onRecord?: (rec: FaiRecord, header: FastaHeader) => void;
    } = {},
  ) {
    this.#where = where;
    this.#onSeqLine = hooks.onSeqLine;
    this.#onRecord = hooks.onRecord;
  }

  push(chunk: Uint8Array): void {
    let buf: Buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const base = this.#pos;
    if (this.#carry) {
      buf = Buffer.concat([this.#carry, buf]);
      this.#carry = null;
    }
    let p = 0;
    for (;;) {
      const nl = buf.indexOf(10, p);
      if (nl < 0) break;
      this.#lineOf(buf, p, nl, base + p, true);
      p = nl + 1;
    }
    if (p < buf.length) this.#carry = Buffer.from(buf.subarray(p));
    this.#pos = base + p;
  }

  finish(): FaiRecord[] {
    if (this.#carry && this.#carry.length > 0) {
      this.#lineOf(this.#carry, 0, this.#carry.length, this.#pos, false);
      this.#carry = null;
    }
    this.#endRecord(true);
    if (this.records.length === 0)
      throw new DnaDataError(`${this.#where}: no FASTA records (no line starting with '>')`);
    return this.records;
  }

  #lineOf(buf: Buffer, s: number, e: number, pos: number, hasNl: boolean): void {
    this.#line++;
    const cr = e > s && buf[e - 1] === 13;
    const end = cr ? e - 1 : e;
    if (end > s && buf[s] === 62 /* > */) {
      this.#endRecord(false);
      // a NUL ends the header, as it ends the C string samtools reads (samtools cuts the name there)
      const nul = buf.indexOf(0, s + 1);
      const text = buf.toString('latin1', s + 1, nul >= 0 && nul < end ? nul : end);
      const m = /^(\S*)\s*(.*)$/s.exec(text)!;
      const name = m[1]!;
      if (!name) throw new DnaDataError(`${this.#where}: line ${this.#line}: header line without a name`);
      const header = { name, description: m[2]!.trim() };
      const offset = pos + (e - s) + (hasNl ? 1 : 0);
      this.#cur = {
        name,
        header,
        length: 0,
        offset,
        lineBases: 0,
        lineWidth: 0,
        short: 0,
        shortBases: 0,
        blankAt: 0,
        crlf: false,
        headerLine: this.#line,
      };
      return;
    }
    const cur = this.#cur;
    const blen = end - s;
    if (!cur) {
      if (blen === 0) return; // blank lines before the first header, as samtools allows
      throw new DnaDataError(
        `${this.#where}: line ${this.#line} (byte offset ${pos}): no FASTA header line: sequence before the first '>'`,
      );
    }
    if (blen === 0) {
      if (!cur.blankAt) cur.blankAt = this.#line;
      return;
    }
    if (cur.blankAt)
      throw new DnaDataError(`${this.#where}: line ${cur.blankAt}: blank line inside record '${cur.name}'`);
    const sp = buf.indexOf(32, s),
      tab = buf.indexOf(9, s);
    if ((sp >= 0 && sp < end) || (tab >= 0 && tab < end)) {
      const at = sp >= 0 && sp < end ? sp : tab;
      throw new DnaDataError(
        `${this.#where}: line ${this.#line} (byte offset ${pos + at - s}): whitespace inside a sequence line of record '${cur.name}'`,
      );
    }
    if (cur.lineBases === 0) {
      cur.lineBases = blen;
      cur.lineWidth = blen + (cr ? 2 : 1);
      cur.crlf = cr;
    } else {
      if (cur.short) {
        throw new DnaDataError(
          `${this.#where}: line ${cur.short}: record '${cur.name}' has a line of ${cur.shortBases} bases, shorter than its first line (${cur.lineBases} bases), that is not its last line (line ${this.#line} follows with ${blen} bases); random access by .fai needs every line but the last of a record to have the same length (rewrap it, e.g. \`seqkit seq -w 60\`)`,
        );
      }
      if (blen > cur.lineBases) {
        throw new DnaDataError(
          `${this.#where}: line ${this.#line}: record '${cur.name}' has lines of different lengths (${cur.lineBases} bases per line from line ${cur.headerLine + 1}, then ${blen} here); random access by .fai needs every line but the last of a record to have the same length (rewrap it, e.g. \`seqkit seq -w 60\`)`,
        );
      }
      if (cr !== cur.crlf && hasNl) {
        throw new DnaDataError(
          `${this.#where}: line ${this.#line}: record '${cur.name}' mixes CR LF and LF line ends; random access by .fai needs one kind (convert with \`dos2unix\`)`,
        );
      }
      if (blen < cur.lineBases) {
        cur.short = this.#line;
        cur.shortBases = blen;
      }
    }
    cur.length += blen;
    if (this.#onSeqLine) this.#onSeqLine(buf.subarray(s, end), cur);
  }

  #endRecord(atEnd: boolean): void {
    const cur = this.#cur;
    if (!cur) return;
    this.#cur = null;
    if (cur.length === 0) {
      // samtools leaves an empty record out when another record follows, and fails on a trailing one
      if (!atEnd) {
        this.skipped.push({ name: cur.name, line: cur.headerLine });
        return;
      }
      throw new DnaDataError(
        `${this.#where}: line ${cur.headerLine}: the last record '${cur.name}' is empty (a header with ` +
          `no sequence at the end of the file, which samtools refuses too); delete that line or add its bases`,
      );
    }
    if (this.#names.has(cur.name))
      throw new DnaDataError(`${this.#where}: line ${cur.headerLine}: duplicate record name '${cur.name}'`);
    this.#names.add(cur.name);
    this.headers.push(cur.header);
    const rec: FaiRecord = {
      name: cur.name,
      length: cur.length,
      offset: cur.offset,
      lineBases: cur.lineBases,
      lineWidth: cur.lineWidth,
    };
    this.records.push(rec);
    if (this.#onRecord) this.#onRecord(rec, cur.header);
  }
}
