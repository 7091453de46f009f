import { describe, expect, it } from 'vitest';
import {
  decodeTokens,
  encodeSamples,
  muLawCompress,
  muLawExpand,
  silenceToken,
  tokenTable,
} from '../../../src/data/audio/mulaw.js';
import { randu, randn } from '../../helpers.js';

// The WaveNet/SaShiMi formula written out independently of the implementation.
const F = (x: number) => (Math.sign(x) * Math.log(1 + 255 * Math.abs(x))) / Math.log(256);
const Finv = (y: number) => (Math.sign(y) * (Math.pow(256, Math.abs(y)) - 1)) / 255;
const q = (y: number) => Math.min(255, Math.max(0, Math.floor(((y + 1) / 2) * 255 + 0.5)));

describe('mu-law tokens', () => {
  const x = Float32Array.from(randu(20000, 11, -1, 1));
  // speech-like amplitudes too: most samples are small, where mu-law spends its levels
  const small = Float32Array.from(randn(20000, 12, 0.05)).map((v) => Math.max(-1, Math.min(1, v)));

  it('encodes random samples exactly as the formula', () => {
    for (const data of [x, small]) {
      const t = encodeSamples(data, 'mulaw');
      let mismatch = 0;
      for (let i = 0; i < data.length; i++) if (t[i] !== q(F(data[i]!))) mismatch++;
      expect(mismatch).toBe(0);
    }
  });

  it('decodes every token by the inverse compander of its level', () => {
    const table = tokenTable('mulaw');
    for (let t = 0; t < 256; t++) expect(table[t]).toBeCloseTo(Finv((t / 255) * 2 - 1), 6);
    expect(table[0]).toBeCloseTo(-1, 6);
    expect(table[255]).toBeCloseTo(1, 6);
  });

  it('round trips: tokens -> samples -> the same tokens, and samples lose at most half a level', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(Array.from(encodeSamples(decodeTokens(all, 'mulaw'), 'mulaw'))).toEqual(Array.from(all));
    expect(Array.from(encodeSamples(decodeTokens(all, 'linear'), 'linear'))).toEqual(Array.from(all));
    const back = decodeTokens(encodeSamples(small, 'mulaw'), 'mulaw');
    let worst = 0;
    for (let i = 0; i < small.length; i++) worst = Math.max(worst, Math.abs(F(back[i]!) - F(small[i]!)));
    expect(worst).toBeLessThanOrEqual(1 / 255 + 1e-6); // half of a level's width 2/255 in the companded domain
    const lin = decodeTokens(encodeSamples(x, 'linear'), 'linear');
    for (let i = 0; i < x.length; i++) expect(Math.abs(lin[i]! - x[i]!)).toBeLessThanOrEqual(1 / 255 + 1e-6);
  });

  it('mu-law keeps quiet speech far better than linear 8-bit', () => {
    const err = (enc: 'mulaw' | 'linear') => {
      const y = decodeTokens(encodeSamples(small, enc), enc);
      let e = 0,
        s = 0;
      for (let i = 0; i < small.length; i++) {
        e += (y[i]! - small[i]!) ** 2;
        s += small[i]! ** 2;
      }
      return 10 * Math.log10(s / e);
    };
    expect(err('mulaw')).toBeGreaterThan(err('linear') + 10);
  });

  it('the silence token is 128, clips out-of-range values and maps NaN to silence', () => {
    expect(silenceToken('mulaw')).toBe(128);
    expect(silenceToken('linear')).toBe(128);
    expect(Array.from(encodeSamples(Float32Array.of(-3, 3, NaN), 'mulaw'))).toEqual([0, 255, 128]);
    expect(muLawExpand(muLawCompress(0.3))).toBeCloseTo(0.3, 12);
  });
});
