import { describe, expect, it } from 'vitest';
import { mapInPlace } from '../../../src/data/dna/indexed.js';
import {
  DNA_VOCAB_SIZE,
  DnaDataError,
  decodeTokens,
  encodeBases,
  encodeString,
  reverseComplement,
  baseLut,
  INVALID,
} from '../../../src/data/dna/index.js';
import { rng } from '../../helpers.js';

describe('DNA tokenizer', () => {
  it('uses the fixed vocabulary', () => {
    expect(DNA_VOCAB_SIZE).toBe(16);
    expect(Array.from(encodeString('ACGTN'))).toEqual([4, 5, 6, 7, 8]);
    expect(Array.from(encodeString('acgtn'))).toEqual([4, 5, 6, 7, 8]);
    expect(Array.from(encodeString('acgtn', { keepCase: true }))).toEqual([9, 10, 11, 12, 13]);
  });

  it('maps the other IUPAC codes to N (n when keeping case) and rejects everything else', () => {
    for (const c of 'RYSWKMBDHV') {
      expect(encodeString(c)[0]).toBe(8);
      expect(encodeString(c.toLowerCase())[0]).toBe(8);
      expect(encodeString(c.toLowerCase(), { keepCase: true })[0]).toBe(13);
    }
    let valid = 0;
    for (let b = 0; b < 256; b++) if (baseLut()[b] !== INVALID) valid++;
    expect(valid).toBe(2 * 15); // A C G T N + 10 IUPAC codes, both cases
    expect(() => encodeBases(Buffer.from('ACGUX'), {}, 'x.fa', 100)).toThrow(/x\.fa: byte 'U' at byte offset 103/);
    expect(() => encodeBases(Buffer.from('AC\nG'), {}, 'y.fa')).toThrow(DnaDataError);
  });

  it('round-trips random sequences through encode and decode', () => {
    const r = rng(7);
    for (const keepCase of [false, true]) {
      const letters = keepCase ? 'ACGTNacgtn' : 'ACGTN';
      let s = '';
      for (let i = 0; i < 10000; i++) s += letters[Math.floor(r() * letters.length)];
      expect(decodeTokens(encodeString(s, { keepCase }))).toBe(s);
    }
    expect(decodeTokens(Uint8Array.from([0, 1, 2, 3, 4]), { specials: true })).toBe('<pad><bos><eos><mask>A');
    expect(() => decodeTokens(Uint8Array.from([16]))).toThrow(/outside the DNA vocabulary/);
  });

  it('reverse-complements tokens (also in place) and is an involution', () => {
    expect(decodeTokens(reverseComplement(encodeString('AACGTN')))).toBe('NACGTT');
    expect(decodeTokens(reverseComplement(encodeString('acgGT', { keepCase: true })))).toBe('ACcgt');
    const r = rng(3);
    const t = new Uint8Array(1001);
    for (let i = 0; i < t.length; i++) t[i] = 4 + Math.floor(r() * 10);
    const copy = t.slice();
    const rc = reverseComplement(t);
    expect(rc).not.toEqual(copy);
    expect(reverseComplement(rc)).toEqual(copy);
    reverseComplement(t, t); // in place, odd length
    expect(t).toEqual(rc);
  });

  it('the two-bytes-at-a-time in-place mapping equals the byte table at any alignment', () => {
    const r = rng(11);
    const letters = 'ACGTNacgtnRYkmX\n';
    for (const keepCase of [false, true]) {
      for (let trial = 0; trial < 40; trial++) {
        const n = 1 + Math.floor(r() * 300);
        const from = 1 + Math.floor(r() * 5);
        const bytes = new Uint8Array(from + n + 3);
        for (let i = 0; i < bytes.length; i++) bytes[i] = letters.charCodeAt(Math.floor(r() * (trial % 2 ? 14 : 16)));
        const expected = bytes.slice();
        const lut = baseLut(keepCase);
        let bad = false;
        for (let i = from; i < from + n; i++) {
          expected[i] = lut[bytes[i]!]!;
          bad ||= expected[i] === INVALID;
        }
        const view = bytes.subarray(1); // an odd byteOffset as well as odd and even starts
        const acc = mapInPlace(view, from - 1, from - 1 + n, keepCase);
        expect(bytes).toEqual(expected);
        expect((acc & 0x80) !== 0).toBe(bad);
      }
    }
  });
});
