// The training loop: batches from a WindowSource (lm) or LabelledSource (classify), gradient accumulation,
// global-norm clipping, AdamW with warmup + cosine, sequence-length warmup, periodic evaluation and
// checkpoints, exact resume (model, optimizer m/v, step, data RNG), NaN/Inf detection and stop requests.
// What depends on the task lives in task.ts; checkpoints are written and committed by checkpoints.ts.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { setGemmTuning, Tensor } from '../backend/index.js';
import {
  CheckpointError,
  MODEL_FILE,
  loadTensorsInto,
  readConfig,
  readSafetensors,
  safeToFloat64,
  saveModel,
  toSafe,
  writeFileAtomic,
  writeSafetensors,
  type SafeTensor,
} from '../model/checkpoint.js';
import { createModel, type CreateOptions, type MambaModel } from '../model/model.js';
import { Rng } from '../util/rng.js';
import type { Param } from '../nn/param.js';
import {
  CHECKPOINT_MANIFEST,
  TRAINER_STATE_FILE,
  TRAINING_STATE_FILE,
  committedCheckpoint,
  publishCheckpoint,
  saveCheckpoint,
} from './checkpoints.js';
import { evaluateModel } from './evaluate.js';
import { AdamW, gradClip, lrAt, stepShapeAt, warmupDoublings, type SeqLenWarmup } from './optim.js';
import { taskRunner, type DataSource, type Score, type TaskRunner } from './task.js';

export interface TrainOptions {
  steps: number;
  batchSize: number;
  /** target sequence length (tokens per sequence) */
  seqLen: number;
  /** peak learning rate */
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** clip the global gradient norm to this (0: off) */
  gradClip: number;
  /** micro-batches per optimizer step */
  accumSteps: number;
  /**
   * start short and double the sequence length up to seqLen, the batch growing as the length shrinks so
   * that tokens per step stay batchSize x seqLen x accumSteps (null: none)
   */
  seqLenWarmup: SeqLenWarmup | null;
  /** evaluate every N steps (0: only at the end) */
  evalEvery: number;
  /** lm: held-out windows per evaluation; classify: examples per source */
  evalWindows: number;
  /** sequence length for evaluation (default: seqLen) */
  evalSeqLen: number;
  /** checkpoint every N steps into runDir (0: only at the end and on stop) */
  checkpointEvery: number;
  /** also save the model with the lowest evaluation loss so far into runDir/best (small data overfits) */
  keepBest: boolean;
  seed: number;
}

export const TRAIN_DEFAULTS: TrainOptions = {
  steps: 1000,
  batchSize: 8,
  seqLen: 1024,
  lr: 2e-3,
  warmupSteps: 50,
  minLrRatio: 0.1,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  gradClip: 1,
  accumSteps: 1,
  seqLenWarmup: null,
  evalEvery: 0,
  evalWindows: 64,
  evalSeqLen: 0,
  checkpointEvery: 0,
  keepBest: true,
  seed: 0,
};

export interface StepInfo {
  step: number;
  /** mean cross-entropy of the step, nats */
  loss: number;
  /** lm only: loss in bits per token */
  bitsPerToken?: number;
  accuracy?: number;
  lr: number;
  gradNorm: number;
  seqLen: number;
  /** sequences per micro-batch (batchSize x seqLen / this step's length during a sequence-length warmup) */
  batch: number;
  /** tokens processed by this step */
  tokens: number;
  tokensPerS: number;
  elapsedS: number;
}

/** An evaluation during training: what was scored and how well, at which step. */
export interface EvalInfo extends Score {
  step: number;
}

export interface TrainHooks {
  onStep?(s: StepInfo): void | Promise<void>;
  onEval?(e: EvalInfo): void | Promise<void>;
  onCheckpoint?(c: { step: number; dir: string }): void | Promise<void>;
}

export interface TrainData {
  train: DataSource;
  valid?: DataSource;
}

export interface TrainSummary {
  step: number;
  stopped: boolean;
  lastLoss: number;
  lastEval?: EvalInfo;
  /** the evaluation with the lowest loss (its model is in runDir/best when keepBest) */
  bestEval?: EvalInfo;
  elapsedS: number;
}

