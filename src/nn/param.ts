// Parameters, initialisers and grow-only workspaces shared by the layers.
import { Tensor, castBf16Many, cudaOp, numelOf, type Device, type DType } from '../backend/index.js';
import type { Rng } from '../util/rng.js';

/** Float dtype of a model: f32 (CPU and CUDA) or f64 (CPU only, for gradient checks). */
export type ModelDType = 'f32' | 'f64';

export interface NNContext {
  device: Device;
  /** parameters, gradients, optimizer state, the residual stream and reductions */
  dtype: ModelDType;
  /** CUDA only: activations in bf16 (fp32 accumulation; matmuls on bf16 copies of the f32 weights) */
  act?: 'bf16';
}

/** The dtype of activations: bf16 when asked for, else the parameter dtype. */
export function actDtype(ctx: NNContext): DType {
  return ctx.act ?? ctx.dtype;
}

/** A trainable tensor with its gradient (same shape, dtype and device); `decay` marks weight decay. */
export interface Param {
  name: string;
  value: Tensor;
  grad: Tensor;
  decay: boolean;
  /** bf16 copy of a matmul weight (bf16 activations only), refreshed by refreshHalf before a forward */
  half?: Tensor;
  /**
   * The optimizer's update refreshed `half` along with `value` (one pass instead of two): the next refreshHalf
   * skips it once. Anything else that writes `value` must clear it (Model.invalidate does, for the loaders).
   */
  halfFresh?: boolean;
}

/** A parameter from float64 initial values, converted to the context's dtype and device. */
export function makeParam(
  name: string,
  shape: readonly number[],
  init: Float64Array,
  ctx: NNContext,
  decay: boolean,
  matmul = false,
): Param {
  if (init.length !== numelOf(shape))
    throw new Error(`${name}: init has ${init.length} values for shape [${shape.join(', ')}]`);
  const host = ctx.dtype === 'f64' ? Float64Array.from(init) : Float32Array.from(init);
  const value = Tensor.from(host, shape).to(ctx.device);
  const grad = Tensor.zeros(shape, ctx.dtype, ctx.device);
  const p: Param = { name, value, grad, decay };
  if (matmul && ctx.act === 'bf16') p.half = Tensor.empty(shape, 'bf16', ctx.device);
  return p;
}

/** The tensor a matmul reads: the bf16 copy with bf16 activations, else the weight itself. */
export function mmWeight(p: Param): Tensor {
  return p.half ?? p.value;
}

/**
 * Refreshes the bf16 copies of matmul weights from their f32 values (after an update or a load), but for those the
 * optimizer's last update refreshed itself (halfFresh: skipped once).
 */
export function refreshHalf(params: Param[]): void {
  const stale = params.filter((p) => p.half && !p.halfFresh);
  for (const p of params) p.halfFresh = false;
  if (stale.length === 0) return;
  castBf16Many(
    stale.map((p) => p.value),
    stale.map((p) => p.half!),
  );
}

/** `x` in dtype `dt`: itself, or a converted copy in `buf` (f32 <-> bf16 on CUDA; buf must hold dtype dt). */
export function asDtype(x: Tensor, dt: DType, buf: GrowBuffer): Tensor {
  if (x.dtype === dt) return x;
  if (buf.dtype !== dt) throw new Error(`asDtype: the buffer holds ${buf.dtype}, not ${dt}`);
  const out = buf.take(x.shape);
  if (x.dtype === 'f32' && dt === 'bf16') cudaOp('castF32ToBf16')(x.buffer, out.buffer, x.numel);
  else if (x.dtype === 'bf16' && dt === 'f32') cudaOp('castBf16ToF32')(x.buffer, out.buffer, x.numel);
  else throw new Error(`asDtype: ${x.dtype} -> ${dt} is not supported`);
  return out;
}

export function uniformInit(n: number, bound: number, rng: Rng): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rng.next() - 1) * bound;
  return out;
}

export function normalInit(n: number, std: number, rng: Rng): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = std * rng.normal();
  return out;
}

