// AdamW (decoupled weight decay, none on parameters marked decay=false: norms, biases, A_log, D,
// embeddings), the warmup + cosine learning-rate schedule, global-norm gradient clipping and the
// sequence-length warmup schedule.
import { Tensor, adamwMany, sumSquaresMany } from '../backend/index.js';
import type { Param } from '../nn/param.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

export class AdamW {
  readonly params: Param[];
  readonly config: AdamWConfig;
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** number of updates done (the next update uses step + 1 for the bias corrections) */
  step = 0;

  constructor(params: Param[], config: Partial<AdamWConfig> = {}) {
    this.params = params;
    this.config = { ...ADAMW_DEFAULTS, ...config };
    this.m = params.map((p) => Tensor.zeros(p.value.shape, p.value.dtype, p.value.device));
    this.v = params.map((p) => Tensor.zeros(p.value.shape, p.value.dtype, p.value.device));
  }

  /** Frees the moment buffers now (device memory); the optimizer is unusable after. */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }

  /**
   * One update of every parameter with learning rate lr, each gradient read times gradScale (gradClip's factor),
   * in one pass over all of them on CUDA that also refreshes the bf16 matmul copies (marked halfFresh).
   */
  update(lr: number, gradScale = 1): void {
    this.step++;
    const c = this.config;
    adamwMany(
      this.params.map((p, i) => ({
        param: p.value,
        grad: p.grad,
        m: this.m[i]!,
        v: this.v[i]!,
        weightDecay: p.decay ? c.weightDecay : 0,
        half: p.half,
      })),
      { lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, step: this.step, gradScale },
    );
    for (const p of this.params) if (p.half) p.halfFresh = true;
  }
}

/**
 * The global L2 norm of all gradients and the factor that brings it down to maxNorm when above it (1 otherwise, or
 * when maxNorm <= 0). AdamW.update(lr, scale) applies the factor as it reads each gradient, so the clip costs no
 * pass over the gradients of its own.
 */
export function gradClip(params: Param[], maxNorm: number): { norm: number; scale: number } {
  const norm = Math.sqrt(sumSquaresMany(params.map((p) => p.grad)));
  const clip = maxNorm > 0 && norm > maxNorm && Number.isFinite(norm);
  return { norm, scale: clip ? maxNorm / (norm + 1e-6) : 1 };
}

export interface LrSchedule {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** final lr as a fraction of lr (cosine decays to it) */
  minLrRatio: number;
}

/** Linear warmup from lr/warmup to lr, then cosine decay to minLrRatio*lr at totalSteps. `step` is 0-based. */
export function lrAt(step: number, s: LrSchedule): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const t = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  const min = s.lr * s.minLrRatio;
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * t));
}

export interface SeqLenWarmup {
  /** first sequence length; the target divided by it must be a power of two (start >= target: no warmup) */
  start: number;
  /** steps before the target length: start, 2*start, ..., target/2 in equal stages; the target from then on */
  steps: number;
}

/** The doublings from start to target, or an error message when target / start is not a power of two. */
export function warmupDoublings(target: number, w: SeqLenWarmup): number | string {
  if (w.start >= target) return 0;
  const ratio = target / w.start;
  if (!Number.isInteger(ratio) || (ratio & (ratio - 1)) !== 0)
    return `the sequence-length warmup doubles ${w.start} up to the target ${target}, so target / start must be a power of two`;
  return Math.log2(ratio);
}

/** Sequence length at 0-based `step`: start, 2*start, ... in equal stages over the warmup, then target. */
export function seqLenAt(step: number, target: number, w: SeqLenWarmup | null | undefined): number {
  if (!w || w.steps <= 0 || step >= w.steps) return target;
  const doublings = warmupDoublings(target, w);
  if (typeof doublings === 'string') throw new RangeError(doublings);
  if (doublings === 0) return target;
  return w.start * 2 ** Math.floor((step * doublings) / w.steps);
}

/**
 * The shape of the micro-batches of 0-based `step`: during the warmup the batch grows as the length shrinks
 * (batch x target / L), so every forward pass, and every step, holds the same tokens as at the target.
 */
export function stepShapeAt(
  step: number,
  target: number,
  batch: number,
  w: SeqLenWarmup | null | undefined,
): { seqLen: number; batch: number } {
  const seqLen = seqLenAt(step, target, w);
  return { seqLen, batch: (batch * target) / seqLen };
}
