// BGZF (bgzip) files: detection, random access through a .gzi index, building the .gzi (the format
// `bgzip -r` writes), and writing BGZF with node's zlib.
//
// BGZF is a series of gzip members of at most 64 KiB each, whose header carries the member's size in a
// 'BC' extra subfield, ending with a fixed empty member (the EOF marker). A .gzi is: uint64 n, then n
// pairs (compressed offset, uncompressed offset) of the start of every data block after the first,
// all little endian.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { constants as zc, deflateRawSync, inflateRawSync } from 'node:zlib';
import { DnaDataError } from './errors.js';

export const BGZF_EOF = Buffer.from('1f8b08040000000000ff0600424302001b0003000000000000000000', 'hex');
/** Uncompressed bytes per block, as bgzip uses. */
export const BGZF_BLOCK_DATA = 0xff00;

export type Compression = 'none' | 'bgzf' | 'gzip' | 'xz' | 'bzip2' | 'zstd';

/** What compression the first bytes of a file show. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    if (head.length >= 16 && (head[3]! & 4) !== 0 && head[12] === 0x42 && head[13] === 0x43) return 'bgzf';
    return 'gzip';
  }
  if (
    head.length >= 6 &&
    head[0] === 0xfd &&
    head[1] === 0x37 &&
    head[2] === 0x7a &&
    head[3] === 0x58 &&
    head[4] === 0x5a
  )
    return 'xz';
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

export function sniffFile(path: string): Compression {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(18);
    const n = readSync(fd, head, 0, 18, 0);
    return sniffCompression(head.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/**
 * The total size of the block whose header starts at `p` in `buf` (its BSIZE field + 1), -1 if the bytes
 * there are not a BGZF header, or -2 if they are but the size is impossible (smaller than the block's own
 * header and footer).
 */
function blockSize(buf: Uint8Array, p: number): number {
  if (p + 18 > buf.length) return -1;
  if (buf[p] !== 0x1f || buf[p + 1] !== 0x8b || buf[p + 2] !== 8 || (buf[p + 3]! & 4) === 0) return -1;
  const xlen = buf[p + 10]! | (buf[p + 11]! << 8);
  let q = p + 12;
  const end = Math.min(q + xlen, buf.length);
  while (q + 4 <= end) {
    const slen = buf[q + 2]! | (buf[q + 3]! << 8);
    if (buf[q] === 0x42 && buf[q + 1] === 0x43 && slen === 2 && q + 6 <= end) {
      const bsize = (buf[q + 4]! | (buf[q + 5]! << 8)) + 1;
      return bsize < MIN_BLOCK_OVERHEAD + xlen ? -2 : bsize;
    }
    q += 4 + slen;
  }
  return -1;
}

/** The size of the BGZF block starting at `p` (BSIZE + 1), or a negative number if there is none. */
export function bgzfBlockSize(buf: Uint8Array, p: number): number {
  return blockSize(buf, p);
}

/** Header (12 bytes + XLEN), at least one byte of deflate data, CRC32 and ISIZE. */
const MIN_BLOCK_OVERHEAD = 12 + 1 + 8;

/** The message for a block header whose BSIZE is impossible. */
function badBsize(path: string, at: number): DnaDataError {
  return new DnaDataError(
    `${path}: corrupt bgzip block at compressed offset ${at}: its BSIZE field is smaller than the block's ` +
      `own header and footer; re-create the file with bgzip`,
  );
}

export interface GziIndex {
  /** compressed offsets of block starts, the first block (0) included */
  coff: Float64Array;
  /** uncompressed offsets of the same blocks */
  uoff: Float64Array;
  /** total uncompressed size */
  usize: number;
}

