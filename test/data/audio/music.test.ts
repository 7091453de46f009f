// The music recipe on short Ogg Vorbis tracks made here with sox: decoded to 16 kHz mono, split by whole
// track with the hours of each split, as WAV or mu-law token files (with their header), and a capped subset.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildMusic } from '../../../src/data/audio/datasets.js';
import { readWavMono } from '../../../src/data/audio/wav.js';
import { TOKEN_HEADER_BYTES, readTokens } from '../../../src/data/audio/tokens.js';

const sox = spawnSync('sox', ['--version'], { stdio: 'ignore' }).status === 0;
const ogg = sox && /vorbis|ogg/i.test(spawnSync('sox', ['--help'], { encoding: 'utf8' }).stdout ?? '');
const dir = mkdtempSync(join(tmpdir(), 'mamba-music-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!ogg)(
  `dataset build music${ogg ? '' : ' (skipped: needs sox with Ogg support: apt-get install sox libsox-fmt-base)'}`,
  () => {
    const src = join(dir, 'ogg');
    const seconds = [3, 2.5, 2, 1.5, 1.2, 1, 0.4];
    if (ogg) {
      mkdirSync(src);
      // stereo 44.1 kHz tones, as the soundtrack is; the last one is too short to keep
      seconds.forEach((s, i) =>
        execFileSync('sox', [
          '-n',
          '-r',
          '44100',
          '-c',
          '2',
          join(src, `track${i}.ogg`),
          'synth',
          String(s),
          'sine',
          String(220 + 110 * i),
        ]),
      );
    }

    it('decodes every track to 16 kHz mono and splits by whole track, with the hours of each split', () => {
      const out = join(dir, 'wav');
      const m = buildMusic(out, { source: src, minSeconds: 0.5, testFraction: 0.2, validFraction: 0.1 });
      expect(m.tracks).toHaveLength(6); // the 0.4 s track is left out
      const splits = new Set(m.tracks.map((t) => t.split));
      expect([...splits].sort()).toEqual(['test', 'train', 'valid']);
      for (const t of m.tracks) {
        const { samples, rate, info } = readWavMono(join(out, t.path));
        expect(rate).toBe(16000);
        expect(info.channels).toBe(1);
        expect(samples.length / 16000).toBeCloseTo(seconds[Number(t.track.slice(5))]!, 2);
        expect(t.path.startsWith(`${t.split}/`)).toBe(true);
      }
      const total = seconds.slice(0, 6).reduce((a, b) => a + b, 0);
      const h = m.hours;
      expect((h.train + h.valid + h.test) * 3600).toBeCloseTo(total, 2);
      expect(h.test * 3600).toBeGreaterThanOrEqual(0.2 * total);
      expect(JSON.parse(readFileSync(join(out, 'music.json'), 'utf8')).hours).toEqual(h);
    });

    it('writes mu-law tokens (one byte per sample) and caps each split for a subset', () => {
      const out = join(dir, 'tok');
      const m = buildMusic(out, { source: src, minSeconds: 0.5, format: 'tokens', maxSeconds: { train: 2, test: 1 } });
      expect(m.tracks.every((t) => t.path.endsWith('.tokens'))).toBe(true);
      expect(m.hours.train * 3600).toBeCloseTo(2, 3);
      expect(m.hours.test * 3600).toBeLessThanOrEqual(1);
      for (const t of m.tracks) {
        const f = readTokens(join(out, t.path));
        expect([f.rate, f.encoding, f.tokens.length]).toEqual([16000, 'mulaw', Math.round(t.seconds * 16000)]);
        expect(statSync(join(out, t.path)).size).toBe(TOKEN_HEADER_BYTES + f.tokens.length);
      }
      expect(m.split).toMatch(/subset/);
    });

    it('says which package is missing or what is wrong with the source', () => {
      expect(() => buildMusic(join(dir, 'x'), { source: join(dir, 'none') })).toThrow(/none: no such folder/);
      expect(() => buildMusic(join(dir, 'y'), { source: src, minSeconds: 100 })).toThrow(
        /0 track\(s\) of at least 100 s/,
      );
      expect(existsSync(join(dir, 'y'))).toBe(false);
    });
  },
);