/**
 * Data-parallel training, one process per GPU: every rank runs the same Trainer on its own batches; the
 * gradients are averaged across ranks after accumulation and before clipping (e.g. an NCCL all-reduce
 * divided by worldSize), so every rank applies the same update. Only rank 0 writes checkpoints and
 * evaluates. The data stream stays resumable: each step draws one seed from a stream shared by all ranks
 * and each rank samples its batch from (seed, rank).
 */
export interface DataParallel {
  rank: number;
  worldSize: number;
  /** averages every parameter's gradient across ranks, in place */
  allReduceMean(params: Param[]): void | Promise<void>;
}

export class TrainingError extends Error {
  override name = 'TrainingError';
}

const LEGACY_FILES = [MODEL_FILE, TRAINING_STATE_FILE, TRAINER_STATE_FILE];

/** The `metadata.step` of a safetensors file, reading only its header. */
function safetensorsStep(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) return undefined;
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n < 1 << 30)) return undefined;
    const head = Buffer.alloc(n);
    if (readSync(fd, head, 0, n, 8) !== n) return undefined;
    return (JSON.parse(head.toString('utf8')) as { __metadata__?: { step?: string } }).__metadata__?.step;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Run folders written before checkpoint.json: the top-level files (or their *.prev links) when all three
 * are from one step. Read in place, never renamed.
 */
function legacyCheckpoint(dir: string): { step: number; paths: (f: string) => string } | undefined {
  for (const suffix of ['', '.prev']) {
    const p = (f: string) => join(dir, `${f}${suffix}`);
    if (!LEGACY_FILES.every((f) => existsSync(p(f)))) continue;
    let st: { step?: unknown };
    try {
      st = JSON.parse(readFileSync(p(TRAINER_STATE_FILE), 'utf8')) as { step?: unknown };
    } catch {
      continue;
    }
    const step = String(st.step);
    const same = safetensorsStep(p(MODEL_FILE)) === step && safetensorsStep(p(TRAINING_STATE_FILE)) === step;
    if (same) return { step: Number(step), paths: p };
  }
  return undefined;
}

/** True when dir holds a checkpoint Trainer.resume can continue from. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, CHECKPOINT_MANIFEST)) || legacyCheckpoint(dir) !== undefined;
}

/** sub-folder of the run folder holding the best model by evaluation loss */
export const BEST_DIR = 'best';

interface TrainerState {
  version: 1;
  step: number;
  dataRng: number[];
  tokens: number;
  elapsedS: number;
  options: TrainOptions;
  lastEval?: EvalInfo;
  bestEval?: EvalInfo;
}

function validateOptions(o: TrainOptions): void {
  const pos = (k: keyof TrainOptions) => {
    const v = o[k] as number;
    if (!Number.isInteger(v) || v < 1)
      throw new TrainingError(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  const nonneg = (k: keyof TrainOptions) => {
    const v = o[k] as number;
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))
      throw new TrainingError(`${k} must be a number >= 0, got ${JSON.stringify(v)}`);
  };
  for (const k of ['steps', 'batchSize', 'seqLen', 'accumSteps', 'evalWindows'] as const) pos(k);
  for (const k of [
    'warmupSteps',
    'minLrRatio',
    'weightDecay',
    'gradClip',
    'evalEvery',
    'checkpointEvery',
    'eps',
    'evalSeqLen',
  ] as const)
    nonneg(k);
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw new TrainingError(`lr must be a positive number, got ${o.lr}`);
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
    throw new TrainingError('beta1 and beta2 must be in [0, 1)');
  const w = o.seqLenWarmup;
  if (w && (!Number.isInteger(w.start) || w.start < 1 || !Number.isInteger(w.steps) || w.steps < 0))
    throw new TrainingError('seqLenWarmup needs an integer start >= 1 and steps >= 0');
  const doublings = w ? warmupDoublings(o.seqLen, w) : 0;
  if (typeof doublings === 'string') throw new TrainingError(doublings);
}

export class Trainer {
  readonly model: MambaModel;
  readonly data: TrainData;
  readonly options: TrainOptions;
  readonly optimizer: AdamW;
  readonly runDir: string | null;
  hooks: TrainHooks;
  step = 0;
  tokens = 0;
  #dataRng: Rng;
  #elapsedS = 0;
  #stop = false;
  #lastEval: EvalInfo | undefined;
  #bestEval: EvalInfo | undefined;

  readonly parallel: DataParallel | null;
  readonly task: TaskRunner;

