// WAV -> tokens in one streaming pass (decode a block, downmix, resample, compand), and tokens -> WAV.
// A file is tokenized once per (rate, encoding): the result is kept in memory (1 byte per sample) and,
// when a cache folder is given, in a token file there, so an hour of audio is never decoded twice.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { AudioDataError } from './errors.js';
import { encodeSamples, decodeTokens, type AudioEncoding } from './mulaw.js';
import { Resampler } from './resample.js';
import { readWavBlocks, readWavInfo, writeFileAtomic, writeWav, type WavInfo } from './wav.js';

export const DEFAULT_AUDIO_RATE = 16000;

export interface TokenizeOptions {
  /** the model's sample rate (default 16000) */
  rate?: number;
  encoding?: AudioEncoding;
  /** frames read per block (default 65536) */
  blockFrames?: number;
  /** keep the tokens in the in-memory cache (default true) */
  memoryCache?: boolean;
  /** folder for token cache files (none by default) */
  cacheDir?: string;
}

export interface TokenizedAudio {
  tokens: Uint8Array;
  /** the rate of the tokens */
  rate: number;
  encoding: AudioEncoding;
  /** the source file's header */
  info: WavInfo;
}

const memory = new Map<string, TokenizedAudio>();

function cacheKey(path: string, rate: number, encoding: AudioEncoding): string {
  const abs = resolve(path);
  const st = statSync(abs);
  return `${abs}|${st.size}|${st.mtimeMs}|${rate}|${encoding}`;
}

/** Decodes, downmixes, resamples and companders a WAV file to tokens, streaming block by block. */
export function tokenizeWav(path: string, opts: TokenizeOptions = {}): TokenizedAudio {
  const rate = opts.rate ?? DEFAULT_AUDIO_RATE;
  const encoding = opts.encoding ?? 'mulaw';
  if (!(Number.isInteger(rate) && rate > 0)) throw new AudioDataError(`bad target sample rate ${rate}`);
  const info = readWavInfo(path);
  let key: string | undefined;
  if (opts.memoryCache !== false || opts.cacheDir) {
    key = cacheKey(path, rate, encoding);
    const hit = memory.get(key);
    if (hit) return hit;
  }
  let cacheFile: string | undefined;
  if (opts.cacheDir && key) {
    const h = createHash('sha1').update(key).digest('hex').slice(0, 16);
    cacheFile = join(opts.cacheDir, `${basename(path)}.${h}.${encoding}${rate}.tokens`);
    if (existsSync(cacheFile)) {
      const tokens = new Uint8Array(readFileSync(cacheFile));
      const res = { tokens, rate, encoding, info };
      if (opts.memoryCache !== false) memory.set(key, res);
      return res;
    }
  }
  const resampler = info.sampleRate === rate ? undefined : new Resampler(info.sampleRate, rate);
  const total = resampler ? resampler.outputLength(info.frames) : info.frames;
  const tokens = new Uint8Array(total);
  let at = 0;
  const put = (x: Float32Array) => {
    encodeSamples(x, encoding, tokens.subarray(at, at + x.length));
    at += x.length;
  };
  for (const block of readWavBlocks(info, opts.blockFrames)) put(resampler ? resampler.process(block) : block);
  if (resampler) put(resampler.flush());
  if (at !== total) throw new Error(`tokenizeWav: produced ${at} tokens, expected ${total}`);
  const res = { tokens, rate, encoding, info };
  if (key && opts.memoryCache !== false) memory.set(key, res);
  if (cacheFile) {
    mkdirSync(opts.cacheDir!, { recursive: true });
    writeFileAtomic(cacheFile, tokens);
  }
  return res;
}

/** Forgets the in-memory token cache (tests and long-running tools). */
export function clearTokenCache(): void {
  memory.clear();
}

/** Writes raw tokens (one byte per sample) of a WAV file to `out` (atomically). */
export function tokenizeWavToFile(input: string, out: string, opts: TokenizeOptions = {}): TokenizedAudio {
  const res = tokenizeWav(input, { ...opts, memoryCache: false });
  writeFileAtomic(out, res.tokens);
  return res;
}

/** Reads a raw token file (one byte per sample). */
export function readTokenFile(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new AudioDataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Turns tokens back into a 16-bit PCM mono WAV at `rate` (atomically). */
export function writeTokensAsWav(path: string, tokens: Uint8Array, rate = DEFAULT_AUDIO_RATE, encoding: AudioEncoding = 'mulaw'): void {
  if (!(Number.isInteger(rate) && rate > 0)) throw new AudioDataError(`bad sample rate ${rate}`);
  writeWav(path, decodeTokens(tokens, encoding), rate, 16);
}
