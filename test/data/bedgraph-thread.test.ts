// BedGraphThread, the bedGraph writer on a worker thread that score uses: the same bytes as BedGraphWriter on
// the caller's thread over many chunks (runs across chunk boundaries, NaN gaps, several records, views of part
// of a buffer), the transferred values detached, and a write error rethrown on the caller's thread with its
// code. The worker runs from the compiled dist/ (npm test compiles it first).
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BedGraphWriter } from '../../src/data/dna/bedgraph.js';
import { Rng } from '../../src/util/rng.js';
import { BedGraphThread } from '../../dist/data/dna/bedgraph-thread.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mamba-bedgraph-thread-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const header = BedGraphWriter.trackLine('t', 'a test');

/** Chunks of two records with runs of equal rounded values, NaN gaps and a new value at most bases. */
function chunks(): { chrom: string; start: number; values: Float64Array }[] {
  const r = new Rng(5);
  const out = [];
  for (const [chrom, start, n] of [
    ['chr1', 0, 50_000],
    ['chr2', 1_000_000, 30_000],
  ] as const)
    for (let c = 0; c < n; c += 4096) {
      const values = Float64Array.from({ length: Math.min(4096, n - c) }, () => {
        const u = r.next();
        return u < 0.02 ? NaN : u < 0.4 ? -1.5 : -4 * r.next() ** 2;
      });
      out.push({ chrom, start: start + c, values });
    }
  return out;
}

describe('BedGraphThread', () => {
  for (const perBase of [false, true])
    it(`writes the bytes BedGraphWriter writes on this thread (${perBase ? 'per base' : 'runs'})`, async () => {
      const parts = chunks();
      const want: Buffer[] = [Buffer.from(header)];
      const ref = new BedGraphWriter({ writeBytes: (b) => want.push(Buffer.from(b)) }, { decimals: 3, perBase });
      for (const p of parts) ref.add(p.chrom, p.start, p.values);
      ref.finish();

      const path = join(dir, `out-${perBase}.bedGraph`);
      const fd = openSync(path, 'w');
      const bg = await BedGraphThread.start(fd, { decimals: 3, perBase, header });
      try {
        for (const [i, p] of parts.entries()) {
          // every third chunk a view into a larger buffer: copied, the buffer left as it was
          const values = i % 3 ? p.values : new Float64Array([9, ...p.values, 9]).subarray(1, p.values.length + 1);
          bg.add(p.chrom, p.start, values);
          expect(values.length, `chunk ${i}`).toBe(i % 3 ? 0 : p.values.length);
        }
        bg.finish();
      } finally {
        closeSync(fd);
        await bg.stop();
      }
      expect(readFileSync(path).equals(Buffer.concat(want))).toBe(true);
    });

  it("rethrows the worker's write error on the caller's thread, with its code", async () => {
    const path = join(dir, 'read-only.bedGraph');
    writeFileSync(path, '');
    const fd = openSync(path, 'r'); // writes fail with EBADF
    try {
      await expect(
        (async () => {
          const bg = await BedGraphThread.start(fd, { decimals: 4, perBase: true, header });
          try {
            for (const p of chunks()) bg.add(p.chrom, p.start, p.values);
            bg.finish();
          } finally {
            await bg.stop();
          }
        })(),
      ).rejects.toMatchObject({ code: 'EBADF', message: expect.stringMatching(/^EBADF: bad file descriptor, write/) });
    } finally {
      closeSync(fd);
    }
  });
});
