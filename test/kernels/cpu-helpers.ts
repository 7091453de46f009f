// Helpers shared by the CPU kernel suites: tensors from float64 data in either dtype, and central
// finite differences of a scalar function of one float64 array.
import { Tensor } from '../../src/backend/index.js';

export type FDType = 'f32' | 'f64';

export function tensor(data: Float64Array, shape: number[], dtype: FDType): Tensor {
  return Tensor.from(dtype === 'f64' ? Float64Array.from(data) : Float32Array.from(data), shape);
}

export function zeros(shape: number[], dtype: FDType): Tensor {
  return Tensor.zeros(shape, dtype);
}

export function f64(t: Tensor): Float64Array {
  return t.toFloat64();
}

/** d f / d x[i] by central differences (x is perturbed in place and restored). */
export function numericGrad(x: Float64Array, f: () => number, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** sum_i a[i] * b[i] */
export function dotAll(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export const TOL: Record<FDType, number> = { f32: 1e-4, f64: 1e-10 };
