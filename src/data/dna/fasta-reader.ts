// The library's general random-access FASTA API: asynchronous reads through any file handle (a local
// file, memory, or anything with read/readFile/stat/close), on @gmod/indexedfasta (plain FASTA + .fai)
// and @gmod/bgzf-filehandle (bgzip FASTA + .gzi). The `region` command reads through it.
//
// What stays ours, and why (bench/README.md "FASTA readers" has the numbers): building the .fai and .gzi
// (the packages only read them; ours are byte-identical to samtools and bgzip), validating them, and the
// synchronous token reader (IndexedFasta) that feeds training windows. @gmod/bgzf-filehandle does not
// check a block's CRC32 (a flipped CRC field reads as if nothing happened), so the compressed file is
// handed to it through CrcCheckedBgzf, which verifies every block once with our inflateBlock.
import { BgzfFilehandle } from '@gmod/bgzf-filehandle';
import { BgzipIndexedFasta, IndexedFasta as PackageIndexedFasta } from '@gmod/indexedfasta';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { bgzfBlockSize, formatGzi, inflateBlock, parseGzi, scanBgzf } from './bgzf.js';
import { DnaDataError } from './errors.js';
import { formatFai, parseFai, type FaiRecord } from './fai.js';
import { IndexedFasta } from './indexed.js';

