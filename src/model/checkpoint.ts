// safetensors I/O written here: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}, then raw little-endian data.
// Models are saved as model.safetensors + config.json with the reference Mamba key names. Tied LM
// heads are NOT stored (lm_head.weight is the embedding; the convention of Hugging Face safetensors
// checkpoints with tied word embeddings); a lm_head.weight present in a file is accepted and ignored when
// the model ties it. conv1d.weight is stored [d_inner, 1, d_conv] as PyTorch's depthwise Conv1d holds it.
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/write-file.js';
import { endianness } from 'node:os';
import { Tensor, bf16BitsToF32, f32ToBf16Bits } from '../backend/index.js';
import type { Param } from '../nn/param.js';
import type { MambaConfig } from './config.js';
import type { Domain } from '../data/types.js';
import { oneLine, readFolderConfig, readFolderTensors, writeFolder } from './hf-folder.js';
import { createModel, type CreateOptions, type MambaModel } from './model.js';

export type SafeDType = 'F32' | 'F64' | 'BF16' | 'F16' | 'I32';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Float64Array | Uint16Array | Int32Array;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const BYTES: Record<SafeDType, number> = { F32: 4, F64: 8, BF16: 2, F16: 2, I32: 4 };

if (endianness() !== 'LE') throw new Error('safetensors I/O assumes a little-endian host');

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Serialises tensors (in the given order) into one safetensors buffer. */
export function encodeSafetensors(tensors: Map<string, SafeTensor>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of tensors) {
    const n = numel(t.shape);
    if (t.data.length !== n)
      throw new CheckpointError(`${name}: ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    const bytes = n * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let json = JSON.stringify(header);
  // pad with spaces so the data starts 8-byte aligned (as the reference writer does)
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const hbytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hbytes.length + off);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const t of tensors.values()) {
    const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    b.copy(out, pos);
    pos += b.length;
  }
  return out;
}

// node's JSON.parse messages quote the input around the error, line breaks included: keep errors one line

/** Parses a safetensors buffer; every inconsistency is a CheckpointError naming the tensor and offsets. */
export function decodeSafetensors(
  buf: Buffer,
  what = 'safetensors',
): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  if (buf.length < 8)
    throw new CheckpointError(`${what}: file is ${buf.length} bytes, too short for a safetensors header`);
  const hlen = buf.readBigUInt64LE(0);
  if (hlen > BigInt(buf.length - 8))
    throw new CheckpointError(
      `${what}: header length ${hlen} runs past the end of the file (${buf.length} bytes): truncated or not safetensors`,
    );
  const hl = Number(hlen);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + hl).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${what}: the JSON header does not parse (${oneLine((e as Error).message)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new CheckpointError(`${what}: the header is not a JSON object`);
  const dataStart = 8 + hl;
  const dataLen = buf.length - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (!e || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets))
      throw new CheckpointError(`${what}: tensor ${name}: malformed header entry`);
    const dt = e.dtype as SafeDType;
    if (!(dt in BYTES)) {
      throw new CheckpointError(
        `${what}: tensor ${name}: dtype ${e.dtype} is not supported (F32, F64, BF16, F16, I32)`,
      );
    }
    const [b, en] = e.data_offsets;
    const want = numel(e.shape) * BYTES[dt];
    if (!Number.isInteger(b) || !Number.isInteger(en) || b < 0 || en < b)
      throw new CheckpointError(`${what}: tensor ${name}: bad data_offsets [${b}, ${en}]`);
    if (en - b !== want)
      throw new CheckpointError(
        `${what}: tensor ${name}: data_offsets [${b}, ${en}] hold ${en - b} bytes, shape [${e.shape.join(', ')}] ${dt} needs ${want}`,
      );
    if (en > dataLen)
      throw new CheckpointError(
        `${what}: tensor ${name}: data [${b}, ${en}) runs past the end of the data (${dataLen} bytes): the file is truncated`,
      );
    // copy: the data may not be aligned for a typed-array view
    const ab = buf.buffer.slice(buf.byteOffset + dataStart + b, buf.byteOffset + dataStart + en);
    // BF16 and F16 stay raw 16-bit words (safeToFloat64 decodes them)
    const data =
      dt === 'F32'
        ? new Float32Array(ab)
        : dt === 'F64'
          ? new Float64Array(ab)
          : dt === 'I32'
            ? new Int32Array(ab)
            : new Uint16Array(ab);
    tensors.set(name, { dtype: dt, shape: e.shape.slice(), data });
  }
  return { tensors, metadata };
}

// one writer for every output (temp file + rename, writes through symlinks and FIFOs): src/util/write-file.ts
export { writeFileAtomic };

export function writeSafetensors(
  path: string,
  tensors: Map<string, SafeTensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export function readSafetensors(path: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such file`);
  return decodeSafetensors(readFileSync(path), path);
}

/** IEEE half bits -> number (exact: every half is a float). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f,
    frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> IEEE half bits, rounded to nearest even (as PyTorch's .half() does); overflow gives infinity. */
