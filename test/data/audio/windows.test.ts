import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUDIO_SPEECH } from '../../../src/data/audio/datasets.js';
import { encodeSamples } from '../../../src/data/audio/mulaw.js';
import { resample } from '../../../src/data/audio/resample.js';
import { clearTokenCache, tokenizeWav } from '../../../src/data/audio/tokens.js';
import { readWavMono } from '../../../src/data/audio/wav.js';
import { openAudioWindows } from '../../../src/data/audio/windows.js';
import { Rng } from '../../../src/util/rng.js';
import { espeakUtterance, sox, tempDir } from './fixtures.js';

describe('tokenizing and windows', () => {
  const t = tempDir('win');
  let a = '',
    b44 = '';
  beforeAll(() => {
    a = espeakUtterance(join(t.dir, 'a.wav'), 'one two three');
    b44 = join(t.dir, 'b44.wav');
    sox([espeakUtterance(join(t.dir, 'b.wav'), 'nine', 'en-gb'), '-r', '44100', '-c', '2', b44]);
  });
  afterAll(t.cleanup);

  it('streaming tokenization equals decode -> resample -> mu-law of the whole file, for any block size', () => {
    const { samples, rate } = readWavMono(b44);
    const want = encodeSamples(resample(samples, rate, 16000), 'mulaw');
    for (const blockFrames of [333, 1 << 16]) {
      const got = tokenizeWav(b44, { blockFrames, memoryCache: false }).tokens;
      expect(got.length).toBe(want.length);
      let diff = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) diff++;
      // float32 sums in a different block split can flip a rare token at a level boundary
      expect(diff).toBeLessThanOrEqual(2);
    }
  });

  it('caches tokens in memory and in a cache folder', () => {
    clearTokenCache();
    const cache = tempDir('cache');
    const cacheDir = join(cache.dir, 'tokens');
    const first = tokenizeWav(a, { cacheDir });
    expect(tokenizeWav(a, { cacheDir })).toBe(first); // same object from memory
    const files = readdirSync(cacheDir);
    expect(files.length).toBe(1);
    expect(Buffer.compare(readFileSync(join(cacheDir, files[0]!)), Buffer.from(first.tokens))).toBe(0);
    clearTokenCache();
    const again = tokenizeWav(a, { cacheDir });
    expect(again).not.toBe(first);
    expect(Buffer.compare(Buffer.from(again.tokens), Buffer.from(first.tokens))).toBe(0);
    cache.cleanup();
  });

  it('draws seeded 2^20-sample windows from the shipped speech', async () => {
    expect(existsSync(DEFAULT_AUDIO_SPEECH)).toBe(true);
    const src = await openAudioWindows(DEFAULT_AUDIO_SPEECH);
    const all = tokenizeWav(DEFAULT_AUDIO_SPEECH).tokens;
    expect(src.domain).toBe('audio');
    expect(src.vocabSize).toBe(256);
    expect(src.totalTokens()).toBe(all.length);
    expect(src.maxWindowLength()).toBeGreaterThan(2 ** 20);
    expect(src.describe()).toMatch(/1 file, 1,307,\d{3} samples/);
    const w1 = await src.randomWindow(2 ** 20, new Rng(5));
    const w2 = await src.randomWindow(2 ** 20, new Rng(5));
    expect(w1.start).toBe(w2.start);
    expect(w1.tokens.length).toBe(2 ** 20);
    expect(Buffer.compare(Buffer.from(w1.tokens), Buffer.from(all.subarray(w1.start, w1.start + 2 ** 20)))).toBe(0);
    // speech, not silence: many distinct levels
    expect(new Set(w1.tokens.subarray(0, 100000)).size).toBeGreaterThan(100);
    await expect(src.randomWindow(all.length + 1, new Rng(1))).rejects.toThrow(/no file is at least/);
  });

  it('hold-out by time: train and valid windows never overlap and together cover the file', async () => {
    const train = await openAudioWindows(DEFAULT_AUDIO_SPEECH, { holdout: { part: 'train', fraction: 0.1 } });
    const valid = await openAudioWindows(DEFAULT_AUDIO_SPEECH, { holdout: { part: 'valid', fraction: 0.1 } });
    const n = tokenizeWav(DEFAULT_AUDIO_SPEECH).tokens.length;
    expect(train.totalTokens() + valid.totalTokens()).toBe(n);
    const cut = Math.floor(n * 0.9);
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const w = await train.randomWindow(4096, rng);
      expect(w.start + 4096).toBeLessThanOrEqual(cut);
      const v = await valid.randomWindow(4096, rng);
      expect(v.start).toBeGreaterThanOrEqual(cut);
    }
    const seq = [];
    for await (const w of valid.sequentialWindows(16000)) seq.push(w);
    expect(seq.length).toBe(Math.floor((n - cut) / 16000));
    expect(seq.map((w) => w.start)).toEqual(seq.map((_, i) => cut + i * 16000));
    expect(valid.describe()).toMatch(/valid, by time, 10% held out/);
  });

  it('several files: windows never cross a file, and a hold-out by file keeps files apart', async () => {
    const src = await openAudioWindows([a, b44]);
    const la = tokenizeWav(a).tokens.length,
      lb = tokenizeWav(b44).tokens.length;
    expect(src.records.map((r) => r.tokens.length)).toEqual([la, lb]);
    const len = Math.floor(Math.min(la, lb) / 2);
    const rng = new Rng(9);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const w = await src.randomWindow(len, rng);
      seen.add(w.source);
      expect(w.start + len).toBeLessThanOrEqual(w.source === 'a.wav' ? la : lb);
    }
    expect(seen.size).toBe(2);
    let count = 0;
    for await (const w of src.sequentialWindows(1000)) {
      count++;
      expect(w.start % 1000).toBe(0);
    }
    expect(count).toBe(Math.floor(la / 1000) + Math.floor(lb / 1000));
    const tr = await openAudioWindows(t.dir, { holdout: { part: 'train', fraction: 0.3, by: 'file' } });
    const va = await openAudioWindows(t.dir, { holdout: { part: 'valid', fraction: 0.3, by: 'file' } });
    const names = (s: typeof tr) => s.records.map((r) => r.name);
    expect(names(tr).filter((x) => names(va).includes(x))).toEqual([]);
    expect(names(tr).length + names(va).length).toBe(3); // a.wav, b.wav, b44.wav
  });
});
