// The model commands shared by mamba-dna and mamba-audio: train, eval, predict, info (generate lives in
// generate-command.ts). Flag names are the same in both CLIs; the domain only changes the data.
import { Command, Option } from 'commander';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { native, resolveDevice, type Device } from '../backend/index.js';
import type { LabelledSource, WindowSource } from '../data/types.js';
import {
  CONFIG_FILE,
  MODEL_FILE,
  PRESETS,
  createModel,
  defaultVocab,
  loadModel,
  makeConfig,
  checkVocabularyFits,
  describeFolder,
  hasWeightFiles,
  readConfig,
  readModelConfigFile,
  type MambaConfig,
  type CreateOptions,
  type MambaModel,
  type PresetName,
} from '../model/index.js';
import { TRAINER_STATE_FILE, Trainer, type EvalInfo, type TrainOptions } from '../train/index.js';
import { choiceOption, parseFloatArg, parseIntArg, withExamples, type CliContext, type Domain, type Registrar } from './common.js';
import { domainData, openLabelledData, type DomainData } from './domain-data.js';
import { UsageError, UserError, asUserErrors } from './errors.js';
import { createProgress } from './progress.js';
import { RUN_FILE, appendMetrics, prepareRunFolder, readRunInfo, truncateMetrics, writePlots, type RunInfo } from './run-folder.js';

interface TrainFlags {
  task?: 'lm' | 'classify';
  data?: string;
  preset?: PresetName;
  config?: string;
  seqLen?: number;
  batch?: number;
  steps?: number;
  lr?: number;
  device: 'auto' | 'cpu' | 'cuda';
  out?: string;
  resume?: boolean;
  force?: boolean;
  seed: number;
  evalEvery?: number;
  evalWindows?: number;
  warmup?: number;
  seqLenWarmup?: boolean;
  recompute?: boolean;
  threads?: number;
  init?: string;
  evalData?: string;
  precision?: 'f32' | 'bf16';
  accum?: number;
}

/**
 * Fine-tuning: copies the backbone (embedding, blocks, final norm) of a trained model into a new model,
 * e.g. a pretrained next-token model into a classifier. Heads stay freshly initialised.
 */
async function initBackboneFrom(model: MambaModel, dir: string): Promise<number> {
  const { copyBackbone } = await import('../model/index.js');
  let res: ReturnType<typeof copyBackbone>;
  try {
    res = copyBackbone(model, dir);
  } catch (e) {
    throw new UserError(`--init ${(e as Error).message}`);
  }
  const { copied, skipped } = res;
  for (const s of skipped) console.error(`  --init: ${s} not copied: left freshly initialised`);
  return copied;
}

