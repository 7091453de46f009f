// The training loop: batches from a WindowSource (lm) or LabelledSource (classify), gradient accumulation,
// global-norm clipping, AdamW with warmup + cosine, sequence-length warmup, periodic evaluation and
// checkpoints, exact resume (model, optimizer m/v, step, data RNG), NaN/Inf detection and stop requests.
// Run folder files: model.safetensors, config.json, training_state.safetensors (m, v), trainer_state.json
// (written last; every file carries the step so a save cut short is detected on resume).
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../backend/index.js';
import type { LabelledSource, WindowSource } from '../data/types.js';
import {
  CheckpointError, MODEL_FILE, loadModel, readSafetensors, safeToFloat64, saveModel, toSafe, writeFileAtomic, writeSafetensors,
  type SafeTensor,
} from '../model/checkpoint.js';
import { MambaClassifier, MambaLM, type CreateOptions, type MambaModel } from '../model/model.js';
import { Rng } from '../util/rng.js';
import type { Param } from '../nn/param.js';
import { AdamW, clipGradNorm, lrAt, seqLenAt, type SeqLenWarmup } from './optim.js';

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
  steps: 1000, batchSize: 8, seqLen: 1024, lr: 2e-3, warmupSteps: 50, minLrRatio: 0.1, weightDecay: 0.1, beta1: 0.9, beta2: 0.95,
  eps: 1e-8, gradClip: 1, accumSteps: 1, seqLenWarmup: null, evalEvery: 0, evalWindows: 64, evalSeqLen: 0, checkpointEvery: 0, keepBest: true, seed: 0,
};

export interface StepInfo {
  step: number;
  loss: number;
  bitsPerToken: number;
  accuracy?: number;
  lr: number;
  gradNorm: number;
  seqLen: number;
  /** tokens processed by this step */
  tokens: number;
  tokensPerS: number;
  elapsedS: number;
}

export interface EvalInfo {
  step: number;
  loss: number;
  bitsPerToken: number;
  perplexity: number;
  accuracy: number;
  /** tokens (lm) or examples (classify) evaluated */
  count: number;
  /** classify: confusion[true][predicted] */
  confusion?: number[][];
  classes?: readonly string[];
}

export interface TrainHooks {
  onStep?(s: StepInfo): void | Promise<void>;
  onEval?(e: EvalInfo): void | Promise<void>;
  onCheckpoint?(c: { step: number; dir: string }): void | Promise<void>;
}

