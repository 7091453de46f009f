// Next-token windows over long audio: each file is tokenized once (tokens.ts), then windows are cut from
// the token arrays. Windows never cross a file boundary. A hold-out split keeps train and evaluation
// windows apart: by time (the first 1 - fraction of every file is train, the last fraction valid) or
// by file (the last fraction of the files, in sorted order, is valid).
import { basename, dirname, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Rng } from '../../util/rng.js';
import type { TokenWindow, WindowSource } from '../types.js';
import { AudioDataError } from './errors.js';
import { isTokenFile, isWav, listAudioFiles, statOrThrow } from './files.js';
import { AUDIO_VOCAB_SIZE, type AudioEncoding } from './mulaw.js';
import { DEFAULT_AUDIO_RATE, readTokenFile, tokenizeWav } from './tokens.js';

export interface Holdout {
  part: 'train' | 'valid';
  /** share held out for validation, in (0, 1) */
  fraction: number;
  /** 'time' (default): split every file at 1 - fraction; 'file': hold out whole files */
  by?: 'time' | 'file';
}

export interface AudioWindowOptions {
  rate?: number;
  encoding?: AudioEncoding;
  holdout?: Holdout;
  /** folder for token cache files */
  cacheDir?: string;
}

interface Rec {
  name: string;
  tokens: Uint8Array;
  /** offset of tokens[0] in the file */
  offset: number;
}

export class AudioWindowSource implements WindowSource {
  readonly domain = 'audio' as const;
  readonly vocabSize = AUDIO_VOCAB_SIZE;
  readonly rate: number;
  readonly encoding: AudioEncoding;
  readonly records: readonly Rec[];
  readonly #label: string;

  constructor(records: Rec[], rate: number, encoding: AudioEncoding, label: string) {
    this.records = records;
    this.rate = rate;
    this.encoding = encoding;
    this.#label = label;
  }

  describe(): string {
    const total = this.totalTokens();
    const secs = total / this.rate;
    const dur = secs >= 120 ? `${(secs / 60).toFixed(1)} min` : `${secs.toFixed(1)} s`;
    return `${this.#label}: ${this.records.length} file${this.records.length === 1 ? '' : 's'}, ${total.toLocaleString('en-US')} samples (${dur}) at ${this.rate} Hz, ${this.encoding} 8-bit tokens`;
  }

  maxWindowLength(): number {
    let m = 0;
    for (const r of this.records) m = Math.max(m, r.tokens.length);
    return m;
  }

  totalTokens(): number {
    let t = 0;
    for (const r of this.records) t += r.tokens.length;
    return t;
  }

  async randomWindow(length: number, rng: Rng): Promise<TokenWindow> {
    return this.randomWindowSync(length, rng);
  }

  /** Uniform over every start position of every file long enough. */
  randomWindowSync(length: number, rng: Rng): TokenWindow {
    if (!(Number.isInteger(length) && length > 0))
      throw new AudioDataError(`window length must be a positive integer, got ${length}`);
    let positions = 0;
    for (const r of this.records) if (r.tokens.length >= length) positions += r.tokens.length - length + 1;
    if (positions === 0) {
      throw new AudioDataError(
        `${this.#label}: no file is at least ${length} samples long (longest: ${this.maxWindowLength()})`,
      );
    }
    let k = rng.int(positions);
    for (const r of this.records) {
      if (r.tokens.length < length) continue;
      const n = r.tokens.length - length + 1;
      if (k < n) return { tokens: r.tokens.slice(k, k + length), source: r.name, start: r.offset + k };
      k -= n;
    }
    throw new Error('unreachable');
  }

  async *sequentialWindows(length: number): AsyncIterable<TokenWindow> {
    if (!(Number.isInteger(length) && length > 0))
      throw new AudioDataError(`window length must be a positive integer, got ${length}`);
    for (const r of this.records) {
      for (let s = 0; s + length <= r.tokens.length; s += length) {
        yield { tokens: r.tokens.slice(s, s + length), source: r.name, start: r.offset + s };
      }
    }
  }
}

/** The files an input names: a .wav or .tokens file, a folder of them, or a JSON manifest with items[].path. */
export function resolveAudioInputs(input: string | readonly string[]): string[] {
  const list = typeof input === 'string' ? [input] : [...input];
  const out: string[] = [];
  for (const p of list) {
    const st = statOrThrow(p);
    if (st.isDirectory()) {
      const files = listAudioFiles(p, true);
      if (files.length === 0) throw new AudioDataError(`${p}: no audio files (.wav or .tokens) in this folder`);
      out.push(...files);
    } else if (/\.json$/i.test(p)) {
      let m: { items?: { path?: unknown }[] };
      try {
        m = JSON.parse(readFileSync(p, 'utf8'));
      } catch (e) {
        throw new AudioDataError(`${p}: not valid JSON (${(e as Error).message})`);
      }
      if (!Array.isArray(m.items) || m.items.length === 0) throw new AudioDataError(`${p}: the manifest has no items`);
      for (const it of m.items) {
        if (typeof it.path !== 'string') throw new AudioDataError(`${p}: every item needs a "path"`);
        out.push(resolve(dirname(p), it.path));
      }
    } else if (isWav(p) || isTokenFile(p)) out.push(p);
    else throw new AudioDataError(`${p}: expected a .wav or .tokens file, a folder or a .json manifest`);
  }
  return out;
}

/**
 * Opens long audio for next-token modelling. Raw `.tokens` files are taken as already at `rate` and
 * in `encoding` (as `mamba-audio tokenize` writes them).
 */
export async function openAudioWindows(
  input: string | readonly string[],
  opts: AudioWindowOptions = {},
): Promise<AudioWindowSource> {
  const rate = opts.rate ?? DEFAULT_AUDIO_RATE;
  const encoding = opts.encoding ?? 'mulaw';
  const files = resolveAudioInputs(input);
  const h = opts.holdout;
  if (h) {
    if (!(h.fraction > 0 && h.fraction < 1))
      throw new AudioDataError(`holdout fraction must be in (0, 1), got ${h.fraction}`);
    if (h.part !== 'train' && h.part !== 'valid')
      throw new AudioDataError(`holdout part must be train or valid, got ${String(h.part)}`);
  }
  let chosen = files;
  if (h && h.by === 'file') {
    if (files.length < 2)
      throw new AudioDataError(`a hold-out by file needs at least 2 files (got ${files.length}); use by: 'time'`);
    const nValid = Math.min(files.length - 1, Math.max(1, Math.round(files.length * h.fraction)));
    chosen = h.part === 'valid' ? files.slice(files.length - nValid) : files.slice(0, files.length - nValid);
  }
  const records: Rec[] = [];
  for (const f of chosen) {
    const all = isTokenFile(f)
      ? readTokenFile(f, { expect: { rate, encoding } })
      : tokenizeWav(f, { rate, encoding, cacheDir: opts.cacheDir }).tokens;
    let tokens = all,
      offset = 0;
    if (h && h.by !== 'file') {
      const cut = Math.floor(all.length * (1 - h.fraction));
      if (h.part === 'train') tokens = all.subarray(0, cut);
      else {
        tokens = all.subarray(cut);
        offset = cut;
      }
    }
    records.push({ name: basename(f), tokens, offset });
  }
  const base = typeof input === 'string' ? basename(input) : `${files.length} inputs`;
  const label = h
    ? `${base} [${h.part}, ${h.by === 'file' ? 'by file' : 'by time'}, ${Math.round(h.fraction * 100)}% held out]`
    : base;
  return new AudioWindowSource(records, rate, encoding, label);
}