  constructor(
    model: MambaModel,
    data: TrainData,
    options: Partial<TrainOptions> = {},
    opts: { runDir?: string; hooks?: TrainHooks; parallel?: DataParallel } = {},
  ) {
    this.model = model;
    this.data = data;
    this.options = { ...TRAIN_DEFAULTS, ...options };
    validateOptions(this.options);
    this.task = taskRunner(model);
    const task = this.task.task;
    if (!this.task.accepts(data.train)) {
      const kind = task === 'classify' ? 'labelled' : 'window (unlabelled)';
      throw new TrainingError(`task '${task}' needs a ${kind} data source`);
    }
    if (data.train.vocabSize > model.config.vocab_size)
      throw new TrainingError(
        `the data's vocabulary (${data.train.vocabSize}) is larger than the model's vocab_size (${model.config.vocab_size})`,
      );
    const classes = (data.train as { classes?: readonly string[] }).classes;
    if (classes && classes.length !== model.config.num_classes) {
      const n = model.config.num_classes;
      throw new TrainingError(`the data has ${classes.length} classes, the model num_classes = ${n}`);
    }
    this.optimizer = new AdamW(model.parameters(), {
      beta1: this.options.beta1,
      beta2: this.options.beta2,
      eps: this.options.eps,
      weightDecay: this.options.weightDecay,
    });
    const par = opts.parallel ?? null;
    if (
      par &&
      (!Number.isInteger(par.worldSize) ||
        par.worldSize < 1 ||
        !Number.isInteger(par.rank) ||
        par.rank < 0 ||
        par.rank >= par.worldSize)
    ) {
      throw new TrainingError(`parallel: rank must be in 0..worldSize-1, got rank ${par.rank} of ${par.worldSize}`);
    }
    this.parallel = par && par.worldSize > 1 ? par : null;
    // only rank 0 writes the run folder
    this.runDir = this.parallel && this.parallel.rank !== 0 ? null : (opts.runDir ?? null);
    this.hooks = opts.hooks ?? {};
    // data randomness is separate from the model's init stream, so both are reproducible from the seed
    this.#dataRng = new Rng((this.options.seed ^ 0x5eed5eed) >>> 0);
  }

  /** Asks the loop to save and return after the current step (safe to call from a signal handler). */
  requestStop(): void {
    this.#stop = true;
  }

  get stopRequested(): boolean {
    return this.#stop;
  }

  get bestEval(): EvalInfo | undefined {
    return this.#bestEval;
  }

  get lastEval(): EvalInfo | undefined {
    return this.#lastEval;
  }

  /** The learning rate of 0-based step s. */
  lrAt(s: number): number {
    const o = this.options;
    return lrAt(s, { lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: o.steps, minLrRatio: o.minLrRatio });
  }

  /** Sequence length and sequences per micro-batch of 0-based step s (the sequence-length warmup). */
  shapeAt(s: number): { seqLen: number; batch: number } {
    const o = this.options;
    return stepShapeAt(s, o.seqLen, o.batchSize, o.seqLenWarmup);
  }

