// WAV (RIFF/WAVE) reading and writing. The header is always parsed and bounded here first (WAV_LIMITS),
// chunk by chunk with positioned reads. Then two readers:
// - readWavMono (whole short clips) and encodeWav/writeWav go through the wavefile package;
// - readWavBlocks, the streaming decoder that tokenization uses, stays hand-written: it reads the data
//   chunk in blocks, so a long file never sits in memory whole (wavefile needs the whole file and a
//   float64 copy of every sample); bench/README.md "Audio tokens" has both side by side.
// Both downmix to mono float32 (the average of the channels) and scale integer PCM the way sox does
// (8-bit unsigned: (v - 128) / 128, n-bit signed: v / 2^(n-1)), so samples equal `sox X -t f32 -`.
import { closeSync, openSync, readFileSync, readSync, fstatSync } from 'node:fs';
import { writeFileAtomic } from '../../util/write-file.js';
import wavefile from 'wavefile';
import { AudioDataError } from './errors.js';

export type SampleFormat = 'pcm' | 'float';

export interface WavInfo {
  path: string;
  format: SampleFormat;
  /** the format tag of the fmt chunk (1 PCM, 3 float, 0xFFFE extensible) */
  formatTag: number;
  extensible: boolean;
  channels: number;
  sampleRate: number;
  /** bytes per sample in the container (1, 2, 3, 4 or 8) */
  bytesPerSample: number;
  /** bits per sample the header declares (valid bits for extensible) */
  bitsPerSample: number;
  blockAlign: number;
  /** byte offset of the first frame in the file */
  dataOffset: number;
  dataBytes: number;
  /** whole frames (one sample per channel) in the data chunk */
  frames: number;
}

// Names for the codecs people most often meet, so the error says what the file is.
const CODEC_NAMES: Record<number, string> = {
  0x0002: 'Microsoft ADPCM',
  0x0006: 'A-law',
  0x0007: 'mu-law (G.711)',
  0x0011: 'IMA ADPCM',
  0x0016: 'ITU G.723 ADPCM',
  0x0031: 'GSM 6.10',
  0x0040: 'ITU G.721 ADPCM',
  0x0050: 'MPEG',
  0x0055: 'MPEG Layer 3 (MP3)',
  0x00ff: 'AAC',
  0x0161: 'Windows Media Audio',
  0x1610: 'MPEG-4 AAC',
  0xf1ac: 'FLAC',
};

function codecName(tag: number): string {
  const hex = `0x${tag.toString(16).padStart(2, '0')}`;
  return CODEC_NAMES[tag] ? `${CODEC_NAMES[tag]} (format ${hex})` : `format ${hex}`;
}

// The KSDATAFORMAT_SUBTYPE GUID tail shared by PCM and IEEE float subformats.
const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

const STREAM_SIZES = new Set([0xffffffff, 0x7fffffff, 0x7ffff000]);

/**
 * What a WAV header may say. Rates outside this range are not audio anyone records (3 Hz would turn a
 * 3 KB file into millions of tokens after resampling), so they are refused as damaged headers.
 */
export const WAV_LIMITS = {
  minSampleRate: 1000,
  maxSampleRate: 768000,
  maxChannels: 64,
  /** container bits per sample, by sample format */
  pcmBits: [8, 16, 24, 32],
  floatBits: [32, 64],
} as const;

function readAt(fd: number, pos: number, len: number): Uint8Array {
  const buf = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got === len ? buf : buf.subarray(0, got);
}

function fourcc(b: Uint8Array, off: number): string {
  return String.fromCharCode(b[off]!, b[off + 1]!, b[off + 2]!, b[off + 3]!);
}

/** Parses the header of a WAV file: format, channels, rate and where the PCM data lies. */
export function readWavInfo(path: string): WavInfo {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new AudioDataError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return parseHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}

