// Shipped audio data and the recipes that make larger sets with espeak-ng (a formant speech synthesiser,
// installed with `apt-get install espeak-ng`): ten spoken digits in many voices, and long read speech.
// Every recipe writes 16 kHz 16-bit mono WAV (espeak-ng speaks at 22,050 Hz; our resampler converts).
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { packageRoot } from '../../backend/native.js';
import { Rng } from '../../util/rng.js';
import type { Split } from '../types.js';
import { AudioDataError } from './errors.js';
import type { AudioManifest } from './labelled.js';
import { encodeSamples } from './mulaw.js';
import { encodeTokenFile } from './tokens.js';
import { resample } from './resample.js';
import { readWavMono, writeFileAtomic, writeWav } from './wav.js';

/** The small spoken-digit set shipped for the default run (a folder with manifest.json). */
export const DEFAULT_AUDIO_DIGITS = join(packageRoot, 'datasets', 'audio', 'digits');
/** About 82 s of read speech (the Gettysburg Address, espeak-ng en-us, 16 kHz 16-bit) for the default LM run. */
export const DEFAULT_AUDIO_SPEECH = join(packageRoot, 'datasets', 'audio', 'speech', 'gettysburg-en-us.wav');
/** Public-domain texts read by the long-speech recipe. */
export const AUDIO_TEXTS_DIR = join(packageRoot, 'datasets', 'audio', 'texts');

export const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;
const OUT_RATE = 16000;

export interface EspeakVoice {
  /** language voice, e.g. en-us */
  language: string;
  /** variant file name, e.g. f3 ('' for the plain voice) */
  variant: string;
}

export const voiceId = (v: EspeakVoice): string => (v.variant ? `${v.language}+${v.variant}` : v.language);

function espeak(args: string[]): string {
  const r = spawnSync('espeak-ng', args, { encoding: 'utf8' });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new AudioDataError(
      code === 'ENOENT'
        ? 'espeak-ng is not installed (apt-get install espeak-ng)'
        : `espeak-ng failed: ${r.error.message}`,
    );
  }
  if (r.status !== 0)
    throw new AudioDataError(`espeak-ng ${args.join(' ')} failed: ${(r.stderr || '').trim().split('\n')[0]}`);
  return r.stdout;
}