/** Serialises a .gzi exactly as `bgzip -r` does (the first block is implicit). */
export function formatGzi(idx: GziIndex): Buffer {
  const n = idx.coff.length - 1;
  const out = Buffer.alloc(8 + 16 * n);
  out.writeBigUInt64LE(BigInt(n), 0);
  for (let i = 1; i <= n; i++) {
    out.writeBigUInt64LE(BigInt(idx.coff[i]!), 8 + 16 * (i - 1));
    out.writeBigUInt64LE(BigInt(idx.uoff[i]!), 16 + 16 * (i - 1));
  }
  return out;
}

/** Scans the block headers of a BGZF file (no decompression) and returns its index. */
export function scanBgzf(path: string): GziIndex {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const coff: number[] = [];
    const uoff: number[] = [];
    const chunk = Buffer.allocUnsafe(1 << 22);
    let chunkStart = 0,
      chunkLen = 0;
    const ensure = (p: number, n: number): number => {
      if (p < chunkStart || p + n > chunkStart + chunkLen) {
        chunkStart = p;
        chunkLen = readSync(fd, chunk, 0, chunk.length, p);
      }
      return p - chunkStart;
    };
    let p = 0,
      u = 0;
    let sawEof = false;
    while (p < size) {
      if (size - p < 28)
        throw new DnaDataError(
          `${path}: truncated bgzip file: ${size - p} stray bytes at compressed offset ${p}; re-create it ` +
            `with bgzip`,
        );
      // the header with its extra field fits in 18 + 65535 bytes; read enough to see the BC subfield
      const q = ensure(p, Math.min(size - p, 1 << 17));
      const bsize = blockSize(chunk.subarray(0, chunkLen), q);
      if (bsize === -2) throw badBsize(path, p);
      if (bsize < 0)
        throw new DnaDataError(`${path}: not a BGZF block at compressed offset ${p} (corrupt or not made by bgzip)`);
      if (p + bsize > size)
        throw new DnaDataError(
          `${path}: truncated bgzip file: the block at compressed offset ${p} needs ${bsize} bytes but only ` +
            `${size - p} remain; re-create it with bgzip`,
        );
      const r = ensure(p + bsize - 4, 4);
      const isize = chunk.readUInt32LE(r);
      if (isize > 65536)
        throw new DnaDataError(
          `${path}: corrupt bgzip block at compressed offset ${p}: ISIZE ${isize} is over the BGZF maximum ` +
            `of 65536 bytes`,
        );
      if (isize > 0) {
        coff.push(p);
        uoff.push(u);
        u += isize;
        sawEof = false;
      } else {
        // an empty block is left out of the index, so it must really be empty: a damaged ISIZE of 0 on a
        // data block would otherwise drop its bytes without a word (inflating it checks CRC and size)
        const q2 = ensure(p, bsize);
        inflateBlock(chunk.subarray(q2, q2 + bsize), path, p);
        sawEof = true;
      }
      p += bsize;
    }
    if (!sawEof)
      throw new DnaDataError(
        `${path}: truncated bgzip file: the BGZF end-of-file block is missing; re-create it with bgzip`,
      );
    if (coff.length === 0) {
      coff.push(0);
      uoff.push(0);
    }
    return { coff: Float64Array.from(coff), uoff: Float64Array.from(uoff), usize: u };
  } finally {
    closeSync(fd);
  }
}

