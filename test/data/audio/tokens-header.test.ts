// Token files carry their rate and encoding in a 20-byte header, so detokenize plays 8 kHz tokens at
// 8 kHz; headerless (raw) files are read only when asked to (--raw --rate).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { TOKEN_HEADER_BYTES, decodeTokenFile, encodeTokenFile, readTokens } from '../../../src/data/audio/tokens.js';
import { encodeWav, readWavMono } from '../../../src/data/audio/wav.js';
import { rng } from '../../helpers.js';
import { tempDir } from './fixtures.js';
import { hasTool } from '../dna/helpers.js';

const hasSox = hasTool('sox');

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'mamba-audio.js');
const cli = (...args: string[]) => cliEnv(process.env, ...args);
const cliEnv = (env: NodeJS.ProcessEnv, ...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('token file header', () => {
  const t = tempDir('tokhdr');
  afterAll(t.cleanup);
  const r = rng(11);
  const tokens = Uint8Array.from({ length: 1234 }, () => Math.floor(r() * 256));

  it('round-trips tokens, rate and encoding', () => {
    for (const [rate, encoding] of [
      [8000, 'mulaw'],
      [44100, 'linear'],
      [16000, 'mulaw'],
    ] as const) {
      const bytes = encodeTokenFile(tokens, rate, encoding);
      expect(bytes.length).toBe(TOKEN_HEADER_BYTES + tokens.length);
      expect(Buffer.from(bytes.subarray(0, 4)).toString('latin1')).toBe('MTOK');
      const back = decodeTokenFile(bytes, 'x.tokens');
      expect(back).toMatchObject({ rate, encoding, header: true });
      expect(Buffer.compare(Buffer.from(back.tokens), Buffer.from(tokens))).toBe(0);
    }
  });

  it('bad headers and raw files give one line naming the file and field', () => {
    const good = encodeTokenFile(tokens, 8000, 'mulaw');
    const set = (f: (dv: DataView) => void) => {
      const b = good.slice();
      f(new DataView(b.buffer));
      return () => decodeTokenFile(b, 'bad.tokens');
    };
    expect(set((dv) => dv.setUint16(4, 9, true))).toThrow(
      /bad\.tokens: token format version 9; this build reads version 1/,
    );
    expect(set((dv) => dv.setUint16(6, 7, true))).toThrow(
      /bad\.tokens: token header field encoding is 7; allowed 0 \(mulaw\) or 1 \(linear\)/,
    );
    expect(set((dv) => dv.setUint32(8, 3, true))).toThrow(
      /bad\.tokens: token header field rate is 3 Hz; allowed 1000\.\.384000/,
    );
    expect(() => decodeTokenFile(good.subarray(0, good.length - 10), 'cut.tokens')).toThrow(
      /cut\.tokens: token header field count is 1234, the file holds 1224 tokens/,
    );
    expect(() => decodeTokenFile(tokens.subarray(4), 'raw.tokens')).toThrow(
      /raw\.tokens: no token header .*--raw --rate HZ/,
    );
    expect(decodeTokenFile(tokens.subarray(4), 'raw.tokens', { rate: 8000, encoding: 'linear' })).toMatchObject({
      rate: 8000,
      encoding: 'linear',
      header: false,
    });
    // a header that disagrees with what the reader needs (e.g. training at 16 kHz)
    const f = join(t.dir, 'at8k.tokens');
    writeFileSync(f, good);
    expect(() => readTokens(f, { expect: { rate: 16000, encoding: 'mulaw' } })).toThrow(
      /at8k\.tokens: mulaw tokens at 8000 Hz; expected mulaw at 16000 Hz/,
    );
  });

  it('CLI: tokenize at 8 kHz, detokenize plays at 8 kHz with no --rate; --raw files need --raw --rate', () => {
    const wav = join(t.dir, 'tone.wav');
    writeFileSync(
      wav,
      encodeWav(
        Float32Array.from({ length: 22050 }, (_, i) => 0.3 * Math.sin(i / 7)),
        22050,
        16,
      ),
    );
    const tok = join(t.dir, 'tone.tokens');
    expect(cli('tokenize', wav, '--rate', '8000', '-o', tok).code).toBe(0);
    const head = decodeTokenFile(new Uint8Array(readFileSync(tok)), tok);
    expect(head).toMatchObject({ rate: 8000, encoding: 'mulaw', header: true });
    expect(head.tokens.length).toBe(8000);
    const back = join(t.dir, 'back.wav');
    const d = cli('detokenize', tok, '-o', back);
    expect(d.code, d.err).toBe(0);
    expect(d.err).toMatch(/8,000 mulaw tokens -> .*back\.wav \(1\.00 s at 8000 Hz, 16-bit\)/);
    const w = readWavMono(back);
    expect(w.rate).toBe(8000);
    expect(w.samples.length).toBe(8000);
    // --rate on a file with a header is refused: the header already says it
    expect(cli('detokenize', tok, '--rate', '16000', '-o', join(t.dir, 'x.wav')).code).toBe(2);
    // raw: written with --raw, read back only with --raw --rate
    const raw = join(t.dir, 'tone.raw');
    expect(cli('tokenize', wav, '--rate', '8000', '--raw', '-o', raw).code).toBe(0);
    expect(readFileSync(raw).length).toBe(8000);
    const noFlag = cli('detokenize', raw, '-o', join(t.dir, 'y.wav'));
    expect(noFlag.code).toBe(1);
    expect(noFlag.err).toMatch(/tone\.raw: no token header \(magic MTOK\)/);
    expect(cli('detokenize', raw, '--raw', '-o', join(t.dir, 'y.wav')).code).toBe(2);
    expect(cli('detokenize', raw, '--raw', '--rate', '8000', '-o', join(t.dir, 'y.wav')).code).toBe(0);
    expect(readWavMono(join(t.dir, 'y.wav')).rate).toBe(8000);
  });

  it.skipIf(!hasSox)(
    'FLAC is decoded through sox; without sox the message says how to convert (needs sox to make one)',
    () => {
      const wav = join(t.dir, 'f.wav'),
        flac = join(t.dir, 'f.flac');
      writeFileSync(
        wav,
        encodeWav(
          Float32Array.from({ length: 16000 }, (_, i) => 0.3 * Math.sin(i / 5)),
          16000,
          16,
        ),
      );
      expect(spawnSync('sox', [wav, flac]).status).toBe(0);
      const a = cli('tokenize', wav, '-o', join(t.dir, 'a.tokens')),
        b = cli('tokenize', flac, '-o', join(t.dir, 'b.tokens'));
      expect(a.code, a.err).toBe(0);
      expect(b.code, b.err).toBe(0);
      expect(Buffer.compare(readFileSync(join(t.dir, 'a.tokens')), readFileSync(join(t.dir, 'b.tokens')))).toBe(0);
      const noSox = cliEnv({ ...process.env, PATH: '/nonexistent' }, 'tokenize', flac, '-o', join(t.dir, 'c.tokens'));
      expect(noSox.code).toBe(1);
      expect(noSox.err).toBe(
        `mamba-audio: error: ${flac}: FLAC needs sox to decode (not found); install sox or convert it: sox ${flac} out.wav\n`,
      );
    },
  );
});