/** Peak memory so far: the GPU allocator's peak on CUDA, the process's max RSS on the CPU. */
function peakMemoryBytes(device: Device): number {
  if (device === 'cuda') {
    const stats = native().cuda!.memoryStats!() as { peak: number };
    return stats.peak;
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** What `train` does with no flags: next-token modelling of the shipped genome; the shipped spoken digits. */
const DEFAULT_TASK = { dna: 'lm', audio: 'classify' } as const;

/** Defaults that train a useful model in minutes on a laptop CPU (see README for the figures). */
const CPU_DEFAULTS = {
  dna: { lm: { preset: 'tiny' as PresetName, dModel: 64, nLayer: 4, seqLen: 1024, batch: 8, steps: 600, lr: 4e-3 }, classify: { preset: 'tiny' as PresetName, dModel: 64, nLayer: 2, seqLen: 1024, batch: 8, steps: 300, lr: 3e-3 } },
  audio: { lm: { preset: 'tiny' as PresetName, dModel: 64, nLayer: 4, seqLen: 2048, batch: 4, steps: 400, lr: 3e-3 }, classify: { preset: 'tiny' as PresetName, dModel: 64, nLayer: 2, seqLen: 16000, batch: 8, steps: 120, lr: 3e-3 } },
};

/** On a GPU: the small preset (d_model 256, 8 layers), measured on an H100 to reach 1.74 bits/base on G27 in under 30 s. */
const GPU_DEFAULTS = {
  dna: { lm: { preset: 'small' as PresetName, seqLen: 1024, batch: 16, steps: 400, lr: 2e-3 }, classify: { preset: 'small' as PresetName, seqLen: 4096, batch: 16, steps: 400, lr: 1e-3 } },
  audio: { lm: { preset: 'small' as PresetName, seqLen: 16384, batch: 8, steps: 800, lr: 2e-3 }, classify: { preset: 'small' as PresetName, seqLen: 16000, batch: 32, steps: 800, lr: 1e-3 } },
};

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}


function checkDomain(ctx: CliContext, dir: string, config: MambaConfig): void {
  if (config.domain !== ctx.domain) {
    throw new UserError(`${dir} holds a ${config.domain} model; use mamba-${config.domain}, not ${ctx.name}`);
  }
}

function readConfigFile(path: string): Partial<MambaConfig> {
  try {
    return readModelConfigFile(path); // any layout, every field bounded, errors name the file
  } catch (e) {
    throw new UserError(`--config ${(e as Error).message}`);
  }
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function openTrainData(dd: DomainData, task: 'lm' | 'classify', path: string, seqLen: number, evalPath?: string) {
  if (task === 'lm') {
    const d = await dd.openLm(path);
    if (evalPath) d.valid = await dd.openEval(evalPath);
    const longest = d.train.maxWindowLength();
    if (longest < seqLen + 1) {
      throw new UserError(`--seq-len ${seqLen} is longer than every record of ${path} (the longest training part holds ${fmtInt(longest)} tokens); use --seq-len ${2 ** Math.floor(Math.log2(Math.max(2, longest - 1)))} or less`);
    }
    return { train: d.train as WindowSource | LabelledSource, valid: d.valid as WindowSource | LabelledSource, classes: undefined, evalName: 'held-out part' };
  }
  const d = await openLabelledData(dd, path);
  if (d.train.classes.length < 2) throw new UserError(`${path}: a classifier needs at least 2 classes, the set has ${d.train.classes.length} (${d.train.classes.join(', ')})`);
  return { train: d.train, valid: d.valid, classes: d.train.classes, evalName: `${d.validSplit} split` };
}

async function train(ctx: CliContext, flags: TrainFlags): Promise<void> {
  const dd = domainData(ctx.domain);
  const device: Device = await asUserErrors(() => resolveDevice(flags.device));
  if (flags.threads) (await import('../backend/index.js')).native().cpu.setNumThreads!(flags.threads);
  let out = flags.out;
  if (flags.resume && !out) throw new UsageError('--resume needs --out DIR (the run folder to continue)');
  const prior = flags.resume && out ? readRunInfo(resolve(out)) : undefined;
  const task = prior?.task ?? flags.task ?? DEFAULT_TASK[ctx.domain];
  out = resolve(out ?? join('runs', `${ctx.domain}-${task}-${timestamp()}`));
  const dataPath = resolve(flags.data ?? prior?.data ?? dd.defaultData(task));
  if (!flags.data && task === 'classify' && !existsSync(dataPath)) {
    throw new UserError(`no --data given and ${dataPath} does not exist; build the labelled set first (${ctx.name} dataset build ...) or pass --data`);
  }
  const cpuDef = device === 'cuda' ? { ...CPU_DEFAULTS[ctx.domain][task], ...GPU_DEFAULTS[ctx.domain][task] } : CPU_DEFAULTS[ctx.domain][task];
  const preset: PresetName = flags.preset ?? cpuDef.preset;
  const precision = flags.precision ?? (device === 'cuda' ? 'bf16' : 'f32');
  if (precision === 'bf16' && device !== 'cuda') throw new UsageError('--precision bf16 needs --device cuda (the CPU kernels compute in f32)');
  const seqLen = flags.seqLen ?? cpuDef.seqLen;
  // a bad --config is refused before any folder is made or data opened
  const fileConfig = flags.config ? readConfigFile(flags.config) : undefined;
  prepareRunFolder(out, { force: flags.force, resume: flags.resume });

  if (flags.evalData && task !== 'lm') throw new UsageError('--eval-data is for --task lm (classifiers evaluate on their set\'s valid/test split)');
  const evalPath = flags.evalData ? resolve(flags.evalData) : prior?.evalData;
  const data = await openTrainData(dd, task, dataPath, seqLen, evalPath);
  const progress = createProgress();
  progress.log(`${ctx.name} train: ${task} on ${data.train.describe()}`);
  progress.log(`  evaluating on ${data.evalName}: ${data.valid.describe()}`);

  const trainOpts: Partial<TrainOptions> = {
    seqLen,
    batchSize: flags.batch ?? cpuDef.batch,
    steps: flags.steps ?? cpuDef.steps,
    lr: flags.lr ?? cpuDef.lr,
    seed: flags.seed,
    evalEvery: flags.evalEvery ?? 0,
    evalWindows: flags.evalWindows ?? 64,
    checkpointEvery: 0,
  };
  if (flags.warmup !== undefined) trainOpts.warmupSteps = flags.warmup;
  if (flags.accum !== undefined) trainOpts.accumSteps = flags.accum;
  if (flags.seqLenWarmup) trainOpts.seqLenWarmup = { start: Math.min(seqLen, 1024), steps: Math.floor((trainOpts.steps ?? 1000) / 4) } as TrainOptions['seqLenWarmup'];
  if (!trainOpts.evalEvery) trainOpts.evalEvery = Math.max(1, Math.floor((trainOpts.steps ?? 100) / 10));
  trainOpts.checkpointEvery = trainOpts.evalEvery;

  const hooks = {
    onStep(s: { step: number; loss: number; bitsPerToken: number; accuracy?: number; lr: number; gradNorm: number; seqLen: number; tokensPerS: number }) {
      appendMetrics(out!, {
        step: s.step, split: 'train', loss: s.loss, bits_per_token: s.bitsPerToken, ...(s.accuracy !== undefined ? { accuracy: s.accuracy } : {}),
        tokens_per_s: s.tokensPerS, lr: s.lr, grad_norm: s.gradNorm, seq_len: s.seqLen, peak_mem_bytes: peakMemoryBytes(device),
      });
      progress.update(s.step, {
        loss: s.loss.toFixed(4), 'bits/tok': s.bitsPerToken.toFixed(3), ...(s.accuracy !== undefined ? { acc: s.accuracy.toFixed(3) } : {}),
        'tok/s': fmtInt(s.tokensPerS),
      });
      // the step loop never waits on I/O; yield to the event loop once a step so Ctrl-C (SIGINT) and
      // the progress bar's timer get their turn
      return new Promise<void>((r) => setImmediate(r));
    },
    onEval(e: EvalInfo) {
      appendMetrics(out!, { step: e.step, split: 'eval', loss: e.loss, bits_per_token: e.bitsPerToken, perplexity: e.perplexity, accuracy: e.accuracy, count: e.count, ...(e.confusion ? { confusion: e.confusion } : {}) });
      progress.log(`  eval @ step ${e.step}: loss ${e.loss.toFixed(4)}, ${e.bitsPerToken.toFixed(4)} bits/token, accuracy ${e.accuracy.toFixed(4)} (${fmtInt(e.count)} ${task === 'lm' ? 'tokens' : 'examples'})`);
    },
    onCheckpoint() {
      writePlots(out!, `${ctx.name} ${task}`);
    },
  };

  let trainer: Trainer;
  if (flags.resume) {
    const config = await asUserErrors(() => readConfig(out!));
    checkDomain(ctx, out, config);
    const overrides: Partial<TrainOptions> = {};
    if (flags.steps !== undefined) overrides.steps = flags.steps;
    trainer = await asUserErrors(() => Trainer.resume(out!, data, { create: { device, precision }, overrides, hooks }));
    truncateMetrics(out, trainer.step);
    progress.log(`  resuming ${out} at step ${trainer.step} of ${trainer.options.steps}`);
  } else {
    const base = fileConfig ? fileConfig : preset === 'tiny' && !flags.preset ? { ...PRESETS.tiny, d_model: cpuDef.dModel, n_layer: cpuDef.nLayer } : PRESETS[preset];
    const config = await asUserErrors(() =>
      makeConfig(base as Partial<MambaConfig>, {
        domain: ctx.domain,
        task,
        vocab_size: defaultVocab(ctx.domain),
        ...(task === 'classify' ? { num_classes: data.classes!.length } : {}),
      }),
    );
    const model: MambaModel = await asUserErrors(() => createModel(config, { device, seed: flags.seed, recompute: flags.recompute ?? false, precision }));
    if (flags.init) {
      const n = await initBackboneFrom(model, resolve(flags.init));
      progress.log(`  initialised ${n} backbone tensors from ${resolve(flags.init)}`);
    }
    trainer = await asUserErrors(() => new Trainer(model, data, trainOpts, { runDir: out, hooks }));
    const info: RunInfo = { tool: ctx.name, domain: ctx.domain, task, data: dataPath, ...(evalPath ? { evalData: evalPath } : {}), ...(data.classes ? { classes: data.classes } : {}), precision, created: new Date().toISOString() };
    writeFileSync(join(out, RUN_FILE), `${JSON.stringify(info, null, 2)}\n`);
    progress.log(`  model: d_model ${config.d_model}, ${config.n_layer} layers, ${fmtInt(model.numParameters())} parameters on ${device}${device === 'cuda' ? ` (${precision} activations)` : ''}; seq-len ${trainer.options.seqLen}, batch ${trainer.options.batchSize}, ${trainer.options.steps} steps, lr ${trainer.options.lr}`);
  }
  progress.log(`  run folder: ${out}`);

  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      progress.log('  interrupted: saving a checkpoint after this step (Ctrl-C again to quit without saving)');
      trainer.requestStop();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  progress.start(trainer.options.steps, trainer.step, 'train');
  let summary;
  try {
    summary = await asUserErrors(() => trainer.run());
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    writePlots(out, `${ctx.name} ${task}`);
  }
  const ev = summary.lastEval;
  const line = ev ? `eval loss ${ev.loss.toFixed(4)}, ${ev.bitsPerToken.toFixed(4)} bits/token, accuracy ${ev.accuracy.toFixed(4)}` : `train loss ${summary.lastLoss.toFixed(4)}`;
  console.log(`${summary.stopped ? 'stopped' : 'done'} at step ${summary.step} in ${summary.elapsedS.toFixed(1)} s: ${line}`);
  console.log(`checkpoint: ${out} (model.safetensors, config.json, metrics.jsonl, report.html)`);
}

// ---- eval -------------------------------------------------------------------------------------

interface EvalFlags {
  checkpoint: string;
  data?: string;
  split?: 'train' | 'valid' | 'test';
  seqLen?: number;
  batch: number;
  windows: number;
  device: 'auto' | 'cpu' | 'cuda';
  json?: boolean;
}

/**
 * Loads a run's model for inference: on a GPU with the activations it trained with, and with block
 * recomputation on, so a forward pass keeps one block's inside at a time (inference needs no saved
 * activations; a 2^20-token forward of the small model then fits beside the weights).
 */
function openCheckpoint(ctx: CliContext, dir: string, device: Device): { model: MambaModel; run?: RunInfo } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`--checkpoint ${dir}: no such run folder`);
  if (!hasWeightFiles(dir)) throw new UserError(`--checkpoint ${dir}: no ${MODEL_FILE} in it (did training save a checkpoint?)`);
  const config = readConfigOrThrow(dir, ctx.domain);
  checkDomain(ctx, dir, config);
  checkVocabularyFits(config, ctx.domain, dir);
  const run = readRunInfo(dir);
  const precision = device === 'cuda' ? run?.precision ?? 'f32' : 'f32';
  const model = loadModelOrThrow(dir, { device, precision, recompute: true, domain: ctx.domain });
  return { model, run };
}

