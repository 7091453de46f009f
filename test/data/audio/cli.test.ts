import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTokenFile, tokenizeWav } from '../../../src/data/audio/tokens.js';
import { readWavMono } from '../../../src/data/audio/wav.js';
import { decodeTokens } from '../../../src/data/audio/mulaw.js';
import { espeakUtterance, sox, tempDir } from './fixtures.js';

// The CLI runs from dist/ (npm test compiles first), as users run it.
const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'mamba-audio.js');
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('mamba-audio data commands', () => {
  const t = tempDir('cli');
  let wav = '';
  beforeAll(() => {
    const utt = espeakUtterance(join(t.dir, 'utt.wav'), 'zero');
    wav = join(t.dir, 'stereo44.wav');
    sox([utt, '-r', '44100', '-c', '2', '-b', '24', wav]);
  });
  afterAll(t.cleanup);

  it('tokenize writes one byte per sample at the model rate (behind the header); an existing output is refused without --force', () => {
    const out = join(t.dir, 'x.tokens');
    const r = cli('tokenize', wav, '-o', out);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/2 ch, 44100 Hz, PCM 24-bit/);
    const want = tokenizeWav(wav, { memoryCache: false }).tokens;
    expect(Buffer.compare(readFileSync(out), Buffer.from(encodeTokenFile(want, 16000, 'mulaw')))).toBe(0);
    const again = cli('tokenize', wav, '-o', out);
    expect(again.code).toBe(1);
    expect(again.err.trim()).toBe(`mamba-audio: error: -o ${out} already exists; pass -f/--force to overwrite it`);
    expect(cli('tokenize', wav, '-o', out, '--force', '--encoding', 'linear').code).toBe(0);
    const linear = tokenizeWav(wav, { encoding: 'linear', memoryCache: false }).tokens;
    expect(Buffer.compare(readFileSync(out), Buffer.from(encodeTokenFile(linear, 16000, 'linear')))).toBe(0);
  });

  it('detokenize turns tokens back into a 16-bit WAV at the rate of their header', () => {
    const tok = join(t.dir, 'y.tokens');
    expect(cli('tokenize', wav, '-o', tok).code).toBe(0);
    const out = join(t.dir, 'y.wav');
    const r = cli('detokenize', tok, '-o', out);
    expect(r.code).toBe(0);
    const back = readWavMono(out);
    expect(back.rate).toBe(16000);
    expect(back.info.bytesPerSample).toBe(2);
    const want = decodeTokens(new Uint8Array(readFileSync(tok)).subarray(20), 'mulaw');
    expect(back.samples.length).toBe(want.length);
    for (let i = 0; i < want.length; i += 101)
      expect(Math.abs(back.samples[i]! - want[i]!)).toBeLessThanOrEqual(1 / 32768);
  });

  it('bad input: one clean line, exit 1, nothing written', () => {
    const bad = join(t.dir, 'bad.wav');
    writeFileSync(bad, 'RIFF....WAVEjunk');
    const out = join(t.dir, 'never.tokens');
    const r = cli('tokenize', bad, '-o', out);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/bad\.wav: no fmt chunk/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(t.dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(cli('tokenize', wav, '-o', out, '--encoding', 'alaw').code).toBe(2);
    expect(cli('dataset', 'build', 'nope', '--out', join(t.dir, 'd')).code).toBe(2);
  });

  it('every command has --help with an example', () => {
    for (const cmd of [['tokenize'], ['detokenize'], ['dataset', 'build']]) {
      const r = cli(...cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Examples:\n {2}\$ mamba-audio /);
    }
  });
});
