// Parameters, initialisers and grow-only workspaces shared by the layers.
import { Tensor, numelOf, type Device, type DType } from '../backend/index.js';
import type { Rng } from '../util/rng.js';

/** Float dtype of a model: f32 (CPU and CUDA) or f64 (CPU only, for gradient checks). */
export type ModelDType = 'f32' | 'f64';

export interface NNContext {
  device: Device;
  dtype: ModelDType;
}

/** A trainable tensor with its gradient (same shape, dtype and device); `decay` marks weight decay. */
export interface Param {
  name: string;
  value: Tensor;
  grad: Tensor;
  decay: boolean;
}

/** A parameter from float64 initial values, converted to the context's dtype and device. */
export function makeParam(name: string, shape: readonly number[], init: Float64Array, ctx: NNContext, decay: boolean): Param {
  if (init.length !== numelOf(shape)) throw new Error(`${name}: init has ${init.length} values for shape [${shape.join(', ')}]`);
  const host = ctx.dtype === 'f64' ? Float64Array.from(init) : Float32Array.from(init);
  const value = Tensor.from(host, shape).to(ctx.device);
  const grad = Tensor.zeros(shape, ctx.dtype, ctx.device);
  return { name, value, grad, decay };
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
 * Named buffers that grow only: `get` returns a view of the first numel elements of a backing tensor,
 * so steps of one (B, L) allocate nothing and a shorter L reuses the memory of a longer one.
 */
export class Workspace {
  readonly device: Device;
  readonly dtype: DType;
  #bufs = new Map<string, Tensor>();

  constructor(device: Device, dtype: DType) {
    this.device = device;
    this.dtype = dtype;
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
    return s;
  }

  dispose(): void {
    for (const b of this.#bufs.values()) b.dispose();
    this.#bufs.clear();
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
