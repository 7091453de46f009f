// The run folder of a training run: run.json (what the CLI records: data, classes, model config and
// training options, so --resume, eval and predict need no flags), the trainer's checkpoint files,
// metrics.jsonl (one JSON object a line), and plots (SVG + report.html) made from the metrics.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Domain, Task } from '../data/types.js';
import { writeFileAtomic, type MambaConfig } from '../model/index.js';
import {
  confusionTable,
  htmlReport,
  keyValueTable,
  lineChart,
  type ReportSection,
  type Series,
} from '../report/svg.js';
import { BEST_DIR, CHECKPOINT_FILES, CHECKPOINT_MANIFEST, type TrainOptions } from '../train/index.js';
import { UserError } from './errors.js';

/** What the CLI records about a run beside the trainer's own state, so --resume and eval need no flags. */
export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.jsonl';

export interface RunInfo {
  tool: string;
  domain: Domain;
  task: Task;
  data: string;
  evalData?: string;
  classes?: readonly string[];
  /** audio: the sample rate the model was trained at (absent: 16000); eval/predict/generate use the same */
  rate?: number;
  /** activations the run trained with on a GPU; eval/predict/generate use the same */
  precision?: 'f32' | 'bf16';
  created: string;
  /** the model and the training options, so a run killed before its first checkpoint can start again */
  config?: MambaConfig;
  options?: TrainOptions;
  /** the model's initialisation seed */
  seed?: number;
  /** --init: the run folder whose backbone the model started from */
  init?: string;
  recompute?: boolean;
}

export function readRunInfo(dir: string): RunInfo | undefined {
  const p = join(dir, RUN_FILE);
  if (!existsSync(p)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    throw new UserError(`${p}: not valid JSON`);
  }
  const r = v as Partial<RunInfo>;
  const known = (r.domain === 'dna' || r.domain === 'audio') && (r.task === 'lm' || r.task === 'classify');
  if (typeof v !== 'object' || v === null || !known) {
    throw new UserError(`${p}: not a run.json of this toolkit (needs domain dna|audio and task lm|classify)`);
  }
  return r as RunInfo;
}

function isEmptyFolder(dir: string): boolean {
  return readdirSync(dir).length === 0;
}

/** Refuses an --out that holds something, unless force (checked before any data is read). */
export function checkNewRunFolder(dir: string, force: boolean | undefined): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new UserError(`--out ${dir}: exists and is not a folder`);
  if (force || isEmptyFolder(dir)) return;
  const run = existsSync(join(dir, RUN_FILE));
  throw new UserError(
    `output folder ${dir} already exists and is not empty; ` +
      `${run ? 'use --resume to continue its run' : 'it holds no run'}` +
      `, --force to replace it, or another --out`,
  );
}

/** What a run writes into its folder (and older runs wrote): all that --force removes, nothing else. */
const RUN_ENTRIES = [
  CHECKPOINT_MANIFEST,
  RUN_FILE,
  'checkpoints',
  BEST_DIR,
  ...CHECKPOINT_FILES,
  METRICS_FILE,
  'loss.svg',
  'accuracy.svg',
  'throughput.svg',
  'report.html',
  ...CHECKPOINT_FILES.map((f) => `${f}.prev`),
];

/**
 * Creates the run folder with its run.json (also in best/ when the run keeps one, so the best model can
 * be evaluated on its own). A new folder is built beside the target and renamed into place, so it either
 * holds a run.json or does not exist. With force, the files of an earlier run are removed (the manifest
 * first, so nothing half-removed looks resumable); other files in the folder are left alone.
 */
export function createRunFolder(dir: string, info: RunInfo, force: boolean | undefined): void {
  checkNewRunFolder(dir, force);
  const best = info.options?.keepBest !== false;
  const text = `${JSON.stringify(info, null, 2)}\n`;
  if (existsSync(dir)) {
    for (const e of RUN_ENTRIES) rmSync(join(dir, e), { recursive: true, force: true });
    if (best) mkdirSync(join(dir, BEST_DIR));
    if (best) writeFileAtomic(join(dir, BEST_DIR, RUN_FILE), text);
    writeFileSync(join(dir, METRICS_FILE), '');
    writeFileAtomic(join(dir, RUN_FILE), text);
    return;
  }
  mkdirSync(dirname(dir), { recursive: true });
  const partial = join(dirname(dir), `.${basename(dir)}.partial-${process.pid}`);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial);
  if (best) mkdirSync(join(partial, BEST_DIR));
  if (best) writeFileSync(join(partial, BEST_DIR, RUN_FILE), text);
  writeFileSync(join(partial, RUN_FILE), text);
  writeFileSync(join(partial, METRICS_FILE), '');
  renameSync(partial, dir);
}

/**
 * The run.json of a folder given to --resume, checked before its data is opened: the folder exists,
 * holds a run, and the run is of this CLI's domain.
 */
export function runToResume(dir: string, domain: Domain, tool: string): RunInfo | undefined {
  if (!existsSync(dir)) throw new UserError(`--resume: ${dir} does not exist (start the run without --resume)`);
  const run = readRunInfo(dir);
  const runDomain = run?.domain ?? configDomain(dir);
  if (!run && !runDomain) {
    throw new UserError(
      `--resume: ${dir} holds no ${RUN_FILE} (not a run folder, or its run stopped before it started): ` +
        'start it without --resume',
    );
  }
  if (runDomain && runDomain !== domain) {
    const what = `${article(runDomain)} ${runDomain} run (${run?.task ?? 'model'})`;
    throw new UserError(`--resume: ${dir} holds ${what}; resume it with mamba-${runDomain}, not ${tool}`);
  }
  return run;
}

