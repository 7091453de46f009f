// BedGraphThread, the bedGraph writer on a worker thread that score uses: the same bytes as BedGraphWriter on
// the caller's thread over many chunks (runs across chunk boundaries, NaN gaps, several records, views of part
// of a buffer), the transferred values detached, and a write error rethrown on the caller's thread with its
// code; a reader that does not read (a full pipe) holds the caller at 3 chunks in flight, and nothing is lost when it
// reads again; add() settles without a trip through the event loop while nothing holds it. A worker that dies
// outside its own error handling (exits, throws, before or after it is ready; bedgraph-dying-worker.mjs) makes
// start, add or finish reject within seconds, not hang, and finish never resolves with a chunk unwritten. The
// worker runs from the compiled dist/ (npm test compiles it first).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
          await bg.add(p.chrom, p.start, values);
          expect(values.length, `chunk ${i}`).toBe(i % 3 ? 0 : p.values.length);
        }
        await bg.finish();
      } finally {
        closeSync(fd);
        await bg.stop();
      }
      expect(readFileSync(path).equals(Buffer.concat(want))).toBe(true);
    });

  it('holds the caller at 3 chunks in flight while the output does not drain, and loses nothing', async () => {
    // a FIFO whose reader starts 1.5 s late: the worker's writer fills its 1 MiB buffer (a chunk is at least 400 kB
    // of per-base lines) and then blocks writing it into the 64 kB pipe; from then on the worker handles nothing, so
    // at most 3 more add() calls return before the reader drains the pipe
    const fifo = join(dir, 'slow.fifo'),
      out = join(dir, 'slow.bedGraph');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', `sleep 1.5; cat "${fifo}" > "${out}"`], { stdio: 'ignore' });
    const done = new Promise((resolve) => reader.on('exit', resolve));
    const fd = openSync(fifo, constants.O_RDWR); // Linux: opening a FIFO read-write does not wait for a reader
    const parts = Array.from({ length: 12 }, (_, k) => ({
      start: k * 20_000,
      values: Float64Array.from({ length: 20_000 }, (_, i) => -((i * 7 + k) % 13) / 4),
    }));
    const want: Buffer[] = [Buffer.from(header)];
    const ref = new BedGraphWriter({ writeBytes: (b) => want.push(Buffer.from(b)) }, { decimals: 3, perBase: true });
    for (const p of parts) ref.add('chr1', p.start, p.values.slice());
    ref.finish();
    const bg = await BedGraphThread.start(fd, { decimals: 3, perBase: true, header });
    const t0 = Date.now();
    const returned: number[] = [];
    try {
      for (const p of parts) {
        await bg.add('chr1', p.start, p.values);
        returned.push(Date.now() - t0);
      }
      await bg.finish();
    } finally {
      closeSync(fd); // the reader's cat sees end of file once the worker's writes are done
      await bg.stop();
    }
    await done;
    // k adds returned before the reader started, the (k+1)-th only after it: the chunks the writer's buffer holds
    // (at most 3 of 400 kB) plus the 3 in flight
    const k = returned.findIndex((ms) => ms >= 1000);
    expect(k).toBeGreaterThanOrEqual(3);
    expect(k).toBeLessThanOrEqual(6);
    expect(readFileSync(out).equals(Buffer.concat(want))).toBe(true);
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
            for (const p of chunks()) await bg.add(p.chrom, p.start, p.values);
            await bg.finish();
          } finally {
            await bg.stop();
          }
        })(),
      ).rejects.toMatchObject({ code: 'EBADF', message: expect.stringMatching(/^EBADF: bad file descriptor, write/) });
    } finally {
      closeSync(fd);
    }
  });

  it('settles add() without a trip through the event loop while fewer than 3 chunks are out', async () => {
    const fd = openSync(join(dir, 'prompt.bedGraph'), 'w');
    const bg = await BedGraphThread.start(fd, { decimals: 3, perBase: false, header });
    try {
      let turned = false;
      setImmediate(() => (turned = true));
      const [a, b] = chunks();
      await bg.add(a.chrom, a.start, a.values);
      await bg.add(b.chrom, b.start, b.values);
      // a macrotask between the adds would have run the setImmediate
      expect(turned).toBe(false);
      await bg.finish();
    } finally {
      closeSync(fd);
      await bg.stop();
    }
  });

  describe('a worker that dies outside its own error handling', () => {
    const dying = new URL('./bedgraph-dying-worker.mjs', import.meta.url);
    const incomplete = (how: string) => `the bedGraph writer thread ${how} before finishing: the output is incomplete`;

    /** Starts the dying worker on a new file, adds `parts` and finishes; says which call rejected, and how. */
    async function runDying(dies: string, parts: ReturnType<typeof chunks>) {
      const path = join(dir, `dies-${dies.replace(':', '-')}.bedGraph`);
      const fd = openSync(path, 'w');
      process.env.MAMBA_TEST_BEDGRAPH_DIES = dies; // a worker starts with a copy of this environment
      const t0 = Date.now();
      let bg: BedGraphThread | undefined;
      let step = 'start';
      try {
        bg = await BedGraphThread.start(fd, { decimals: 3, perBase: true, header }, dying);
        for (const [i, p] of parts.entries()) {
          step = `add ${i}`;
          await bg.add(p.chrom, p.start, p.values);
        }
        step = 'finish';
        await bg.finish();
        return { step: 'none', error: undefined, ms: Date.now() - t0, path };
      } catch (e) {
        return { step, error: e as Error, ms: Date.now() - t0, path };
      } finally {
        delete process.env.MAMBA_TEST_BEDGRAPH_DIES;
        closeSync(fd);
        await bg?.stop();
      }
    }

    /** What BedGraphWriter writes on this thread for all of `parts` (per base, 3 decimals). */
    function reference(parts: ReturnType<typeof chunks>): Buffer {
      const want: Buffer[] = [Buffer.from(header)];
      const ref = new BedGraphWriter({ writeBytes: (b) => want.push(Buffer.from(b)) }, { decimals: 3, perBase: true });
      for (const p of parts) ref.add(p.chrom, p.start, p.values.slice());
      ref.finish();
      return Buffer.concat(want);
    }

    it('rejects an add when the worker exits (code 3) after 2 chunks, no more than 3 chunks later', async () => {
      const parts = chunks();
      const r = await runDying('exit:2', parts);
      expect(r.error?.message).toBe(incomplete('exited (code 3)'));
      // chunks 0 and 1 handled, at most 3 more handed over (to a dead worker) before an add had to wait
      expect(r.step).toMatch(/^add [345]$/);
      expect(r.ms).toBeLessThan(5000);
    }, 10_000);

    it('rejects finish, never resolving, when the worker exits after writing every chunk but before the finish', async () => {
      const parts = chunks();
      const want = reference(parts);
      const r = await runDying(`exit:${parts.length}`, parts);
      expect(r.step).toBe('finish');
      expect(r.error?.message).toBe(incomplete('exited (code 3)'));
      expect(r.ms).toBeLessThan(5000);
      // what was written is the start of the output but not all of it: the writer's buffered lines were lost
      const got = readFileSync(r.path);
      expect(got.length).toBeGreaterThan(header.length);
      expect(got.length).toBeLessThan(want.length);
      expect(got.equals(want.subarray(0, got.length))).toBe(true);
    }, 10_000);

    it('rejects with the message of an uncaught error in the worker', async () => {
      const r = await runDying('throw:2', chunks());
      expect(r.error?.message).toBe(incomplete('failed (a test worker dies)'));
      expect((r.error?.cause as Error | undefined)?.message).toBe('a test worker dies');
      expect(r.step).toMatch(/^add [345]$/);
      expect(r.ms).toBeLessThan(5000);
    }, 10_000);

    it('rejects start when the worker exits before it is ready', async () => {
      const r = await runDying('load', chunks());
      expect(r.step).toBe('start');
      expect(r.error?.message).toBe(incomplete('exited (code 3)'));
      expect(r.ms).toBeLessThan(5000);
    }, 10_000);
  });
});