export function constInit(n: number, v: number): Float64Array {
  return new Float64Array(n).fill(v);
}

/**
 * One buffer that grows only: `take(shape)` views its first numel elements, so steps of one (B, L) allocate
 * nothing and a shorter L reuses the memory of a longer one. A view is valid until the next take.
 */
export class GrowBuffer {
  readonly device: Device;
  readonly dtype: DType;
  #t: Tensor | null = null;

  constructor(device: Device, dtype: DType) {
    this.device = device;
    this.dtype = dtype;
  }

  take(shape: readonly number[]): Tensor {
    const n = numelOf(shape);
    if (!this.#t || this.#t.numel < n) {
      this.#t?.dispose();
      this.#t = Tensor.zeros([Math.max(n, 1)], this.dtype, this.device);
    }
    return this.#t.view(0, shape);
  }

  bytes(): number {
    return this.#t ? this.#t.byteLength : 0;
  }

  dispose(): void {
    this.#t?.dispose();
    this.#t = null;
  }
}

/**
 * A layer's buffers, declared once as the typed fields of a class (as llm.c's ActivationTensors lists every
 * buffer): `make` builds them in a workspace. The fields, not names, decide what is shared; a layer that wants
 * one buffer to serve two roles says so where it declares them.
 */
export interface BufferSet<T> {
  readonly name: string;
  make(ws: Workspace): T;
}

/**
 * Memory that layers draw their buffers from, one workspace per role (e.g. one per block, or one shared by
 * every block when they recompute, one for gradients): `buffers(SET)` gives this workspace's instance of a
 * layer's typed buffer set. `get(name, ...)` keeps named grow-only buffers for the model's own top-level
 * tensors (hidden states, logits) until those are declared the same way.
 */
export class Workspace {
  readonly device: Device;
  readonly dtype: DType;
  #bufs = new Map<string, Tensor>();
  #sets = new Map<BufferSet<unknown>, unknown>();
  #owned: GrowBuffer[] = [];

  constructor(device: Device, dtype: DType) {
    this.device = device;
    this.dtype = dtype;
  }

  /** A new grow-only buffer of this workspace (the activation dtype unless given). */
  buffer(dtype: DType = this.dtype): GrowBuffer {
    const b = new GrowBuffer(this.device, dtype);
    this.#owned.push(b);
    return b;
  }

  /** This workspace's instance of a typed buffer set, made on first use. */
  buffers<T>(set: BufferSet<T>): T {
    if (!this.#sets.has(set)) this.#sets.set(set, set.make(this));
    return this.#sets.get(set) as T;
  }

  get(name: string, shape: readonly number[], dtype: DType = this.dtype): Tensor {
    const n = numelOf(shape);
    const key = `${name}:${dtype}`;
    let b = this.#bufs.get(key);
    if (!b || b.numel < n) {
      b?.dispose();
      b = Tensor.zeros([Math.max(n, 1)], dtype, this.device);
      this.#bufs.set(key, b);
    }
    return b.view(0, shape);
  }

  /** Bytes held by the backing buffers. */
  bytes(): number {
    let s = 0;
    for (const b of this.#bufs.values()) s += b.byteLength;
    for (const b of this.#owned) s += b.bytes();
    return s;
  }

  dispose(): void {
    for (const b of this.#bufs.values()) b.dispose();
    this.#bufs.clear();
    for (const b of this.#owned) b.dispose();
  }
}

/** Host float64 copy of a tensor (downloads from CUDA). */
export function hostValues(t: Tensor): Float64Array {
  return t.toFloat64();
}

/** Overwrites a float tensor (any device) from float64 host values. */
export function setValues(t: Tensor, values: ArrayLike<number>): void {
  if (values.length !== t.numel) throw new Error(`setValues: ${values.length} values for a tensor of ${t.numel}`);
  const host = t.dtype === 'f64' ? Float64Array.from(values) : Float32Array.from(values);
  t.copyFrom(Tensor.from(host, t.shape));
}
