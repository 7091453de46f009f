// The bedGraph writer's hand-made digits against toFixed: the same bytes for runs and per-base lines, NaN gaps,
// negative values and ones that round to zero, positions past 2^31, several records, and output long enough to
// cross the writer's buffer flushes.
import { describe, expect, it } from 'vitest';
import { BedGraphWriter } from '../../src/data/dna/bedgraph.js';
import { Rng } from '../../src/util/rng.js';

/** The lines a reader expects, from toFixed (the value of a line is its rounded integer over 10^decimals). */
function reference(
  parts: { chrom: string; start: number; values: Float64Array }[],
  decimals: number,
  perBase: boolean,
): string {
  const scale = 10 ** decimals;
  const out: string[] = [];
  let cur: { chrom: string; s: number; e: number; q: number } | null = null;
  const emit = () => {
    if (!cur) return;
    const text = (cur.q / scale).toFixed(decimals);
    out.push(`${cur.chrom}\t${cur.s}\t${cur.e}\t${text === `-${(0).toFixed(decimals)}` ? text.slice(1) : text}\n`);
    cur = null;
  };
  for (const p of parts) {
    if (cur && cur.chrom !== p.chrom) emit();
    p.values.forEach((v, i) => {
      const pos = p.start + i;
      if (Number.isNaN(v)) return emit();
      const q = Math.round(v * scale);
      if (!perBase && cur && cur.e === pos && cur.q === q) cur.e++;
      else {
        emit();
        cur = { chrom: p.chrom, s: pos, e: pos + 1, q };
      }
    });
  }
  emit();
  return out.join('');
}

describe('BedGraphWriter', () => {
  for (const decimals of [0, 1, 4, 6])
    for (const perBase of [false, true])
      it(`writes what toFixed writes (${decimals} decimals, ${perBase ? 'per base' : 'runs'})`, () => {
        const r = new Rng(decimals * 2 + (perBase ? 1 : 0));
        const parts: { chrom: string; start: number; values: Float64Array }[] = [];
        for (const [chrom, start, n] of [
          ['chr1', 0, 70000],
          ['chr1', 70000, 5000],
          ['chrX_long_name', 2 ** 31 - 3000, 6000],
          ['chrM', 9_999_990, 30],
        ] as const) {
          const values = Float64Array.from({ length: n }, () => {
            const u = r.next();
            if (u < 0.02) return NaN;
            if (u < 0.3) return -Math.floor(r.next() * 3) / 2; // runs of equal values
            if (u < 0.35) return -r.next() * 1e-7; // rounds to zero: no "-0"
            return -12 * r.next() ** 2;
          });
          parts.push({ chrom, start, values });
        }
        const chunks: Uint8Array[] = [];
        const w = new BedGraphWriter({ writeBytes: (b) => chunks.push(Uint8Array.from(b)) }, { decimals, perBase });
        for (const p of parts)
          for (let c = 0; c < p.values.length; c += 777) w.add(p.chrom, p.start + c, p.values.subarray(c, c + 777));
        w.finish();
        const got = Buffer.concat(chunks).toString('latin1');
        if (decimals === 6) expect(chunks.length).toBeGreaterThan(1); // crossed a buffer flush
        expect(got).toBe(reference(parts, decimals, perBase));
      });
});
