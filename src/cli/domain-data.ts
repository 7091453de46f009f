// What the shared model commands need from each domain: default data, and how to open a path as
// next-token data (train + held-out valid) or as a labelled set (train/valid/test splits).
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve as resolvePathAbs } from 'node:path';
import type { LabelledSource, Split, Task, WindowSource } from '../data/types.js';
import type { Domain } from './common.js';
import { UserError, asUserErrors } from './errors.js';
import { packageRoot } from '../backend/native.js';
import { refuseStreamInput } from './input.js';

export interface LmData {
  train: WindowSource;
  valid: WindowSource;
}

export interface LabelledData {
  train: LabelledSource;
  /** the split evaluated during training: valid when the set has one, else test */
  valid: LabelledSource;
  validSplit: Split;
}

export interface DomainData {
  domain: Domain;
  /** audio: the sample rate data is tokenized at */
  rate?: number;
  /** what `train` uses without --data */
  defaultData(task: Task): string;
  openLm(path: string): Promise<LmData>;
  /** all of a file (or files) as next-token evaluation data, e.g. a held-out genome */
  openEval(path: string): Promise<WindowSource>;
  openLabelled(path: string, split: Split): Promise<LabelledSource>;
  /** the splits a labelled path holds */
  splitsOf(path: string): Promise<Split[]>;
}

/** Training and evaluation draw windows anywhere in the data: a stream is refused with what to do. */
export function refuseStreamData(path: string | undefined): void {
  if (path !== undefined)
    refuseStreamInput(path, 'training and evaluation read random windows of the data, so they need a file');
}

function mustExist(path: string): void {
  refuseStreamData(path);
  if (!existsSync(path)) throw new UserError(`${path}: no such file or folder`);
}

export const dnaData: DomainData = {
  domain: 'dna',
  defaultData(task) {
    return task === 'lm'
      ? join(pkgDatasets(), 'dna', 'h_pylori', 'G27.fa.gz')
      : join('datasets', 'build', 'species', 'manifest.json');
  },
  async openLm(path) {
    mustExist(path);
    const dna = await import('../data/dna/index.js');
    const manifest = manifestOf(path);
    if (!manifest) return asUserErrors(() => dna.openHoldoutSplits(path, 0.05));
    // a genome set: train on the train-split genomes, evaluate on held-out genomes (valid, else test)
    const m = await asUserErrors(() => dna.readGenomeManifest(manifest));
    const base = dirname(manifest);
    const pick = (split: string) => m.sources.filter((s) => s.split === split).map((s) => resolvePath(base, s.path));
    const train = pick('train'),
      valid = pick('valid').length ? pick('valid') : pick('test');
    if (!train.length || !valid.length)
      throw new UserError(`${manifest}: next-token training on a genome set needs train and valid or test genomes`);
    return asUserErrors(() => ({
      train: dna.openDnaSource(train, { name: `${m.name} train genomes` }),
      valid: dna.openDnaSource(valid, { name: `${m.name} held-out genomes` }),
    }));
  },
  async openEval(path) {
    mustExist(path);
    const dna = await import('../data/dna/index.js');
    return asUserErrors(() => dna.openDnaSource(path, {}));
  },
  async openLabelled(path, split) {
    mustExist(path);
    const { openGenomeSet } = await import('../data/dna/index.js');
    const manifest = statSync(path).isDirectory() ? join(path, 'manifest.json') : path;
    return asUserErrors(() => openGenomeSet(manifest, split));
  },
  async splitsOf(path) {
    const { readGenomeManifest } = await import('../data/dna/index.js');
    const manifest = statSync(path).isDirectory() ? join(path, 'manifest.json') : path;
    const m = await asUserErrors(() => readGenomeManifest(manifest));
    return [...new Set(m.sources.map((s) => s.split))];
  },
};

