// Labelled audio clips for classification (spoken digits and the like), split by speaker/voice so the test
// split measures generalisation to unheard voices, never to unheard clips of known voices.
//
// Layouts openAudioSet accepts:
//   - a manifest (a .json file, or a folder holding manifest.json):
//       { "name", "classes": [...], "rate", "clipSamples", "items": [{ "path", "label", "speaker", "split" }] }
//     paths relative to the manifest; label is a class name or index; an item without a split gets one
//     from its speaker (below);
//   - a TSV manifest (.tsv, or manifest.tsv in a folder): a header line naming the columns path, label and
//     optionally speaker and split, then one clip per line; the classes are the labels in sorted order;
//   - DIR/<split>/<class>/*.wav (split folders train/valid/test);
//   - DIR/<class>/*.wav: the speaker is the file name up to its first "_" (the Speech Commands
//     convention, e.g. "f3_zero.wav" -> "f3"), and the split is chosen from a hash of the speaker
//     (10 % test, 10 % valid, 80 % train).
// Clips are fitted to the requested length: padded at the end with the silence token (the token of 0.0),
// or cropped centrally when longer.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Rng } from '../../util/rng.js';
import type { LabelledExample, LabelledSource, Split } from '../types.js';
import { AudioDataError } from './errors.js';
import { isWav, listAudioFiles, statOrThrow } from './files.js';
import { AUDIO_VOCAB_SIZE, silenceToken, type AudioEncoding } from './mulaw.js';
import { DEFAULT_AUDIO_RATE, tokenizeWav } from './tokens.js';

export const SPLITS: readonly Split[] = ['train', 'valid', 'test'];

export interface AudioManifestItem {
  path: string;
  label: string | number;
  speaker?: string;
  split?: Split;
}

export interface AudioManifest {
  name?: string;
  classes: string[];
  /** the rate the files were recorded at (informational; clips are resampled to the model rate) */
  rate?: number;
  /** the natural clip length at the model rate, in samples */
  clipSamples?: number;
  items: AudioManifestItem[];
}

export interface AudioSetOptions {
  rate?: number;
  encoding?: AudioEncoding;
  /** default clip length in samples (otherwise the manifest's, otherwise 1 s) */
  clipSamples?: number;
  /** where relative paths of an in-memory manifest start (default: the current folder) */
  baseDir?: string;
}

export interface AudioClip {
  path: string;
  label: number;
  speaker: string;
  split: Split;
}

/** A stable split for a speaker: FNV-1a hash, 10 % test, 10 % valid, 80 % train. */
export function splitForSpeaker(speaker: string): Split {
  let h = 0x811c9dc5;
  for (let i = 0; i < speaker.length; i++) h = Math.imul(h ^ speaker.charCodeAt(i), 0x01000193) >>> 0;
  const b = h % 10;
  return b === 0 ? 'test' : b === 1 ? 'valid' : 'train';
}

function speakerOf(file: string): string {
  const stem = basename(file).replace(/\.[^.]*$/, '');
  const i = stem.indexOf('_');
  return i > 0 ? stem.slice(0, i) : stem;
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

function classFolderFiles(dir: string): string[] {
  const files = listAudioFiles(dir);
  if (files.length === 0) throw new AudioDataError(`${dir}: class folder is empty (no .wav files)`);
  return files;
}

function parseTsvManifest(path: string, text: string): AudioManifest {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() && !l.startsWith('#'));
  const head = (lines.shift() ?? '').split('\t').map((h) => h.trim().toLowerCase());
  const col = (name: string) => head.indexOf(name);
  if (col('path') < 0 || col('label') < 0)
    throw new AudioDataError(`${path}: the TSV header must name the columns path and label (got: ${head.join(', ')})`);
  const items = lines.map((l, i) => {
    const f = l.split('\t');
    const get = (name: string) => (col(name) >= 0 ? (f[col(name)] ?? '').trim() : '');
    if (!get('path') || !get('label')) throw new AudioDataError(`${path}: line ${i + 2} needs a path and a label`);
    const item: AudioManifestItem = { path: get('path'), label: get('label') };
    if (get('speaker')) item.speaker = get('speaker');
    if (get('split')) item.split = get('split') as Split;
    return item;
  });
  return { classes: [...new Set(items.map((it) => String(it.label)))].sort(), items };
}

function loadManifestFile(path: string): { manifest: AudioManifest; baseDir: string } {
  let m: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    m = /\.tsv$/i.test(path) ? parseTsvManifest(path, text) : JSON.parse(text);
  } catch (e) {
    if (e instanceof AudioDataError) throw e;
    throw new AudioDataError(`${path}: cannot read the manifest (${(e as Error).message.split('\n')[0]})`);
  }
  return { manifest: m as AudioManifest, baseDir: dirname(resolve(path)) };
}

