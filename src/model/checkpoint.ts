// safetensors I/O written here: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}, then raw little-endian data.
// Models are saved as model.safetensors + config.json with the reference Mamba key names. Tied LM
// heads are NOT stored (lm_head.weight is the embedding; the convention of Hugging Face safetensors
// checkpoints with tied word embeddings); a lm_head.weight present in a file is accepted and ignored when
// the model ties it. conv1d.weight is stored [d_inner, 1, d_conv] as PyTorch's depthwise Conv1d holds it.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { Tensor, bf16BitsToF32, f32ToBf16Bits } from '../backend/index.js';
import type { Param } from '../nn/param.js';
import { configFromJSON, configToJSON, type MambaConfig } from './config.js';
import { createModel, type CreateOptions, type MambaModel } from './model.js';

export type SafeDType = 'F32' | 'F64' | 'BF16' | 'I32';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Float64Array | Uint16Array | Int32Array;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const BYTES: Record<SafeDType, number> = { F32: 4, F64: 8, BF16: 2, I32: 4 };

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
    if (t.data.length !== n) throw new CheckpointError(`${name}: ${t.data.length} values for shape [${t.shape.join(', ')}]`);
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
const oneLine = (m: string): string => m.replace(/\s*[\r\n]+\s*/g, ' ');

/** Parses a safetensors buffer; every inconsistency is a CheckpointError naming the tensor and offsets. */
export function decodeSafetensors(buf: Buffer, what = 'safetensors'): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new CheckpointError(`${what}: file is ${buf.length} bytes, too short for a safetensors header`);
  const hlen = buf.readBigUInt64LE(0);
  if (hlen > BigInt(buf.length - 8)) throw new CheckpointError(`${what}: header length ${hlen} runs past the end of the file (${buf.length} bytes): truncated or not safetensors`);
  const hl = Number(hlen);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + hl).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${what}: the JSON header does not parse (${oneLine((e as Error).message)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CheckpointError(`${what}: the header is not a JSON object`);
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
    if (!e || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) throw new CheckpointError(`${what}: tensor ${name}: malformed header entry`);
    const dt = e.dtype as SafeDType;
    if (!(dt in BYTES)) throw new CheckpointError(`${what}: tensor ${name}: dtype ${e.dtype} is not supported (F32, F64, BF16, I32)`);
    const [b, en] = e.data_offsets;
    const want = numel(e.shape) * BYTES[dt];
    if (!Number.isInteger(b) || !Number.isInteger(en) || b < 0 || en < b) throw new CheckpointError(`${what}: tensor ${name}: bad data_offsets [${b}, ${en}]`);
    if (en - b !== want) throw new CheckpointError(`${what}: tensor ${name}: data_offsets [${b}, ${en}] hold ${en - b} bytes, shape [${e.shape.join(', ')}] ${dt} needs ${want}`);
    if (en > dataLen) throw new CheckpointError(`${what}: tensor ${name}: data [${b}, ${en}) runs past the end of the data (${dataLen} bytes): the file is truncated`);
    // copy: the data may not be aligned for a typed-array view
    const ab = buf.buffer.slice(buf.byteOffset + dataStart + b, buf.byteOffset + dataStart + en);
    const data = dt === 'F32' ? new Float32Array(ab) : dt === 'F64' ? new Float64Array(ab) : dt === 'BF16' ? new Uint16Array(ab) : new Int32Array(ab);
    tensors.set(name, { dtype: dt, shape: e.shape.slice(), data });
  }
  return { tensors, metadata };
}

/** Writes a file atomically: a temp file in the same folder, fsync, rename over the target. */
export function writeFileAtomic(path: string, data: Buffer | string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      const b = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw e;
  }
}

export function writeSafetensors(path: string, tensors: Map<string, SafeTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export function readSafetensors(path: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such file`);
  return decodeSafetensors(readFileSync(path), path);
}

/** Values of a tensor as float64 (BF16 decoded). */
export function safeToFloat64(t: SafeTensor): Float64Array {
  if (t.dtype === 'BF16') return Float64Array.from(t.data as Uint16Array, (b) => bf16BitsToF32(b));
  return Float64Array.from(t.data as ArrayLike<number>);
}

/** A tensor's host values as a SafeTensor of the given dtype. */
export function toSafe(t: Tensor, dtype: SafeDType, shape: number[] = [...t.shape]): SafeTensor {
  const v = t.toFloat64();
  const data = dtype === 'F64' ? v : dtype === 'F32' ? Float32Array.from(v) : dtype === 'I32' ? Int32Array.from(v) : Uint16Array.from(v, (x) => f32ToBf16Bits(x));
  return { dtype, shape, data };
}

/** Checkpoint shape of a parameter: conv1d weights get PyTorch's [d_inner, 1, d_conv]. */
function fileShape(p: Param): number[] {
  return p.name.endsWith('conv1d.weight') ? [p.value.shape[0]!, 1, p.value.shape[1]!] : [...p.value.shape];
}

/** The model's parameters as named safetensors (f32 by default, bf16 or f64 on request). */
export function modelTensors(model: MambaModel, dtype: SafeDType = model.ctx.dtype === 'f64' ? 'F64' : 'F32'): Map<string, SafeTensor> {
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
      throw new CheckpointError(`${what}: tensor ${p.name} has shape [${t.shape.join(', ')}], the model needs [${want.join(', ')}] (a checkpoint of another config?)`);
    }
    const v = safeToFloat64(t);
    const host = p.value.dtype === 'f64' ? v : Float32Array.from(v);
    p.value.copyFrom(Tensor.from(host, p.value.shape));
  }
  for (const k of tensors.keys()) {
    if (names.has(k)) continue;
    if (k === 'lm_head.weight' && model.config.tie_embeddings) continue; // tied: the embedding is the head
    throw new CheckpointError(`${what}: unexpected tensor ${k} (not a parameter of this model)`);
  }
  model.invalidate();
}

export const MODEL_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';

/** Writes dir/model.safetensors and dir/config.json, each atomically. */
export function saveModel(dir: string, model: MambaModel, opts: { dtype?: SafeDType; metadata?: Record<string, string> } = {}): void {
  writeSafetensors(join(dir, MODEL_FILE), modelTensors(model, opts.dtype), { format: 'pt', ...opts.metadata });
  writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(configToJSON(model.config), null, 2)}\n`);
}

export function readConfig(dir: string): MambaConfig {
  const p = join(dir, CONFIG_FILE);
  if (!existsSync(p)) throw new CheckpointError(`${p}: no such file (is ${dir} a model or run folder?)`);
  let obj: unknown;
  try {
    obj = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${p}: not valid JSON (${oneLine((e as Error).message)})`);
  }
  try {
    return configFromJSON(obj);
  } catch (e) {
    throw new CheckpointError(`${p}: ${(e as Error).message}`);
  }
}

/** Builds the model config.json describes and loads model.safetensors into it. */
export function loadModel(dir: string, opts: CreateOptions = {}): MambaModel {
  const config = readConfig(dir);
  const model = createModel(config, opts);
  const path = join(dir, MODEL_FILE);
  loadTensorsInto(model, readSafetensors(path).tensors, path);
  return model;
}