function parseHeader(fd: number, path: string): WavInfo {
  const fileSize = fstatSync(fd).size;
  const head = readAt(fd, 0, 12);
  if (head.length < 12 || fourcc(head, 0) !== 'RIFF' || fourcc(head, 8) !== 'WAVE') {
    const what = head.length >= 4 && fourcc(head, 0) === 'RF64' ? ' (RF64 is not supported)' : '';
    throw new AudioDataError(`${path}: not a RIFF/WAVE file${what}`);
  }
  const riffSize = new DataView(head.buffer).getUint32(4, true);
  const streamed = riffSize === 0 || riffSize === 0xffffffff;
  let pos = 12;
  let fmt: DataView | undefined;
  let dataOffset = -1;
  let dataBytes = 0;
  while (pos + 8 <= fileSize) {
    const ch = readAt(fd, pos, 8);
    if (ch.length < 8) break;
    const id = fourcc(ch, 0);
    const size = new DataView(ch.buffer).getUint32(4, true);
    if (id === 'fmt ') {
      if (size < 16) throw new AudioDataError(`${path}: fmt chunk too short (${size} bytes)`);
      const body = readAt(fd, pos + 8, Math.min(size, 64));
      if (body.length < 16) throw new AudioDataError(`${path}: truncated fmt chunk`);
      fmt = new DataView(body.buffer, 0, body.length);
    } else if (id === 'data') {
      dataOffset = pos + 8;
      const avail = fileSize - dataOffset;
      // writers to a pipe cannot know the size: they leave a placeholder (0xFFFFFFFF, 0x7FFFFFFF, espeak-ng's
      // 0x7FFFF000, or 0 in both the RIFF and the data header); then the data runs to the end of the file
      if (STREAM_SIZES.has(size) || (size === 0 && streamed && avail > 0)) dataBytes = Math.min(avail, size || avail);
      else if (size > avail) {
        throw new AudioDataError(`${path}: truncated data chunk (header says ${size} bytes, the file has ${avail})`);
      } else dataBytes = size;
      if (fmt) break;
    }
    pos += 8 + size + (size & 1);
  }
  if (!fmt) throw new AudioDataError(`${path}: no fmt chunk (not a valid WAVE file)`);
  if (dataOffset < 0) throw new AudioDataError(`${path}: no data chunk`);

  const formatTag = fmt.getUint16(0, true);
  const channels = fmt.getUint16(2, true);
  const sampleRate = fmt.getUint32(4, true);
  const blockAlign = fmt.getUint16(12, true);
  let bitsPerSample = fmt.getUint16(14, true);
  let code = formatTag;
  const extensible = formatTag === 0xfffe;
  if (extensible) {
    if (fmt.byteLength < 40) throw new AudioDataError(`${path}: WAVE_FORMAT_EXTENSIBLE fmt chunk too short`);
    const valid = fmt.getUint16(18, true);
    if (valid > 0) bitsPerSample = valid;
    code = fmt.getUint16(24, true);
    for (let i = 0; i < 14; i++) {
      if (fmt.getUint8(26 + i) !== GUID_TAIL[i]) {
        throw new AudioDataError(`${path}: unsupported codec (WAVE_FORMAT_EXTENSIBLE with an unknown subformat GUID)`);
      }
    }
  }
  const field = (name: string, value: number | string, allowed: string): AudioDataError =>
    new AudioDataError(`${path}: fmt chunk: ${name} ${value} is outside the allowed range (${allowed})`);
  const L = WAV_LIMITS;
  if (channels < 1 || channels > L.maxChannels) throw field('channels', channels, `1..${L.maxChannels}`);
  if (sampleRate < L.minSampleRate || sampleRate > L.maxSampleRate) {
    throw field('sample rate', `${sampleRate} Hz`, `${L.minSampleRate}..${L.maxSampleRate} Hz`);
  }
  let format: SampleFormat;
  if (code === 1) format = 'pcm';
  else if (code === 3) format = 'float';
  else
    throw new AudioDataError(
      `${path}: unsupported codec ${codecName(code)}; convert it to PCM first (e.g. sox in.wav -e signed -b 16 out.wav)`,
    );

  // the container holds whole bytes; extensible files may declare fewer valid bits (20 in 24, say)
  const containerBits = fmt.getUint16(14, true);
  const allowedBits: readonly number[] = format === 'pcm' ? L.pcmBits : L.floatBits;
  const kind = format === 'pcm' ? 'integer PCM' : 'float';
  if (!allowedBits.includes(containerBits))
    throw field(`bits per sample (${kind})`, containerBits, allowedBits.join(', '));
  if (bitsPerSample < 1 || bitsPerSample > containerBits) {
    throw field('valid bits per sample', bitsPerSample, `1..${containerBits}, the container size`);
  }
  const bytesPerSample = containerBits / 8;
  if (blockAlign !== channels * bytesPerSample) {
    throw field(
      'block align',
      blockAlign,
      `${channels * bytesPerSample} = ${channels} channels x ${bytesPerSample} bytes`,
    );
  }
  const frameBytes = bytesPerSample * channels;
  return {
    path,
    format,
    formatTag,
    extensible,
    channels,
    sampleRate,
    bytesPerSample,
    bitsPerSample,
    blockAlign: frameBytes,
    dataOffset,
    dataBytes,
    frames: Math.floor(dataBytes / frameBytes),
  };
}

