// Central finite differences in float64 against the analytic gradients of explicit backward passes.
import { Tensor } from '../../src/backend/index.js';
import type { Param } from '../../src/nn/index.js';
import { randn, relErr, rng } from '../helpers.js';

export interface CheckTarget {
  name: string;
  value: Tensor;
  /** analytic gradient, already computed */
  grad: Float64Array;
}

/**
 * For `coords` random coordinates of every target, compares the analytic gradient with
 * (f(x+h) - f(x-h)) / 2h; returns the relative error per target over its sampled coordinates.
 */
export function checkGradients(
  targets: CheckTarget[],
  loss: () => number,
  seed: number,
  coords = 6,
  h = 1e-4,
): Map<string, number> {
  const r = rng(seed);
  const out = new Map<string, number>();
  for (const t of targets) {
    const data = t.value.data as Float64Array;
    if (!(data instanceof Float64Array)) throw new Error('gradient checks need f64 tensors');
    const n = data.length;
    const picks = new Set<number>();
    const want = Math.min(coords, n);
    while (picks.size < want) picks.add(Math.floor(r() * n));
    const num: number[] = [],
      ana: number[] = [];
    for (const i of picks) {
      const x0 = data[i]!;
      data[i] = x0 + h;
      const fp = loss();
      data[i] = x0 - h;
      const fm = loss();
      data[i] = x0;
      num.push((fp - fm) / (2 * h));
      ana.push(t.grad[i]!);
    }
    out.set(t.name, relErr(ana, num));
  }
  return out;
}

export function paramTargets(params: Param[]): CheckTarget[] {
  return params.map((p) => ({ name: p.name, value: p.value, grad: p.grad.toFloat64() }));
}

export function f64Tensor(shape: number[], seed: number, scale = 1): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  return Tensor.from(randn(n, seed, scale), shape);
}

/** sum(out * w) for a fixed random w: a scalar loss whose gradient w.r.t. out is w. */
export function weightedSum(out: Tensor, w: Tensor): number {
  const a = out.data,
    b = w.data;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function worst(m: Map<string, number>): [string, number] {
  let best: [string, number] = ['', 0];
  for (const [k, v] of m) if (!(v <= best[1])) best = [k, v];
  return best;
}
