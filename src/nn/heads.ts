// Output heads. LMHead: logits = h W^T with W the embedding (tied) or its own [V, D] weight; the gradient
// goes into whichever W it uses. ClassifierHead: pool over L (mean or last), then Linear d_model -> classes.
import { Tensor, crossEntropyForward, gemm, poolBackward, poolForward, type Strided } from '../backend/index.js';
import type { Rng } from '../util/rng.js';
import { Linear } from './layers.js';
import {
  makeParam,
  mmWeight,
  normalInit,
  type BufferSet,
  type GrowBuffer,
  type NNContext,
  type Param,
  type Workspace,
} from './param.js';

export class LMHead {
  /** the weight used for logits: the embedding's Param when tied */
  readonly weight: Param;
  readonly tied: boolean;
  #h: Tensor | null = null;

  constructor(embedding: Param | null, V: number, D: number, ctx: NNContext, rng: Rng) {
    this.tied = embedding !== null;
    this.weight = embedding ?? makeParam('lm_head.weight', [V, D], normalInit(V * D, 0.02, rng), ctx, true, true);
  }

  /** Own parameters only (a tied weight belongs to the embedding). */
  parameters(): Param[] {
    return this.tied ? [] : [this.weight];
  }

  forward(h: Tensor, logits: Tensor): void {
    this.logits(h, logits);
    this.#h = h;
  }

  /** Logits of the rows of h, which may be columns of a wider tensor (the last position of each sequence), with no backward. */
  logits(h: Strided, logits: Tensor): void {
    gemm(h, mmWeight(this.weight), logits, { transB: true });
  }

  backward(dLogits: Tensor, dh: Tensor): void {
    if (!this.#h) throw new Error('LMHead.backward before forward');
    gemm(dLogits, this.#h, this.weight.grad, { transA: true, beta: 1 });
    gemm(dLogits, mmWeight(this.weight), dh);
  }
}

export type Pooling = 'mean' | 'last';

/** The classifier's buffers: the pooled features [B, D] and their gradient. */
class ClassifierBuffers {
  readonly pooled: GrowBuffer;
  readonly dPooled: GrowBuffer;
  constructor(ws: Workspace) {
    this.pooled = ws.buffer();
    this.dPooled = ws.buffer();
  }
}
const CLASSIFIER_BUFFERS: BufferSet<ClassifierBuffers> = {
  name: 'classifier',
  make: (ws) => new ClassifierBuffers(ws),
};

export class ClassifierHead {
  readonly linear: Linear;
  readonly pooling: Pooling;
  readonly numClasses: number;
  #shape: { B: number; L: number } | null = null;

  constructor(D: number, numClasses: number, pooling: Pooling, ctx: NNContext, rng: Rng) {
    this.linear = new Linear('classifier', D, numClasses, true, ctx, rng);
    this.pooling = pooling;
    this.numClasses = numClasses;
  }

  parameters(): Param[] {
    return this.linear.parameters();
  }

  /** h [B*L, D] -> logits [B, C]. */
  forward(h: Tensor, logits: Tensor, B: number, L: number, ws: Workspace): void {
    const D = this.linear.inFeatures;
    const pooled = ws.buffers(CLASSIFIER_BUFFERS).pooled.take([B, D]);
    poolForward(h, pooled, B, L, this.pooling);
    this.linear.forward(pooled, logits);
    this.#shape = { B, L };
  }

  backward(dLogits: Tensor, dh: Tensor, ws: Workspace): void {
    if (!this.#shape) throw new Error('ClassifierHead.backward before forward');
    const { B, L } = this.#shape;
    const dPooled = ws.buffers(CLASSIFIER_BUFFERS).dPooled.take([B, this.linear.inFeatures]);
    this.linear.backward(dLogits, dPooled);
    poolBackward(dPooled, dh, B, L, this.pooling);
  }
}

/** Mean cross-entropy pieces: per-row losses and (optionally) dLogits scaled by gradScale. */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  losses: Tensor,
  dLogits: Tensor | null,
  gradScale: number,
  ignoreIndex = -1,
): void {
  crossEntropyForward(logits, targets, losses, dLogits, gradScale, ignoreIndex);
}