/** Decodes `frames` interleaved frames from `bytes` (which starts at a frame) to mono float32. */
export function decodeFrames(info: WavInfo, bytes: Uint8Array, frames: number, out?: Float32Array): Float32Array {
  const ch = info.channels;
  const n = frames * ch;
  const res = out && out.length >= frames ? out.subarray(0, frames) : new Float32Array(frames);
  // aligned typed views need an aligned start; blocks are read into fresh buffers so byteOffset is 0
  const aligned = bytes.byteOffset % info.bytesPerSample === 0 || info.bytesPerSample === 3 ? bytes : bytes.slice();
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  const inv = 1 / ch;
  let src: ArrayLike<number>;
  let scale = 1;
  let bias = 0;
  switch (info.format === 'float' ? `f${info.bytesPerSample * 8}` : `i${info.bytesPerSample * 8}`) {
    case 'i8':
      src = new Uint8Array(buf, off, n);
      scale = 1 / 128;
      bias = -128;
      break;
    case 'i16':
      src = new Int16Array(buf, off, n);
      scale = 1 / 32768;
      break;
    case 'i32':
      src = new Int32Array(buf, off, n);
      scale = 1 / 2147483648;
      break;
    case 'f32':
      src = new Float32Array(buf, off, n);
      break;
    case 'f64':
      src = new Float64Array(buf, off, n);
      break;
    case 'i24': {
      // 3-byte little-endian samples need no alignment: assemble them into int32
      const t = new Int32Array(n);
      for (let i = 0, k = 0; i < n; i++, k += 3)
        t[i] = ((bytes[k]! | (bytes[k + 1]! << 8) | (bytes[k + 2]! << 16)) << 8) >> 8;
      src = t;
      scale = 1 / 8388608;
      break;
    }
    default:
      throw new AudioDataError(`${info.path}: unsupported sample size`);
  }
  if (ch === 1) {
    for (let i = 0; i < frames; i++) res[i] = (src[i]! + bias) * scale;
  } else {
    for (let f = 0, i = 0; f < frames; f++) {
      let s = 0;
      for (let c = 0; c < ch; c++, i++) s += (src[i]! + bias) * scale;
      res[f] = s * inv;
    }
  }
  return res;
}

/** Reads the data chunk in blocks of `blockFrames` frames, yielding mono float32 blocks. */
export function* readWavBlocks(pathOrInfo: string | WavInfo, blockFrames = 1 << 16): Generator<Float32Array> {
  const info = typeof pathOrInfo === 'string' ? readWavInfo(pathOrInfo) : pathOrInfo;
  const fd = openSync(info.path, 'r');
  try {
    for (let f = 0; f < info.frames; f += blockFrames) {
      const nf = Math.min(blockFrames, info.frames - f);
      const want = nf * info.blockAlign;
      const bytes = readAt(fd, info.dataOffset + f * info.blockAlign, want);
      if (bytes.length < want)
        throw new AudioDataError(`${info.path}: truncated data chunk (file shrank while reading)`);
      yield decodeFrames(info, bytes, nf);
    }
  } finally {
    closeSync(fd);
  }
}