/** Parses a .gzi file's bytes. */
export function parseGzi(buf: Buffer, path: string): Omit<GziIndex, 'usize'> {
  if (buf.length < 8) throw new DnaDataError(`${path}: not a .gzi index (${buf.length} bytes)`);
  const rebuild = 'rebuild it with `bgzip -r` or delete it';
  const n = buf.readBigUInt64LE(0);
  if (BigInt(buf.length) !== 8n + 16n * n)
    throw new DnaDataError(
      `${path}: .gzi index is damaged: it says ${n} entries but has ${buf.length} bytes; ${rebuild}`,
    );
  const coff = new Float64Array(Number(n) + 1),
    uoff = new Float64Array(Number(n) + 1);
  for (let i = 0; i < Number(n); i++) {
    const c = buf.readBigUInt64LE(8 + 16 * i),
      u = buf.readBigUInt64LE(16 + 16 * i);
    if (c > BigInt(Number.MAX_SAFE_INTEGER) || u > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new DnaDataError(
        `${path}: .gzi index is damaged at entry ${i}: offset ${c > u ? c : u} is beyond any file; ${rebuild}`,
      );
    }
    coff[i + 1] = Number(c);
    uoff[i + 1] = Number(u);
    if (coff[i + 1]! <= coff[i]! || uoff[i + 1]! <= uoff[i]!) {
      throw new DnaDataError(
        `${path}: .gzi index is damaged at entry ${i}: offsets must increase (compressed ${coff[i]} then ` +
          `${coff[i + 1]}, uncompressed ${uoff[i]} then ${uoff[i + 1]}); ${rebuild}`,
      );
    }
    // a block holds at most 64 KiB of data
    if (uoff[i + 1]! - uoff[i]! > 65536) {
      throw new DnaDataError(
        `${path}: .gzi index is damaged at entry ${i}: blocks at uncompressed offsets ${uoff[i]} and ${uoff[i + 1]} ` +
          `are more than 64 KiB apart; ${rebuild}`,
      );
    }
  }
  return { coff, uoff };
}

/**
 * Inflates one BGZF block that starts at `blk[0]` and checks it as samtools and `gzip -t` do: the
 * inflated size must equal the ISIZE field and its CRC32 the CRC field. `at` is the block's compressed
 * offset in `path`, for the message.
 */
export function inflateBlock(blk: Buffer, path: string, at: number): Buffer {
  const where = `${path}: corrupt bgzip block at compressed offset ${at}`;
  const bsize = blockSize(blk, 0);
  if (bsize === -2) throw badBsize(path, at);
  if (bsize < 0) throw new DnaDataError(`${where}: not a BGZF block header (stale .gzi index or damaged file)`);
  if (bsize > blk.length)
    throw new DnaDataError(
      `${path}: truncated bgzip block at compressed offset ${at}: it needs ${bsize} bytes, ${blk.length} ` +
        `remain; re-create the file with bgzip`,
    );
  const xlen = blk[10]! | (blk[11]! << 8);
  const crc = blk.readUInt32LE(bsize - 8);
  const isize = blk.readUInt32LE(bsize - 4);
  if (isize > 65536) throw new DnaDataError(`${where}: ISIZE ${isize} is over the BGZF maximum of 65536 bytes`);
  let out: Buffer;
  try {
    // maxOutputLength: a damaged payload cannot inflate to more than a block may hold
    out = inflateRawSync(blk.subarray(12 + xlen, bsize - 8), { maxOutputLength: 65536 });
  } catch (e) {
    throw new DnaDataError(`${where}: ${(e as Error).message}; re-create the file with bgzip`);
  }
  if (out.length !== isize)
    throw new DnaDataError(`${where}: it inflates to ${out.length} bytes but its ISIZE field says ${isize}`);
  const got = crc32(out);
  if (got !== crc) {
    const hex = (x: number) => `0x${x.toString(16).padStart(8, '0')}`;
    throw new DnaDataError(
      `${where}: CRC32 mismatch (stored ${hex(crc)}, data gives ${hex(got)}); the file is damaged, re-create ` +
        `or re-download it`,
    );
  }
  return out;
}

/** Random access to the uncompressed bytes of a BGZF file through its block index. */
export class BgzfReader {
  readonly path: string;
  readonly size: number;
  readonly usize: number;
  #fd: number;
  #coff: Float64Array;
  #uoff: Float64Array;
  #cbuf = Buffer.allocUnsafe(1 << 16);
  #out = Buffer.allocUnsafe(1 << 16);
  // recently decompressed blocks, up to cacheBlocks (4 by default: neighbouring small reads, regions and sequential
  // windows, share them; window sources ask for enough to hold a training set's blocks)
  #cache = new Map<number, Buffer>();
  #cacheBlocks: number;
  #inflated = 0;