/** Reads a dataset description from a manifest or a folder layout (see the file comment). */
export function loadAudioSetIndex(
  pathOrManifest: string | AudioManifest,
  baseDir?: string,
): { name: string; classes: string[]; clipSamples?: number; clips: AudioClip[]; where: string } {
  let manifest: AudioManifest | undefined;
  let base = baseDir ?? process.cwd();
  let where = 'manifest';
  if (typeof pathOrManifest === 'string') {
    const p = pathOrManifest;
    where = p;
    const st = statOrThrow(p);
    if (st.isFile()) ({ manifest, baseDir: base } = loadManifestFile(p));
    else if (existsSync(join(p, 'manifest.json')))
      ({ manifest, baseDir: base } = loadManifestFile(join(p, 'manifest.json')));
    else if (existsSync(join(p, 'manifest.tsv')))
      ({ manifest, baseDir: base } = loadManifestFile(join(p, 'manifest.tsv')));
    else return folderIndex(p);
  } else manifest = pathOrManifest;
  return manifestIndex(manifest!, base, where);
}

function manifestIndex(m: AudioManifest, base: string, where: string) {
  const bad = (msg: string) => new AudioDataError(`${where}: ${msg}`);
  if (!m || typeof m !== 'object') throw bad('the manifest is not a JSON object');
  if (!Array.isArray(m.classes) || m.classes.length < 2 || !m.classes.every((c) => typeof c === 'string')) {
    throw bad('"classes" must list at least two class names');
  }
  if (!Array.isArray(m.items) || m.items.length === 0) throw bad('the manifest has no items');
  const clips: AudioClip[] = m.items.map((it, i) => {
    if (!it || typeof it.path !== 'string') throw bad(`item ${i} has no "path"`);
    const label = typeof it.label === 'number' ? it.label : m.classes.indexOf(String(it.label));
    if (!(Number.isInteger(label) && label >= 0 && label < m.classes.length))
      throw bad(`item ${i} (${it.path}) has an unknown label ${JSON.stringify(it.label)}`);
    const speaker = typeof it.speaker === 'string' && it.speaker ? it.speaker : speakerOf(it.path);
    const split = it.split ?? splitForSpeaker(speaker);
    if (!SPLITS.includes(split)) throw bad(`item ${i} (${it.path}) has an unknown split ${JSON.stringify(split)}`);
    return { path: resolve(base, it.path), label, speaker, split };
  });
  const clipSamples = typeof m.clipSamples === 'number' && m.clipSamples > 0 ? m.clipSamples : undefined;
  return { name: m.name ?? basename(where), classes: [...m.classes], clipSamples, clips, where };
}

function folderIndex(dir: string) {
  const top = subdirs(dir);
  const splitDirs = top.filter((d) => (SPLITS as readonly string[]).includes(d));
  const clips: AudioClip[] = [];
  let classes: string[];
  if (splitDirs.length > 0) {
    classes = [...new Set(splitDirs.flatMap((s) => subdirs(join(dir, s))))].sort();
    if (classes.length === 0) throw new AudioDataError(`${dir}: no class folders inside ${splitDirs.join(', ')}`);
    for (const s of splitDirs) {
      for (const c of subdirs(join(dir, s))) {
        for (const f of classFolderFiles(join(dir, s, c)))
          clips.push({ path: f, label: classes.indexOf(c), speaker: speakerOf(f), split: s as Split });
      }
    }
  } else {
    classes = top;
    if (classes.length === 0) {
      const loose = listAudioFiles(dir).length;
      throw new AudioDataError(
        loose
          ? `${dir}: audio files but no class folders (expected ${dir}/<class>/*.wav)`
          : `${dir}: no audio in this folder (expected <class>/*.wav, <split>/<class>/*.wav or manifest.json)`,
      );
    }
    for (const c of classes) {
      for (const f of classFolderFiles(join(dir, c))) {
        const speaker = speakerOf(f);
        clips.push({ path: f, label: classes.indexOf(c), speaker, split: splitForSpeaker(speaker) });
      }
    }
  }
  if (classes.length < 2)
    throw new AudioDataError(`${dir}: found one class folder (${classes[0]}); classification needs at least two`);
  return { name: basename(resolve(dir)), classes, clipSamples: undefined, clips, where: dir };
}

/** Fits a clip to `length` tokens: central crop when longer, silence padding at the end when shorter. */
export function fitClip(tokens: Uint8Array, length: number, silence: number): { tokens: Uint8Array; start: number } {
  if (tokens.length >= length) {
    const start = Math.floor((tokens.length - length) / 2);
    return { tokens: tokens.slice(start, start + length), start };
  }
  const out = new Uint8Array(length).fill(silence);
  out.set(tokens);
  return { tokens: out, start: 0 };
}