  /** One optimizer step (accumSteps micro-batches). Throws TrainingError on a non-finite loss or gradient. */
  async trainStep(): Promise<StepInfo> {
    const o = this.options;
    const t0 = performance.now();
    const { seqLen: L, batch: B } = this.shapeAt(this.step);
    this.model.zeroGrad();
    let lossSum = 0,
      correct = 0,
      count = 0;
    // data parallel: this step's batches come from (one seed of the shared stream, rank)
    const rng = this.parallel
      ? new Rng((this.#dataRng.nextU32() ^ Math.imul(this.parallel.rank + 1, 0x9e3779b9)) >>> 0)
      : this.#dataRng;
    for (let a = 0; a < o.accumSteps; a++) {
      // tuned products for the step's own forward and backward (evaluation and inference keep the fixed choice)
      setGemmTuning(true);
      const r = await this.task
        .trainMicroBatch(this.model, this.data.train, B, L, rng, o.accumSteps)
        .finally(() => setGemmTuning(false));
      const loss = r.loss;
      correct += r.correct ?? 0;
      count += r.count ?? 0;
      if (!Number.isFinite(loss))
        throw new TrainingError(
          `loss became ${loss} at step ${this.step + 1}; stopped without updating${this.runDir ? `; the last good checkpoint is in ${this.runDir}` : ''}`,
        );
      lossSum += loss;
    }
    if (this.parallel) await this.parallel.allReduceMean(this.optimizer.params);
    const { norm: gradNorm, scale: gradScale } = gradClip(this.optimizer.params, o.gradClip);
    if (!Number.isFinite(gradNorm))
      throw new TrainingError(
        `gradient norm became ${gradNorm} at step ${this.step + 1}; stopped without updating${this.runDir ? `; the last good checkpoint is in ${this.runDir}` : ''}`,
      );
    const lr = this.lrAt(this.step);
    this.optimizer.update(lr, gradScale);
    this.step++;
    const tokens = B * L * o.accumSteps;
    this.tokens += tokens;
    const dt = (performance.now() - t0) / 1000;
    this.#elapsedS += dt;
    const loss = lossSum / o.accumSteps;
    const info: StepInfo = {
      step: this.step,
      loss,
      lr,
      gradNorm,
      seqLen: L,
      batch: B,
      tokens,
      tokensPerS: tokens / dt,
      elapsedS: this.#elapsedS,
    };
    if (this.task.task === 'lm') info.bitsPerToken = loss / Math.LN2;
    if (count > 0) info.accuracy = correct / count;
    return info;
  }

  /** Runs until options.steps (or a stop request), evaluating and checkpointing as configured. */
  async run(): Promise<TrainSummary> {
    const o = this.options;
    let lastLoss = NaN;
    let savedAt = -1;
    while (this.step < o.steps) {
      if (this.#stop) break;
      const info = await this.trainStep();
      lastLoss = info.loss;
      await this.hooks.onStep?.(info);
      const last = this.step === o.steps;
      if (
        this.data.valid &&
        (!this.parallel || this.parallel.rank === 0) &&
        ((o.evalEvery > 0 && this.step % o.evalEvery === 0) || last)
      ) {
        const e = await this.evaluate();
        if (!this.#bestEval || e.loss < this.#bestEval.loss) {
          this.#bestEval = e;
          if (o.keepBest && this.runDir) {
            const dir = join(this.runDir, BEST_DIR);
            mkdirSync(dir, { recursive: true });
            saveModel(dir, this.model, { metadata: { step: String(this.step), eval_loss: String(e.loss) } });
          }
        }
      }
      if (this.runDir && ((o.checkpointEvery > 0 && this.step % o.checkpointEvery === 0) || last)) {
        await this.save(this.runDir);
        savedAt = this.step;
      }
    }
    const stopped = this.step < o.steps;
    if (stopped && this.runDir && savedAt !== this.step) await this.save(this.runDir);
    const out: TrainSummary = { step: this.step, stopped, lastLoss, elapsedS: this.#elapsedS };
    if (this.#lastEval) out.lastEval = this.#lastEval;
    if (this.#bestEval) out.bestEval = this.#bestEval;
    return out;
  }

  /** Evaluates on the valid source (or `src`): what was scored, the loss, accuracy (+ bits/token or confusion). */
  async evaluate(src: DataSource | undefined = this.data.valid): Promise<EvalInfo> {
    if (!src) throw new TrainingError('no evaluation data was given');
    const o = this.options;
    const scoring = { seqLen: o.evalSeqLen || o.seqLen, batchSize: o.batchSize, windows: o.evalWindows };
    const score = await evaluateModel(this.model, src, scoring);
    const info: EvalInfo = { step: this.step, ...score };
    this.#lastEval = info;
    await this.hooks.onEval?.(info);
    return info;
  }

  // ---- checkpoints ------------------------------------------------------------------------------

  /**
   * Saves model, config, optimizer state and trainer state as one checkpoint of dir (checkpoints.ts:
   * a complete step folder, committed by checkpoint.json, then published at the top of dir).
   */
  async save(dir: string): Promise<void> {
    saveCheckpoint(dir, this.step, (folder) => {
      const meta = { format: 'pt', step: String(this.step) };
      const dtype = this.model.ctx.dtype === 'f64' ? 'F64' : 'F32';
      saveModel(folder, this.model, { dtype, metadata: meta });
      const opt = new Map<string, SafeTensor>();
      this.optimizer.params.forEach((p, i) => {
        opt.set(`m.${p.name}`, toSafe(this.optimizer.m[i]!, dtype));
        opt.set(`v.${p.name}`, toSafe(this.optimizer.v[i]!, dtype));
      });
      const optMeta = { ...meta, optimizer_step: String(this.optimizer.step) };
      writeSafetensors(join(folder, TRAINING_STATE_FILE), opt, optMeta);
      const st: TrainerState = {
        version: 1,
        step: this.step,
        dataRng: this.#dataRng.state(),
        tokens: this.tokens,
        elapsedS: this.#elapsedS,
        options: this.options,
      };
      if (this.#lastEval) st.lastEval = this.#lastEval;
      if (this.#bestEval) st.bestEval = this.#bestEval;
      writeFileAtomic(join(folder, TRAINER_STATE_FILE), `${JSON.stringify(st, null, 2)}\n`);
    });
    await this.hooks.onCheckpoint?.({ step: this.step, dir });
  }

  /**
   * Reopens a run folder: the model (config.json + model.safetensors), optimizer m/v, step, data RNG and
   * options, so run() continues exactly where the saved run stopped. `overrides` may change e.g. steps.
   */
  static resume(
    dir: string,
    data: TrainData,
    opts: {
      create?: CreateOptions;
      overrides?: Partial<TrainOptions>;
      hooks?: TrainHooks;
      parallel?: DataParallel;
    } = {},
  ): Trainer {
    let paths: (f: string) => string;
    const committed = committedCheckpoint(dir);
    if (committed) {
      // the top-level files may be of a save cut short: make them the committed step's again (rank 0 only,
      // as only rank 0 writes the run folder)
      if (!opts.parallel || opts.parallel.rank === 0) publishCheckpoint(dir, committed.dir);
      paths = (f) => join(committed.dir, f);
    } else {
      const legacy = legacyCheckpoint(dir);
      if (!legacy) {
        const why = existsSync(join(dir, TRAINER_STATE_FILE))
          ? 'its checkpoint files are from different steps'
          : `there is no ${CHECKPOINT_MANIFEST}`;
        throw new CheckpointError(`${dir} holds no trainer checkpoint to resume from (${why})`);
      }
      paths = legacy.paths;
    }
    const sp = paths(TRAINER_STATE_FILE);
    let st: TrainerState;
    try {
      st = JSON.parse(readFileSync(sp, 'utf8')) as TrainerState;
    } catch (e) {
      throw new CheckpointError(`${sp}: not valid JSON (${(e as Error).message})`);
    }
    if (st.version !== 1 || !Number.isInteger(st.step) || !Array.isArray(st.dataRng))
      throw new CheckpointError(`${sp}: not a trainer state of this toolkit`);
    const model = createModel(readConfig(committed ? committed.dir : dir), { seed: st.options.seed, ...opts.create });
    const mp = paths(MODEL_FILE);
    loadTensorsInto(model, readSafetensors(mp).tensors, mp);
    const t = new Trainer(
      model,
      data,
      { ...st.options, ...opts.overrides },
      { runDir: dir, hooks: opts.hooks ?? {}, ...(opts.parallel ? { parallel: opts.parallel } : {}) },
    );
    const op = paths(TRAINING_STATE_FILE);
    const { tensors, metadata } = readSafetensors(op);
    if (metadata.step !== String(st.step)) {
      const steps = `${op} is from step ${metadata.step}, ${TRAINER_STATE_FILE} from step ${st.step}`;
      throw new CheckpointError(`${steps}: no consistent checkpoint`);
    }
    t.optimizer.params.forEach((p, i) => {
      for (const [k, dst] of [
        [`m.${p.name}`, t.optimizer.m[i]!],
        [`v.${p.name}`, t.optimizer.v[i]!],
      ] as const) {
        const s = tensors.get(k);
        if (!s) throw new CheckpointError(`${op}: tensor ${k} is missing`);
        if (s.data.length !== dst.numel)
          throw new CheckpointError(`${op}: tensor ${k} has ${s.data.length} values, the model needs ${dst.numel}`);
        const v = safeToFloat64(s);
        dst.copyFrom(Tensor.from(dst.dtype === 'f64' ? v : Float32Array.from(v), dst.shape));
      }
    });
    t.optimizer.step = Number(metadata.optimizer_step ?? st.step);
    t.step = st.step;
    t.tokens = st.tokens;
    t.#elapsedS = st.elapsedS;
    t.#dataRng = Rng.fromState(st.dataRng);
    if (st.lastEval) t.#lastEval = st.lastEval;
    if (st.bestEval) t.#bestEval = st.bestEval;
    return t;
  }
}
