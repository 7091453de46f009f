// Tensor: a shape, an element type and a device over flat row-major storage. CPU storage is a
// TypedArray (bf16 kept as raw Uint16 bits); CUDA storage is a device buffer owned by the addon.
// Tensors do no arithmetic themselves: kernels in src/backend/ops.ts do, by device.
import type { Device } from './device.js';
import { cudaAvailable } from './device.js';
import { cudaOp, type DeviceBuffer } from './native.js';

export type DType = 'f32' | 'f64' | 'bf16' | 'i32' | 'u8';
export type HostArray = Float32Array | Float64Array | Uint16Array | Int32Array | Uint8Array;

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f64: 8, bf16: 2, i32: 4, u8: 1 };

/** A mismatch of shapes, element types or devices between tensors. */
export class TensorError extends Error {
  override name = 'TensorError';
}

/** Allocation failure, with sizes in the message. */
export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
}

export function hostArray(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'f64':
      return new Float64Array(n);
    case 'bf16':
      return new Uint16Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'u8':
      return new Uint8Array(n);
  }
}

function dtypeOfArray(a: HostArray): DType {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Float64Array) return 'f64';
  if (a instanceof Uint16Array) return 'bf16';
  if (a instanceof Int32Array) return 'i32';
  return 'u8';
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new TensorError(`invalid shape [${shape.join(', ')}]: dimensions must be non-negative integers`);
    n *= d;
  }
  return n;
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(b: number): number {
  u32buf[0] = (b & 0xffff) << 16;
  return f32buf[0]!;
}

function fmtBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} B`;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  readonly numel: number;
  #host: HostArray | undefined;
  #dev: DeviceBuffer | undefined;
  #disposed = false;

  private constructor(shape: readonly number[], dtype: DType, device: Device, host?: HostArray, dev?: DeviceBuffer) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
    this.numel = numelOf(shape);
    this.#host = host;
    this.#dev = dev;
  }

  /** Uninitialised on CUDA, zero-filled on the CPU. */
  static empty(shape: readonly number[], dtype: DType = 'f32', device: Device = 'cpu'): Tensor {
    const n = numelOf(shape);
    if (device === 'cpu') {
      try {
        return new Tensor(shape, dtype, 'cpu', hostArray(dtype, n));
      } catch (e) {
        if (e instanceof RangeError)
          throw new OutOfMemoryError(
            `cannot allocate ${fmtBytes(n * DTYPE_BYTES[dtype])} on the CPU for a ${dtype} tensor [${shape.join(', ')}]`,
          );
        throw e;
      }
    }
    if (dtype === 'f64') throw new TensorError('f64 tensors exist only on the CPU (they serve the gradient checks)');
    if (!cudaAvailable()) throw new TensorError('cannot allocate a CUDA tensor: no CUDA device is available');
    let buf: DeviceBuffer;
    try {
      buf = cudaOp('alloc')(n * DTYPE_BYTES[dtype]) as DeviceBuffer;
    } catch (e) {
      const msg = (e as Error).message;
      if (msg.includes('out of memory'))
        throw new OutOfMemoryError(
          `tensor [${shape.join(', ')}] ${dtype} (${fmtBytes(n * DTYPE_BYTES[dtype])}): ${msg}`,
        );
      throw e;
    }
    return new Tensor(shape, dtype, 'cuda', undefined, buf);
  }

  static zeros(shape: readonly number[], dtype: DType = 'f32', device: Device = 'cpu'): Tensor {
    const t = Tensor.empty(shape, dtype, device);
    if (device === 'cuda') cudaOp('memset')(t.buffer, 0, t.byteLength);
    return t;
  }

  /** Wraps (CPU, no copy) or uploads (CUDA) a host array; plain number arrays are converted to `dtype`. */
  static from(
    values: HostArray | readonly number[],
    shape?: readonly number[],
    dtype?: DType,
    device: Device = 'cpu',
  ): Tensor {
    let arr: HostArray;
    if (Array.isArray(values) || !ArrayBuffer.isView(values)) {
      const dt = dtype ?? 'f32';
      const src = values as readonly number[];
      arr = hostArray(dt, src.length);
      if (dt === 'bf16') for (let i = 0; i < src.length; i++) arr[i] = f32ToBf16Bits(src[i]!);
      else arr.set(src);
    } else {
      arr = values as HostArray;
      if (dtype !== undefined && dtype !== dtypeOfArray(arr)) {
        throw new TensorError(`Tensor.from: a ${arr.constructor.name} cannot hold dtype ${dtype}`);
      }
    }
    const dt = dtypeOfArray(arr);
    const sh = shape ?? [arr.length];
    if (numelOf(sh) !== arr.length)
      throw new TensorError(`Tensor.from: shape [${sh.join(', ')}] needs ${numelOf(sh)} elements, got ${arr.length}`);
    const t = new Tensor(sh, dt, 'cpu', arr);
    return device === 'cpu' ? t : t.to(device);
  }

  get byteLength(): number {
    return this.numel * DTYPE_BYTES[this.dtype];
  }

  /** The CPU storage (shared, not a copy). */
  get data(): HostArray {
    this.#checkAlive();
    if (this.device !== 'cpu' || !this.#host)
      throw new TensorError(
        `tensor [${this.shape.join(', ')}] lives on ${this.device}; call .to('cpu') or .toArray() first`,
      );
    return this.#host;
  }

  /** The CUDA storage (shared). */
  get buffer(): DeviceBuffer {
    this.#checkAlive();
    if (this.device !== 'cuda' || !this.#dev)
      throw new TensorError(`tensor [${this.shape.join(', ')}] lives on ${this.device}, not cuda`);
    return this.#dev;
  }

  /** The storage a kernel takes: TypedArray on the CPU, device buffer on CUDA. */
  get storage(): HostArray | DeviceBuffer {
    return this.device === 'cpu' ? this.data : this.buffer;
  }

  get f32(): Float32Array {
    if (this.dtype !== 'f32') throw new TensorError(`expected an f32 tensor, got ${this.dtype}`);
    return this.data as Float32Array;
  }

  /** A copy on `device` (the same tensor if already there). */
  to(device: Device): Tensor {
    this.#checkAlive();
    if (device === this.device) return this;
    if (device === 'cuda') {
      const t = Tensor.empty(this.shape, this.dtype, 'cuda');
      if (this.numel > 0) cudaOp('upload')(t.buffer, this.#host!);
      return t;
    }
    const out = new Tensor(this.shape, this.dtype, 'cpu', hostArray(this.dtype, this.numel));
    if (this.numel > 0) cudaOp('download')(this.#dev!, out.#host!);
    return out;
  }

  /** A host copy of the values (always a fresh array). */
  toArray(): HostArray {
    if (this.device === 'cpu') return this.data.slice();
    return this.to('cpu').data;
  }

  /** Values as float64 numbers, bf16 decoded. For tests and reports. */
  toFloat64(): Float64Array {
    const a = this.toArray();
    const out = new Float64Array(a.length);
    if (this.dtype === 'bf16') for (let i = 0; i < a.length; i++) out[i] = bf16BitsToF32(a[i]!);
    else out.set(a);
    return out;
  }

  /** A converted copy (f32 <-> bf16 on the GPU; any pair on the CPU). */
  cast(dtype: DType): Tensor {
    if (dtype === this.dtype) return this;
    if (this.device === 'cuda') {
      const t = Tensor.empty(this.shape, dtype, 'cuda');
      if (this.dtype === 'f32' && dtype === 'bf16') cudaOp('castF32ToBf16')(this.buffer, t.buffer, this.numel);
      else if (this.dtype === 'bf16' && dtype === 'f32') cudaOp('castBf16ToF32')(this.buffer, t.buffer, this.numel);
      else throw new TensorError(`cast ${this.dtype} -> ${dtype} is not supported on cuda`);
      return t;
    }
    const src = this.data;
    const dst = hostArray(dtype, this.numel);
    if (dtype === 'bf16')
      for (let i = 0; i < src.length; i++)
        dst[i] = f32ToBf16Bits(this.dtype === 'bf16' ? bf16BitsToF32(src[i]!) : src[i]!);
    else if (this.dtype === 'bf16') for (let i = 0; i < src.length; i++) dst[i] = bf16BitsToF32(src[i]!);
    else if (dtype === 'i32' || dtype === 'u8') for (let i = 0; i < src.length; i++) dst[i] = Math.trunc(src[i]!);
    else dst.set(src);
    return new Tensor(this.shape, dtype, 'cpu', dst);
  }

  /** The same storage with another shape of equal size. */
  reshape(shape: readonly number[]): Tensor {
    const sh = shape.map((d, i) => (d === -1 ? this.numel / Math.max(1, numelOf(shape.filter((_, j) => j !== i))) : d));
    if (numelOf(sh) !== this.numel)
      throw new TensorError(`cannot reshape [${this.shape.join(', ')}] (${this.numel}) to [${shape.join(', ')}]`);
    return new Tensor(sh, this.dtype, this.device, this.#host, this.#dev);
  }

  /** A view of `numelOf(shape)` consecutive elements starting at element `offset` (shares storage). */
  view(offset: number, shape: readonly number[]): Tensor {
    this.#checkAlive();
    const n = numelOf(shape);
    if (!Number.isInteger(offset) || offset < 0 || offset + n > this.numel) {
      throw new TensorError(`view [${offset}, ${offset + n}) is outside a tensor of ${this.numel} elements`);
    }
    if (this.device === 'cpu') return new Tensor(shape, this.dtype, 'cpu', this.#host!.subarray(offset, offset + n));
    const b = DTYPE_BYTES[this.dtype];
    return new Tensor(
      shape,
      this.dtype,
      'cuda',
      undefined,
      cudaOp('view')(this.#dev!, offset * b, n * b) as DeviceBuffer,
    );
  }

  /** Copies all values of `src` (same numel and dtype; any devices) into this tensor. */
  copyFrom(src: Tensor): this {
    if (src.numel !== this.numel || src.dtype !== this.dtype) {
      throw new TensorError(
        `copyFrom: [${src.shape.join(', ')}] ${src.dtype} into [${this.shape.join(', ')}] ${this.dtype}`,
      );
    }
    if (this.numel === 0) return this;
    if (this.device === 'cpu' && src.device === 'cpu') this.data.set(src.data as never);
    else if (this.device === 'cuda' && src.device === 'cpu') cudaOp('upload')(this.buffer, src.data);
    else if (this.device === 'cpu' && src.device === 'cuda') cudaOp('download')(src.buffer, this.data);
    else cudaOp('copy')(this.buffer, src.buffer, this.byteLength);
    return this;
  }

  /** Releases device memory now instead of at garbage collection. The tensor is unusable after. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#dev) {
      try {
        cudaOp('free')(this.#dev);
      } catch {
        /* views free nothing: their parent owns the memory */
      }
    }
    this.#dev = undefined;
    this.#host = undefined;
  }

  #checkAlive(): void {
    if (this.#disposed) throw new TensorError('the tensor was disposed');
  }

  toString(): string {
    return `Tensor([${this.shape.join(', ')}], ${this.dtype}, ${this.device})`;
  }
}

// ---- checks shared by ops -------------------------------------------------------------------

export function assertShape(t: Tensor, shape: readonly number[], name: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new TensorError(`${name}: expected shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

export function assertDtype(t: Tensor, dtypes: DType | readonly DType[], name: string): void {
  const ok = Array.isArray(dtypes) ? dtypes.includes(t.dtype) : t.dtype === dtypes;
  if (!ok)
    throw new TensorError(
      `${name}: expected dtype ${Array.isArray(dtypes) ? dtypes.join(' or ') : dtypes}, got ${t.dtype}`,
    );
}

/** All tensors on one device; returns it. */
export function sameDevice(name: string, ...ts: (Tensor | undefined | null)[]): Device {
  let dev: Device | undefined;
  for (const t of ts) {
    if (!t) continue;
    if (dev === undefined) dev = t.device;
    else if (t.device !== dev)
      throw new TensorError(`${name}: tensors on different devices (${dev} and ${t.device}); move them with .to()`);
  }
  return dev ?? 'cpu';
}