/** The file-handle shape the @gmod packages read through (generic-filehandle2's GenericFilehandle). */
export interface FastaFileHandle {
  read(length: number, position: number, opts?: { signal?: AbortSignal }): Promise<Uint8Array<ArrayBuffer>>;
  readFile(opts: 'utf8' | 'latin1' | { encoding: 'utf8' | 'latin1' }): Promise<string>;
  readFile(opts?: unknown): Promise<Uint8Array<ArrayBuffer>>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

function decode(buf: Uint8Array, enc: unknown): Uint8Array<ArrayBuffer> | string {
  const e = typeof enc === 'string' ? enc : (enc as { encoding?: string } | undefined)?.encoding;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return e ? b.toString(e as BufferEncoding) : new Uint8Array(b);
}

/** A local file read with positioned reads on one open descriptor. */
export class LocalFastaFile implements FastaFileHandle {
  #fh: Promise<FileHandle>;
  constructor(readonly path: string) {
    this.#fh = openFile(path, 'r');
    this.#fh.catch(() => undefined); // reported by the first read
  }
  async read(length: number, position: number): Promise<Uint8Array<ArrayBuffer>> {
    const fh = await this.#fh;
    const buf = new Uint8Array(Math.max(0, length));
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? buf : buf.slice(0, got);
  }
  readFile(opts: 'utf8' | 'latin1' | { encoding: 'utf8' | 'latin1' }): Promise<string>;
  readFile(opts?: unknown): Promise<Uint8Array<ArrayBuffer>>;
  async readFile(opts?: unknown): Promise<Uint8Array<ArrayBuffer> | string> {
    const fh = await this.#fh;
    return decode(await fh.readFile(), opts);
  }
  async stat(): Promise<{ size: number }> {
    return { size: (await (await this.#fh).stat()).size };
  }
  async close(): Promise<void> {
    await (await this.#fh).close();
  }
}

/** Bytes in memory as a file handle (an index built but not written, a test fixture). */
export class MemoryFastaFile implements FastaFileHandle {
  constructor(readonly bytes: Uint8Array) {}
  async read(length: number, position: number): Promise<Uint8Array<ArrayBuffer>> {
    return new Uint8Array(this.bytes.subarray(position, position + length));
  }
  readFile(opts: 'utf8' | 'latin1' | { encoding: 'utf8' | 'latin1' }): Promise<string>;
  readFile(opts?: unknown): Promise<Uint8Array<ArrayBuffer>>;
  async readFile(opts?: unknown): Promise<Uint8Array<ArrayBuffer> | string> {
    return decode(this.bytes, opts);
  }
  async stat(): Promise<{ size: number }> {
    return { size: this.bytes.length };
  }
  async close(): Promise<void> {}
}

/**
 * The compressed bytes of a BGZF file, handed on unchanged after every whole block they contain has been
 * inflated once and checked against its CRC32 and ISIZE (a block already checked is not checked again).
 */
export class CrcCheckedBgzf implements FastaFileHandle {
  #verified = new Set<number>();
  constructor(
    readonly inner: FastaFileHandle,
    readonly where: string,
  ) {}
  async read(length: number, position: number, opts?: { signal?: AbortSignal }): Promise<Uint8Array<ArrayBuffer>> {
    const buf = await this.inner.read(length, position, opts);
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    let p = 0;
    while (p < b.length) {
      const size = bgzfBlockSize(b, p);
      // the first block must be whole and valid (inflateBlock says what is wrong); later ones are the
      // reader's over-read past the block it wants, and may be cut short by the read's end
      if (p > 0 && (size < 0 || p + size > b.length)) break;
      if (!this.#verified.has(position + p)) {
        inflateBlock(b.subarray(p), this.where, position + p);
        this.#verified.add(position + p);
      }
      p += size;
    }
    return buf;
  }
  readFile(opts: 'utf8' | 'latin1' | { encoding: 'utf8' | 'latin1' }): Promise<string>;
  readFile(opts?: unknown): Promise<Uint8Array<ArrayBuffer>>;
  readFile(opts?: unknown): Promise<Uint8Array<ArrayBuffer> | string> {
    return this.inner.readFile(opts);
  }
  stat(): Promise<{ size: number }> {
    return this.inner.stat();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface FastaHandles {
  /** the FASTA bytes (plain, or bgzip when `gzi` is given) */
  fasta: FastaFileHandle;
  fai: FastaFileHandle;
  /** the .gzi of a bgzip FASTA */
  gzi?: FastaFileHandle;
}

/** A FASTA opened for asynchronous random access; getSequence is 0-based, half-open. */
export class FastaReader {
  readonly records: readonly FaiRecord[];
  #byName: Map<string, FaiRecord>;
  #pkg: PackageIndexedFasta;
  #handles: FastaFileHandle[];

  private constructor(
    readonly path: string,
    readonly compression: 'none' | 'bgzf',
    records: FaiRecord[],
    pkg: PackageIndexedFasta,
    handles: FastaFileHandle[],
  ) {
    this.records = records;
    this.#byName = new Map(records.map((r) => [r.name, r]));
    this.#pkg = pkg;
    this.#handles = handles;
  }

  /**
   * Opens a local plain or bgzip FASTA. Missing .fai / .gzi are built (samtools-identical) and written
   * beside it, or kept in memory where the folder is not writable; present ones are checked first.
   */
  static async open(path: string, opts: { writeIndex?: boolean } = {}): Promise<FastaReader> {
    // the synchronous reader builds or checks the indexes; the package then reads through them
    const ix = IndexedFasta.open(path, { writeIndex: opts.writeIndex, cacheBlocks: 0 });
    const onDisk = ix.indexOrigin !== 'memory';
    const records = [...ix.records];
    const compression = ix.compression;
    ix.close();
    const fai = onDisk
      ? new LocalFastaFile(`${path}.fai`)
      : new MemoryFastaFile(Buffer.from(formatFai(records), 'latin1'));
    let gzi: FastaFileHandle | undefined;
    if (compression === 'bgzf') {
      gzi = onDisk ? new LocalFastaFile(`${path}.gzi`) : new MemoryFastaFile(formatGzi(scanBgzf(path)));
    }
    return FastaReader.#make(path, compression, records, { fasta: new LocalFastaFile(path), fai, gzi });
  }

  /**
   * Opens a FASTA through any file handles (a remote file, memory); `where` names it in messages. The
   * .fai and .gzi are parsed and checked here before the packages see them.
   */
  static async fromHandles(h: FastaHandles, where: string): Promise<FastaReader> {
    const records = parseFai(await h.fai.readFile('latin1'), `${where}.fai`);
    if (h.gzi) {
      const gzi = Buffer.from(await h.gzi.readFile());
      const { coff } = parseGzi(gzi, `${where}.gzi`);
      const size = (await h.fasta.stat()).size;
      const last = coff[coff.length - 1]!;
      if (last >= size) {
        throw new DnaDataError(
          `${where}: its .gzi index points past the end of the file (block at compressed offset ${last}, ` +
            `file of ${size} bytes); rebuild it with \`bgzip -r\``,
        );
      }
    }
    return FastaReader.#make(where, h.gzi ? 'bgzf' : 'none', records, h);
  }

  static #make(path: string, compression: 'none' | 'bgzf', records: FaiRecord[], h: FastaHandles): FastaReader {
    let pkg: PackageIndexedFasta;
    if (compression === 'bgzf') {
      const fasta = new CrcCheckedBgzf(h.fasta, path);
      pkg = new BgzipIndexedFasta({ fasta, fai: h.fai, gzi: h.gzi });
      // the package wraps fasta in a BgzfFilehandle itself; check that it did (its constructor is typed loosely)
      if (!(pkg.fasta instanceof BgzfFilehandle)) throw new Error('BgzipIndexedFasta did not wrap the bgzip handle');
    } else {
      pkg = new PackageIndexedFasta({ fasta: h.fasta, fai: h.fai });
    }
    return new FastaReader(path, compression, records, pkg, [h.fasta, h.fai, ...(h.gzi ? [h.gzi] : [])]);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  record(name: string): FaiRecord {
    const r = this.#byName.get(name);
    if (!r) throw new DnaDataError(`${this.path}: no record named '${name}'`);
    return r;
  }

  /** Bases [start, end) of a record (0-based, half-open) as written in the file (case kept). */
  async getSequence(name: string, start: number, end: number): Promise<string> {
    const rec = this.record(name);
    const whole = Number.isSafeInteger(start) && Number.isSafeInteger(end);
    if (!(whole && start >= 0 && end <= rec.length && start <= end)) {
      throw new DnaDataError(
        `${this.path}: range ${start}..${end} (0-based, half-open) is outside record '${rec.name}' of length ${rec.length}`,
      );
    }
    if (start === end) return '';
    let s: string | undefined;
    try {
      s = await this.#pkg.getSequence(name, start, end);
    } catch (e) {
      if (e instanceof DnaDataError) throw e;
      const why = (e as Error).message;
      throw new DnaDataError(
        `${this.path}: cannot read ${name}:${start + 1}-${end}: ${why} (damaged file or stale index?)`,
      );
    }
    // a short read or a line end inside the bases means the .fai does not describe this file
    if (s === undefined || s.length !== end - start || /[\r\n>]/.test(s)) {
      throw new DnaDataError(
        `${this.path}: its .fai does not match the file (record '${name}' does not hold bases where the index ` +
          `says); delete ${this.path}.fai and re-index`,
      );
    }
    return s;
  }

  async close(): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.close().catch(() => undefined)));
  }
}
