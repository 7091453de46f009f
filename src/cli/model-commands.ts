// The model commands shared by mamba-dna and mamba-audio: train (built in train-command.ts), eval, predict,
// info (generate lives in generate-command.ts). Flag names are the same in both CLIs; the domain only changes
// the data.
import { Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { resolveDevice, type Device } from '../backend/index.js';
import type { LabelledSource, WindowSource } from '../data/types.js';
import {
  CONFIG_FILE,
  MODEL_FILE,
  checkVocabularyFits,
  describeFolder,
  hasWeightFiles,
  loadModel,
  readConfig,
  type MambaConfig,
  type CreateOptions,
  type MambaModel,
} from '../model/index.js';
import {
  BEST_DIR,
  TRAINER_STATE_FILE,
  describeResult,
  describeScored,
  evaluateModel,
  type EvalInfo,
  type TrainOptions,
} from '../train/index.js';
import { choiceOption, parseIntArg, withExamples, type CliContext, type Domain, type Registrar } from './common.js';
import { domainData, refuseStreamData } from './domain-data.js';
import { isStreamInput } from './input.js';
import { UserError, asUserErrors } from './errors.js';
import { RUN_FILE, article, readRunInfo, type RunInfo } from './run-folder.js';
import { trainCommand } from './train-command.js';

function checkDomain(ctx: CliContext, dir: string, config: MambaConfig): void {
  if (config.domain !== ctx.domain) {
    const d = config.domain;
    throw new UserError(`${dir} holds ${article(d)} ${d} model; use mamba-${d}, not ${ctx.name}`);
  }
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
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
  if (!hasWeightFiles(dir))
    throw new UserError(`--checkpoint ${dir}: no ${MODEL_FILE} in it (did training save a checkpoint?)`);
  const config = readConfigOrThrow(dir, ctx.domain);
  checkDomain(ctx, dir, config);
  checkVocabularyFits(config, ctx.domain, dir);
  const run = runInfoOf(dir);
  const precision = device === 'cuda' ? (run?.precision ?? 'f32') : 'f32';
  const model = loadModelOrThrow(dir, { device, precision, recompute: true, domain: ctx.domain });
  return { model, run };
}

/** A folder's run.json; for a best/ folder of an older run without one, its run folder's. */
function runInfoOf(dir: string): RunInfo | undefined {
  const own = readRunInfo(dir);
  if (own || basename(dir) !== BEST_DIR) return own;
  return readRunInfo(dirname(dir));
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

/** The part of the data an evaluation scores, and its name. */
interface EvalPart {
  src: WindowSource | LabelledSource;
  path: string;
  part: string;
}

/** lm data: all of --data, or a part of the run's data (its held-out part, training part or test genomes). */
async function lmPart(
  ctx: CliContext,
  flags: EvalFlags,
  run: RunInfo | undefined,
  dataPath: string,
): Promise<EvalPart> {
  const dd = domainData(ctx.domain, { rate: run?.rate });
  const split = flags.split;
  if (flags.data && !split) return { src: await dd.openEval(dataPath), path: dataPath, part: 'all' };
  if (!flags.data && run?.evalData && (split ?? 'valid') === 'valid') {
    return { src: await dd.openEval(run.evalData), path: run.evalData, part: 'all' };
  }
  if (split === 'test') {
    const splits = await dd.splitsOf(dataPath).catch(() => [] as string[]);
    if (!splits.includes('test')) {
      throw new UserError(
        `--split test: ${dataPath} has no test part (next-token data is split into a training part ` +
          'and a held-out ' +
          `valid part: use --split valid, or --data FILE to score all of another file)`,
      );
    }
    const dna = await import('../data/dna/index.js');
    const manifest = dataPath.endsWith('.json') ? dataPath : join(dataPath, 'manifest.json');
    const m = await asUserErrors(() => dna.readGenomeManifest(manifest));
    const base = dirname(manifest);
    const files = m.sources.filter((x) => x.split === 'test').map((x) => resolve(base, x.path));
    const src = await asUserErrors(() => dna.openDnaSource(files, { name: `${m.name} test genomes` }));
    return { src, path: dataPath, part: 'test genomes' };
  }
  const d = await dd.openLm(dataPath);
  return split === 'train'
    ? { src: d.train, path: dataPath, part: 'training part' }
    : { src: d.valid, path: dataPath, part: 'held-out part' };
}

async function evaluate(ctx: CliContext, flags: EvalFlags): Promise<void> {
  const dir = resolve(flags.checkpoint);
  const device = await asUserErrors(() => resolveDevice(flags.device));
  refuseStreamData(flags.data);
  const { model, run } = openCheckpoint(ctx, dir, device);
  const dd = domainData(ctx.domain, { rate: run?.rate });
  const task = model.config.task;
  if (!flags.data && !run) {
    throw new UserError(
      `--checkpoint ${dir}: no ${RUN_FILE} says what it was trained on; give --data (and --split) to say what to score`,
    );
  }
  const dataPath = resolve(flags.data ?? run!.data);
  const seqLen = flags.seqLen ?? run?.options?.seqLen ?? trainerSeqLen(dir) ?? 1024;
  let e: EvalPart;
  if (task === 'lm') e = await lmPart(ctx, flags, run, dataPath);
  else {
    const splits = await dd.splitsOf(dataPath);
    const split = flags.split ?? (splits.includes('test') ? 'test' : 'valid');
    if (!splits.includes(split)) throw new UserError(`${dataPath} has no ${split} split (it has ${splits.join(', ')})`);
    const src = await dd.openLabelled(dataPath, split);
    if (src.classes.length !== model.config.num_classes) {
      const n = model.config.num_classes;
      throw new UserError(`${dataPath} has ${src.classes.length} classes, the model was trained on ${n}`);
    }
    e = { src, path: dataPath, part: `${split} split` };
  }
  const t0 = Date.now();
  const o = { seqLen, batchSize: flags.batch, windows: flags.windows };
  const s = await asUserErrors(() => evaluateModel(model, e.src, o));
  const secs = (Date.now() - t0) / 1000;
  const what = e.part === 'all' ? `all of ${e.path}` : `the ${e.part} of ${e.path}`;
  process.stderr.write(`${ctx.name} eval: scored ${what}: ${describeScored(s)}\n`);
  const metrics =
    s.task === 'lm'
      ? { loss: s.loss, bits_per_token: s.bitsPerToken, perplexity: s.perplexity, accuracy: s.accuracy }
      : { loss: s.loss, cross_entropy: s.loss, accuracy: s.accuracy };
  const result = {
    checkpoint: dir,
    task,
    data: e.path,
    part: e.part,
    scored: s.data,
    windows: s.windows,
    tokens: s.tokens,
    seq_len: seqLen,
    ...metrics,
    count: s.count,
    seconds: secs,
    ...(s.confusion ? { classes: s.classes, confusion: s.confusion } : {}),
  };
  if (flags.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const over = `${fmtInt(s.count)} ${task === 'lm' ? 'tokens' : 'examples'}`;
  console.log(`${what}, seq-len ${seqLen}: ${describeResult(s)} over ${over} (${secs.toFixed(1)} s)`);
  if (s.confusion && s.classes) {
    const w = Math.max(6, ...s.classes.map((c) => c.length));
    console.log(`confusion (rows: true class, columns: predicted)`);
    console.log(`${''.padEnd(w)} ${s.classes.map((c) => c.padStart(w)).join(' ')}`);
    s.confusion.forEach((row, i) =>
      console.log(`${s.classes![i]!.padEnd(w)} ${row.map((v) => String(v).padStart(w)).join(' ')}`),
    );
  }
}

// ---- info -------------------------------------------------------------------------------------

function info(ctx: CliContext, flags: { checkpoint: string; json?: boolean }): void {
  const dir = resolve(flags.checkpoint);
  if (!existsSync(join(dir, CONFIG_FILE)))
    throw new UserError(`--checkpoint ${dir}: no ${CONFIG_FILE} (not a run or model folder)`);
  const config = readConfigOrThrow(dir, ctx.domain);
  checkDomain(ctx, dir, config);
  const model = loadModelOrThrow(dir, { device: 'cpu', domain: ctx.domain });
  const origin = describeFolder(dir, { domain: ctx.domain });
  const st = existsSync(join(dir, TRAINER_STATE_FILE))
    ? (JSON.parse(readFileSync(join(dir, TRAINER_STATE_FILE), 'utf8')) as Record<string, unknown>)
    : undefined;
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
    ...(st
      ? { step: st.step, tokens: st.tokens, train_seconds: st.elapsedS, options: st.options, last_eval: st.lastEval }
      : {}),
  };
  if (flags.json) {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  console.log(`${dir}`);
  console.log(
    `  ${config.domain} ${config.task} model: d_model ${config.d_model}, ${config.n_layer} layers, d_state ${config.d_state}, expand ${config.expand}, vocab ${config.vocab_size}${config.task === 'classify' ? `, ${config.num_classes} classes (${config.pooling} pooling)` : ''}`,
  );
  console.log(
    `  ${fmtInt(out.parameters)} parameters, ${origin.files.join(', ')} ${(out.model_bytes / 2 ** 20).toFixed(2)} MiB (${origin.dtypes.join(', ')})`,
  );
  console.log(`  layout: ${origin.layout}, from ${origin.source}`);
  if (run) console.log(`  data: ${run.data}${run.classes ? ` (classes: ${run.classes.join(', ')})` : ''}`);
  if (st) {
    const o = st.options as TrainOptions;
    console.log(
      `  trained ${st.step} of ${o.steps} steps (${fmtInt(st.tokens as number)} tokens, ${(st.elapsedS as number).toFixed(1)} s), seq-len ${o.seqLen}, batch ${o.batchSize}, lr ${o.lr}`,
    );
    const e = st.lastEval as EvalInfo | undefined;
    const score =
      config.task === 'lm'
        ? `${(e ? e.loss / Math.LN2 : 0).toFixed(4)} bits/token`
        : `cross-entropy ${e?.loss.toFixed(4)} nats`;
    if (e) console.log(`  last eval (step ${e.step}): ${score}, accuracy ${e.accuracy.toFixed(4)}`);
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
  if (model.config.task !== 'classify')
    throw new UserError(
      `${dir} holds a next-token (lm) model; predict needs a classifier (train with --task classify)`,
    );
  const classes = run?.classes ?? Array.from({ length: model.config.num_classes }, (_, i) => `class${i}`);
  const seqLen = flags.seqLen ?? trainerSeqLen(dir) ?? 1024;
  const { predictionItems } = await import('./predict-items.js');
  const rows: { item: string; windows: number; probs: number[] }[] = [];
  for (const input of inputs) {
    if (!isStreamInput(input) && !existsSync(input)) throw new UserError(`${input}: no such file or folder`);
    for await (const item of predictionItems(ctx.domain, input, seqLen, flags.windows, run?.rate)) {
      const B = item.windows.length;
      const ids = new Int32Array(B * seqLen);
      item.windows.forEach((w, b) => ids.set(w, b * seqLen));
      const r = await asUserErrors(() =>
        (model as import('../model/index.js').MambaClassifier).forward({
          B,
          L: seqLen,
          inputs: ids,
          labels: new Int32Array(B),
        }),
      );
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
    console.log(
      JSON.stringify(
        rows.map((r) => ({
          item: r.item,
          windows: r.windows,
          predicted: classes[argmax(r.probs)],
          probabilities: Object.fromEntries(classes.map((c, i) => [c, r.probs[i]])),
        })),
        null,
        2,
      ),
    );
  } else {
    console.log(['item', 'windows', 'predicted', ...classes].join('\t'));
    for (const r of rows)
      console.log([r.item, r.windows, classes[argmax(r.probs)], ...r.probs.map((p) => p.toFixed(4))].join('\t'));
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
  program.addCommand(trainCommand(ctx));

  const evalCmd = new Command('eval')
    .description(
      'evaluate a trained model: loss, bits per token, perplexity, accuracy (and a confusion matrix for classifiers)',
    )
    .requiredOption('--checkpoint <dir>', 'run folder (from train --out)')
    .option('--data <path>', "data to evaluate (default: the run's data: its held-out part, or its test split)")
    .addOption(choiceOption('--split <split>', 'which part of the data', ['train', 'valid', 'test']))
    .option('--seq-len <n>', 'sequence length (default: the training length)', parseIntArg(1, 2 ** 24))
    .option('--batch <n>', 'sequences per forward pass', parseIntArg(1, 4096), 8)
    .option('--windows <n>', 'lm: windows to evaluate; classify: windows per source', parseIntArg(1, 1e7), 64)
    .addOption(deviceOption())
    .option('--json', 'print the result as JSON')
    .action((opts: EvalFlags) => evaluate(ctx, opts));
  program.addCommand(
    withExamples(evalCmd, [
      `${ctx.name} eval --checkpoint runs/my-run`,
      `${ctx.name} eval --checkpoint runs/cls --split test --json`,
    ]),
  );

  const predictCmd = new Command('predict')
    .description(
      `class probabilities per ${ctx.domain === 'dna' ? 'FASTA record' : 'WAV file'} from a classifier, as TSV or JSON`,
    )
    .argument('<inputs...>', `${ctx.domain === 'dna' ? 'FASTA' : 'WAV'} files or folders of them; - reads stdin`)
    .requiredOption('--checkpoint <dir>', 'run folder of a classifier')
    .option('--seq-len <n>', 'window length (default: the training length)', parseIntArg(1, 2 ** 24))
    .option(
      '--windows <n>',
      `windows averaged per ${ctx.domain === 'dna' ? 'FASTA record' : 'WAV file'} longer than --seq-len, spread evenly along it`,
      parseIntArg(1, 1e6),
      8,
    )
    .addOption(choiceOption('--format <fmt>', 'output format', ['tsv', 'json'], 'tsv'))
    .addOption(deviceOption())
    .action((inputs: string[], opts: PredictFlags) => predict(ctx, inputs, opts));
  program.addCommand(
    withExamples(predictCmd, [
      `${ctx.name} predict --checkpoint runs/cls ${ctx.domain === 'dna' ? 'unknown.fa' : 'clip.wav'}`,
      ctx.domain === 'dna'
        ? 'mamba-dna region genome.fa.gz chr1:1-5000 | mamba-dna predict --checkpoint runs/cls -'
        : 'sox in.flac -t wav - | mamba-audio predict --checkpoint runs/cls -',
    ]),
  );

  const infoCmd = new Command('info')
    .description('show a checkpoint: config, size, training state')
    .requiredOption('--checkpoint <dir>', 'run folder')
    .option('--json', 'print as JSON')
    .action((opts: { checkpoint: string; json?: boolean }) => info(ctx, opts));
  program.addCommand(withExamples(infoCmd, [`${ctx.name} info --checkpoint runs/my-run`]));
};
