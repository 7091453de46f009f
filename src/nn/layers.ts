// Embedding, RMSNorm (fused with the residual add) and Linear: explicit forward and backward (as in
// llm.c). Forward keeps references to what backward needs; backward adds into parameter gradients and
// writes the input gradient into a buffer the caller owns.
import {
  Tensor,
  biasBackward,
  biasForward,
  embeddingBackward,
  embeddingForward,
  gemm,
  rmsnormBackward,
  rmsnormForward,
} from '../backend/index.js';
import type { Rng } from '../util/rng.js';
import { constInit, makeParam, mmWeight, normalInit, uniformInit, type NNContext, type Param } from './param.js';

export class Embedding {
  readonly weight: Param;
  #ids: Tensor | null = null;

  constructor(name: string, V: number, D: number, ctx: NNContext, rng: Rng, std = 0.02) {
    // N(0, 0.02) as the reference's _init_weights; no weight decay on embeddings
    this.weight = makeParam(`${name}.weight`, [V, D], normalInit(V * D, std, rng), ctx, false, true);
  }

  parameters(): Param[] {
    return [this.weight];
  }

  forward(ids: Tensor, out: Tensor): void {
    embeddingForward(ids, this.weight.value, out);
    this.#ids = ids;
  }

  backward(dOut: Tensor): void {
    if (!this.#ids) throw new Error('Embedding.backward before forward');
    embeddingBackward(this.#ids, dOut, this.weight.grad);
  }
}

/** RMSNorm with the residual add fused in: r = x + residualIn; out = r * rstd * w. */
export class RMSNorm {
  readonly weight: Param;
  readonly eps: number;
  #saved: { r: Tensor; rstd: Tensor } | null = null;

  constructor(name: string, D: number, eps: number, ctx: NNContext) {
    this.weight = makeParam(`${name}.weight`, [D], constInit(D, 1), ctx, false);
    this.eps = eps;
  }

  parameters(): Param[] {
    return [this.weight];
  }

  forward(x: Tensor, residualIn: Tensor | null, out: Tensor, residualOut: Tensor, rstd: Tensor): void {
    rmsnormForward(x, residualIn, this.weight.value, out, residualOut, rstd, this.eps);
    this.#saved = { r: residualOut, rstd };
  }

  /**
   * Recomputes out = norm(r) from a residual r kept by an earlier forward (writing nothing else but rstd,
   * which gets the values it already holds), and points backward at r and rstd again.
   */
  recompute(r: Tensor, out: Tensor, rstd: Tensor): void {
    rmsnormForward(null, r, this.weight.value, out, null, rstd, this.eps);
    this.#saved = { r, rstd };
  }

  /**
   * dR (the gradient of both x and residualIn) = dResidualOut + the norm's backward of dOut; `dRAct` (CUDA) gets dR
   * in the activation dtype too.
   */
  backward(dOut: Tensor, dResidualOut: Tensor | null, dR: Tensor, dRAct: Tensor | null = null): void {
    if (!this.#saved) throw new Error('RMSNorm.backward before forward');
    const s = this.#saved;
    rmsnormBackward(dOut, dResidualOut, s.r, this.weight.value, s.rstd, dR, this.weight.grad, dRAct);
  }
}

/** y = x W^T (+ b), W [out, in] as PyTorch; default init kaiming-uniform bound 1/sqrt(in). */
export class Linear {
  readonly weight: Param;
  readonly bias: Param | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
  #x: Tensor | null = null;

  constructor(name: string, inF: number, outF: number, bias: boolean, ctx: NNContext, rng: Rng) {
    this.inFeatures = inF;
    this.outFeatures = outF;
    const bound = 1 / Math.sqrt(inF);
    this.weight = makeParam(`${name}.weight`, [outF, inF], uniformInit(outF * inF, bound, rng), ctx, true, true);
    this.bias = bias ? makeParam(`${name}.bias`, [outF], uniformInit(outF, bound, rng), ctx, false) : null;
  }

  parameters(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  forward(x: Tensor, y: Tensor): void {
    gemm(x, mmWeight(this.weight), y, { transB: true });
    if (this.bias) biasForward(y, this.bias.value);
    this.#x = x;
  }

  /** Adds dW, db; writes (or with accumulate, adds) dx when given. */
  backward(dy: Tensor, dx: Tensor | null, accumulate = false): void {
    if (!this.#x) throw new Error('Linear.backward before forward');
    gemm(dy, this.#x, this.weight.grad, { transA: true, beta: 1 });
    if (this.bias) biasBackward(dy, this.bias.grad);
    if (dx) gemm(dy, mmWeight(this.weight), dx, { beta: accumulate ? 1 : 0 });
  }
}

/** `x` viewed as [rows, cols] (for 2-D kernel arguments). */
export function as2d(x: Tensor, rows: number, cols: number): Tensor {
  return x.shape.length === 2 && x.shape[0] === rows && x.shape[1] === cols ? x : x.reshape([rows, cols]);
}
