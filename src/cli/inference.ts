// Loading a run folder for the inference workflows (score, variants, embed): the domain and task are
// checked, the GPU gets the activations the run trained with, and blocks recompute their inside (a
// forward pass keeps one block's workspace at a time, so long windows fit beside the weights).
import { checkOutput as checkOutputPath } from './output.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDevice, type Device } from '../backend/index.js';
import { MODEL_FILE, loadModel, readConfig, type MambaLM, type MambaModel } from '../model/index.js';
import { parseRegion, readBed, type IndexedFasta, type Region } from '../data/dna/index.js';
import type { Option } from 'commander';
import { choiceOption, type CliContext } from './common.js';
import { UserError, asUserErrors } from './errors.js';
import { readRunInfo } from './run-folder.js';

export interface LoadedModel {
  model: MambaModel;
  device: Device;
  dir: string;
}

export async function loadForInference(
  ctx: CliContext,
  dir: string,
  deviceFlag: 'auto' | 'cpu' | 'cuda',
  need: 'lm' | 'any',
  precisionFlag?: 'f32' | 'bf16',
): Promise<LoadedModel> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`--checkpoint ${dir}: no such run folder`);
  if (!existsSync(join(dir, MODEL_FILE)))
    throw new UserError(`--checkpoint ${dir}: no ${MODEL_FILE} in it (did training save a checkpoint?)`);
  const config = await asUserErrors(() => readConfig(dir));
  if (config.domain !== ctx.domain)
    throw new UserError(`${dir} holds a ${config.domain} model; use mamba-${config.domain}, not ${ctx.name}`);
  if (need === 'lm' && config.task !== 'lm')
    throw new UserError(`${dir} holds a classifier; this command needs a next-token (lm) model`);
  const device = await asUserErrors(() => resolveDevice(deviceFlag));
  if (precisionFlag === 'bf16' && device !== 'cuda')
    throw new UserError('--precision bf16 needs a CUDA device (the CPU computes in f32)');
  const precision = device === 'cuda' ? (precisionFlag ?? readRunInfo(dir)?.precision ?? 'f32') : 'f32';
  const model = await asUserErrors(() => loadModel(dir, { device, precision, recompute: true }));
  return { model, device, dir };
}

/** --precision of the inference commands: the activations' precision on a GPU, by default the run's. */
export function precisionOption(): Option {
  return choiceOption('--precision <p>', 'activations on a GPU: f32 or bf16 (default: those the run trained with)', [
    'f32',
    'bf16',
  ]);
}

export function asLm(m: LoadedModel): MambaLM {
  return m.model as MambaLM;
}

/** Refuses to overwrite an existing output unless --force. */
export function checkOutput(path: string, force: boolean | undefined): void {
  checkOutputPath(path, { force }); // the CLIs' one output check (src/cli/output.ts)
}

/** The sequence length a run trained at (trainer_state.json), the natural default context. */
export function trainedSeqLen(dir: string): number | undefined {
  const p = join(dir, 'trainer_state.json');
  if (!existsSync(p)) return undefined;
  try {
    const n = (JSON.parse(readFileSync(p, 'utf8')) as { options?: { seqLen?: number } }).options?.seqLen;
    return typeof n === 'number' && Number.isInteger(n) && n >= 2 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Regions of a FASTA in output order: record order of the file, then start; overlapping ones merged. */
export function sortAndMergeRegions(regions: Region[], fasta: IndexedFasta): Region[] {
  const order = new Map(fasta.records.map((r, i) => [r.name, i]));
  const sorted = [...regions].sort(
    (x, y) => order.get(x.name)! - order.get(y.name)! || x.start - y.start || x.end - y.end,
  );
  const out: Region[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.name === r.name && r.start <= last.end) {
      if (r.end > last.end)
        out[out.length - 1] = { ...last, end: r.end, label: `${last.name}:${last.start + 1}-${r.end}` };
    } else out.push(r);
  }
  return out;
}

/** The regions named on the command line (samtools syntax) and in a BED file; all records when none. */
export function regionsOf(fasta: IndexedFasta, regionArgs: readonly string[], bed: string | undefined): Region[] {
  const rs: Region[] = regionArgs.map((t) => parseRegion(t, fasta));
  if (bed) rs.push(...readBed(bed, fasta));
  if (!regionArgs.length && !bed)
    for (const r of fasta.records) rs.push({ name: r.name, start: 0, end: r.length, label: r.name });
  return rs;
}
