// The run folder of a training run: config.json and model.safetensors (the latest checkpoint, written by
// the trainer), metrics.jsonl (one JSON object a line), and plots (SVG + report.html) made from the metrics.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { htmlReport, lineChart, type Series } from '../report/svg.js';
import { UserError } from './errors.js';

/** What the CLI records about a run beside the trainer's own state, so --resume and eval need no flags. */
export const RUN_FILE = 'run.json';
export interface RunInfo {
  tool: string;
  domain: 'dna' | 'audio';
  task: 'lm' | 'classify';
  data: string;
  evalData?: string;
  classes?: readonly string[];
  /** audio: the sample rate the model was trained at (absent: 16000); eval/predict/generate use the same */
  rate?: number;
  /** activations the run trained with on a GPU; eval/predict/generate use the same */
  precision?: 'f32' | 'bf16';
  created: string;
}

export function readRunInfo(dir: string): RunInfo | undefined {
  const p = join(dir, RUN_FILE);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as RunInfo;
  } catch {
    throw new UserError(`${p}: not valid JSON`);
  }
}

export interface MetricRow {
  step: number;
  split: 'train' | 'eval';
  loss: number;
  bits_per_token: number;
  accuracy?: number;
  tokens_per_s?: number;
  lr?: number;
  seq_len?: number;
  [k: string]: unknown;
}

/** Creates (or, with resume, reopens) a run folder. An existing non-empty folder is refused unless force or resume. */
export function prepareRunFolder(dir: string, opts: { force?: boolean; resume?: boolean }): void {
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (opts.resume) {
      if (!entries.includes('trainer_state.json') && !entries.includes('config.json')) {
        throw new UserError(`--resume: ${dir} holds no checkpoint to resume from`);
      }
      return;
    }
    if (entries.length > 0 && !opts.force) {
      throw new UserError(`output folder ${dir} already exists and is not empty; use --resume to continue it, --force to overwrite, or another --out`);
    }
  } else if (opts.resume) {
    throw new UserError(`--resume: ${dir} does not exist`);
  }
  mkdirSync(dir, { recursive: true });
  if (opts.force && !opts.resume) writeFileSync(join(dir, 'metrics.jsonl'), '');
}

export function appendMetrics(dir: string, row: MetricRow): void {
  appendFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify(row)}\n`);
}

export function readMetrics(dir: string): MetricRow[] {
  const p = join(dir, 'metrics.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as MetricRow);
}

/** Drops metric rows after `step` (a resumed run rewrites what came after its checkpoint). */
export function truncateMetrics(dir: string, step: number): void {
  const rows = readMetrics(dir).filter((r) => r.step <= step);
  const tmp = join(dir, 'metrics.jsonl.tmp');
  writeFileSync(tmp, rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
  renameSync(tmp, join(dir, 'metrics.jsonl'));
}

function atomicWrite(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Writes training curves (SVG) and report.html from metrics.jsonl. */
export function writePlots(dir: string, title: string): string[] {
  const rows = readMetrics(dir);
  if (!rows.length) return [];
  const files: string[] = [];
  const by = (split: string, key: keyof MetricRow) =>
    rows.filter((r) => r.split === split && typeof r[key] === 'number').map((r) => [r.step, r[key] as number] as [number, number]);
  const loss: Series[] = [
    { name: 'train', points: by('train', 'bits_per_token') },
    { name: 'eval (held out)', points: by('eval', 'bits_per_token') },
  ].filter((s) => s.points.length);
  atomicWrite(join(dir, 'loss.svg'), lineChart(loss, { title: `${title}: loss`, xLabel: 'step', yLabel: 'bits per token' }));
  files.push('loss.svg');
  const acc: Series[] = [
    { name: 'train', points: by('train', 'accuracy') },
    { name: 'eval (held out)', points: by('eval', 'accuracy') },
  ].filter((s) => s.points.length);
  if (acc.length) {
    atomicWrite(join(dir, 'accuracy.svg'), lineChart(acc, { title: `${title}: accuracy`, xLabel: 'step', yLabel: 'accuracy' }));
    files.push('accuracy.svg');
  }
  const tps = by('train', 'tokens_per_s');
  if (tps.length) {
    atomicWrite(join(dir, 'throughput.svg'), lineChart([{ name: 'train', points: tps }], { title: `${title}: throughput`, xLabel: 'step', yLabel: 'tokens / s' }));
    files.push('throughput.svg');
  }
  const evals = rows.filter((r) => r.split === 'eval');
  const table = evals.length
    ? {
        header: ['step', 'eval loss', 'bits/token', ...(evals.some((r) => r.accuracy !== undefined) ? ['accuracy'] : [])],
        rows: evals.map((r) => [r.step, r.loss.toFixed(4), r.bits_per_token.toFixed(4), ...(r.accuracy !== undefined ? [(r.accuracy as number).toFixed(4)] : [])]),
      }
    : undefined;
  atomicWrite(join(dir, 'report.html'), htmlReport(title, files, table));
  return [...files, 'report.html'];
}