export interface TrainData {
  train: WindowSource | LabelledSource;
  valid?: WindowSource | LabelledSource;
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

export const TRAINING_STATE_FILE = 'training_state.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';
const CHECKPOINT_FILES = [MODEL_FILE, TRAINING_STATE_FILE, TRAINER_STATE_FILE];

function prevPath(dir: string, file: string): string {
  return join(dir, `${file}.prev`);
}

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

/** The step of a complete checkpoint (all three files present and from one step), else undefined. */
function checkpointStep(dir: string, suffix: '' | '.prev'): number | undefined {
  const p = (f: string) => (suffix ? prevPath(dir, f) : join(dir, f));
  if (!CHECKPOINT_FILES.every((f) => existsSync(p(f)))) return undefined;
  let st: { step?: unknown };
  try {
    st = JSON.parse(readFileSync(p(TRAINER_STATE_FILE), 'utf8')) as { step?: unknown };
  } catch {
    return undefined;
  }
  const step = String(st.step);
  return safetensorsStep(p(MODEL_FILE)) === step && safetensorsStep(p(TRAINING_STATE_FILE)) === step ? Number(step) : undefined;
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

function isLabelled(s: WindowSource | LabelledSource): s is LabelledSource {
  return typeof (s as LabelledSource).randomExample === 'function';
}

function validateOptions(o: TrainOptions): void {
  const pos = (k: keyof TrainOptions) => {
    const v = o[k] as number;
    if (!Number.isInteger(v) || v < 1) throw new TrainingError(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  const nonneg = (k: keyof TrainOptions) => {
    const v = o[k] as number;
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new TrainingError(`${k} must be a number >= 0, got ${JSON.stringify(v)}`);
  };
  for (const k of ['steps', 'batchSize', 'seqLen', 'accumSteps', 'evalWindows'] as const) pos(k);
  for (const k of ['warmupSteps', 'minLrRatio', 'weightDecay', 'gradClip', 'evalEvery', 'checkpointEvery', 'eps', 'evalSeqLen'] as const) nonneg(k);
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw new TrainingError(`lr must be a positive number, got ${o.lr}`);
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) throw new TrainingError('beta1 and beta2 must be in [0, 1)');
  const w = o.seqLenWarmup;
  if (w && (!Number.isInteger(w.start) || w.start < 1 || !Number.isInteger(w.steps) || w.steps < 0)) throw new TrainingError('seqLenWarmup needs an integer start >= 1 and steps >= 0');
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

  constructor(model: MambaModel, data: TrainData, options: Partial<TrainOptions> = {}, opts: { runDir?: string; hooks?: TrainHooks; parallel?: DataParallel } = {}) {
    this.model = model;
    this.data = data;
    this.options = { ...TRAIN_DEFAULTS, ...options };
    validateOptions(this.options);
    const task = model.config.task;
    if ((task === 'classify') !== isLabelled(data.train)) throw new TrainingError(`task '${task}' needs a ${task === 'classify' ? 'labelled' : 'window (unlabelled)'} data source`);
    if (data.train.vocabSize > model.config.vocab_size) throw new TrainingError(`the data's vocabulary (${data.train.vocabSize}) is larger than the model's vocab_size (${model.config.vocab_size})`);
    if (isLabelled(data.train) && data.train.classes.length !== model.config.num_classes) {
      throw new TrainingError(`the data has ${data.train.classes.length} classes, the model num_classes = ${model.config.num_classes}`);
    }
    this.optimizer = new AdamW(model.parameters(), { beta1: this.options.beta1, beta2: this.options.beta2, eps: this.options.eps, weightDecay: this.options.weightDecay });
    const par = opts.parallel ?? null;
    if (par && (!Number.isInteger(par.worldSize) || par.worldSize < 1 || !Number.isInteger(par.rank) || par.rank < 0 || par.rank >= par.worldSize)) {
      throw new TrainingError(`parallel: rank must be in 0..worldSize-1, got rank ${par.rank} of ${par.worldSize}`);
    }
    this.parallel = par && par.worldSize > 1 ? par : null;
    // only rank 0 writes the run folder
    this.runDir = this.parallel && this.parallel.rank !== 0 ? null : opts.runDir ?? null;
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

  seqLenAt(s: number): number {
    return seqLenAt(s, this.options.seqLen, this.options.seqLenWarmup);
  }

  async #lmBatch(src: WindowSource, B: number, L: number, rng: Rng) {
    const inputs = new Int32Array(B * L), targets = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      const w = await src.randomWindow(L + 1, rng);
      for (let t = 0; t < L; t++) {
        inputs[b * L + t] = w.tokens[t]!;
        targets[b * L + t] = w.tokens[t + 1]!;
      }
    }
    return { B, L, inputs, targets };
  }

  async #clsBatch(src: LabelledSource, B: number, L: number, rng: Rng) {
    const inputs = new Int32Array(B * L), labels = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const ex = await src.randomExample(L, rng);
      inputs.set(ex.tokens, b * L);
      labels[b] = ex.label;
    }
    return { B, L, inputs, labels };
  }

