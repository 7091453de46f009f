// Random access to plain or bgzip FASTA through its .fai (and .gzi), built when missing.
// Reads are synchronous preads: one read of the bytes a region spans, then one pass through the base
// lookup table that skips line ends using the record's fixed line layout (no per-byte newline test).
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../../util/write-file.js';
import { BgzfReader, formatGzi, parseGzi, scanBgzf, sniffFile, type Compression } from './bgzf.js';
import { DnaDataError } from './errors.js';
import { FaiBuilder, formatFai, parseFai, recordSpan, type FaiRecord } from './fai.js';
import { INVALID, baseLut, invalidByteError, type TokenizeOptions } from './tokenizer.js';

export interface OpenFastaOptions {
  /** write a missing .fai / .gzi next to the file (default true); if the folder is not writable the index is kept in memory */
  writeIndex?: boolean;
  /** decompressed BGZF blocks kept for neighbouring reads (default 4) */
  cacheBlocks?: number;
}

// one writer for every output (temp file + rename, writes through symlinks and FIFOs): src/util/write-file.ts
export { writeFileAtomic };

function tryWrite(path: string, data: string | Uint8Array): boolean {
  try {
    writeFileAtomic(path, data);
    return true;
  } catch {
    return false;
  }
}

function compressionError(path: string, c: Compression): DnaDataError {
  if (c === 'gzip') {
    // bgzip of the unpacked file gives back the same name, now block-compressed
    const plain = /\.gz$/i.test(path) ? path.slice(0, -3) : undefined;
    const how = plain
      ? `\`gunzip ${path} && bgzip ${plain}\` (which writes ${path} again, as bgzip)`
      : `\`zcat ${path} | bgzip > ${path}.gz\``;
    return new DnaDataError(
      `${path}: is gzip-compressed but not bgzip (BGZF), so it cannot be read at random positions; convert it with ${how}, or \`gunzip\` it`,
    );
  }
  return new DnaDataError(`${path}: is ${c}-compressed; decompress it (or recompress it with bgzip) first`);
}

type ByteReader = {
  read(start: number, end: number): Buffer;
  size: number;
  close(): void;
  /** BGZF blocks decompressed so far (0 for plain files) */
  blocksInflated(): number;
};

/** A BGZF file's uncompressed bytes as a ByteReader. */
function bgzfBytes(bg: BgzfReader): ByteReader {
  return {
    read: (a, b) => bg.read(a, b),
    size: bg.usize,
    close: () => bg.close(),
    blocksInflated: () => bg.blocksInflated,
  };
}

