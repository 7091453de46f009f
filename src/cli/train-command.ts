// `train`: the defaults (src/model/presets.ts), the data (train-data.ts), the run folder (run-folder.ts)
// and Ctrl-C (train-signals.ts) meet here. A fresh run checks its data and options before it makes its
// run folder; --resume continues the committed checkpoint, or starts a run that has none again from its
// run.json.
import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { native, resolveDevice, type Device } from '../backend/index.js';
import type { Task } from '../data/types.js';
import {
  copyBackbone,
  createModel,
  defaultVocab,
  makeConfig,
  readConfig,
  readModelConfigFile,
  type MambaConfig,
  type MambaModel,
} from '../model/index.js';
import {
  DEFAULT_TASK,
  PRESETS,
  presetHelp,
  shapeOf,
  trainDefaults,
  type PresetName,
  type TrainDefaults,
} from '../model/presets.js';
import {
  TRAINER_STATE_FILE,
  Trainer,
  describeResult,
  hasCheckpoint,
  type EvalInfo,
  type StepInfo,
  type SeqLenWarmup,
  type TrainOptions,
  warmupDoublings,
} from '../train/index.js';
import { choiceOption, parseFloatArg, parseIntArg, withExamples, type CliContext } from './common.js';
import { domainData, refuseStreamData } from './domain-data.js';
import { checkOutputFolder } from './output.js';
import { UsageError, UserError, asUserErrors } from './errors.js';
import { createProgress, type Progress } from './progress.js';
import {
  RUN_FILE,
  appendMetrics,
  createRunFolder,
  checkNewRunFolder,
  runToResume,
  truncateMetrics,
  writePlots,
  type RunInfo,
} from './run-folder.js';
import { openTrainData, type TrainDataSet } from './train-data.js';
import { stopOnInterrupt } from './train-signals.js';

