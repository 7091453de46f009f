// WAV -> tokens in one streaming pass (decode a block, downmix, resample, compand), and tokens -> WAV.
// A file is tokenized once per (rate, encoding): the result is kept in memory (1 byte per sample) and,
// when a cache folder is given, in a token file there, so an hour of audio is never decoded twice.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
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
  if (opts.memoryCache !== false && existsSync(path)) {
    const hit = memory.get(cacheKey(path, rate, encoding)); // before decoding a FLAC again
    if (hit) return hit;
  }
  const flac = isFlac(path) ? decodeFlacWithSox(path) : undefined;
  try {
    return tokenizeWavFile(path, flac?.wav ?? path, rate, encoding, opts);
  } finally {
    flac?.cleanup();
  }
}

function tokenizeWavFile(
  path: string,
  wavPath: string,
  rate: number,
  encoding: AudioEncoding,
  opts: TokenizeOptions,
): TokenizedAudio {
  const info = readWavInfo(wavPath);
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

/** True when a file starts with the FLAC stream marker. */
function isFlac(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(4);
      return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === 'fLaC';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false; // readWavInfo reports the open error
  }
}

/** FLAC is decoded by sox into a temp WAV; without sox, the message says how to convert it. */
function decodeFlacWithSox(path: string): { wav: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mamba-flac-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const wav = join(dir, 'decoded.wav');
  const r = spawnSync('sox', [path, '-t', 'wav', wav], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    cleanup();
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new AudioDataError(
        `${path}: FLAC needs sox to decode (not found); install sox or convert it: sox ${path} out.wav`,
      );
    }
    throw new AudioDataError(
      `${path}: sox could not decode this FLAC (${(r.stderr ?? '').trim().split('\n').pop() || `exit ${r.status}`})`,
    );
  }
  return { wav, cleanup };
}

/** Forgets the in-memory token cache (tests and long-running tools). */
export function clearTokenCache(): void {
  memory.clear();
}

/**
 * Token files: a 20-byte header, then one byte per sample. The header says how to play the bytes back, so
 * 8 kHz tokens never play at 16 kHz:
 *   0  "MTOK"       magic
 *   4  u16 LE       version (1)
 *   6  u16 LE       encoding (0 mu-law, 1 linear)
 *   8  u32 LE       sample rate in Hz
 *   12 u64 LE       token count (the bytes after the header)
 * Files without one (raw bytes, as tokenize wrote before the header existed, or `--raw`) are read only
 * when the caller says so (`raw`), since their rate and encoding cannot be known.
 */
export const TOKEN_MAGIC = 'MTOK';
export const TOKEN_HEADER_BYTES = 20;
export const TOKEN_FORMAT_VERSION = 1;
const ENCODING_CODES: readonly AudioEncoding[] = ['mulaw', 'linear'];

export interface TokenFile {
  tokens: Uint8Array;
  rate: number;
  encoding: AudioEncoding;
  /** false for a raw file read with `raw`: rate and encoding are the caller's */
  header: boolean;
}

/** A token file's bytes: the header, then the tokens. */
export function encodeTokenFile(tokens: Uint8Array, rate: number, encoding: AudioEncoding): Uint8Array {
  if (!(Number.isInteger(rate) && rate > 0 && rate <= 0xffffffff)) throw new AudioDataError(`bad sample rate ${rate}`);
  const out = new Uint8Array(TOKEN_HEADER_BYTES + tokens.length);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = TOKEN_MAGIC.charCodeAt(i);
  dv.setUint16(4, TOKEN_FORMAT_VERSION, true);
  dv.setUint16(6, ENCODING_CODES.indexOf(encoding), true);
  dv.setUint32(8, rate, true);
  dv.setBigUint64(12, BigInt(tokens.length), true);
  out.set(tokens, TOKEN_HEADER_BYTES);
  return out;
}

/** True when bytes start with a token header whose count matches the rest of the bytes. */
export function hasTokenHeader(bytes: Uint8Array): boolean {
  if (bytes.length < TOKEN_HEADER_BYTES) return false;
  for (let i = 0; i < 4; i++) if (bytes[i] !== TOKEN_MAGIC.charCodeAt(i)) return false;
  return true;
}

