// The two WAV readers agree on every case: readWavMono (wavefile) and readWavBlocks (hand-written,
// streaming), on files built here byte by byte (no outside tool): 8/16/24/32-bit PCM, 32/64-bit float,
// WAVE_FORMAT_EXTENSIBLE (PCM with fewer valid bits, float), 1-3 channels, odd frame counts, extra chunks,
// an 18-byte fmt chunk, and the placeholder sizes of a WAV written to a pipe. encodeWav (wavefile) writes
// the canonical 44-byte header and pads an odd data chunk.
import { readFileSync, writeFileSync } from 'node:fs';
import wavefile from 'wavefile';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav, readWavBlocks, readWavInfo, readWavMono } from '../../../src/data/audio/wav.js';
import { rng } from '../../helpers.js';
import { tempDir } from './fixtures.js';

const t = tempDir('wav-readers');
afterAll(t.cleanup);

interface Spec {
  name: string;
  tag: 1 | 3 | 0xfffe;
  sub?: 1 | 3;
  bits: number;
  valid?: number;
  channels: number;
  frames: number;
  fmtSize?: 16 | 18;
  extraChunk?: boolean;
  dataSize?: number; // a placeholder written instead of the real size
  riffSize?: number;
}

const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

/** A WAV image with seeded random samples over the full range of the format. */
function build(s: Spec): Buffer {
  const r = rng(s.frames * 31 + s.bits);
  const bps = s.bits / 8;
  const data = Buffer.alloc(s.frames * s.channels * bps);
  const float = s.tag === 3 || s.sub === 3;
  for (let i = 0, o = 0; i < s.frames * s.channels; i++, o += bps) {
    const u = r() * 2 - 1;
    if (float && s.bits === 32) data.writeFloatLE(u, o);
    else if (float) data.writeDoubleLE(u, o);
    else if (s.bits === 8) data[o] = Math.floor(r() * 256);
    else data.writeIntLE(Math.floor(u * 2 ** (s.bits - 1)) & ~((1 << (s.bits - (s.valid ?? s.bits))) - 1), o, bps);
  }
  const fmtLen = s.tag === 0xfffe ? 40 : (s.fmtSize ?? 16);
  const fmt = Buffer.alloc(fmtLen);
  fmt.writeUInt16LE(s.tag, 0);
  fmt.writeUInt16LE(s.channels, 2);
  fmt.writeUInt32LE(16000, 4);
  fmt.writeUInt32LE(16000 * s.channels * bps, 8);
  fmt.writeUInt16LE(s.channels * bps, 12);
  fmt.writeUInt16LE(s.bits, 14);
  if (fmtLen > 16) fmt.writeUInt16LE(fmtLen - 18, 16);
  if (s.tag === 0xfffe) {
    fmt.writeUInt16LE(s.valid ?? s.bits, 18);
    fmt.writeUInt32LE(s.channels === 1 ? 4 : 3, 20);
    fmt.writeUInt16LE(s.sub!, 24);
    Buffer.from(GUID_TAIL).copy(fmt, 26);
  }
  const chunk = (id: string, body: Buffer, size = body.length) => {
    const h = Buffer.alloc(8);
    h.write(id, 0, 'latin1');
    h.writeUInt32LE(size, 4);
    return Buffer.concat([h, body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const parts = [chunk('fmt ', fmt)];
  if (s.extraChunk) parts.push(chunk('LIST', Buffer.from('INFOISFT\x05\x00\x00\x00test\x00')));
  parts.push(chunk('data', data, s.dataSize ?? data.length));
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(s.riffSize ?? body.length + 4, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, body]);
}

const SPECS: Spec[] = [
  { name: 'u8-mono-odd', tag: 1, bits: 8, channels: 1, frames: 1001 },
  { name: 's16-mono', tag: 1, bits: 16, channels: 1, frames: 4000 },
  { name: 's16-stereo-extra-chunk', tag: 1, bits: 16, channels: 2, frames: 3001, extraChunk: true },
  { name: 's24-mono', tag: 1, bits: 24, channels: 1, frames: 2999 },
  { name: 's32-stereo', tag: 1, bits: 32, channels: 2, frames: 2000 },
  { name: 'f32-mono-fmt18', tag: 3, bits: 32, channels: 1, frames: 2500, fmtSize: 18 },
  { name: 'f64-stereo', tag: 3, bits: 64, channels: 2, frames: 1500 },
  { name: 'ext-s24-3ch', tag: 0xfffe, sub: 1, bits: 24, channels: 3, frames: 1200 },
  { name: 'ext-20-in-24', tag: 0xfffe, sub: 1, bits: 24, valid: 20, channels: 1, frames: 1300 },
  { name: 'ext-f32-stereo', tag: 0xfffe, sub: 3, bits: 32, channels: 2, frames: 1100 },
  { name: 'pipe-ffffffff', tag: 1, bits: 16, channels: 1, frames: 2222, dataSize: 0xffffffff, riffSize: 0xffffffff },
  { name: 'pipe-espeak', tag: 1, bits: 16, channels: 1, frames: 2048, dataSize: 0x7ffff000, riffSize: 0x7ffff024 },
];

function blocks(f: string, blockFrames: number): Float32Array {
  const parts = [...readWavBlocks(f, blockFrames)];
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('wavefile and the streaming decoder give the same samples', () => {
  for (const s of SPECS) {
    it(s.name, () => {
      const f = join(t.dir, `${s.name}.wav`);
      writeFileSync(f, build(s));
      const info = readWavInfo(f);
      expect(info.frames).toBe(s.frames);
      const pkg = readWavMono(f);
      expect(pkg.rate).toBe(16000);
      expect(pkg.samples.length).toBe(s.frames);
      const hand = blocks(f, 777);
      expect(Array.from(pkg.samples)).toEqual(Array.from(hand));
      // random data: never all zero, and within [-1, 1]
      expect(pkg.samples.some((x) => x !== 0)).toBe(true);
      expect(Math.max(...pkg.samples.map(Math.abs))).toBeLessThanOrEqual(1);
    });
  }
});

describe('why extensible float takes the streaming decoder', () => {
  it('wavefile alone reads WAVE_FORMAT_EXTENSIBLE float samples as integers', () => {
    const f = join(t.dir, 'ext-f32-alone.wav');
    writeFileSync(f, build({ name: 'x', tag: 0xfffe, sub: 3, bits: 32, channels: 1, frames: 64 }));
    const raw = new wavefile.WaveFile(readFileSync(f)).getSamples(true, Float64Array) as unknown as Float64Array;
    // if this starts failing, wavefile has been fixed and readWavMono can drop its fallback
    expect(Math.max(...Array.from(raw, Math.abs))).toBeGreaterThan(1000);
    expect(Math.max(...Array.from(readWavMono(f).samples, Math.abs))).toBeLessThanOrEqual(1);
  });
});

describe('encodeWav through wavefile', () => {
  it('writes the canonical 44-byte header and samples quantised by round-and-clip', () => {
    const x = Float32Array.from([0, 0.5, -0.5, 1.5, -2, 1 / 32768]);
    const b = Buffer.from(encodeWav(x, 16000, 16));
    expect(b.length).toBe(44 + 12);
    expect(b.toString('latin1', 0, 4)).toBe('RIFF');
    expect(b.readUInt32LE(4)).toBe(b.length - 8);
    expect(b.toString('latin1', 8, 16)).toBe('WAVEfmt ');
    expect([
      b.readUInt32LE(16),
      b.readUInt16LE(20),
      b.readUInt16LE(22),
      b.readUInt32LE(24),
      b.readUInt32LE(28),
      b.readUInt16LE(32),
      b.readUInt16LE(34),
    ]).toEqual([16, 1, 1, 16000, 32000, 2, 16]);
    expect(b.toString('latin1', 36, 40)).toBe('data');
    expect(b.readUInt32LE(40)).toBe(12);
    expect(Array.from({ length: 6 }, (_, i) => b.readInt16LE(44 + 2 * i))).toEqual([
      0, 16384, -16384, 32767, -32768, 1,
    ]);
  });
  it('pads an odd 8-bit data chunk and round-trips stereo through both readers', () => {
    const r = rng(9);
    const ch = [0, 1].map(() => Float32Array.from({ length: 333 }, () => r() * 1.8 - 0.9));
    const f = join(t.dir, 'rt8.wav');
    writeFileSync(f, encodeWav(ch, 8000, 8));
    const odd = join(t.dir, 'odd8.wav');
    const b = Buffer.from(encodeWav(ch[0]!, 8000, 8));
    expect(b.length).toBe(44 + 333 + 1);
    expect(b.readUInt32LE(4)).toBe(b.length - 8);
    expect(b.readUInt32LE(40)).toBe(333);
    writeFileSync(odd, b);
    expect(readWavInfo(odd).frames).toBe(333);
    const back = readWavMono(f).samples;
    expect(Array.from(back)).toEqual(Array.from(blocks(f, 100)));
    for (let i = 0; i < 333; i++)
      expect(Math.abs(back[i]! - (ch[0]![i]! + ch[1]![i]!) / 2)).toBeLessThan(1 / 128 + 1e-6);
  });
});
