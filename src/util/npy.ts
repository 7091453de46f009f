// NumPy .npy files, format version 1.0, little-endian float32 ('<f4') in C order: the magic "\x93NUMPY",
// version bytes 1 0, a uint16 header length, then an ASCII Python dict literal padded with spaces and a
// newline so the data starts at a multiple of 64 bytes, then the raw values. numpy.load reads them.
// The writer streams: the shape is known up front and rows are appended as they are computed.
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

export class NpyError extends Error {
  override name = 'NpyError';
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** The full preamble (magic, version, header length, header dict) of a '<f4' C-order array of `shape`. */
export function npyHeader(shape: readonly number[]): Buffer {
  for (const d of shape)
    if (!Number.isSafeInteger(d) || d < 0) throw new NpyError(`npy: bad dimension ${d} in shape [${shape.join(', ')}]`);
  // a 1-tuple needs its trailing comma in Python syntax: (5,)
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (dict.length > 0xffff) throw new NpyError(`npy: header of ${dict.length} bytes is too long for format 1.0`);
  const out = Buffer.alloc(MAGIC.length + 4 + dict.length);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(dict.length, 8);
  out.write(dict, 10, 'latin1');
  return out;
}

/** A whole float32 array as .npy bytes. */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Buffer {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new NpyError(`npy: ${data.length} values for shape [${shape.join(', ')}] (${n})`);
  return Buffer.concat([npyHeader(shape), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/**
 * Writes a .npy file of a known shape value by value, in C order, into a temp file that is renamed into
 * place by close(); close() fails unless exactly the shape's number of values was written.
 */
export class NpyWriter {
  readonly path: string;
  readonly shape: readonly number[];
  readonly #tmp: string;
  #fd: number;
  #written = 0;
  readonly #total: number;

  constructor(path: string, shape: readonly number[]) {
    this.path = path;
    this.shape = [...shape];
    this.#total = shape.reduce((a, b) => a * b, 1);
    this.#tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
    this.#fd = openSync(this.#tmp, 'w');
    this.#write(npyHeader(shape));
  }

  #write(b: Uint8Array): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off);
  }

  /** Appends values (float32, C order). */
  append(values: Float32Array): void {
    if (this.#written + values.length > this.#total) {
      throw new NpyError(`${this.path}: more values than the shape [${this.shape.join(', ')}] holds`);
    }
    this.#write(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    this.#written += values.length;
  }

  close(): void {
    closeSync(this.#fd);
    if (this.#written !== this.#total) {
      unlinkSync(this.#tmp);
      throw new NpyError(
        `${this.path}: ${this.#written} values written, the shape [${this.shape.join(', ')}] needs ${this.#total}`,
      );
    }
    renameSync(this.#tmp, this.path);
  }

  /** Removes the temp file (after an error). */
  abort(): void {
    try {
      closeSync(this.#fd);
    } catch {
      /* closed already */
    }
    try {
      unlinkSync(this.#tmp);
    } catch {
      /* gone already */
    }
  }
}