/** The domain a folder's config.json names, if it has a readable one. */
function configDomain(dir: string): Domain | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { domain?: Domain }).domain;
  } catch {
    return undefined;
  }
}

/** "a" or "an" for a word read aloud: an audio, a dna. */
export function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

export interface MetricRow {
  step: number;
  split: 'train' | 'eval';
  /** mean cross-entropy, nats */
  loss: number;
  /** lm only */
  bits_per_token?: number;
  accuracy?: number;
  tokens_per_s?: number;
  lr?: number;
  seq_len?: number;
  [k: string]: unknown;
}

export function appendMetrics(dir: string, row: MetricRow): void {
  appendFileSync(join(dir, METRICS_FILE), `${JSON.stringify(row)}\n`);
}

/**
 * The rows of metrics.jsonl. A torn last line (a run killed while appending) is dropped with a warning;
 * a bad line before it is an error naming the line.
 */
export function readMetrics(
  dir: string,
  warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): MetricRow[] {
  const p = join(dir, METRICS_FILE);
  if (!existsSync(p)) return [];
  const lines = readFileSync(p, 'utf8').split('\n');
  const rows: MetricRow[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    try {
      rows.push(JSON.parse(l) as MetricRow);
    } catch {
      const last = lines.slice(i + 1).every((x) => !x.trim());
      if (!last) throw new UserError(`${p}: line ${i + 1} is not valid JSON`);
      warn(`warning: ${p}: dropped its torn last line ${i + 1} (a run stopped while writing it)`);
    }
  });
  return rows;
}

/** Drops metric rows after `step` (a resumed run rewrites what came after its checkpoint) and torn lines. */
export function truncateMetrics(dir: string, step: number): void {
  const rows = readMetrics(dir).filter((r) => r.step <= step);
  writeFileAtomic(join(dir, METRICS_FILE), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

function atomicWrite(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Writes training curves (SVG) and report.html (the data, the config, evaluations) from metrics.jsonl. */
export function writePlots(dir: string, title: string): string[] {
  const rows = readMetrics(dir, () => {});
  if (!rows.length) return [];
  const run = readRunInfo(dir);
  const lm = (run?.task ?? 'lm') === 'lm';
  const files: string[] = [];
  const by = (split: string, key: keyof MetricRow) =>
    rows
      .filter((r) => r.split === split && typeof r[key] === 'number')
      .map((r) => [r.step, r[key] as number] as [number, number]);
  const lossKey = lm ? 'bits_per_token' : 'loss';
  const loss: Series[] = [
    { name: 'train', points: by('train', lossKey) },
    { name: 'eval (held out)', points: by('eval', lossKey) },
  ].filter((s) => s.points.length);
  const yLabel = lm ? 'bits per token' : 'cross-entropy (nats)';
  const lossTitle = `${title}: ${lm ? 'loss' : 'cross-entropy'}`;
  atomicWrite(join(dir, 'loss.svg'), lineChart(loss, { title: lossTitle, xLabel: 'step', yLabel }));
  files.push('loss.svg');
  const acc: Series[] = [
    { name: 'train', points: by('train', 'accuracy') },
    { name: 'eval (held out)', points: by('eval', 'accuracy') },
  ].filter((s) => s.points.length);
  if (acc.length) {
    const yl = lm ? 'next-token accuracy' : 'accuracy';
    atomicWrite(join(dir, 'accuracy.svg'), lineChart(acc, { title: `${title}: ${yl}`, xLabel: 'step', yLabel: yl }));
    files.push('accuracy.svg');
  }
  const tps = by('train', 'tokens_per_s');
  if (tps.length) {
    const chart = lineChart([{ name: 'train', points: tps }], {
      title: `${title}: throughput`,
      xLabel: 'step',
      yLabel: 'tokens / s',
    });
    atomicWrite(join(dir, 'throughput.svg'), chart);
    files.push('throughput.svg');
  }
  const evals = rows.filter((r) => r.split === 'eval');
  const table = evals.length
    ? {
        header: ['step', ...(lm ? ['eval loss (nats)', 'bits/token'] : ['cross-entropy (nats)']), 'accuracy', 'scored'],
        rows: evals.map((r) => [
          r.step,
          r.loss.toFixed(4),
          ...(lm ? [(r.bits_per_token ?? NaN).toFixed(4)] : []),
          typeof r.accuracy === 'number' ? r.accuracy.toFixed(4) : '-',
          typeof r.windows === 'number' ? `${r.windows} ${lm ? 'windows' : 'examples'}, ${r.tokens} tokens` : '-',
        ]),
      }
    : undefined;
  const sections: ReportSection[] = [];
  if (run) {
    const lastEval = [...evals].reverse().find((r) => typeof r.data === 'string');
    sections.push({
      heading: 'Data',
      table: keyValueTable({
        task: run.task,
        data: run.data,
        'evaluated on': lastEval?.data ?? run.evalData,
        classes: run.classes?.join(', '),
      }),
    });
    if (run.config) sections.push({ heading: 'Model config', table: keyValueTable({ ...run.config }) });
    if (run.options) sections.push({ heading: 'Training options', table: keyValueTable({ ...run.options }) });
  }
  const lastConf = [...evals].reverse().find((r) => Array.isArray(r.confusion));
  if (lastConf && run?.classes) {
    sections.push({
      heading: `Confusion matrix (evaluation at step ${lastConf.step}; rows: true class, columns: predicted)`,
      table: confusionTable(run.classes, lastConf.confusion as number[][]),
    });
  }
  atomicWrite(join(dir, 'report.html'), htmlReport(title, files, table, sections));
  return [...files, 'report.html'];
}
