// Evaluation without a trainer: eval, predict-style scoring and the trainer's periodic evaluations all
// score through here, so nothing allocates optimizer state to evaluate.
import type { MambaModel } from '../model/model.js';
import { taskRunner, type DataSource, type Score, type ScoreOptions } from './task.js';

/** Scores `model` on `src`: windows of o.seqLen tokens (lm) or examples (classify), o.batchSize at a time. */
export function evaluateModel(model: MambaModel, src: DataSource, o: ScoreOptions): Promise<Score> {
  return taskRunner(model).score(model, src, o);
}

/** One line naming what was scored: "64 windows of 1,024 tokens (65,536 tokens) of <data>". */
export function describeScored(s: Score): string {
  const n = (v: number) => v.toLocaleString('en-US');
  const unit = s.task === 'lm' ? 'windows' : 'examples';
  return `${n(s.windows)} ${unit} of ${n(s.seqLen)} tokens (${n(s.tokens)} tokens) of ${s.data}`;
}

/** The result in words: bits/token and perplexity for lm, cross-entropy and accuracy for classifiers. */
export function describeResult(s: Score): string {
  if (s.task === 'lm') {
    return (
      `loss ${s.loss.toFixed(4)} nats, ${s.bitsPerToken!.toFixed(4)} bits/token, perplexity ` +
      `${s.perplexity!.toFixed(3)}, next-token accuracy ${s.accuracy.toFixed(4)}`
    );
  }
  const right = Math.round(s.accuracy * s.count);
  return `cross-entropy ${s.loss.toFixed(4)} nats, accuracy ${s.accuracy.toFixed(4)} (${right} of ${s.count})`;
}