export class AudioLabelledSource implements LabelledSource {
  readonly domain = 'audio' as const;
  readonly vocabSize = AUDIO_VOCAB_SIZE;
  readonly classes: readonly string[];
  readonly split: Split;
  readonly rate: number;
  readonly encoding: AudioEncoding;
  /** the natural clip length in samples at `rate` (a good default window length) */
  readonly clipSamples: number;
  readonly clips: readonly AudioClip[];
  readonly #tokens: Uint8Array[];
  readonly #byClass: number[][];
  readonly #name: string;
  readonly #silence: number;

  constructor(
    name: string,
    classes: string[],
    split: Split,
    clips: AudioClip[],
    tokens: Uint8Array[],
    rate: number,
    encoding: AudioEncoding,
    clipSamples: number,
  ) {
    this.#name = name;
    this.classes = classes;
    this.split = split;
    this.clips = clips;
    this.#tokens = tokens;
    this.rate = rate;
    this.encoding = encoding;
    this.clipSamples = clipSamples;
    this.#silence = silenceToken(encoding);
    this.#byClass = classes.map(() => []);
    clips.forEach((c, i) => this.#byClass[c.label]!.push(i));
  }

  speakers(): string[] {
    return [...new Set(this.clips.map((c) => c.speaker))].sort();
  }

  describe(): string {
    const counts = this.#byClass.map((ix, c) => `${this.classes[c]} ${ix.length}`).join(', ');
    return (
      `${this.#name} [${this.split}]: ${this.clips.length} clips of ${this.classes.length} classes (${counts}) from ${this.speakers().length} speakers/voices, ` +
      `${this.rate} Hz ${this.encoding} tokens; clips padded at the end with the silence token ${this.#silence} or cropped centrally to the window length (default ${this.clipSamples})`
    );
  }

  #example(i: number, length: number): LabelledExample {
    const c = this.clips[i]!;
    const { tokens, start } = fitClip(this.#tokens[i]!, length, this.#silence);
    return { tokens, source: basename(c.path), start, label: c.label };
  }

  async randomExample(length: number, rng: Rng): Promise<LabelledExample> {
    if (!(Number.isInteger(length) && length > 0))
      throw new AudioDataError(`clip length must be a positive integer, got ${length}`);
    const withItems = this.#byClass.map((ix, c) => (ix.length ? c : -1)).filter((c) => c >= 0);
    const c = withItems[rng.int(withItems.length)]!;
    const ix = this.#byClass[c]!;
    return this.#example(ix[rng.int(ix.length)]!, length);
  }

  async *evalExamples(length: number): AsyncIterable<LabelledExample> {
    if (!(Number.isInteger(length) && length > 0))
      throw new AudioDataError(`clip length must be a positive integer, got ${length}`);
    for (let i = 0; i < this.clips.length; i++) yield this.#example(i, length);
  }
}

/**
 * Opens one split of a labelled audio set (manifest or folder layout; see the file comment). Every clip of
 * the split is tokenized at open (clips are short). Throws when a speaker appears in two splits.
 */
export async function openAudioSet(
  pathOrManifest: string | AudioManifest,
  split: Split,
  opts: AudioSetOptions = {},
): Promise<AudioLabelledSource> {
  if (!SPLITS.includes(split))
    throw new AudioDataError(`unknown split "${String(split)}" (expected train, valid or test)`);
  const rate = opts.rate ?? DEFAULT_AUDIO_RATE;
  const encoding = opts.encoding ?? 'mulaw';
  const idx = loadAudioSetIndex(pathOrManifest, opts.baseDir);
  const seen = new Map<string, Split>();
  for (const c of idx.clips) {
    const s = seen.get(c.speaker);
    if (s && s !== c.split)
      throw new AudioDataError(
        `${idx.where}: speaker "${c.speaker}" appears in both ${s} and ${c.split}; splits must be by speaker`,
      );
    seen.set(c.speaker, c.split);
  }
  const clips = idx.clips.filter((c) => c.split === split);
  if (clips.length === 0) {
    const have = SPLITS.filter((s) => idx.clips.some((c) => c.split === s));
    throw new AudioDataError(
      `${idx.where}: no clips in split "${split}" (splits present: ${have.join(', ') || 'none'})`,
    );
  }
  for (const c of clips) if (!isWav(c.path)) throw new AudioDataError(`${c.path}: not a .wav file`);
  const tokens = clips.map((c) => tokenizeWav(c.path, { rate, encoding }).tokens);
  const clipSamples = opts.clipSamples ?? idx.clipSamples ?? rate;
  return new AudioLabelledSource(idx.name, idx.classes, split, clips, tokens, rate, encoding, clipSamples);
}