export function f32ToF16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // rounds past the largest half (65504)
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24); // subnormal: units of 2^-24 (may round up to 2^-14)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 rounding at powers of two
  if (2 ** (e + 1) <= a) e++;
  const m = roundEven((a / 2 ** e - 1) * 1024);
  // a mantissa that rounds up to 1024 carries into the exponent, which the bit layout does by itself
  return sign | (((e + 15) << 10) + m);
}

function roundEven(v: number): number {
  const f = Math.floor(v),
    d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** Values of a tensor as float64 (BF16 and F16 decoded). */
export function safeToFloat64(t: SafeTensor): Float64Array {
  if (t.dtype === 'BF16') return Float64Array.from(t.data as Uint16Array, (b) => bf16BitsToF32(b));
  if (t.dtype === 'F16') return Float64Array.from(t.data as Uint16Array, (b) => f16BitsToF32(b));
  return Float64Array.from(t.data as ArrayLike<number>);
}

/** A tensor's host values as a SafeTensor of the given dtype. */
export function toSafe(t: Tensor, dtype: SafeDType, shape: number[] = [...t.shape]): SafeTensor {
  const v = t.toFloat64();
  return { dtype, shape, data: castValues(v, dtype) };
}

/** float64 values as the typed array of a safetensors dtype (rounded to nearest even for BF16/F16). */
export function castValues(v: Float64Array, dtype: SafeDType): SafeTensor['data'] {
  switch (dtype) {
    case 'F64':
      return v;
    case 'F32':
      return Float32Array.from(v);
    case 'I32':
      return Int32Array.from(v);
    case 'BF16':
      return Uint16Array.from(v, (x) => f32ToBf16Bits(x));
    case 'F16':
      return Uint16Array.from(v, (x) => f32ToF16Bits(x));
  }
}

/** Checkpoint shape of a parameter: conv1d weights get PyTorch's [d_inner, 1, d_conv]. */
function fileShape(p: Param): number[] {
  return p.name.endsWith('conv1d.weight') ? [p.value.shape[0]!, 1, p.value.shape[1]!] : [...p.value.shape];
}

/** The model's parameters as named safetensors (f32 by default, bf16 or f64 on request). */
export function modelTensors(
  model: MambaModel,
  dtype: SafeDType = model.ctx.dtype === 'f64' ? 'F64' : 'F32',
): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>();
  for (const p of model.parameters()) out.set(p.name, toSafe(p.value, dtype, fileShape(p)));
  return out;
}

/** Copies named tensors into the model's parameters; missing, unexpected or mis-shaped tensors are errors. */
export function loadTensorsInto(model: MambaModel, tensors: Map<string, SafeTensor>, what = 'checkpoint'): void {
  const params = model.parameters();
  const names = new Set(params.map((p) => p.name));
  for (const p of params) {
    const t = tensors.get(p.name);
    if (!t) throw new CheckpointError(`${what}: tensor ${p.name} is missing`);
    const want = fileShape(p);
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new CheckpointError(
        `${what}: tensor ${p.name} has shape [${t.shape.join(', ')}], the model needs [${want.join(', ')}] (a checkpoint of another config?)`,
      );
    }
    const v = safeToFloat64(t);
    const host = p.value.dtype === 'f64' ? v : Float32Array.from(v);
    p.value.copyFrom(Tensor.from(host, p.value.shape));
  }
  for (const k of tensors.keys()) {
    if (names.has(k)) continue;
    if (k === 'lm_head.weight' && model.config.tie_embeddings) continue; // tied: the embedding is the head
    if (/(in|out)_proj\.bias$/.test(k)) {
      throw new CheckpointError(
        `${what}: tensor ${k}: biases on in_proj/out_proj (HF use_bias true) are not supported`,
      );
    }
    throw new CheckpointError(`${what}: unexpected tensor ${k} (not a parameter of this model)`);
  }
  model.invalidate();
}

export const MODEL_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';

/**
 * Writes dir/model.safetensors, dir/config.json (our keys, transformers' and mamba_ssm's: hf-config.ts) and,
 * for our vocabularies, tokenizer.json + tokenizer_config.json; each file atomically.
 */
export function saveModel(
  dir: string,
  model: MambaModel,
  opts: { dtype?: SafeDType; metadata?: Record<string, string> } = {},
): void {
  writeFolder(dir, model.config, modelTensors(model, opts.dtype), { metadata: opts.metadata });
}

/** The config of a model folder in any layout (ours, hf, mamba_ssm); foreign folders get `domain`. */
export function readConfig(dir: string, opts: { domain?: Domain } = {}): MambaConfig {
  return readFolderConfig(dir, opts).config;
}

/** Builds the model a folder's config.json describes and loads its weights (one file or shards) into it. */
export function loadModel(dir: string, opts: CreateOptions & { domain?: Domain } = {}): MambaModel {
  const { domain, ...create } = opts;
  const parsed = readFolderConfig(dir, { domain });
  const model = createModel(parsed.config, create);
  loadTensorsInto(model, readFolderTensors(dir, parsed), dir);
  return model;
}