class PlainReader implements ByteReader {
  #fd: number;
  #buf = Buffer.allocUnsafe(1 << 16);
  readonly size: number;
  constructor(readonly path: string) {
    this.#fd = openSync(path, 'r');
    this.size = fstatSync(this.#fd).size;
  }
  read(start: number, end: number): Buffer {
    const n = end - start;
    if (this.#buf.length < n) this.#buf = Buffer.allocUnsafe(Math.max(n, this.#buf.length * 2));
    let got = 0;
    while (got < n) {
      const r = readSync(this.#fd, this.#buf, got, n - got, start + got);
      if (r === 0)
        throw new DnaDataError(
          `${this.path}: unexpected end of file at byte offset ${start + got} (the file changed after its .fai was built? delete the .fai)`,
        );
      got += r;
    }
    return this.#buf.subarray(0, n);
  }
  close(): void {
    closeSync(this.#fd);
  }
  blocksInflated(): number {
    return 0;
  }
}

/** A FASTA file opened for random access. */
export class IndexedFasta {
  readonly path: string;
  readonly compression: 'none' | 'bgzf';
  readonly records: readonly FaiRecord[];
  /** where the .fai came from: read from disk, built and written, or built and kept in memory */
  readonly indexOrigin: 'read' | 'written' | 'memory';
  #byName: Map<string, FaiRecord>;
  #reader: ByteReader;

  private constructor(
    path: string,
    compression: 'none' | 'bgzf',
    reader: ByteReader,
    records: FaiRecord[],
    origin: IndexedFasta['indexOrigin'],
  ) {
    this.path = path;
    this.compression = compression;
    this.#reader = reader;
    this.records = records;
    this.indexOrigin = origin;
    this.#byName = new Map(records.map((r) => [r.name, r]));
  }

  static open(path: string, opts: OpenFastaOptions = {}): IndexedFasta {
    if (!existsSync(path)) throw new DnaDataError(`${path}: no such file`);
    if (statSync(path).isDirectory()) throw new DnaDataError(`${path}: is a folder, not a FASTA file`);
    const writeIndex = opts.writeIndex ?? true;
    const c = sniffFile(path);
    let reader: ByteReader;
    if (c === 'none') {
      reader = new PlainReader(path);
    } else if (c === 'bgzf') {
      const gziPath = `${path}.gzi`;
      let idx;
      if (existsSync(gziPath)) {
        idx = parseGzi(readFileSync(gziPath), gziPath);
      } else {
        idx = scanBgzf(path);
        if (writeIndex) tryWrite(gziPath, formatGzi(idx));
      }
      reader = bgzfBytes(new BgzfReader(path, idx, { cacheBlocks: opts.cacheBlocks }));
    } else {
      throw compressionError(path, c);
    }
    try {
      const faiPath = `${path}.fai`;
      let records: FaiRecord[];
      let origin: IndexedFasta['indexOrigin'];
      if (existsSync(faiPath)) {
        records = parseFai(readFileSync(faiPath, 'latin1'), faiPath);
        origin = 'read';
        checkFai(records, reader, path, faiPath);
      } else {
        records = buildFai(reader, path);
        origin = writeIndex && tryWrite(faiPath, formatFai(records)) ? 'written' : 'memory';
      }
      return new IndexedFasta(path, c, reader, records, origin);
    } catch (e) {
      reader.close();
      throw e;
    }
  }

  close(): void {
    this.#reader.close();
  }

  /** BGZF blocks decompressed so far (0 for a plain file): what the block cache saved shows here. */
  get blocksInflated(): number {
    return this.#reader.blocksInflated();
  }

  record(name: string): FaiRecord {
    const r = this.#byName.get(name);
    if (!r) throw new DnaDataError(`${this.path}: no record named '${name}' (records: ${listNames(this.records)})`);
    return r;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  #check(rec: FaiRecord, start: number, end: number): void {
    if (!(
      Number.isSafeInteger(start) &&
      Number.isSafeInteger(end) &&
      start >= 0 &&
      end <= rec.length &&
      start <= end
    )) {
      throw new DnaDataError(
        `${this.path}: range ${start}..${end} (0-based, half-open) is outside record '${rec.name}' of length ${rec.length}`,
      );
    }
  }

  /** Uncompressed byte range [b0, b1) holding bases [start, end) of rec. */
  #span(rec: FaiRecord, start: number, end: number): [number, number] {
    const LB = rec.lineBases,
      LW = rec.lineWidth;
    const b0 = rec.offset + Math.floor(start / LB) * LW + (start % LB);
    const b1 = rec.offset + Math.floor((end - 1) / LB) * LW + ((end - 1) % LB) + 1;
    return [b0, b1];
  }

  /** Bases [start, end) of a record (0-based, half-open) as their raw letters, line ends removed. */
  bases(name: string | FaiRecord, start: number, end: number): Buffer {
    const rec = typeof name === 'string' ? this.record(name) : name;
    this.#check(rec, start, end);
    const out = Buffer.allocUnsafe(end - start);
    if (end === start) return out;
    const [b0, b1] = this.#span(rec, start, end);
    const buf = this.#reader.read(b0, b1);
    const LB = rec.lineBases,
      skip = rec.lineWidth - LB;
    let i = 0,
      o = 0,
      p = start;
    while (p < end) {
      const n = Math.min(LB - (p % LB), end - p);
      buf.copy(out, o, i, i + n);
      i += n + skip;
      o += n;
      p += n;
    }
    // a line end or header inside the bases means the .fai does not describe this file
    const bad = out.indexOf(10) >= 0 || out.indexOf(13) >= 0 || out.indexOf(62) >= 0;
    if (bad) throw this.#mismatch(rec);
    return out;
  }

  /**
   * Tokens for bases [start, end) of a record into out[outOffset..]. One read, one table pass per line.
   * Throws naming the file and byte offset on a byte that is not a base.
   */
  tokens(
    name: string | FaiRecord,
    start: number,
    end: number,
    opts: TokenizeOptions = {},
    out?: Uint8Array,
    outOffset = 0,
  ): Uint8Array {
    const rec = typeof name === 'string' ? this.record(name) : name;
    this.#check(rec, start, end);
    const dst = out ?? new Uint8Array(end - start);
    if (end === start) return dst;
    const [b0, b1] = this.#span(rec, start, end);
    const buf = this.#reader.read(b0, b1);
    const LB = rec.lineBases,
      skip = rec.lineWidth - LB;
    // gather the bases line by line with memcpy, then map them in place two bytes at a time
    const dstBuf = Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength);
    let i = 0,
      o = outOffset,
      p = start;
    while (p < end) {
      const n = Math.min(LB - (p % LB), end - p);
      buf.copy(dstBuf, o, i, i + n);
      i += n + skip;
      o += n;
      p += n;
    }
    const acc = mapInPlace(dst, outOffset, outOffset + (end - start), opts.keepCase ?? false);
    if (acc & 0x80) {
      const j = dst.indexOf(INVALID, outOffset);
      const pos = start + (j - outOffset);
      const [bb] = this.#span(rec, pos, pos + 1);
      const byte = buf[bb - b0]!;
      if (byte === 10 || byte === 13 || byte === 62) throw this.#mismatch(rec);
      throw invalidByteError(byte, `${this.path}: record '${rec.name}'`, bb);
    }
    return dst;
  }

  #mismatch(rec: FaiRecord): DnaDataError {
    return new DnaDataError(
      `${this.path}: its .fai does not match the file (record '${rec.name}' has a line end or header where the index says bases are); delete ${this.path}.fai and re-index`,
    );
  }
}

// byte-pair lookup tables (128 KiB each): one load maps two bases
const PAIR_LUT = new Map<boolean, Uint16Array>();
function pairLut(keepCase: boolean): Uint16Array {
  let t = PAIR_LUT.get(keepCase);
  if (!t) {
    const b = baseLut(keepCase);
    t = new Uint16Array(65536);
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    for (let x = 0; x < 65536; x++) {
      const lo = b[x & 255]!,
        hi = b[x >>> 8]!;
      t[x] = le ? lo | (hi << 8) : (lo << 8) | hi;
    }
    PAIR_LUT.set(keepCase, t);
  }
  return t;
}

/** Maps bytes [from, to) of `a` from letters to tokens in place; the OR of all tokens (bit 7 set = a bad byte). */
export function mapInPlace(a: Uint8Array, from: number, to: number, keepCase: boolean): number {
  const lut = baseLut(keepCase);
  let acc = 0;
  let k = from;
  if ((a.byteOffset + k) & 1 && k < to) {
    const v = lut[a[k]!]!;
    a[k++] = v;
    acc |= v;
  }
  const pairs = (to - k) >> 1;
  if (pairs > 0) {
    const t = pairLut(keepCase);
    const w = new Uint16Array(a.buffer, a.byteOffset + k, pairs);
    for (let j = 0; j < pairs; j++) {
      const v = t[w[j]!]!;
      w[j] = v;
      acc |= v;
    }
    k += pairs * 2;
  }
  if (k < to) {
    const v = lut[a[k]!]!;
    a[k] = v;
    acc |= v;
  }
  return (acc | (acc >>> 8)) & 0xff;
}

function listNames(recs: readonly FaiRecord[]): string {
  const names = recs.slice(0, 5).map((r) => r.name);
  return names.join(', ') + (recs.length > 5 ? `, ... (${recs.length} in all)` : '');
}

/** Builds the .fai of a file by scanning all of its (uncompressed) bytes. */
function buildFai(reader: ByteReader, path: string): FaiRecord[] {
  const b = new FaiBuilder(path);
  const step = 1 << 22;
  for (let p = 0; p < reader.size; p += step) b.push(reader.read(p, Math.min(reader.size, p + step)));
  return b.finish();
}

/** Cheap consistency checks of a .fai against its FASTA: every record fits, starts after a line end, ends at one. */
function checkFai(records: FaiRecord[], reader: ByteReader, path: string, faiPath: string): void {
  const fail = (r: FaiRecord, why: string): never => {
    throw new DnaDataError(
      `${faiPath}: does not match ${path} (record '${r.name}': ${why}); delete the .fai and re-index`,
    );
  };
  // bgzip reads cost a block each: check the first and last records there, all of them in plain files
  const idx =
    reader instanceof PlainReader || records.length <= 64
      ? records.map((_, i) => i)
      : [...Array(32).keys(), ...records.slice(-32).map((_, i) => records.length - 32 + i)];
  for (const i of idx) {
    const r = records[i]!;
    if (r.length === 0) fail(r, 'zero length');
    const end = r.offset + recordSpan(r);
    if (end > reader.size) fail(r, `it ends at byte ${end}, past the end of the file (${reader.size} bytes)`);
    if (r.offset > 0 && reader.read(r.offset - 1, r.offset)[0] !== 10)
      fail(r, `no line end before its first base at byte offset ${r.offset}`);
    if (end < reader.size) {
      const c = reader.read(end, end + 1)[0];
      if (c !== 10 && c !== 13) fail(r, `no line end after its last base at byte offset ${end}`);
    }
    if (r.length > r.lineBases) {
      const q = r.offset + r.lineBases;
      const c = reader.read(q, q + 1)[0];
      if (c !== 10 && c !== 13) fail(r, `no line end after its first line at byte offset ${q}`);
    }
  }
}

/** (Re)builds the .fai of a FASTA (and the .gzi of a bgzip FASTA) on disk, as `samtools faidx` / `bgzip -r` do. */
export function indexFasta(
  path: string,
  opts: { cacheBlocks?: number } = {},
): { records: FaiRecord[]; faiPath: string; gziPath?: string } {
  if (!existsSync(path)) throw new DnaDataError(`${path}: no such file`);
  const c = sniffFile(path);
  let reader: ByteReader;
  let gziPath: string | undefined;
  if (c === 'none') reader = new PlainReader(path);
  else if (c === 'bgzf') {
    const idx = scanBgzf(path);
    gziPath = `${path}.gzi`;
    reader = bgzfBytes(new BgzfReader(path, idx, opts));
    try {
      writeFileAtomic(gziPath, formatGzi(idx));
    } catch (e) {
      reader.close();
      throw new DnaDataError(`${gziPath}: cannot write: ${(e as Error).message}`);
    }
  } else throw compressionError(path, c);
  try {
    const records = buildFai(reader, path);
    const faiPath = `${path}.fai`;
    try {
      writeFileAtomic(faiPath, formatFai(records));
    } catch (e) {
      throw new DnaDataError(`${faiPath}: cannot write: ${(e as Error).message}`);
    }
    return { records, faiPath, gziPath };
  } finally {
    reader.close();
  }
}