/** Audio data tokenized at `rate` (the model's sample rate); files at another rate are resampled, with a note. */
export function audioDataAt(
  rate = 16000,
  note: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): DomainData {
  const noted = new Set<number>();
  const noteRates = async (files: string[]) => {
    const { readWavInfo } = await import('../data/audio/index.js');
    for (const f of files) {
      if (!/\.wav$/i.test(f)) continue;
      const r = readWavInfo(f).sampleRate;
      if (r === rate || noted.has(r)) continue;
      noted.add(r);
      note(`note: ${f} is ${r} Hz; resampling it to the model rate ${rate} Hz (--rate ${r} trains at the file's rate)`);
    }
  };
  return {
    domain: 'audio',
    rate,
    defaultData(task) {
      return task === 'lm'
        ? join(pkgDatasets(), 'audio', 'speech', 'gettysburg-en-us.wav')
        : join(pkgDatasets(), 'audio', 'digits');
    },
    async openEval(path) {
      mustExist(path);
      const { openAudioWindows, resolveAudioInputs } = await import('../data/audio/index.js');
      await asUserErrors(() => noteRates(resolveAudioInputs(path)));
      return asUserErrors(() => openAudioWindows(path, { rate }));
    },
    async openLm(path) {
      mustExist(path);
      const { openAudioWindows, resolveAudioInputs } = await import('../data/audio/index.js');
      await asUserErrors(() => noteRates(resolveAudioInputs(path)));
      const holdout = (part: 'train' | 'valid') => ({ part, fraction: 0.1, by: 'time' as const });
      const [train, valid] = await asUserErrors(() =>
        Promise.all([
          openAudioWindows(path, { rate, holdout: holdout('train') }),
          openAudioWindows(path, { rate, holdout: holdout('valid') }),
        ]),
      );
      return { train, valid };
    },
    async openLabelled(path, split) {
      mustExist(path);
      const { openAudioSet, loadAudioSetIndex } = await import('../data/audio/index.js');
      // one clip's rate stands for the set's (the recipes write every clip at one rate)
      const first = (await asUserErrors(() => loadAudioSetIndex(path))).clips[0];
      if (first) await asUserErrors(() => noteRates([first.path]));
      return asUserErrors(() => openAudioSet(path, split, { rate }));
    },
    async splitsOf(path) {
      const { loadAudioSetIndex } = await import('../data/audio/index.js');
      const idx = await asUserErrors(() => loadAudioSetIndex(path));
      return [...new Set(idx.clips.map((c) => c.split))];
    },
  };
}

export const audioData: DomainData = audioDataAt();

/** The data side of a domain; audio at the model's sample rate (default 16000). */
export function domainData(domain: Domain, opts: { rate?: number } = {}): DomainData {
  return domain === 'dna' ? dnaData : audioDataAt(opts.rate);
}

/** Opens train + the split used for evaluation during training. */
export async function openLabelledData(dd: DomainData, path: string): Promise<LabelledData> {
  const splits = await dd.splitsOf(path);
  if (!splits.includes('train')) throw new UserError(`${path}: the labelled set has no train split`);
  const validSplit: Split = splits.includes('valid') ? 'valid' : splits.includes('test') ? 'test' : 'train';
  if (validSplit === 'train')
    throw new UserError(`${path}: the labelled set has no valid or test split to evaluate on`);
  const [train, valid] = await Promise.all([dd.openLabelled(path, 'train'), dd.openLabelled(path, validSplit)]);
  return { train, valid, validSplit };
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolvePathAbs(base, p);
}

/** The manifest.json a path names (the file itself or a folder holding one), or undefined. */
function manifestOf(path: string): string | undefined {
  if (statSync(path).isDirectory())
    return existsSync(join(path, 'manifest.json')) ? join(path, 'manifest.json') : undefined;
  return path.endsWith('.json') ? path : undefined;
}

function pkgDatasets(): string {
  return join(packageRoot, 'datasets');
}
