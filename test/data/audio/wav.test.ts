import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWavInfo, readWavMono, readWavBlocks, writeWav } from '../../../src/data/audio/wav.js';
import { relErr } from '../../helpers.js';
import { downmix, espeakStdout, espeakUtterance, sox, soxDecode, tempDir } from './fixtures.js';

// Every PCM format is made by sox from a real espeak-ng utterance and must decode to the floats sox itself
// decodes (`sox X -t f32 -`), channels averaged.
const FORMATS: [string, string[], { tag: number; channels: number; bytes: number }][] = [
  ['u8', ['-e', 'unsigned', '-b', '8'], { tag: 1, channels: 1, bytes: 1 }],
  ['s16', ['-e', 'signed', '-b', '16'], { tag: 1, channels: 1, bytes: 2 }],
  ['s24 (extensible)', ['-e', 'signed', '-b', '24'], { tag: 0xfffe, channels: 1, bytes: 3 }],
  ['s32 (extensible)', ['-e', 'signed', '-b', '32'], { tag: 0xfffe, channels: 1, bytes: 4 }],
  ['f32', ['-e', 'floating-point', '-b', '32'], { tag: 3, channels: 1, bytes: 4 }],
  ['f64', ['-e', 'floating-point', '-b', '64'], { tag: 3, channels: 1, bytes: 8 }],
  ['s16 stereo', ['-e', 'signed', '-b', '16', '-c', '2'], { tag: 1, channels: 2, bytes: 2 }],
  [
    's24 3-channel 48 kHz',
    ['-e', 'signed', '-b', '24', '-c', '3', '-r', '48000'],
    { tag: 0xfffe, channels: 3, bytes: 3 },
  ],
];

describe('WAV decoding matches sox', () => {
  const t = tempDir('wav');
  let src = '',
    clip = '';
  beforeAll(() => {
    src = espeakUtterance(join(t.dir, 'utt.wav'));
    clip = join(t.dir, 'clip.wav');
    sox([src, clip, 'trim', '0.4', '0.15']); // 0.15 s of speech keeps the recorded sox outputs small
  });
  afterAll(t.cleanup);

  for (const [name, args, want] of FORMATS) {
    it(name, () => {
      const f = join(t.dir, `${name.replace(/\W+/g, '_')}.wav`);
      // channels that differ from each other (so averaging is really checked): channel c gets gain 1 - 0.3c
      const remix =
        want.channels > 1
          ? ['remix', ...Array.from({ length: want.channels }, (_, c) => `1v${(1 - 0.3 * c).toFixed(1)}`)]
          : [];
      const pre = args.filter((a, i) => !(a === '-c' || args[i - 1] === '-c'));
      sox([clip, ...pre, f, ...remix]);
      const info = readWavInfo(f);
      expect(info.formatTag).toBe(want.tag);
      expect(info.channels).toBe(want.channels);
      expect(info.bytesPerSample).toBe(want.bytes);
      const ref = soxDecode(f);
      expect(ref.channels).toBe(want.channels);
      const mono = downmix(ref.samples, ref.channels);
      const { samples } = readWavMono(f);
      expect(samples.length).toBe(mono.length);
      expect(samples.some((v) => Math.abs(v) > 0.05)).toBe(true); // real signal, not silence
      expect(relErr(samples, mono)).toBeLessThan(1e-6);
    });
  }

  it('WAVE_FORMAT_EXTENSIBLE with the IEEE float subformat', () => {
    const f32 = join(t.dir, 'plain-f32.wav');
    sox([clip, '-e', 'floating-point', '-b', '32', '-c', '2', f32, 'remix', '1', '1v0.5']);
    const plain = readWavInfo(f32);
    const data = readFileSync(f32).subarray(plain.dataOffset, plain.dataOffset + plain.dataBytes);
    // a 40-byte extensible fmt chunk: cbSize 22, valid bits 32, mask FL|FR, subformat KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
    const fmt = Buffer.alloc(40);
    fmt.writeUInt16LE(0xfffe, 0);
    fmt.writeUInt16LE(2, 2);
    fmt.writeUInt32LE(plain.sampleRate, 4);
    fmt.writeUInt32LE(plain.sampleRate * 8, 8);
    fmt.writeUInt16LE(8, 12);
    fmt.writeUInt16LE(32, 14);
    fmt.writeUInt16LE(22, 16);
    fmt.writeUInt16LE(32, 18);
    fmt.writeUInt32LE(3, 20);
    Buffer.from('0300000000001000800000aa00389b71', 'hex').copy(fmt, 24);
    const chunk = (id: string, body: Buffer) => {
      const h = Buffer.alloc(8);
      h.write(id, 0, 'ascii');
      h.writeUInt32LE(body.length, 4);
      return Buffer.concat([h, body]);
    };
    const body = Buffer.concat([
      Buffer.from('WAVE'),
      chunk('fmt ', fmt),
      chunk('LIST', Buffer.from('INFOISFT\x04\x00\x00\x00test')),
      chunk('data', Buffer.from(data)),
    ]);
    const riff = Buffer.alloc(8);
    riff.write('RIFF');
    riff.writeUInt32LE(body.length, 4);
    const f = join(t.dir, 'ext-float.wav');
    writeFileSync(f, Buffer.concat([riff, body]));
    const info = readWavInfo(f);
    expect(info).toMatchObject({
      formatTag: 0xfffe,
      extensible: true,
      format: 'float',
      channels: 2,
      bytesPerSample: 4,
    });
    const ref = soxDecode(f);
    expect(relErr(readWavMono(f).samples, downmix(ref.samples, ref.channels))).toBeLessThan(1e-6);
  });

  it('reads a WAV written to a pipe (placeholder sizes) to the end of the file', () => {
    const piped = join(t.dir, 'piped.wav');
    writeFileSync(piped, espeakStdout('one two three'));
    const direct = espeakUtterance(join(t.dir, 'direct.wav'), 'one two three');
    const a = readWavMono(piped).samples,
      b = readWavMono(direct).samples;
    expect(a.length).toBe(b.length);
    expect(relErr(a, b)).toBe(0);
  });

  it('streams in blocks: any block size gives the same samples', () => {
    const whole = readWavMono(src).samples;
    const parts: Float32Array[] = [...readWavBlocks(src, 1237)];
    expect(parts.length).toBeGreaterThan(10);
    const joined = new Float32Array(whole.length);
    let at = 0;
    for (const p of parts) {
      joined.set(p, at);
      at += p.length;
    }
    expect(at).toBe(whole.length);
    expect(relErr(joined, whole)).toBe(0);
  });

  it('writes 16-bit WAV that sox reads back as the same samples', () => {
    const x = readWavMono(clip).samples;
    const out = join(t.dir, 'written.wav');
    writeWav(out, x, 22050, 16);
    const ref = soxDecode(out);
    expect(ref.channels).toBe(1);
    expect(relErr(ref.samples, x)).toBeLessThan(1e-6); // x came from 16-bit PCM, so it is exactly representable
  });
});
