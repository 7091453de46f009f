// What differs between the two tasks, in one place: how a training batch is drawn and scored, and how a
// held-out source is evaluated. The trainer and the evaluation go through a TaskRunner and never ask
// which model class they hold.
import type { LabelledSource, Task, WindowSource } from '../data/types.js';
import type { MambaClassifier, MambaLM, MambaModel } from '../model/model.js';
import type { Rng } from '../util/rng.js';

export type DataSource = WindowSource | LabelledSource;

/** What one evaluation scored and how well. */
export interface Score {
  task: Task;
  /** mean cross-entropy in nats (per token for lm, per example for classify) */
  loss: number;
  /** lm: next-token top-1 accuracy; classify: share of examples classified right */
  accuracy: number;
  /** lm: loss in bits per token; absent for classifiers */
  bitsPerToken?: number;
  /** lm: exp(loss); absent for classifiers */
  perplexity?: number;
  /** the scored units: tokens (lm) or examples (classify) */
  count: number;
  /** windows (lm) or examples (classify) read */
  windows: number;
  /** tokens fed to the model */
  tokens: number;
  /** window length in tokens */
  seqLen: number;
  /** what was scored: the source's description */
  data: string;
  /** classify: confusion[true][predicted] */
  confusion?: number[][];
  classes?: readonly string[];
}

export interface ScoreOptions {
  seqLen: number;
  batchSize: number;
  /** lm: windows to read; classify: examples per source (genomes) */
  windows: number;
}

export interface MicroBatch {
  /** mean loss of the micro-batch */
  loss: number;
  /** classify: examples right and counted */
  correct?: number;
  count?: number;
}

export interface TaskRunner {
  readonly task: Task;
  /** true when `src` is the kind of data this task reads */
  accepts(src: DataSource): boolean;
  /** forward + backward of B sequences of L tokens, one of `accum` micro-batches: gradients of the step mean */
  trainMicroBatch(
    model: MambaModel,
    src: DataSource,
    B: number,
    L: number,
    rng: Rng,
    accum: number,
  ): Promise<MicroBatch>;
  score(model: MambaModel, src: DataSource, o: ScoreOptions): Promise<Score>;
}

export class EvalDataError extends Error {
  override name = 'EvalDataError';
}

function isLabelled(s: DataSource): s is LabelledSource {
  return typeof (s as LabelledSource).randomExample === 'function';
}

const lm: TaskRunner = {
  task: 'lm',
  accepts: (src) => !isLabelled(src),
  async trainMicroBatch(model, src, B, L, rng, accum) {
    const inputs = new Int32Array(B * L),
      targets = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      const w = await (src as WindowSource).randomWindow(L + 1, rng);
      // typed-array set widens the bytes natively (a loop over elements cost ~80 ms per 2^20 tokens)
      inputs.set(w.tokens.subarray(0, L), b * L);
      targets.set(w.tokens.subarray(1, L + 1), b * L);
    }
    return { loss: (model as MambaLM).forwardBackward({ B, L, inputs, targets }, 1 / (B * L * accum)).loss };
  },
  async score(model, src, o) {
    const L = o.seqLen;
    let lossSum = 0,
      count = 0,
      correct = 0,
      windows = 0;
    const pending: Uint8Array[] = [];
    const flush = () => {
      const n = pending.length;
      const inputs = new Int32Array(n * L),
        targets = new Int32Array(n * L);
      pending.forEach((w, b) => {
        inputs.set(w.subarray(0, L), b * L);
        targets.set(w.subarray(1, L + 1), b * L);
      });
      const r = (model as MambaLM).forward({ B: n, L, inputs, targets }, { predictions: true });
      lossSum += r.loss * r.count;
      count += r.count;
      for (let i = 0; i < targets.length; i++) if (r.predictions![i] === targets[i]) correct++;
      pending.length = 0;
    };
    for await (const w of (src as WindowSource).sequentialWindows(L + 1)) {
      pending.push(w.tokens);
      windows++;
      if (pending.length === o.batchSize) flush();
      if (windows >= o.windows) break;
    }
    if (pending.length) flush();
    if (count === 0) throw new EvalDataError(`${src.describe()}: holds no window of ${L + 1} tokens to evaluate`);
    const loss = lossSum / count;
    return {
      task: 'lm',
      loss,
      accuracy: correct / count,
      bitsPerToken: loss / Math.LN2,
      perplexity: Math.exp(loss),
      count,
      windows,
      tokens: windows * L,
      seqLen: L,
      data: src.describe(),
    };
  },
};

const classify: TaskRunner = {
  task: 'classify',
  accepts: (src) => isLabelled(src),
  async trainMicroBatch(model, src, B, L, rng, accum) {
    const inputs = new Int32Array(B * L),
      labels = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const ex = await (src as LabelledSource).randomExample(L, rng);
      inputs.set(ex.tokens, b * L);
      labels[b] = ex.label;
    }
    const r = (model as MambaClassifier).forwardBackward({ B, L, inputs, labels }, 1 / (B * accum));
    return { loss: r.loss, correct: r.correct, count: r.count };
  },
  async score(model, src, o) {
    const L = o.seqLen;
    const ls = src as LabelledSource;
    const C = model.config.num_classes;
    const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
    let lossSum = 0,
      count = 0,
      correct = 0;
    let pending: { tokens: Uint8Array; label: number }[] = [];
    const flush = () => {
      const n = pending.length;
      const inputs = new Int32Array(n * L),
        labels = new Int32Array(n);
      pending.forEach((e, b) => {
        inputs.set(e.tokens, b * L);
        labels[b] = e.label;
      });
      const r = (model as MambaClassifier).forward({ B: n, L, inputs, labels });
      lossSum += r.loss * n;
      count += n;
      correct += r.correct;
      for (let b = 0; b < n; b++) confusion[labels[b]!]![r.predictions[b]!]!++;
      pending = [];
    };
    for await (const e of ls.evalExamples(L, o.windows)) {
      pending.push(e);
      if (pending.length === o.batchSize) flush();
    }
    if (pending.length) flush();
    if (count === 0) throw new EvalDataError(`${src.describe()}: holds no example of ${L} tokens to evaluate`);
    return {
      task: 'classify',
      loss: lossSum / count,
      accuracy: correct / count,
      count,
      windows: count,
      tokens: count * L,
      seqLen: L,
      data: src.describe(),
      confusion,
      classes: ls.classes,
    };
  },
};

const RUNNERS: Record<Task, TaskRunner> = { lm, classify };

/** The runner of a model's task (its config says which). */
export function taskRunner(model: MambaModel): TaskRunner {
  return RUNNERS[model.config.task];
}