function readAllBlocks(info: WavInfo): Float32Array {
  const samples = new Float32Array(info.frames);
  let at = 0;
  for (const b of readWavBlocks(info)) {
    samples.set(b, at);
    at += b.length;
  }
  return samples;
}

/** Scale and offset that map a stored sample to [-1, 1) as sox does. */
function sampleScale(info: WavInfo): { scale: number; bias: number } {
  if (info.format === 'float') return { scale: 1, bias: 0 };
  if (info.bytesPerSample === 1) return { scale: 1 / 128, bias: -128 };
  return { scale: 2 ** (1 - 8 * info.bytesPerSample), bias: 0 };
}

/** The whole file as mono float32, decoded by wavefile (for short clips; long files go through readWavBlocks). */
export function readWavMono(path: string): { samples: Float32Array; rate: number; info: WavInfo } {
  const info = readWavInfo(path);
  // wavefile 11 decodes WAVE_FORMAT_EXTENSIBLE float samples as integers (test/data/audio/wav-readers
  // found it): those files take the hand-written decoder
  if (info.extensible && info.format === 'float') return { samples: readAllBlocks(info), rate: info.sampleRate, info };
  let raw: Float64Array;
  try {
    const wav = new wavefile.WaveFile(readFileSync(path));
    raw = wav.getSamples(true, Float64Array) as unknown as Float64Array;
  } catch (e) {
    throw new AudioDataError(`${path}: cannot decode: ${(e as Error).message}`);
  }
  const ch = info.channels;
  if (raw.length < info.frames * ch) {
    throw new AudioDataError(
      `${path}: decoded ${raw.length} samples where the header promises ${info.frames * ch} (damaged file?)`,
    );
  }
  const { scale, bias } = sampleScale(info);
  const samples = new Float32Array(info.frames);
  const inv = 1 / ch; // the same arithmetic as decodeFrames, so both readers give identical samples
  for (let f = 0, i = 0; f < info.frames; f++) {
    let sum = 0;
    for (let c = 0; c < ch; c++, i++) sum += (raw[i]! + bias) * scale;
    samples[f] = ch === 1 ? sum : sum * inv;
  }
  return { samples, rate: info.sampleRate, info };
}

/** Encodes float samples (one array per channel, all the same length) as a WAV file image, through wavefile. */
export function encodeWav(
  channels: Float32Array | readonly Float32Array[],
  rate: number,
  bits: 8 | 16 = 16,
): Uint8Array {
  const chans = channels instanceof Float32Array ? [channels] : channels;
  const nch = chans.length;
  if (nch === 0) throw new Error('encodeWav: no channels');
  if (!(rate > 0 && Number.isInteger(rate))) throw new Error(`encodeWav: bad sample rate ${rate}`);
  const frames = chans[0]!.length;
  if (chans.some((c) => c.length !== frames)) throw new Error('encodeWav: channels of different lengths');
  // quantised here (round, clip) so the bytes do not depend on wavefile's own float conversion
  const ints = chans.map((c) => {
    if (bits === 16) return Int16Array.from(c, (x) => Math.max(-32768, Math.min(32767, Math.round(x * 32768))));
    return Uint8Array.from(c, (x) => Math.max(0, Math.min(255, Math.round(x * 128) + 128)));
  });
  const wav = new wavefile.WaveFile();
  wav.fromScratch(nch, rate, bits === 16 ? '16' : '8', nch === 1 ? ints[0]! : ints);
  const out = wav.toBuffer();
  // RIFF chunks are padded to an even size; wavefile leaves an odd data chunk unpadded
  if (out.length % 2 === 0) return out;
  const padded = new Uint8Array(out.length + 1);
  padded.set(out);
  new DataView(padded.buffer).setUint32(4, padded.length - 8, true);
  return padded;
}

// one writer for every output (temp file + rename, writes through symlinks and FIFOs): src/util/write-file.ts
export { writeFileAtomic };

/** Writes a mono or multi-channel WAV (16-bit PCM by default) atomically. */
export function writeWav(
  path: string,
  channels: Float32Array | readonly Float32Array[],
  rate: number,
  bits: 8 | 16 = 16,
): void {
  writeFileAtomic(path, encodeWav(channels, rate, bits));
}
