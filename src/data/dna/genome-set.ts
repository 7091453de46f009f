// Labelled genome sets for species classification: a JSON manifest of FASTA sources, each with a class
// label and a split. Splits are by source (strain), never by window, so the test split measures how well
// a model recognises strains it has never seen.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Rng } from '../../util/rng.js';
import type { LabelledExample, LabelledSource, Split } from '../types.js';
import { DnaDataError } from './errors.js';
import { openDnaSource, windowCacheBlocks, type DnaSourceOptions, type FastaWindowSource } from './source.js';
import { DNA_VOCAB_SIZE } from './tokenizer.js';

export interface GenomeManifestSource {
  /** FASTA path, relative to the manifest's folder */
  path: string;
  /** class name (one of `classes`) */
  label: string;
  split: Split;
  /** public accession(s), for users who fetch the data themselves */
  accession?: string;
  description?: string;
}

export interface GenomeManifest {
  name: string;
  classes: string[];
  sources: GenomeManifestSource[];
}

const SPLITS: readonly Split[] = ['train', 'valid', 'test'];

export function readGenomeManifest(manifestPath: string): GenomeManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (e) {
    throw new DnaDataError(`${manifestPath}: cannot read the manifest: ${(e as Error).message}`);
  }
  const m = raw as Partial<GenomeManifest>;
  const bad = (why: string): never => {
    throw new DnaDataError(`${manifestPath}: ${why}`);
  };
  if (!m || typeof m !== 'object') bad('the manifest must be a JSON object');
  if (typeof m.name !== 'string') bad('"name" must be a string');
  if (!Array.isArray(m.classes) || m.classes.length < 2 || !m.classes.every((c) => typeof c === 'string'))
    bad('"classes" must list at least two class names');
  if (new Set(m.classes).size !== m.classes!.length) bad('"classes" has duplicates');
  if (!Array.isArray(m.sources) || m.sources.length === 0) bad('"sources" must be a non-empty list');
  m.sources!.forEach((s, i) => {
    if (!s || typeof s.path !== 'string') bad(`sources[${i}]: "path" must be a string`);
    if (!m.classes!.includes(s.label))
      bad(`sources[${i}] (${s.path}): label '${String(s.label)}' is not one of the classes`);
    if (!SPLITS.includes(s.split))
      bad(`sources[${i}] (${s.path}): split must be train, valid or test, got '${String(s.split)}'`);
  });
  const seen = new Set<string>();
  for (const s of m.sources!) {
    if (seen.has(s.path)) bad(`source ${s.path} is listed twice (a source belongs to one split only)`);
    seen.add(s.path);
  }
  return m as GenomeManifest;
}

interface OpenSource {
  entry: GenomeManifestSource;
  label: number;
  src: FastaWindowSource;
}

export class GenomeSet implements LabelledSource {
  readonly domain = 'dna' as const;
  readonly vocabSize = DNA_VOCAB_SIZE;
  readonly classes: readonly string[];
  readonly manifest: GenomeManifest;
  readonly split: Split;
  #sources: OpenSource[];
  #byClass: OpenSource[][];

  constructor(manifest: GenomeManifest, split: Split, sources: OpenSource[]) {
    this.manifest = manifest;
    this.split = split;
    this.classes = manifest.classes;
    this.#sources = sources;
    this.#byClass = manifest.classes.map((_, c) => sources.filter((s) => s.label === c));
  }

  get sources(): readonly { path: string; label: string; accession?: string; bases: number }[] {
    return this.#sources.map((s) => ({
      path: s.entry.path,
      label: s.entry.label,
      accession: s.entry.accession,
      bases: s.src.totalTokens(),
    }));
  }

  describe(): string {
    const per = this.classes.map((c, i) => `${c} ${this.#byClass[i]!.length}`).join(', ');
    const bases = this.#sources.reduce((a, s) => a + s.src.totalTokens(), 0);
    return `${this.manifest.name} (${this.split}): ${this.#sources.length} genomes, ${bases.toLocaleString('en-US')} bases; genomes per class: ${per}; class-balanced windows`;
  }

  async randomExample(length: number, rng: Rng): Promise<LabelledExample> {
    return this.randomExampleSync(length, rng);
  }

  /** Picks a class uniformly (among classes with a source long enough), then a source of it, then a window. */
  randomExampleSync(length: number, rng: Rng): LabelledExample {
    const pad = (s: OpenSource) => s.src.options.shortRecords === 'pad' || s.src.maxWindowLength() >= length;
    const usable = this.#byClass
      .map((list) => list.filter(pad))
      .map((l, c) => ({ l, c }))
      .filter((x) => x.l.length > 0);
    if (usable.length === 0)
      throw new DnaDataError(
        `${this.manifest.name} (${this.split}): no genome has a record of ${length.toLocaleString('en-US')} bases`,
      );
    const { l, c } = usable[rng.int(usable.length)]!;
    const s = l[rng.int(l.length)]!;
    const w = s.src.randomWindowSync(length, rng);
    return { ...w, source: `${s.entry.path}:${w.source}`, label: c };
  }

  async *evalExamples(length: number, perSource = 16): AsyncIterable<LabelledExample> {
    for (const s of this.#sources) {
      for (const w of s.src.spreadWindows(length, perSource))
        yield { ...w, source: `${s.entry.path}:${w.source}`, label: s.label };
    }
  }

  close(): void {
    for (const s of this.#sources) s.src.close();
  }
}

/** Opens the sources of one split of a genome-set manifest. */
export function openGenomeSet(manifestPath: string, split: Split, opts: DnaSourceOptions = {}): GenomeSet {
  const manifest = readGenomeManifest(manifestPath);
  const dir = dirname(resolve(manifestPath));
  const chosen = manifest.sources.filter((s) => s.split === split);
  if (chosen.length === 0) throw new DnaDataError(`${manifestPath}: no sources in split '${split}'`);
  const opened: OpenSource[] = [];
  // the window cache is shared by the whole set, as by the files of one source
  const cacheBlocks = opts.cacheBlocks ?? windowCacheBlocks(chosen.length);
  try {
    for (const e of chosen) {
      const p = isAbsolute(e.path) ? e.path : resolve(dir, e.path);
      opened.push({
        entry: e,
        label: manifest.classes.indexOf(e.label),
        src: openDnaSource(p, { ...opts, cacheBlocks, holdout: undefined, name: e.path }),
      });
    }
  } catch (err) {
    for (const o of opened) o.src.close();
    throw err;
  }
  return new GenomeSet(manifest, split, opened);
}