/** English language voices (without the mbrola ones, which need extra packages) and the voice variants. */
export function espeakVoices(): { languages: string[]; variants: string[] } {
  const rows = (out: string) =>
    out
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c.length >= 5);
  const languages = [
    ...new Set(
      rows(espeak(['--voices=en']))
        .filter((c) => !c[4]!.startsWith('mb/') && c[1] !== 'variant')
        .map((c) => c[1]!),
    ),
  ].sort();
  const variants = [
    ...new Set(
      rows(espeak(['--voices=variant']))
        .map((c) => c[4]!.replace(/^!v\//, ''))
        .filter((v) => !/test/i.test(v)),
    ),
  ].sort();
  return { languages, variants };
}

/** `n` distinct voices (language x variant), in a seeded order that mixes languages and variants. */
export function pickVoices(n: number, seed = 1): EspeakVoice[] {
  const { languages, variants } = espeakVoices();
  const all: EspeakVoice[] = [];
  for (const language of languages) for (const variant of ['', ...variants]) all.push({ language, variant });
  const rng = new Rng(seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  // the plain en-us voice first: the most natural one
  const k = all.findIndex((v) => v.language === 'en-us' && v.variant === '');
  if (k > 0) all.unshift(...all.splice(k, 1));
  if (n > all.length)
    throw new AudioDataError(`asked for ${n} voices; espeak-ng has ${all.length} English voice/variant pairs`);
  return all.slice(0, n);
}

/** Speaks `text` (or the file `textFile`) to mono float32 at 16 kHz. */
export function speak(
  voice: EspeakVoice,
  opts: { text?: string; textFile?: string; speed?: number; pitch?: number; tmp: string },
): Float32Array {
  const wav = join(opts.tmp, 'espeak.wav');
  const args = ['-v', voiceId(voice), '-s', String(opts.speed ?? 175), '-p', String(opts.pitch ?? 50), '-w', wav];
  if (opts.textFile) args.push('-f', opts.textFile);
  else args.push(opts.text ?? '');
  espeak(args);
  const { samples, rate } = readWavMono(wav);
  return resample(samples, rate, OUT_RATE);
}

/** Cuts leading and trailing near-silence, keeping `marginMs` either side. */
export function trimSilence(x: Float32Array, rate = OUT_RATE, threshold = 0.004, marginMs = 20): Float32Array {
  let a = 0,
    b = x.length - 1;
  while (a < x.length && Math.abs(x[a]!) < threshold) a++;
  while (b > a && Math.abs(x[b]!) < threshold) b--;
  if (a >= b) return x.slice(0, 0);
  const m = Math.round((rate * marginMs) / 1000);
  return x.slice(Math.max(0, a - m), Math.min(x.length, b + 1 + m));
}

export interface DigitsRecipe {
  /** number of voices (speakers), default 40 */
  voices?: number;
  /** utterances per voice and digit, each at its own speed and pitch (default 3) */
  renditions?: number;
  /** shares of voices for test and valid (default 0.2 and 0.1) */
  testFraction?: number;
  validFraction?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Builds a spoken-digit set in `out`: <voice>_<digit>_<k>.wav files in <split>/<digit>/ plus manifest.json. */
export function buildDigits(out: string, r: DigitsRecipe = {}): AudioManifest {
  const nVoices = r.voices ?? 40;
  const renditions = r.renditions ?? 3;
  if (!(nVoices >= 2)) throw new AudioDataError(`need at least 2 voices, got ${nVoices}`);
  const voices = pickVoices(nVoices, r.seed ?? 1);
  // Voices that share a variant share its voice quality (pitch, formants) across accents, so the split is
  // by variant group: no variant is heard in two splits. The last groups are held out (the plain en-us
  // voice, picked first, stays in train).
  const group = (v: EspeakVoice) => v.variant.toLowerCase() || 'plain';
  const groups = [...new Set(voices.map(group))];
  if (groups.length < 2)
    throw new AudioDataError(`the ${nVoices} voices share one variant; need at least 2 for a split`);
  const nTest = Math.max(1, Math.round(groups.length * (r.testFraction ?? 0.2)));
  const nValid = Math.min(groups.length - nTest - 1, Math.round(groups.length * (r.validFraction ?? 0.1)));
  const splitOf = new Map<string, Split>(
    groups.map((g, i) => [
      g,
      i >= groups.length - nTest ? 'test' : i >= groups.length - nTest - nValid ? 'valid' : 'train',
    ]),
  );
  const rng = new Rng((r.seed ?? 1) + 1000);
  const tmp = mkdtempSync(join(tmpdir(), 'mamba-digits-'));
  const items: AudioManifest['items'] = [];
  const total = nVoices * DIGIT_WORDS.length * renditions;
  let done = 0;
  let longest = 0;
  try {
    voices.forEach((v) => {
      const split = splitOf.get(group(v))!;
      const speaker = voiceId(v).replace(/[^A-Za-z0-9-]+/g, '-');
      // each voice speaks around its own base speed and pitch
      const baseSpeed = 130 + rng.int(60),
        basePitch = 30 + rng.int(40);
      DIGIT_WORDS.forEach((word) => {
        for (let k = 0; k < renditions; k++) {
          const speed = k === 0 ? baseSpeed : baseSpeed - 20 + rng.int(41);
          const pitch = k === 0 ? basePitch : Math.max(0, Math.min(99, basePitch - 15 + rng.int(31)));
          const x = trimSilence(speak(v, { text: word, speed, pitch, tmp }));
          if (x.length === 0)
            throw new AudioDataError(`espeak-ng produced silence for "${word}" in voice ${voiceId(v)}`);
          const clip =
            x.length > OUT_RATE
              ? x.subarray(Math.floor((x.length - OUT_RATE) / 2), Math.floor((x.length - OUT_RATE) / 2) + OUT_RATE)
              : x;
          longest = Math.max(longest, clip.length);
          const rel = join(split, word, `${speaker}_${word}_${k}.wav`);
          mkdirSync(join(out, split, word), { recursive: true });
          writeWav(join(out, rel), clip, OUT_RATE, 16);
          items.push({ path: rel, label: word, speaker, split });
          r.onProgress?.(++done, total);
        }
      });
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const manifest: AudioManifest = {
    name: `espeak-ng spoken digits (${nVoices} voices x ${renditions})`,
    classes: [...DIGIT_WORDS],
    rate: OUT_RATE,
    clipSamples: OUT_RATE,
    items,
  };
  writeFileAtomic(join(out, 'manifest.json'), new TextEncoder().encode(JSON.stringify(manifest, null, 1) + '\n'));
  return manifest;
}

export interface LongSpeechRecipe {
  /** number of voices, one file each reading every text (default 4) */
  voices?: number;
  /** words per minute (default 165) */
  speed?: number;
  textsDir?: string;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Builds long read-speech files in `out`: one <voice>.wav per voice, each reading all texts in order (minutes each); returns the file names. */
export function buildLongSpeech(out: string, r: LongSpeechRecipe = {}): string[] {
  const textsDir = r.textsDir ?? AUDIO_TEXTS_DIR;
  if (!existsSync(textsDir)) throw new AudioDataError(`${textsDir}: no such folder of texts`);
  const texts = readdirSync(textsDir)
    .filter((f) => f.endsWith('.txt'))
    .sort();
  if (texts.length === 0) throw new AudioDataError(`${textsDir}: no .txt files`);
  const voices = pickVoices(r.voices ?? 4, r.seed ?? 2);
  mkdirSync(out, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'mamba-speech-'));
  const written: string[] = [];
  try {
    // all texts in one file, paragraphs separated by blank lines (espeak-ng pauses there)
    const all = join(tmp, 'all.txt');
    writeFileAtomic(
      all,
      new TextEncoder().encode(texts.map((t) => readFileSync(join(textsDir, t), 'utf8').trim()).join('\n\n') + '\n'),
    );
    voices.forEach((v, i) => {
      const x = speak(v, { textFile: all, speed: r.speed ?? 165, tmp });
      const file = join(out, `${voiceId(v).replace(/[^A-Za-z0-9-]+/g, '-')}.wav`);
      writeWav(file, x, OUT_RATE, 16);
      written.push(basename(file));
      r.onProgress?.(i + 1, voices.length);
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return written;
}

/** Builds into a temporary folder beside `out` and renames it, so a failed build leaves no half-made set. */
export function buildAtomically<T>(out: string, build: (dir: string) => T, force = false): T {
  if (existsSync(out)) {
    if (!force) throw new AudioDataError(`${out} exists; pass --force to replace it`);
  }
  const tmp = `${out.replace(/\/+$/, '')}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const res = build(tmp);
    if (existsSync(out)) rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return res;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

// ---- music: the Battle for Wesnoth soundtrack (Debian wesnoth-1.16-music), decoded by sox --------------

/** Where Debian installs the Wesnoth soundtrack (Ogg Vorbis, 44.1 kHz stereo, GPL). */
export const WESNOTH_MUSIC_DIRS = [
  '/usr/share/games/wesnoth/1.16/data/core/music',
  '/usr/share/games/wesnoth/data/core/music',
];

export interface MusicRecipe {
  /** folder of .ogg tracks (default: the first of WESNOTH_MUSIC_DIRS that exists) */
  source?: string;
  /** 16-bit WAV files (default) or mu-law token files (header + one byte per sample, 16 kHz): compact, no decoding to train */
  format?: 'wav' | 'tokens';
  /** shares of the total duration held out, by whole tracks (default 0.15 test, 0.05 valid) */
  testFraction?: number;
  validFraction?: number;
  /** tracks shorter than this are left out (jingles and the 10 s of silence; default 30 s) */
  minSeconds?: number;
  /** keep at most this much of each split (tracks in split order, the last one cut): a subset to carry */
  maxSeconds?: Partial<Record<Split, number>>;
  /** keep only the middle this-many seconds of every track, and leave out tracks shorter than that (a subset of many tracks) */
  excerptSeconds?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface MusicManifest {
  name: string;
  source: string;
  rate: number;
  format: 'wav' | 'tokens';
  split: string;
  hours: Record<Split, number>;
  tracks: { path: string; track: string; split: Split; seconds: number; source_seconds: number }[];
}

function findMusicDir(): string {
  const d = WESNOTH_MUSIC_DIRS.find((p) => existsSync(p));
  if (!d)
    throw new AudioDataError(
      `no Wesnoth music under ${WESNOTH_MUSIC_DIRS.join(' or ')}; install it (apt-get install wesnoth-1.16-music) or pass --source DIR`,
    );
  return d;
}

/** Decodes any file sox reads to 16 kHz mono float32 (sox resamples and averages the channels). */
export function soxDecode(path: string, tmp: string, rate = OUT_RATE): Float32Array {
  const wav = join(tmp, 'decoded.wav');
  const r = spawnSync(
    'sox',
    [path, '-t', 'wav', '-e', 'signed-integer', '-b', '16', wav, 'channels', '1', 'rate', String(rate)],
    { encoding: 'utf8' },
  );
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new AudioDataError(
      code === 'ENOENT'
        ? 'sox is not installed (apt-get install sox libsox-fmt-base; libsox-fmt-base gives sox its Ogg Vorbis support)'
        : `sox failed: ${r.error.message}`,
    );
  }
  if (r.status !== 0) {
    const msg = (r.stderr || '').trim().split('\n')[0] ?? '';
    const hint = /no handler|ogg|vorbis/i.test(msg) ? ' (sox lacks Ogg support: apt-get install libsox-fmt-base)' : '';
    throw new AudioDataError(`${path}: sox could not decode it: ${msg}${hint}`);
  }
  const { samples } = readWavMono(wav);
  rmSync(wav, { force: true });
  return samples;
}

/** The split rule of a music build, in words, for music.json. */
function describeMusicSplit(r: MusicRecipe, minSeconds: number): string {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const parts = [
    `by whole track: seeded shuffle (seed ${r.seed ?? 1}), test then valid take tracks until they hold` +
      ` ${pct(r.testFraction ?? 0.15)} and ${pct(r.validFraction ?? 0.05)} of the duration`,
    `tracks under ${minSeconds} s left out`,
  ];
  if (r.excerptSeconds) parts.push(`subset: the middle ${r.excerptSeconds} s of every track at least that long`);
  if (r.maxSeconds)
    parts.push(`subset: at most ${JSON.stringify(r.maxSeconds)} seconds per split (the last track of a split cut)`);
  return parts.join('; ');
}

/**
 * Builds the music set in `out`: every track decoded to 16 kHz mono, split by whole tracks (a seeded
 * shuffle, then test and valid take tracks until they hold their share of the total duration), written to
 * <split>/<track>.wav (or .tokens) with music.json (splits, hours, tracks).
 */
export function buildMusic(out: string, r: MusicRecipe = {}): MusicManifest {
  const source = r.source ?? findMusicDir();
  if (!existsSync(source)) throw new AudioDataError(`${source}: no such folder`);
  const files = readdirSync(source)
    .filter((f) => /\.(ogg|oga|flac|wav)$/i.test(f))
    .sort();
  if (files.length < 3) {
    throw new AudioDataError(
      `${source}: ${files.length} audio file(s); a train/valid/test split by track needs at least 3`,
    );
  }
  const format = r.format ?? 'wav';
  const minSeconds = r.minSeconds ?? 30;
  // decode each track once into a temporary file (the whole soundtrack decoded is too big to hold in memory)
  const tmp = mkdtempSync(join(tmpdir(), 'mamba-music-'));
  const decoded: { track: string; file: string; samples: number }[] = [];
  const tracks: MusicManifest['tracks'] = [];
  const kept: Record<Split, number> = { train: 0, valid: 0, test: 0 };
  try {
    files.forEach((f, i) => {
      const x = soxDecode(join(source, f), tmp);
      if (x.length >= minSeconds * OUT_RATE) {
        const file = join(tmp, `${i}.f32`);
        writeFileSync(file, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
        decoded.push({ track: f.replace(/\.[^.]+$/, ''), file, samples: x.length });
      }
      r.onProgress?.(i + 1, files.length + 1);
    });
    if (decoded.length < 3)
      throw new AudioDataError(`${source}: ${decoded.length} track(s) of at least ${minSeconds} s; need 3 for a split`);
    // a seeded order, then the held-out splits fill up to their share of the duration
    const order = decoded.map((_, i) => i);
    const rng = new Rng(r.seed ?? 1);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const total = decoded.reduce((a, d) => a + d.samples, 0);
    const want = { test: (r.testFraction ?? 0.15) * total, valid: (r.validFraction ?? 0.05) * total };
    const splitOf = new Map<number, Split>();
    const have = { test: 0, valid: 0 };
    for (const i of order) {
      const s: Split = have.test < want.test ? 'test' : have.valid < want.valid ? 'valid' : 'train';
      if (s !== 'train') have[s] += decoded[i]!.samples;
      splitOf.set(i, s);
    }
    for (const s of ['test', 'valid', 'train'] as const) {
      if (![...splitOf.values()].includes(s)) throw new AudioDataError(`${source}: too few tracks for a ${s} split`);
    }
    for (const i of order) {
      const d = decoded[i]!;
      const split = splitOf.get(i)!;
      const cap = r.maxSeconds?.[split];
      const room = cap === undefined ? Infinity : Math.round(cap * OUT_RATE) - kept[split];
      if (room <= 0) continue;
      const ex = r.excerptSeconds === undefined ? Infinity : Math.round(r.excerptSeconds * OUT_RATE);
      if (d.samples < ex && ex !== Infinity) continue;
      const buf = readFileSync(d.file);
      let all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      if (all.length > ex)
        all = all.subarray(Math.floor((all.length - ex) / 2), Math.floor((all.length - ex) / 2) + ex);
      const x = all.length > room ? all.subarray(0, room) : all;
      kept[split] += x.length;
      const rel = join(split, `${d.track}.${format === 'wav' ? 'wav' : 'tokens'}`);
      mkdirSync(join(out, split), { recursive: true });
      if (format === 'wav') writeWav(join(out, rel), x, OUT_RATE, 16);
      else writeFileAtomic(join(out, rel), encodeTokenFile(encodeSamples(x, 'mulaw'), OUT_RATE, 'mulaw'));
      tracks.push({
        path: rel,
        track: d.track,
        split,
        seconds: x.length / OUT_RATE,
        source_seconds: d.samples / OUT_RATE,
      });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const hours = {
    train: kept.train / OUT_RATE / 3600,
    valid: kept.valid / OUT_RATE / 3600,
    test: kept.test / OUT_RATE / 3600,
  };
  const manifest: MusicManifest = {
    name: 'wesnoth-music',
    source,
    rate: OUT_RATE,
    format,
    split: describeMusicSplit(r, minSeconds),
    hours,
    tracks,
  };
  writeFileAtomic(join(out, 'music.json'), new TextEncoder().encode(JSON.stringify(manifest, null, 1) + '\n'));
  r.onProgress?.(files.length + 1, files.length + 1);
  return manifest;
}