  constructor(path: string, idx: Omit<GziIndex, 'usize'>, opts: { cacheBlocks?: number } = {}) {
    this.path = path;
    this.#fd = openSync(path, 'r');
    this.size = fstatSync(this.#fd).size;
    this.#coff = idx.coff;
    this.#uoff = idx.uoff;
    this.#cacheBlocks = opts.cacheBlocks ?? 4;
    const tail = Buffer.alloc(28);
    readSync(this.#fd, tail, 0, 28, Math.max(0, this.size - 28));
    if (this.size < 28 || !tail.equals(BGZF_EOF)) {
      closeSync(this.#fd);
      throw new DnaDataError(
        `${path}: truncated bgzip file: the BGZF end-of-file block is missing; re-create it with bgzip`,
      );
    }
    const last = this.#coff.length - 1;
    if (this.#coff[last]! >= this.size - 28) {
      closeSync(this.#fd);
      throw new DnaDataError(
        `${path}: its .gzi index points past the end of the file (block at compressed offset ${this.#coff[last]}, file of ${this.size} bytes; truncated file or stale index); rebuild it with \`bgzip -r\``,
      );
    }
    // the last data block's size gives the total uncompressed size
    try {
      const b = this.#block(last);
      this.usize = this.#uoff[last]! + b.length;
      this.#checkTail(this.#coff[last]! + blockSize(this.#cbuf, 0));
    } catch (e) {
      closeSync(this.#fd);
      throw e;
    }
  }

  close(): void {
    closeSync(this.#fd);
  }

  /** Blocks decompressed so far (cache misses): how much inflating a reading pattern costs. */
  get blocksInflated(): number {
    return this.#inflated;
  }

  /**
   * Between the last indexed block (ending at `p`) and the EOF marker there may only be empty blocks: a
   * .gzi that stops early (damaged, or from an older version of the file) would otherwise cut the data short.
   */
  #checkTail(p: number): void {
    const head = Buffer.alloc(18);
    while (p < this.size - 28) {
      readSync(this.#fd, head, 0, 18, p);
      const bsize = blockSize(head, 0);
      const tail = Buffer.alloc(4);
      if (bsize > 0 && p + bsize <= this.size) readSync(this.#fd, tail, 0, 4, p + bsize - 4);
      if (bsize <= 0 || p + bsize > this.size - 28 || tail.readUInt32LE(0) !== 0) {
        throw new DnaDataError(
          `${this.path}: its .gzi index does not list the block at compressed offset ${p} (a stale or damaged index: the data would be cut short); rebuild it with \`bgzip -r\``,
        );
      }
      p += bsize;
    }
    if (p !== this.size - 28)
      throw new DnaDataError(
        `${this.path}: its .gzi index does not match the file (its last block ends at compressed offset ${p}, the EOF block starts at ${this.size - 28}); rebuild it with \`bgzip -r\``,
      );
  }

  /** Decompresses block `i` (index into the block table). */
  #block(i: number): Buffer {
    const hit = this.#cache.get(i);
    if (hit) return hit;
    const c = this.#coff[i]!;
    const cend = i + 1 < this.#coff.length ? this.#coff[i + 1]! : this.size - 28;
    const n = Math.min(cend - c, 65536);
    if (n <= 0)
      throw new DnaDataError(
        `${this.path}: its .gzi index does not match the file (block at compressed offset ${c}); rebuild it with \`bgzip -r\``,
      );
    const got = readSync(this.#fd, this.#cbuf, 0, n, c);
    const out = inflateBlock(this.#cbuf.subarray(0, got), this.path, c);
    this.#inflated++;
    // the index says how much this block holds (all but the last): a stale .gzi shows here
    const want = i + 1 < this.#uoff.length ? this.#uoff[i + 1]! - this.#uoff[i]! : -1;
    if (want >= 0 && out.length !== want) {
      throw new DnaDataError(
        `${this.path}: its .gzi index does not match the file (the block at compressed offset ${c} holds ${out.length} bytes, the index says ${want}); rebuild it with \`bgzip -r\``,
      );
    }
    if (this.#cacheBlocks > 0) {
      if (this.#cache.size >= this.#cacheBlocks) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(i, out);
    }
    return out;
  }

  /** Index of the block holding uncompressed offset u. */
  #find(u: number): number {
    const a = this.#uoff;
    let lo = 0,
      hi = a.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid]! <= u) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Uncompressed bytes [start, end) in a buffer that stays valid until the next call. */
  read(start: number, end: number): Buffer {
    if (start < 0 || end > this.usize || end < start)
      throw new DnaDataError(
        `${this.path}: read of bytes ${start}..${end} is outside the uncompressed size ${this.usize} (stale .fai or .gzi?)`,
      );
    const len = end - start;
    if (this.#out.length < len) this.#out = Buffer.allocUnsafe(Math.max(len, this.#out.length * 2));
    let i = this.#find(start);
    let o = 0;
    let u = start;
    while (o < len) {
      const b = this.#block(i);
      const off = u - this.#uoff[i]!;
      const n = Math.min(b.length - off, len - o);
      b.copy(this.#out, o, off, off + n);
      o += n;
      u += n;
      i++;
    }
    return this.#out.subarray(0, len);
  }
}

/** Writes BGZF: 64 KiB blocks of deflate with the BC header, a .gzi as it goes, the EOF marker at the end. */
export class BgzfWriter {
  #parts: Buffer[] = [];
  #pending: Buffer[] = [];
  #pendingLen = 0;
  #coff: number[] = [];
  #uoff: number[] = [];
  #c = 0;
  #u = 0;
  #level: number;

  constructor(opts: { level?: number } = {}) {
    this.#level = opts.level ?? 6;
  }

  write(data: Uint8Array): void {
    let p = 0;
    while (p < data.length) {
      const n = Math.min(BGZF_BLOCK_DATA - this.#pendingLen, data.length - p);
      this.#pending.push(Buffer.from(data.subarray(p, p + n)));
      this.#pendingLen += n;
      p += n;
      if (this.#pendingLen === BGZF_BLOCK_DATA) this.#flushBlock();
    }
  }

  #flushBlock(): void {
    if (this.#pendingLen === 0) return;
    const data = Buffer.concat(this.#pending, this.#pendingLen);
    this.#pending = [];
    this.#pendingLen = 0;
    let def = deflateRawSync(data, { level: this.#level });
    if (def.length + 26 > 65536) def = deflateRawSync(data, { level: zc.Z_NO_COMPRESSION });
    const block = Buffer.alloc(18 + def.length + 8);
    BGZF_EOF.copy(block, 0, 0, 16);
    block.writeUInt16LE(block.length - 1, 16);
    def.copy(block, 18);
    block.writeUInt32LE(crc32(data), 18 + def.length);
    block.writeUInt32LE(data.length, 22 + def.length);
    this.#coff.push(this.#c);
    this.#uoff.push(this.#u);
    this.#parts.push(block);
    this.#c += block.length;
    this.#u += data.length;
  }

  /** The finished file bytes and their .gzi. */
  finish(): { data: Buffer; gzi: Buffer; index: GziIndex } {
    this.#flushBlock();
    this.#parts.push(BGZF_EOF);
    if (this.#coff.length === 0) {
      this.#coff.push(0);
      this.#uoff.push(0);
    }
    const index = { coff: Float64Array.from(this.#coff), uoff: Float64Array.from(this.#uoff), usize: this.#u };
    return { data: Buffer.concat(this.#parts), gzi: formatGzi(index), index };
  }
}

// zlib.crc32 exists from node 20.15; a table fallback keeps older 20.x working
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(data) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