interface TrainFlags {
  task?: Task;
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
  seqLenWarmup?: number;
  seqLenWarmupSteps?: number;
  recompute?: boolean;
  threads?: number;
  rate?: number;
  init?: string;
  evalData?: string;
  precision?: 'f32' | 'bf16';
  accum?: number;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

function readConfigFile(path: string): Partial<MambaConfig> {
  try {
    return readModelConfigFile(path); // any layout, every field bounded, errors name the file
  } catch (e) {
    throw new UserError(`--config ${(e as Error).message}`);
  }
}

/** Peak memory so far: the GPU allocator's peak on CUDA, the process's max RSS on the CPU. */
function peakMemoryBytes(device: Device): number {
  if (device === 'cuda') return (native().cuda!.memoryStats!() as { peak: number }).peak;
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * Fine-tuning: copies the backbone (embedding, blocks, final norm) of a trained model into a new model,
 * e.g. a pretrained next-token model into a classifier. Heads stay freshly initialised.
 */
async function initBackboneFrom(model: MambaModel, dir: string): Promise<number> {
  let res: ReturnType<typeof copyBackbone>;
  try {
    res = copyBackbone(model, dir);
  } catch (e) {
    throw new UserError(`--init ${(e as Error).message}`);
  }
  for (const s of res.skipped) console.error(`  --init: ${s} not copied: left freshly initialised`);
  return res.copied;
}

/** Metrics rows, progress and plots of a run. */
function runHooks(out: string, task: Task, title: string, device: Device, progress: Progress) {
  return {
    onStep(s: StepInfo) {
      appendMetrics(out, {
        step: s.step,
        split: 'train',
        loss: s.loss,
        ...(s.bitsPerToken !== undefined ? { bits_per_token: s.bitsPerToken } : {}),
        ...(s.accuracy !== undefined ? { accuracy: s.accuracy } : {}),
        tokens_per_s: s.tokensPerS,
        lr: s.lr,
        grad_norm: s.gradNorm,
        seq_len: s.seqLen,
        batch: s.batch,
        peak_mem_bytes: peakMemoryBytes(device),
      });
      progress.update(s.step, {
        ...(task === 'lm'
          ? { loss: s.loss.toFixed(4), 'bits/tok': s.bitsPerToken!.toFixed(3) }
          : { 'cross-entropy': s.loss.toFixed(4) }),
        ...(s.accuracy !== undefined ? { acc: s.accuracy.toFixed(3) } : {}),
        'tok/s': fmtInt(s.tokensPerS),
      });
      // the step loop never waits on I/O; yield to the event loop once a step so Ctrl-C (SIGINT) and
      // the progress bar's timer get their turn
      return new Promise<void>((r) => setImmediate(r));
    },
    onEval(e: EvalInfo) {
      appendMetrics(out, {
        step: e.step,
        split: 'eval',
        loss: e.loss,
        ...(e.bitsPerToken !== undefined ? { bits_per_token: e.bitsPerToken, perplexity: e.perplexity } : {}),
        accuracy: e.accuracy,
        count: e.count,
        windows: e.windows,
        tokens: e.tokens,
        seq_len: e.seqLen,
        data: e.data,
        ...(e.confusion ? { confusion: e.confusion } : {}),
      });
      const scored = `${fmtInt(e.windows)} ${task === 'lm' ? 'windows' : 'examples'} (${fmtInt(e.tokens)} tokens)`;
      progress.log(`  eval @ step ${e.step}: ${describeResult(e)} on ${scored}`);
    },
    onCheckpoint() {
      writePlots(out, title);
    },
  };
}

/** The options a run recorded: run.json, else (older runs) its trainer_state.json. */
function recordedOptions(dir: string, run: RunInfo | undefined): TrainOptions | undefined {
  if (run?.options) return run.options;
  const p = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(p)) return undefined;
  try {
    return (JSON.parse(readFileSync(p, 'utf8')) as { options?: TrainOptions }).options;
  } catch {
    return undefined;
  }
}

async function train(ctx: CliContext, flags: TrainFlags): Promise<void> {
  if (flags.resume && !flags.out) throw new UsageError('--resume needs --out DIR (the run folder to continue)');
  if (flags.resume && flags.force) {
    throw new UsageError('--resume continues the run in --out, --force replaces it: give one of them');
  }
  if (flags.out) checkOutputFolder(flags.out);
  for (const p of [flags.data, flags.evalData]) refuseStreamData(p);
  const device: Device = await asUserErrors(() => resolveDevice(flags.device));
  if (flags.threads) native().cpu.setNumThreads!(flags.threads);
  const progress = createProgress();
  const prepare = flags.resume ? prepareResume : prepareFresh;
  const prepared = await prepare(ctx, flags, device, progress);
  const { trainer, out, task } = prepared;
  progress.log(`  run folder: ${out}`);

  const unhook = stopOnInterrupt(trainer, (l) => progress.log(l));
  progress.start(trainer.options.steps, trainer.step, 'train');
  let summary;
  try {
    summary = await asUserErrors(() => trainer.run());
  } finally {
    progress.stop();
    unhook();
    writePlots(out, `${ctx.name} ${task}`);
  }
  const ev = summary.lastEval;
  const line = ev
    ? `last eval (step ${ev.step}): ${describeResult(ev)}`
    : `train ${task === 'lm' ? 'loss' : 'cross-entropy'} ${summary.lastLoss.toFixed(4)} (no evaluation yet)`;
  const at = `at step ${summary.step} in ${summary.elapsedS.toFixed(1)} s`;
  console.log(`${summary.stopped ? 'stopped' : 'done'} ${at}: ${line}`);
  console.log(`checkpoint: ${out} (model.safetensors, config.json, metrics.jsonl, report.html)`);
}

interface Prepared {
  trainer: Trainer;
  out: string;
  task: Task;
}

/** --seq-len-warmup START [--seq-len-warmup-steps N], checked against the run's length and steps. */
function seqLenWarmupOf(flags: TrainFlags, seqLen: number, steps: number): SeqLenWarmup | undefined {
  if (flags.seqLenWarmupSteps !== undefined && flags.seqLenWarmup === undefined)
    throw new UsageError('--seq-len-warmup-steps needs --seq-len-warmup START (the first sequence length)');
  if (flags.seqLenWarmup === undefined) return undefined;
  const w = { start: flags.seqLenWarmup, steps: flags.seqLenWarmupSteps ?? Math.floor(steps / 4) };
  const doublings = warmupDoublings(seqLen, w);
  if (typeof doublings === 'string') throw new UsageError(`--seq-len-warmup: ${doublings}`);
  if (w.steps >= steps) throw new UsageError(`--seq-len-warmup-steps (${w.steps}) must be below --steps (${steps})`);
  return w;
}

function trainOptions(flags: TrainFlags, d: TrainDefaults, seqLen: number, keepBest: boolean): Partial<TrainOptions> {
  const steps = flags.steps ?? d.steps;
  const o: Partial<TrainOptions> = {
    seqLen,
    batchSize: flags.batch ?? d.batch,
    steps,
    lr: flags.lr ?? d.lr,
    seed: flags.seed,
    keepBest,
  };
  if (flags.evalWindows !== undefined) o.evalWindows = flags.evalWindows;
  if (flags.warmup !== undefined) o.warmupSteps = flags.warmup;
  if (flags.accum !== undefined) o.accumSteps = flags.accum;
  const warmup = seqLenWarmupOf(flags, seqLen, steps);
  if (warmup) o.seqLenWarmup = warmup;
  o.evalEvery = flags.evalEvery ?? Math.max(1, Math.floor(steps / 10));
  o.checkpointEvery = o.evalEvery;
  return o;
}

function logData(ctx: CliContext, task: Task, data: TrainDataSet, progress: Progress): void {
  progress.log(`${ctx.name} train: ${task} on ${data.train.describe()}`);
  progress.log(`  evaluating on the ${data.evalName}: ${data.valid.describe()}`);
  if (!data.selectOnEval) {
    progress.log(
      '  the set has no valid split: evaluating on its test split, and keeping no best/ model ' +
        '(no model is chosen on test data)',
    );
  }
}

async function prepareFresh(ctx: CliContext, flags: TrainFlags, device: Device, progress: Progress): Promise<Prepared> {
  const dd = domainData(ctx.domain, { rate: flags.rate });
  const task = flags.task ?? DEFAULT_TASK[ctx.domain];
  const out = resolve(flags.out ?? join('runs', `${ctx.domain}-${task}-${timestamp()}`));
  checkNewRunFolder(out, flags.force);
  const dataPath = resolve(flags.data ?? dd.defaultData(task));
  if (!flags.data && task === 'classify' && !existsSync(dataPath)) {
    const recipe = ctx.domain === 'dna' ? 'species' : 'digits';
    throw new UserError(
      `no --data given and ${dataPath} does not exist; build it first with ` +
        `\`${ctx.name} dataset build ${recipe} --out ${dirname(dataPath)}\`, or pass --data`,
    );
  }
  if (flags.evalData && task !== 'lm') {
    throw new UsageError("--eval-data is for --task lm (classifiers evaluate on their set's valid split)");
  }
  // a bad --config is refused before the data is opened or the folder made
  const fileConfig = flags.config ? readConfigFile(flags.config) : undefined;
  const d = trainDefaults(ctx.domain, task, device);
  const precision = flags.precision ?? (device === 'cuda' ? 'bf16' : 'f32');
  if (precision === 'bf16' && device !== 'cuda') {
    throw new UsageError('--precision bf16 needs --device cuda (the CPU kernels compute in f32)');
  }
  const seqLen = flags.seqLen ?? d.seqLen;
  seqLenWarmupOf(flags, seqLen, flags.steps ?? d.steps); // bad warmup flags fail before the data is read
  const evalPath = flags.evalData ? resolve(flags.evalData) : undefined;
  const data = await openTrainData(dd, task, dataPath, seqLen, evalPath);
  logData(ctx, task, data, progress);

  const base = fileConfig ?? shapeOf(flags.preset ?? d.model);
  const config = await asUserErrors(() =>
    makeConfig(base as Partial<MambaConfig>, {
      domain: ctx.domain,
      task,
      vocab_size: defaultVocab(ctx.domain),
      ...(task === 'classify' ? { num_classes: data.classes!.length } : {}),
    }),
  );
  const recompute = flags.recompute ?? false;
  const model = await asUserErrors(() => createModel(config, { device, seed: flags.seed, recompute, precision }));
  const init = flags.init ? resolve(flags.init) : undefined;
  if (init) progress.log(`  initialised ${await initBackboneFrom(model, init)} backbone tensors from ${init}`);
  const title = `${ctx.name} ${task}`;
  const options = trainOptions(flags, d, seqLen, data.selectOnEval);
  const hooks = runHooks(out, task, title, device, progress);
  const trainer = await asUserErrors(() => new Trainer(model, data, options, { runDir: out, hooks }));
  const info: RunInfo = {
    tool: ctx.name,
    domain: ctx.domain,
    task,
    data: dataPath,
    ...(evalPath ? { evalData: evalPath } : {}),
    ...(data.classes ? { classes: data.classes } : {}),
    ...(dd.rate ? { rate: dd.rate } : {}),
    precision,
    created: new Date().toISOString(),
    config,
    options: trainer.options,
    seed: flags.seed,
    ...(init ? { init } : {}),
    recompute,
  };
  createRunFolder(out, info, flags.force);
  const o = trainer.options;
  const where = `${device}${device === 'cuda' ? ` (${precision} activations)` : ''}`;
  const params = fmtInt(model.numParameters());
  progress.log(
    `  model: d_model ${config.d_model}, ${config.n_layer} layers, ${params} parameters on ${where}; ` +
      `seq-len ${o.seqLen}, batch ${o.batchSize}, ${o.steps} steps, lr ${o.lr}`,
  );
  const w = o.seqLenWarmup;
  if (w && w.steps > 0 && w.start < o.seqLen) {
    const first = trainer.shapeAt(0);
    progress.log(
      `  sequence-length warmup: ${first.batch} x ${first.seqLen} at step 1, doubling the length (halving the ` +
        `batch) in equal stages until ${o.batchSize} x ${o.seqLen} at step ${w.steps + 1}`,
    );
  }
  return { trainer, out, task };
}

async function prepareResume(
  ctx: CliContext,
  flags: TrainFlags,
  device: Device,
  progress: Progress,
): Promise<Prepared> {
  const out = resolve(flags.out!);
  const run = runToResume(out, ctx.domain, ctx.name);
  const dd = domainData(ctx.domain, { rate: flags.rate ?? run?.rate });
  const task = run?.task ?? (await asUserErrors(() => readConfig(out))).task;
  const dataPath = resolve(flags.data ?? run?.data ?? dd.defaultData(task));
  const recorded = recordedOptions(out, run);
  if (!recorded) {
    throw new UserError(
      `--resume: ${out} records no training options (no ${RUN_FILE} settings, no ${TRAINER_STATE_FILE}); ` +
        'start it again with --force',
    );
  }
  const evalPath = flags.evalData ? resolve(flags.evalData) : run?.evalData;
  const data = await openTrainData(dd, task, dataPath, recorded.seqLen, evalPath);
  logData(ctx, task, data, progress);
  const precision = device === 'cuda' ? (run?.precision ?? 'bf16') : 'f32';
  const hooks = runHooks(out, task, `${ctx.name} ${task}`, device, progress);
  const overrides: Partial<TrainOptions> = flags.steps !== undefined ? { steps: flags.steps } : {};
  if (hasCheckpoint(out)) {
    const create = { device, precision, recompute: run?.recompute ?? false };
    const trainer = await asUserErrors(() => Trainer.resume(out, data, { create, overrides, hooks }));
    truncateMetrics(out, trainer.step);
    progress.log(`  resuming ${out} at step ${trainer.step} of ${trainer.options.steps}`);
    return { trainer, out, task };
  }
  if (!run?.config || !run.options) {
    throw new UserError(
      `--resume: ${out} has no checkpoint yet and its ${RUN_FILE} records no model config; ` +
        'start it again with the same flags and --force',
    );
  }
  // killed before its first checkpoint: the same run again from step 0
  const create = { device, seed: run.seed ?? run.options.seed, recompute: run.recompute ?? false, precision };
  const model = await asUserErrors(() => createModel(run.config!, create));
  if (run.init) {
    progress.log(`  initialised ${await initBackboneFrom(model, run.init)} backbone tensors from ${run.init}`);
  }
  const options = { ...run.options, ...overrides };
  const trainer = await asUserErrors(() => new Trainer(model, data, options, { runDir: out, hooks }));
  truncateMetrics(out, 0);
  progress.log(
    `  ${out} has no checkpoint yet (its run stopped before the first one): ` +
      `starting it again from step 0 of ${trainer.options.steps}`,
  );
  return { trainer, out, task };
}

export function trainCommand(ctx: CliContext): Command {
  const dna = ctx.domain === 'dna';
  const what = dna
    ? 'a small next-token model of the shipped H. pylori genome'
    : 'a spoken-digit classifier on the shipped digits';
  const lmData = dna ? 'FASTA file (plain, indexed or bgzip)' : 'WAV file or folder';
  const cmd = new Command('train')
    .description(`train a Mamba model (next-token lm or classify); with no flags, ${what}`)
    .addOption(
      choiceOption('--task <task>', `lm (next-token) or classify (default: ${DEFAULT_TASK[ctx.domain]})`, [
        'lm',
        'classify',
      ]),
    )
    .option('--data <path>', `${lmData} for lm; a dataset folder or manifest for classify (default: the shipped data)`)
    .addOption(choiceOption('--preset <name>', presetHelp(ctx.domain), Object.keys(PRESETS)))
    .addOption(
      choiceOption(
        '--precision <p>',
        'activations on the GPU: bf16 (default there) or f32; weights, gradients and the residual stream stay f32',
        ['f32', 'bf16'],
      ),
    )
    .option('--config <file>', 'a JSON model config (MambaConfig fields) instead of --preset')
    .option('--seq-len <n>', 'training sequence length in tokens (2^k allowed)', parseIntArg(1, 2 ** 24))
    .option('--batch <n>', 'sequences per forward pass', parseIntArg(1, 4096))
    .option(
      '--accum <n>',
      'forward passes accumulated per optimizer step (more sequences per step at long lengths)',
      parseIntArg(1, 4096),
    )
    .option('--steps <n>', 'optimizer steps', parseIntArg(1, 1e9))
    .option('--lr <x>', 'peak learning rate', parseFloatArg(1e-7, 1))
    .option('--warmup <n>', 'learning-rate warmup steps', parseIntArg(0, 1e9))
    .option(
      '--seq-len-warmup <start>',
      'start at this sequence length (2^k allowed) and double it up to --seq-len, with the batch grown as the ' +
        'length shrinks so that every step holds the same tokens (batch x seq-len x accum)',
      parseIntArg(1, 2 ** 24),
    )
    .option(
      '--seq-len-warmup-steps <n>',
      'steps before --seq-len is reached, in equal stages per length (default: a quarter of --steps)',
      parseIntArg(1, 1e9),
    )
    .option(
      '--eval-data <path>',
      `lm: evaluate on all of this ${dna ? 'FASTA (e.g. a held-out genome)' : 'WAV file or folder'} ` +
        'instead of the held-out tail of --data',
    )
    .option(
      '--eval-every <n>',
      'evaluate (and checkpoint) every n steps (default: 10 times a run)',
      parseIntArg(1, 1e9),
    )
    .option(
      '--eval-windows <n>',
      'held-out windows (lm) or examples per source (classify) per evaluation',
      parseIntArg(1, 1e7),
    )
    .option('--recompute', 'recompute each block in backward (less memory for long sequences)')
    .option(
      '--init <dir>',
      'start from the backbone of a trained run folder (e.g. a pretrained lm, to fine-tune a classifier)',
    )
    .addOption(choiceOption('--device <device>', 'where to compute', ['auto', 'cpu', 'cuda'], 'auto'))
    .option('--out <dir>', 'run folder (default: runs/<domain>-<task>-<time>)')
    .option(
      '--resume',
      'continue the run in --out from its last checkpoint (a run stopped before its first one starts again)',
    )
    .option('-f, --force', 'replace an existing --out folder')
    .option('--seed <n>', 'random seed', parseIntArg(0, 2 ** 32 - 1), 0)
    .addOption(new Option('--threads <n>', 'CPU threads').argParser(parseIntArg(1, 1024)));
  if (!dna) {
    cmd.option(
      '--rate <hz>',
      'model sample rate: data at other rates is resampled, with a note (default 16000)',
      parseIntArg(1000, 384000),
    );
  }
  cmd.action((opts: TrainFlags) => train(ctx, opts));
  return withExamples(cmd, [
    `${ctx.name} train`,
    dna
      ? `${ctx.name} train --data genome.fa.gz --seq-len 4096 --steps 2000 --out runs/my-run`
      : `${ctx.name} train --data datasets/audio/digits --steps 400 --out runs/my-run`,
    dna
      ? `${ctx.name} dataset build species --out data/species && ` +
        `${ctx.name} train --task classify --data data/species --out runs/cls`
      : `${ctx.name} train --task lm --data speech.wav --seq-len 4096 --out runs/speech`,
    `${ctx.name} train --out runs/my-run --resume --steps 4000`,
    `${ctx.name} train ${dna ? '' : '--task lm '}--data ${dna ? 'genome.fa.gz' : 'music/train'} --seq-len 2^20 --batch 1 ` +
      '--seq-len-warmup 2^10 --seq-len-warmup-steps 200 --steps 800 --recompute --out runs/long   ' +
      '# 1024 x 2^10 at first, then 512 x 2^11, ...: 2^20 tokens every step',
  ]);
}