/**
 * Parses a token file's bytes (`name` for messages). With `raw`, bytes without a header are tokens at
 * raw.rate / raw.encoding; a file with a header always uses its own.
 */
export function decodeTokenFile(
  bytes: Uint8Array,
  name: string,
  raw?: { rate: number; encoding: AudioEncoding },
): TokenFile {
  if (raw && !hasTokenHeader(bytes)) return { tokens: bytes, rate: raw.rate, encoding: raw.encoding, header: false };
  if (!hasTokenHeader(bytes)) {
    throw new AudioDataError(
      `${name}: no token header (magic ${TOKEN_MAGIC}); raw bytes, one per sample, need --raw --rate HZ, or tokenize the WAV again`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== TOKEN_FORMAT_VERSION)
    throw new AudioDataError(
      `${name}: token format version ${version}; this build reads version ${TOKEN_FORMAT_VERSION}`,
    );
  const code = dv.getUint16(6, true);
  const encoding = ENCODING_CODES[code];
  if (!encoding)
    throw new AudioDataError(`${name}: token header field encoding is ${code}; allowed 0 (mulaw) or 1 (linear)`);
  const rate = dv.getUint32(8, true);
  if (rate < 1000 || rate > 384000)
    throw new AudioDataError(`${name}: token header field rate is ${rate} Hz; allowed 1000..384000`);
  const count = dv.getBigUint64(12, true);
  const have = BigInt(bytes.length - TOKEN_HEADER_BYTES);
  if (count !== have)
    throw new AudioDataError(
      `${name}: token header field count is ${count}, the file holds ${have} tokens (truncated?)`,
    );
  return { tokens: bytes.subarray(TOKEN_HEADER_BYTES), rate, encoding, header: true };
}

/** Writes tokens of a WAV file to `out` (atomically), with a header unless `raw`. */
export function tokenizeWavToFile(
  input: string,
  out: string,
  opts: TokenizeOptions & { raw?: boolean } = {},
): TokenizedAudio {
  const res = tokenizeWav(input, { ...opts, memoryCache: false });
  writeFileAtomic(out, opts.raw ? res.tokens : encodeTokenFile(res.tokens, res.rate, res.encoding));
  return res;
}

/** Writes tokens with their header (atomically). */
export function writeTokenFile(path: string, tokens: Uint8Array, rate: number, encoding: AudioEncoding): void {
  writeFileAtomic(path, encodeTokenFile(tokens, rate, encoding));
}

/**
 * Reads a token file. `expect` (the rate and encoding a model works at) is checked against the header;
 * `raw` reads a headerless file at the given rate and encoding.
 */
export function readTokenFile(path: string, opts: ReadTokenOptions = {}): Uint8Array {
  return readTokens(path, opts).tokens;
}

export interface ReadTokenOptions {
  /** the rate and encoding the caller needs: a header saying otherwise is an error */
  expect?: { rate: number; encoding: AudioEncoding };
  /** read a headerless file as tokens at this rate and encoding */
  raw?: { rate: number; encoding: AudioEncoding };
}

/** Reads a token file with its rate and encoding (see readTokenFile). */
export function readTokens(path: string, opts: ReadTokenOptions = {}): TokenFile {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new AudioDataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const f = decodeTokenFile(bytes, path, opts.raw);
  const e = opts.expect;
  if (e && (f.rate !== e.rate || f.encoding !== e.encoding)) {
    throw new AudioDataError(
      `${path}: ${f.encoding} tokens at ${f.rate} Hz; expected ${e.encoding} at ${e.rate} Hz (tokenize it again with --rate ${e.rate} --encoding ${e.encoding})`,
    );
  }
  return f;
}

/** Turns tokens back into a 16-bit PCM mono WAV at `rate` (atomically). */
export function writeTokensAsWav(
  path: string,
  tokens: Uint8Array,
  rate = DEFAULT_AUDIO_RATE,
  encoding: AudioEncoding = 'mulaw',
): void {
  if (!(Number.isInteger(rate) && rate > 0)) throw new AudioDataError(`bad sample rate ${rate}`);
  writeWav(path, decodeTokens(tokens, encoding), rate, 16);
}