function readConfigOrThrow(dir: string, domain?: Domain): MambaConfig {
  try {
    return readConfig(dir, { domain });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}

function loadModelOrThrow(dir: string, opts: CreateOptions & { domain?: Domain }): MambaModel {
  try {
    return loadModel(dir, opts);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}

function trainerSeqLen(dir: string): number | undefined {
  const p = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(p)) return undefined;
  try {
    return (JSON.parse(readFileSync(p, 'utf8')) as { options?: { seqLen?: number } }).options?.seqLen;
  } catch {
    return undefined;
  }
}

async function evaluate(ctx: CliContext, flags: EvalFlags): Promise<void> {
  const dir = resolve(flags.checkpoint);
  const device = await asUserErrors(() => resolveDevice(flags.device));
  const { model, run } = openCheckpoint(ctx, dir, device);
  const dd = domainData(ctx.domain);
  const task = model.config.task;
  const dataPath = resolve(flags.data ?? run?.data ?? dd.defaultData(task));
  const seqLen = flags.seqLen ?? trainerSeqLen(dir) ?? 1024;
  let src: WindowSource | LabelledSource;
  let what: string;
  if (task === 'lm' && !flags.data && run?.evalData && flags.split !== 'train') {
    src = await dd.openEval(run.evalData);
    what = 'held-out data';
  } else if (task === 'lm') {
    const d = await dd.openLm(dataPath);
    const split = flags.split ?? 'valid';
    src = split === 'train' ? d.train : d.valid;
    what = `${split === 'train' ? 'training' : 'held-out'} part`;
  } else {
    const splits = await dd.splitsOf(dataPath);
    const split = flags.split ?? (splits.includes('test') ? 'test' : 'valid');
    if (!splits.includes(split)) throw new UserError(`${dataPath} has no ${split} split (it has ${splits.join(', ')})`);
    src = await dd.openLabelled(dataPath, split);
    if ((src as LabelledSource).classes.length !== model.config.num_classes) {
      throw new UserError(`${dataPath} has ${(src as LabelledSource).classes.length} classes, the model was trained on ${model.config.num_classes}`);
    }
    what = `${split} split`;
  }
  const trainer = await asUserErrors(() => new Trainer(model, { train: src, valid: src }, { seqLen, batchSize: flags.batch, evalWindows: flags.windows, steps: 1 }));
  const t0 = Date.now();
  const e = await asUserErrors(() => trainer.evaluate(src));
  const secs = (Date.now() - t0) / 1000;
  const result = { checkpoint: dir, data: dataPath, split: what, seq_len: seqLen, loss: e.loss, bits_per_token: e.bitsPerToken, perplexity: e.perplexity, accuracy: e.accuracy, count: e.count, seconds: secs, ...(e.confusion ? { classes: e.classes, confusion: e.confusion } : {}) };
  if (flags.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`${src.describe()}`);
  console.log(`${what}, seq-len ${seqLen}: loss ${e.loss.toFixed(4)} nats, ${e.bitsPerToken.toFixed(4)} bits/token, perplexity ${e.perplexity.toFixed(3)}, accuracy ${e.accuracy.toFixed(4)} over ${fmtInt(e.count)} ${task === 'lm' ? 'tokens' : 'examples'} (${secs.toFixed(1)} s)`);
  if (e.confusion && e.classes) {
    const w = Math.max(6, ...e.classes.map((c) => c.length));
    console.log(`confusion (rows: true class, columns: predicted)`);
    console.log(`${''.padEnd(w)} ${e.classes.map((c) => c.padStart(w)).join(' ')}`);
    e.confusion.forEach((row, i) => console.log(`${e.classes![i]!.padEnd(w)} ${row.map((v) => String(v).padStart(w)).join(' ')}`));
  }
}

// ---- info -------------------------------------------------------------------------------------

function info(ctx: CliContext, flags: { checkpoint: string; json?: boolean }): void {
  const dir = resolve(flags.checkpoint);
  if (!existsSync(join(dir, CONFIG_FILE))) throw new UserError(`--checkpoint ${dir}: no ${CONFIG_FILE} (not a run or model folder)`);
  const config = readConfigOrThrow(dir, ctx.domain);
  checkDomain(ctx, dir, config);
  const model = loadModelOrThrow(dir, { device: 'cpu', domain: ctx.domain });
  const origin = describeFolder(dir, { domain: ctx.domain });
  const st = existsSync(join(dir, TRAINER_STATE_FILE)) ? (JSON.parse(readFileSync(join(dir, TRAINER_STATE_FILE), 'utf8')) as Record<string, unknown>) : undefined;
  const run = readRunInfo(dir);
  const out = {
    folder: dir,
    domain: config.domain,
    task: config.task,
    config,
    parameters: model.numParameters(),
    model_bytes: origin.bytes,
    layout: origin.layout,
    source: origin.source,
    ...(run ? { data: run.data, classes: run.classes } : {}),
    ...(st ? { step: st.step, tokens: st.tokens, train_seconds: st.elapsedS, options: st.options, last_eval: st.lastEval } : {}),
  };
  if (flags.json) {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  console.log(`${dir}`);
  console.log(`  ${config.domain} ${config.task} model: d_model ${config.d_model}, ${config.n_layer} layers, d_state ${config.d_state}, expand ${config.expand}, vocab ${config.vocab_size}${config.task === 'classify' ? `, ${config.num_classes} classes (${config.pooling} pooling)` : ''}`);
  console.log(`  ${fmtInt(out.parameters)} parameters, ${origin.files.join(', ')} ${(out.model_bytes / 2 ** 20).toFixed(2)} MiB (${origin.dtypes.join(', ')})`);
  console.log(`  layout: ${origin.layout}, from ${origin.source}`);
  if (run) console.log(`  data: ${run.data}${run.classes ? ` (classes: ${run.classes.join(', ')})` : ''}`);
  if (st) {
    const o = st.options as TrainOptions;
    console.log(`  trained ${st.step} of ${o.steps} steps (${fmtInt(st.tokens as number)} tokens, ${(st.elapsedS as number).toFixed(1)} s), seq-len ${o.seqLen}, batch ${o.batchSize}, lr ${o.lr}`);
    const e = st.lastEval as EvalInfo | undefined;
    if (e) console.log(`  last eval (step ${e.step}): ${e.bitsPerToken.toFixed(4)} bits/token, accuracy ${e.accuracy.toFixed(4)}`);
  }
}

// ---- predict ----------------------------------------------------------------------------------

interface PredictFlags {
  checkpoint: string;
  seqLen?: number;
  windows: number;
  format: 'tsv' | 'json';
  device: 'auto' | 'cpu' | 'cuda';
}

async function predict(ctx: CliContext, inputs: string[], flags: PredictFlags): Promise<void> {
  const dir = resolve(flags.checkpoint);
  const device = await asUserErrors(() => resolveDevice(flags.device));
  const { model, run } = openCheckpoint(ctx, dir, device);
  if (model.config.task !== 'classify') throw new UserError(`${dir} holds a next-token (lm) model; predict needs a classifier (train with --task classify)`);
  const classes = run?.classes ?? Array.from({ length: model.config.num_classes }, (_, i) => `class${i}`);
  const seqLen = flags.seqLen ?? trainerSeqLen(dir) ?? 1024;
  const { predictionItems } = await import('./predict-items.js');
  const rows: { item: string; windows: number; probs: number[] }[] = [];
  for (const input of inputs) {
    if (!existsSync(input)) throw new UserError(`${input}: no such file or folder`);
    for await (const item of predictionItems(ctx.domain, input, seqLen, flags.windows)) {
      const B = item.windows.length;
      const ids = new Int32Array(B * seqLen);
      item.windows.forEach((w, b) => ids.set(w, b * seqLen));
      const r = await asUserErrors(() => (model as import('../model/index.js').MambaClassifier).forward({ B, L: seqLen, inputs: ids, labels: new Int32Array(B) }));
      const C = model.config.num_classes;
      const mean = new Array<number>(C).fill(0);
      for (let b = 0; b < B; b++) {
        let mx = -Infinity;
        for (let c = 0; c < C; c++) mx = Math.max(mx, r.logits[b * C + c]!);
        let z = 0;
        for (let c = 0; c < C; c++) z += Math.exp(r.logits[b * C + c]! - mx);
        for (let c = 0; c < C; c++) mean[c]! += Math.exp(r.logits[b * C + c]! - mx) / z / B;
      }
      rows.push({ item: item.name, windows: B, probs: mean });
    }
  }
  if (flags.format === 'json') {
    console.log(JSON.stringify(rows.map((r) => ({ item: r.item, windows: r.windows, predicted: classes[argmax(r.probs)], probabilities: Object.fromEntries(classes.map((c, i) => [c, r.probs[i]])) })), null, 2));
  } else {
    console.log(['item', 'windows', 'predicted', ...classes].join('\t'));
    for (const r of rows) console.log([r.item, r.windows, classes[argmax(r.probs)], ...r.probs.map((p) => p.toFixed(4))].join('\t'));
  }
}

function argmax(a: number[]): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

// ---- registration -----------------------------------------------------------------------------

const deviceOption = () => choiceOption('--device <device>', 'where to compute', ['auto', 'cpu', 'cuda'], 'auto');

export const registerModelCommands: Registrar = (program, ctx) => {
  const ex = ctx.domain === 'dna'
    ? { data: 'genome.fa.gz', set: 'datasets/build/species', region: 'NC_011333.1:1-1000' }
    : { data: 'speech.wav', set: 'datasets/audio/digits', region: '' };
  const trainCmd = new Command('train')
    .description(`train a Mamba model (next-token lm or classify); with no flags, ${ctx.domain === 'dna' ? 'a small next-token model of the shipped H. pylori genome' : 'a spoken-digit classifier on the shipped digits'}`)
    .addOption(choiceOption('--task <task>', `lm (next-token) or classify (default: ${DEFAULT_TASK[ctx.domain]})`, ['lm', 'classify']))
    .option('--data <path>', `${ctx.domain === 'dna' ? 'FASTA file (plain, indexed or bgzip)' : 'WAV file or folder'} for lm; a dataset folder or manifest for classify (default: the shipped data)`)
    .addOption(choiceOption('--preset <name>', 'model size: tiny (default on the CPU: d_model 64), small (d_model 256, 8 layers; default on a GPU), 130m', Object.keys(PRESETS)))
    .addOption(choiceOption('--precision <p>', 'activations on the GPU: bf16 (default there) or f32; weights, gradients and the residual stream stay f32', ['f32', 'bf16']))
    .option('--config <file>', 'a JSON model config (MambaConfig fields) instead of --preset')
    .option('--seq-len <n>', 'training sequence length in tokens (2^k allowed)', parseIntArg(1, 2 ** 24))
    .option('--batch <n>', 'sequences per forward pass', parseIntArg(1, 4096))
    .option('--accum <n>', 'forward passes accumulated per optimizer step (more sequences per step at long lengths)', parseIntArg(1, 4096))
    .option('--steps <n>', 'optimizer steps', parseIntArg(1, 1e9))
    .option('--lr <x>', 'peak learning rate', parseFloatArg(1e-7, 1))
    .option('--warmup <n>', 'learning-rate warmup steps', parseIntArg(0, 1e9))
    .option('--seq-len-warmup', 'start at a short sequence length and double up to --seq-len')
    .option('--eval-data <path>', 'lm: evaluate on all of this file (e.g. a held-out genome) instead of the held-out tail of --data')
    .option('--eval-every <n>', 'evaluate (and checkpoint) every n steps (default: 10 times a run)', parseIntArg(1, 1e9))
    .option('--eval-windows <n>', 'held-out windows (lm) or examples per source (classify) per evaluation', parseIntArg(1, 1e7))
    .option('--recompute', 'recompute each block in backward (less memory for long sequences)')
    .option('--init <dir>', 'start from the backbone of a trained run folder (e.g. a pretrained lm, to fine-tune a classifier)')
    .addOption(deviceOption())
    .option('--out <dir>', 'run folder (default: runs/<domain>-<task>-<time>)')
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--force', 'overwrite an existing --out folder')
    .option('--seed <n>', 'random seed', parseIntArg(0, 2 ** 32 - 1), 0)
    .addOption(new Option('--threads <n>', 'CPU threads').argParser(parseIntArg(1, 1024)))
    .action((opts: TrainFlags) => train(ctx, opts));
  program.addCommand(withExamples(trainCmd, [
    `${ctx.name} train`,
    `${ctx.name} train --data ${ex.data} --seq-len 4096 --steps 2000 --out runs/my-run`,
    ctx.domain === 'dna' ? `${ctx.name} train --task classify --data ${ex.set} --out runs/cls` : `${ctx.name} train --task lm --data speech.wav --seq-len 4096 --out runs/speech`,
    `${ctx.name} train --out runs/my-run --resume --steps 4000`,
  ]));

  const evalCmd = new Command('eval')
    .description('evaluate a trained model: loss, bits per token, perplexity, accuracy (and a confusion matrix for classifiers)')
    .requiredOption('--checkpoint <dir>', 'run folder (from train --out)')
    .option('--data <path>', 'data to evaluate (default: the run\'s data: its held-out part, or its test split)')
    .addOption(choiceOption('--split <split>', 'which part of the data', ['train', 'valid', 'test']))
    .option('--seq-len <n>', 'sequence length (default: the training length)', parseIntArg(1, 2 ** 24))
    .option('--batch <n>', 'sequences per forward pass', parseIntArg(1, 4096), 8)
    .option('--windows <n>', 'lm: windows to evaluate; classify: windows per source', parseIntArg(1, 1e7), 64)
    .addOption(deviceOption())
    .option('--json', 'print the result as JSON')
    .action((opts: EvalFlags) => evaluate(ctx, opts));
  program.addCommand(withExamples(evalCmd, [`${ctx.name} eval --checkpoint runs/my-run`, `${ctx.name} eval --checkpoint runs/cls --split test --json`]));

  const predictCmd = new Command('predict')
    .description(`class probabilities per ${ctx.domain === 'dna' ? 'FASTA record' : 'WAV file'} from a classifier, as TSV or JSON`)
    .argument('<inputs...>', ctx.domain === 'dna' ? 'FASTA files' : 'WAV files or folders')
    .requiredOption('--checkpoint <dir>', 'run folder of a classifier')
    .option('--seq-len <n>', 'window length (default: the training length)', parseIntArg(1, 2 ** 24))
    .option('--windows <n>', 'windows averaged per record (DNA) ', parseIntArg(1, 1e6), 8)
    .addOption(choiceOption('--format <fmt>', 'output format', ['tsv', 'json'], 'tsv'))
    .addOption(deviceOption())
    .action((inputs: string[], opts: PredictFlags) => predict(ctx, inputs, opts));
  program.addCommand(withExamples(predictCmd, [`${ctx.name} predict --checkpoint runs/cls ${ctx.domain === 'dna' ? 'unknown.fa' : 'clip.wav'}`]));

  const infoCmd = new Command('info')
    .description('show a checkpoint: config, size, training state')
    .requiredOption('--checkpoint <dir>', 'run folder')
    .option('--json', 'print as JSON')
    .action((opts: { checkpoint: string; json?: boolean }) => info(ctx, opts));
  program.addCommand(withExamples(infoCmd, [`${ctx.name} info --checkpoint runs/my-run`]));
};
