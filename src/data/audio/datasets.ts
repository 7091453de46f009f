// Shipped audio data and the recipes that make larger sets with espeak-ng (a formant speech synthesiser,
// installed with `apt-get install espeak-ng`): ten spoken digits in many voices, and long read speech.
// Every recipe writes 16 kHz 16-bit mono WAV (espeak-ng speaks at 22,050 Hz; our resampler converts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { packageRoot } from '../../backend/native.js';
import { Rng } from '../../util/rng.js';
import type { Split } from '../types.js';
import { AudioDataError } from './errors.js';
import type { AudioManifest } from './labelled.js';
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
    throw new AudioDataError(code === 'ENOENT' ? 'espeak-ng is not installed (apt-get install espeak-ng)' : `espeak-ng failed: ${r.error.message}`);
  }
  if (r.status !== 0) throw new AudioDataError(`espeak-ng ${args.join(' ')} failed: ${(r.stderr || '').trim().split('\n')[0]}`);
  return r.stdout;
}

/** English language voices (without the mbrola ones, which need extra packages) and the voice variants. */
export function espeakVoices(): { languages: string[]; variants: string[] } {
  const rows = (out: string) => out.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 5);
  const languages = [...new Set(rows(espeak(['--voices=en'])).filter((c) => !c[4]!.startsWith('mb/') && c[1] !== 'variant').map((c) => c[1]!))].sort();
  const variants = [...new Set(rows(espeak(['--voices=variant'])).map((c) => c[4]!.replace(/^!v\//, '')).filter((v) => !/test/i.test(v)))].sort();
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
  if (n > all.length) throw new AudioDataError(`asked for ${n} voices; espeak-ng has ${all.length} English voice/variant pairs`);
  return all.slice(0, n);
}

/** Speaks `text` (or the file `textFile`) to mono float32 at 16 kHz. */
export function speak(voice: EspeakVoice, opts: { text?: string; textFile?: string; speed?: number; pitch?: number; tmp: string }): Float32Array {
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
  let a = 0, b = x.length - 1;
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
  if (groups.length < 2) throw new AudioDataError(`the ${nVoices} voices share one variant; need at least 2 for a split`);
  const nTest = Math.max(1, Math.round(groups.length * (r.testFraction ?? 0.2)));
  const nValid = Math.min(groups.length - nTest - 1, Math.round(groups.length * (r.validFraction ?? 0.1)));
  const splitOf = new Map<string, Split>(groups.map((g, i) => [g, i >= groups.length - nTest ? 'test' : i >= groups.length - nTest - nValid ? 'valid' : 'train']));
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
      const baseSpeed = 130 + rng.int(60), basePitch = 30 + rng.int(40);
      DIGIT_WORDS.forEach((word) => {
        for (let k = 0; k < renditions; k++) {
          const speed = k === 0 ? baseSpeed : baseSpeed - 20 + rng.int(41);
          const pitch = k === 0 ? basePitch : Math.max(0, Math.min(99, basePitch - 15 + rng.int(31)));
          const x = trimSilence(speak(v, { text: word, speed, pitch, tmp }));
          if (x.length === 0) throw new AudioDataError(`espeak-ng produced silence for "${word}" in voice ${voiceId(v)}`);
          const clip = x.length > OUT_RATE ? x.subarray(Math.floor((x.length - OUT_RATE) / 2), Math.floor((x.length - OUT_RATE) / 2) + OUT_RATE) : x;
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
  const texts = readdirSync(textsDir).filter((f) => f.endsWith('.txt')).sort();
  if (texts.length === 0) throw new AudioDataError(`${textsDir}: no .txt files`);
  const voices = pickVoices(r.voices ?? 4, r.seed ?? 2);
  mkdirSync(out, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'mamba-speech-'));
  const written: string[] = [];
  try {
    // all texts in one file, paragraphs separated by blank lines (espeak-ng pauses there)
    const all = join(tmp, 'all.txt');
    writeFileAtomic(all, new TextEncoder().encode(texts.map((t) => readFileSync(join(textsDir, t), 'utf8').trim()).join('\n\n') + '\n'));
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
