// WAV header fields are bounded: each damaged or implausible field gives one AudioDataError line naming
// the file, the field, its value and the allowed range (before any sample is decoded or resampled).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AudioDataError } from '../../../src/data/audio/errors.js';
import { encodeWav, readWavInfo, readWavMono, WAV_LIMITS } from '../../../src/data/audio/wav.js';
import { rng } from '../../helpers.js';
import { tempDir } from './fixtures.js';

const t = tempDir('wav-bounds');
afterAll(t.cleanup);

/** A real 16-bit stereo WAV (0.1 s of seeded noise at 16 kHz) with header bytes edited by `edit`. */
function wav(name: string, edit: (b: Buffer) => void = () => undefined): string {
  const r = rng(5);
  const ch = [0, 1].map(() => Float32Array.from({ length: 1600 }, () => r() - 0.5));
  const b = Buffer.from(encodeWav(ch, 16000, 16));
  edit(b);
  const f = join(t.dir, name);
  writeFileSync(f, b);
  return f;
}

function message(f: string): string {
  let err: unknown;
  try {
    readWavMono(f);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AudioDataError);
  const m = (err as Error).message;
  expect(m).not.toContain('\n');
  expect(m.startsWith(`${f}: `)).toBe(true);
  return m;
}

// offsets in the canonical 44-byte header encodeWav writes
const CHANNELS = 22,
  RATE = 24,
  BLOCK_ALIGN = 32,
  BITS = 34,
  DATA_SIZE = 40;

describe('WAV header bounds', () => {
  it('the unedited file reads', () => {
    const info = readWavInfo(wav('good.wav'));
    expect(info).toMatchObject({ channels: 2, sampleRate: 16000, bytesPerSample: 2, frames: 1600 });
  });
  it('sample rate outside 1000..768000 Hz', () => {
    expect(message(wav('rate3.wav', (b) => b.writeUInt32LE(3, RATE)))).toMatch(
      /fmt chunk: sample rate 3 Hz is outside the allowed range \(1000\.\.768000 Hz\)/,
    );
    expect(message(wav('rate0.wav', (b) => b.writeUInt32LE(0, RATE)))).toMatch(/sample rate 0 Hz is outside/);
    expect(message(wav('ratemax.wav', (b) => b.writeUInt32LE(0xffffffff, RATE)))).toMatch(
      /sample rate 4294967295 Hz is outside/,
    );
    // the bounds themselves are accepted
    for (const r of [WAV_LIMITS.minSampleRate, WAV_LIMITS.maxSampleRate]) {
      const f = wav(`rate-${r}.wav`, (b) => b.writeUInt32LE(r, RATE));
      expect(readWavInfo(f).sampleRate).toBe(r);
    }
  });
  it('channels outside 1..64', () => {
    expect(message(wav('ch0.wav', (b) => b.writeUInt16LE(0, CHANNELS)))).toMatch(
      /fmt chunk: channels 0 is outside the allowed range \(1\.\.64\)/,
    );
    expect(message(wav('ch65535.wav', (b) => b.writeUInt16LE(65535, CHANNELS)))).toMatch(
      /channels 65535 is outside the allowed range \(1\.\.64\)/,
    );
  });
  it('bits per sample not in the supported set', () => {
    expect(message(wav('bits12.wav', (b) => b.writeUInt16LE(12, BITS)))).toMatch(
      /fmt chunk: bits per sample \(integer PCM\) 12 is outside the allowed range \(8, 16, 24, 32\)/,
    );
    expect(message(wav('bits0.wav', (b) => b.writeUInt16LE(0, BITS)))).toMatch(/bits per sample \(integer PCM\) 0/);
  });
  it('block align that does not match channels x bytes per sample', () => {
    expect(message(wav('align.wav', (b) => b.writeUInt16LE(3, BLOCK_ALIGN)))).toMatch(
      /fmt chunk: block align 3 is outside the allowed range \(4 = 2 channels x 2 bytes\)/,
    );
    expect(message(wav('align0.wav', (b) => b.writeUInt16LE(0, BLOCK_ALIGN)))).toMatch(/block align 0/);
  });
  it('a data chunk larger than the file', () => {
    expect(message(wav('data.wav', (b) => b.writeUInt32LE(1 << 30, DATA_SIZE)))).toMatch(
      /truncated data chunk \(header says 1073741824 bytes, the file has 6400\)/,
    );
  });
});