  /** One optimizer step (accumSteps micro-batches). Throws TrainingError on a non-finite loss or gradient. */
  async trainStep(): Promise<StepInfo> {
    const o = this.options;
    const t0 = performance.now();
    const L = this.seqLenAt(this.step);
    const B = o.batchSize;
    this.model.zeroGrad();
    let lossSum = 0, correct = 0, count = 0;
    // data parallel: this step's batches come from (one seed of the shared stream, rank)
    const rng = this.parallel ? new Rng((this.#dataRng.nextU32() ^ Math.imul(this.parallel.rank + 1, 0x9e3779b9)) >>> 0) : this.#dataRng;
    for (let a = 0; a < o.accumSteps; a++) {
      let loss: number;
      if (this.model instanceof MambaLM) {
        const batch = await this.#lmBatch(this.data.train as WindowSource, B, L, rng);
        loss = this.model.forwardBackward(batch, 1 / (B * L * o.accumSteps)).loss;
      } else {
        const batch = await this.#clsBatch(this.data.train as LabelledSource, B, L, rng);
        const r = (this.model as MambaClassifier).forwardBackward(batch, 1 / (B * o.accumSteps));
        loss = r.loss;
        correct += r.correct;
        count += r.count;
      }
      if (!Number.isFinite(loss)) throw new TrainingError(`loss became ${loss} at step ${this.step + 1}; stopped without updating${this.runDir ? `; the last good checkpoint is in ${this.runDir}` : ''}`);
      lossSum += loss;
    }
    if (this.parallel) await this.parallel.allReduceMean(this.optimizer.params);
    const gradNorm = clipGradNorm(this.optimizer.params, o.gradClip);
    if (!Number.isFinite(gradNorm)) throw new TrainingError(`gradient norm became ${gradNorm} at step ${this.step + 1}; stopped without updating${this.runDir ? `; the last good checkpoint is in ${this.runDir}` : ''}`);
    const lr = this.lrAt(this.step);
    this.optimizer.update(lr);
    this.step++;
    const tokens = B * L * o.accumSteps;
    this.tokens += tokens;
    const dt = (performance.now() - t0) / 1000;
    this.#elapsedS += dt;
    const loss = lossSum / o.accumSteps;
    const info: StepInfo = { step: this.step, loss, bitsPerToken: loss / Math.LN2, lr, gradNorm, seqLen: L, tokens, tokensPerS: tokens / dt, elapsedS: this.#elapsedS };
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
      if (this.data.valid && (!this.parallel || this.parallel.rank === 0) && ((o.evalEvery > 0 && this.step % o.evalEvery === 0) || last)) {
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

  /** Evaluates on the valid source (or `src`): loss, bits per token, perplexity, accuracy (+ confusion for classify). */
  async evaluate(src: WindowSource | LabelledSource | undefined = this.data.valid): Promise<EvalInfo> {
    if (!src) throw new TrainingError('no evaluation data was given');
    const o = this.options;
    const L = o.evalSeqLen || o.seqLen;
    const B = o.batchSize;
    let info: EvalInfo;
    if (this.model instanceof MambaLM) {
      const model = this.model;
      let lossSum = 0, count = 0, correct = 0;
      const pending: Uint8Array[] = [];
      const flush = () => {
        const n = pending.length;
        const inputs = new Int32Array(n * L), targets = new Int32Array(n * L);
        pending.forEach((w, b) => {
          for (let t = 0; t < L; t++) {
            inputs[b * L + t] = w[t]!;
            targets[b * L + t] = w[t + 1]!;
          }
        });
        const r = model.forward({ B: n, L, inputs, targets }, { predictions: true });
        lossSum += r.loss * r.count;
        count += r.count;
        for (let i = 0; i < targets.length; i++) if (r.predictions![i] === targets[i]) correct++;
        pending.length = 0;
      };
      let seen = 0;
      for await (const w of (src as WindowSource).sequentialWindows(L + 1)) {
        pending.push(w.tokens);
        if (pending.length === B) flush();
        if (++seen >= o.evalWindows) break;
      }
      if (pending.length) flush();
      if (count === 0) throw new TrainingError(`the evaluation data holds no window of ${L + 1} tokens`);
      const loss = lossSum / count;
      info = { step: this.step, loss, bitsPerToken: loss / Math.LN2, perplexity: Math.exp(loss), accuracy: correct / count, count };
    } else {
      const model = this.model as MambaClassifier;
      const ls = src as LabelledSource;
      const C = model.config.num_classes;
      const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
      let lossSum = 0, count = 0, correct = 0;
      let pending: { tokens: Uint8Array; label: number }[] = [];
      const flush = () => {
        const n = pending.length;
        const inputs = new Int32Array(n * L), labels = new Int32Array(n);
        pending.forEach((e, b) => { inputs.set(e.tokens, b * L); labels[b] = e.label; });
        const r = model.forward({ B: n, L, inputs, labels });
        lossSum += r.loss * n;
        count += n;
        correct += r.correct;
        for (let b = 0; b < n; b++) confusion[labels[b]!]![r.predictions[b]!]!++;
        pending = [];
      };
      for await (const e of ls.evalExamples(L, o.evalWindows)) {
        pending.push(e);
        if (pending.length === B) flush();
      }
      if (pending.length) flush();
      if (count === 0) throw new TrainingError(`the evaluation data holds no example of ${L} tokens`);
      const loss = lossSum / count;
      info = { step: this.step, loss, bitsPerToken: loss / Math.LN2, perplexity: Math.exp(loss), accuracy: correct / count, count, confusion, classes: ls.classes };
    }
    this.#lastEval = info;
    await this.hooks.onEval?.(info);
    return info;
  }

  // ---- checkpoints ------------------------------------------------------------------------------

  /** Saves model, optimizer state and trainer state into dir (each file atomic; trainer_state.json last). */
  async save(dir: string): Promise<void> {
    // Each file is written atomically, but three files are not: keep the last complete checkpoint as
    // hard links (*.prev) until the new one is complete, so a crash mid-save leaves one to resume from.
    for (const f of CHECKPOINT_FILES) {
      rmSync(prevPath(dir, f), { force: true });
      if (existsSync(join(dir, f))) linkSync(join(dir, f), prevPath(dir, f));
    }
    const meta = { format: 'pt', step: String(this.step) };
    const dtype = this.model.ctx.dtype === 'f64' ? 'F64' : 'F32';
    saveModel(dir, this.model, { dtype, metadata: meta });
    const opt = new Map<string, SafeTensor>();
    this.optimizer.params.forEach((p, i) => {
      opt.set(`m.${p.name}`, toSafe(this.optimizer.m[i]!, dtype));
      opt.set(`v.${p.name}`, toSafe(this.optimizer.v[i]!, dtype));
    });
    writeSafetensors(join(dir, TRAINING_STATE_FILE), opt, { ...meta, optimizer_step: String(this.optimizer.step) });
    const st: TrainerState = { version: 1, step: this.step, dataRng: this.#dataRng.state(), tokens: this.tokens, elapsedS: this.#elapsedS, options: this.options };
    if (this.#lastEval) st.lastEval = this.#lastEval;
    if (this.#bestEval) st.bestEval = this.#bestEval;
    writeFileAtomic(join(dir, TRAINER_STATE_FILE), `${JSON.stringify(st, null, 2)}\n`);
    await this.hooks.onCheckpoint?.({ step: this.step, dir });
  }

  /**
   * Reopens a run folder: the model (config.json + model.safetensors), optimizer m/v, step, data RNG and
   * options, so run() continues exactly where the saved run stopped. `overrides` may change e.g. steps.
   */
  static resume(dir: string, data: TrainData, opts: { create?: CreateOptions; overrides?: Partial<TrainOptions>; hooks?: TrainHooks; parallel?: DataParallel } = {}): Trainer {
    const sp = join(dir, TRAINER_STATE_FILE);
    if (!existsSync(sp)) throw new CheckpointError(`${sp}: no such file: ${dir} holds no trainer checkpoint to resume from`);
    let st: TrainerState;
    try {
      st = JSON.parse(readFileSync(sp, 'utf8')) as TrainerState;
    } catch (e) {
      throw new CheckpointError(`${sp}: not valid JSON (${(e as Error).message})`);
    }
    if (st.version !== 1 || !Number.isInteger(st.step) || !Array.isArray(st.dataRng)) throw new CheckpointError(`${sp}: not a trainer state of this toolkit`);
    if (checkpointStep(dir, '') === undefined) {
      // a save was cut short: fall back to the previous complete checkpoint kept beside it
      const prev = checkpointStep(dir, '.prev');
      if (prev === undefined) throw new CheckpointError(`${dir}: the checkpoint files are from different steps (a save was interrupted) and no complete previous checkpoint is kept`);
      for (const f of CHECKPOINT_FILES) renameSync(prevPath(dir, f), join(dir, f));
      st = JSON.parse(readFileSync(sp, 'utf8')) as TrainerState;
    }
    const model = loadModel(dir, { seed: st.options.seed, ...opts.create });
    const t = new Trainer(model, data, { ...st.options, ...opts.overrides }, { runDir: dir, hooks: opts.hooks ?? {}, ...(opts.parallel ? { parallel: opts.parallel } : {}) });
    const op = join(dir, TRAINING_STATE_FILE);
    const { tensors, metadata } = readSafetensors(op);
    if (metadata.step !== String(st.step)) {
      throw new CheckpointError(`${op} is from step ${metadata.step}, ${TRAINER_STATE_FILE} from step ${st.step}: a save was interrupted; no consistent checkpoint`);
    }
    t.optimizer.params.forEach((p, i) => {
      for (const [k, dst] of [[`m.${p.name}`, t.optimizer.m[i]!], [`v.${p.name}`, t.optimizer.v[i]!]] as const) {
        const s = tensors.get(k);
        if (!s) throw new CheckpointError(`${op}: tensor ${k} is missing`);
        if (s.data.length !== dst.numel) throw new CheckpointError(`${op}: tensor ${k} has ${s.data.length} values, the model needs ${dst.numel}`);
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
