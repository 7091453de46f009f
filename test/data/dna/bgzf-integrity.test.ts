// BGZF integrity: every block's CRC32 and ISIZE are checked, impossible headers and .gzi offsets give one
// clear DnaDataError naming the file and the block's compressed offset (never a raw RangeError), and the
// CLI keeps the stack of errors that are bugs for MAMBA_DEBUG.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../../../src/cli/common.js';
import { asUserErrors, UserError } from '../../../src/cli/errors.js';
import { DnaDataError, IndexedFasta, parseGzi, scanBgzf } from '../../../src/data/dna/index.js';
import { hasSamtools, tempDir } from './helpers.js';

const G27 = join(__dirname, '../../../datasets/dna/h_pylori/G27.fa.gz');
const BIN = join(__dirname, '../../../bin/mamba-dna.js');

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => (tmp = tempDir('mamba-bgzf-')));
afterAll(() => tmp?.cleanup());

/** A copy of the real bgzip genome (and its .fai/.gzi) under `name`, bytes edited by `edit`. */
function damaged(name: string, edit: (b: Buffer) => void, gzi = true): string {
  const f = join(tmp.dir, name);
  const b = Buffer.from(readFileSync(G27));
  edit(b);
  writeFileSync(f, b);
  copyFileSync(`${G27}.fai`, `${f}.fai`);
  if (gzi) copyFileSync(`${G27}.gzi`, `${f}.gzi`);
  return f;
}

/** Reads every base of every record (all blocks inflated). */
function readAll(f: string): void {
  const fa = IndexedFasta.open(f, { writeIndex: false });
  try {
    for (const r of fa.records) fa.tokens(r, 0, r.length);
  } finally {
    fa.close();
  }
}

function errorOf(fn: () => unknown): DnaDataError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DnaDataError);
    expect((e as Error).message).not.toContain('\n');
    return e as DnaDataError;
  }
  throw new Error('expected a DnaDataError, nothing was thrown');
}

const idx = () => scanBgzf(G27);

describe('BGZF blocks are verified', () => {
  it('a flipped bit in a deflate payload that still inflates gives a CRC error naming the file and block', () => {
    const { coff } = idx();
    const orig = readFileSync(G27);
    const blk = 3; // a data block in the middle of the genome
    const c = coff[blk]!,
      bsize = orig.readUInt16LE(c + 16) + 1;
    const payload = orig.subarray(c + 18, c + bsize - 8);
    const want = inflateRawSync(payload);
    // find, by trial, a bit whose flip still inflates to the same number of bytes (so ISIZE agrees)
    let found = -1;
    for (let bit = 8 * 64; bit < payload.length * 8 && found < 0; bit += 7) {
      const p = Buffer.from(payload);
      p[bit >> 3]! ^= 1 << (bit & 7);
      try {
        const got = inflateRawSync(p);
        if (got.length === want.length && !got.equals(want)) found = bit;
      } catch {
        /* this flip breaks the deflate stream: try the next */
      }
    }
    expect(found).toBeGreaterThan(0);
    const f = damaged('flip.fa.gz', (b) => (b[c + 18 + (found >> 3)]! ^= 1 << (found & 7)));
    // the reference decoder (zlib's gunzip checks each member's trailer) rejects it too
    expect(() => gunzipSync(readFileSync(f))).toThrow(/incorrect data check/);
    const e = errorOf(() => readAll(f));
    expect(e.message).toMatch(
      new RegExp(`flip\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: CRC32 mismatch`),
    );
    // the same through the CLI: one line, exit 1, nothing on stdout
    const name = readFileSync(`${G27}.fai`, 'latin1').split('\t')[0]!;
    const r = spawnSync(process.execPath, [BIN, 'region', f, name], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      new RegExp(
        `^mamba-dna: error: .*flip\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: CRC32 mismatch.*\\n$`,
      ),
    );
    if (hasSamtools) expect(spawnSync('samtools', ['faidx', f, name], { encoding: 'latin1' }).status).not.toBe(0);
  });

  it('a flipped bit in the stored CRC field is caught', () => {
    const { coff } = idx();
    const orig = readFileSync(G27);
    const c = coff[1]!,
      bsize = orig.readUInt16LE(c + 16) + 1;
    const f = damaged('crc.fa.gz', (b) => (b[c + bsize - 8]! ^= 0x10));
    expect(errorOf(() => readAll(f)).message).toMatch(
      new RegExp(`crc\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: CRC32 mismatch`),
    );
  });

  it('an ISIZE that disagrees with the inflated data is caught', () => {
    const { coff } = idx();
    const orig = readFileSync(G27);
    const c = coff[2]!,
      bsize = orig.readUInt16LE(c + 16) + 1;
    const f = damaged('isize.fa.gz', (b) => b.writeUInt32LE(b.readUInt32LE(c + bsize - 4) - 1, c + bsize - 4));
    expect(errorOf(() => readAll(f)).message).toMatch(
      new RegExp(
        `isize\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: it inflates to 65280 bytes but its ISIZE field says 65279`,
      ),
    );
    const g = damaged('isize-big.fa.gz', (b) => b.writeUInt32LE(0x7fffffff, c + bsize - 4), false);
    expect(errorOf(() => scanBgzf(g)).message).toMatch(
      new RegExp(`compressed offset ${c}: ISIZE 2147483647 is over the BGZF maximum`),
    );
  });

  it('BSIZE 0 and BSIZE past the end of the file', () => {
    const { coff } = idx();
    const c = coff[1]!;
    const zero = damaged('bsize0.fa.gz', (b) => b.writeUInt16LE(0, c + 16));
    expect(errorOf(() => readAll(zero)).message).toMatch(
      new RegExp(`bsize0\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: its BSIZE field is smaller`),
    );
    const noGzi = damaged('bsize0-scan.fa.gz', (b) => b.writeUInt16LE(0, c + 16), false);
    expect(errorOf(() => scanBgzf(noGzi)).message).toMatch(
      new RegExp(`bsize0-scan\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: its BSIZE`),
    );
    // the last data block claims 64 KiB: it runs past the end of the file
    const last = coff[coff.length - 1]!;
    const big = damaged('bsize-big.fa.gz', (b) => b.writeUInt16LE(0xffff, last + 16), false);
    expect(errorOf(() => scanBgzf(big)).message).toMatch(
      new RegExp(`bsize-big\\.fa\\.gz: truncated bgzip file: the block at compressed offset ${last} needs 65536 bytes`),
    );
  });

  it('.gzi offsets outside the file, not increasing, or beyond any file', () => {
    const size = readFileSync(G27).length;
    const gzi = (name: string, entries: [bigint, bigint][]): string => {
      const f = damaged(name, () => undefined, false);
      const b = Buffer.alloc(8 + 16 * entries.length);
      b.writeBigUInt64LE(BigInt(entries.length), 0);
      entries.forEach(([c, u], i) => (b.writeBigUInt64LE(c, 8 + 16 * i), b.writeBigUInt64LE(u, 16 + 16 * i)));
      writeFileSync(`${f}.gzi`, b);
      return f;
    };
    const past = gzi('gzi-past.fa.gz', [[BigInt(size + 1000), 65280n]]);
    expect(errorOf(() => readAll(past)).message).toMatch(
      /gzi-past\.fa\.gz: its \.gzi index points past the end of the file/,
    );
    const order = gzi('gzi-order.fa.gz', [
      [20000n, 65280n],
      [10000n, 130560n],
    ]);
    expect(errorOf(() => readAll(order)).message).toMatch(
      /gzi-order\.fa\.gz\.gzi: \.gzi index is damaged at entry 1: offsets must increase/,
    );
    const huge = gzi('gzi-huge.fa.gz', [[1n << 62n, 65280n]]);
    expect(errorOf(() => readAll(huge)).message).toMatch(
      /gzi-huge\.fa\.gz\.gzi: \.gzi index is damaged at entry 0: offset \d+ is beyond any file/,
    );
    const count = damaged('gzi-count.fa.gz', () => undefined, false);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(0xffffffffffffffffn, 0);
    writeFileSync(`${count}.gzi`, b);
    expect(errorOf(() => readAll(count)).message).toMatch(
      /gzi-count\.fa\.gz\.gzi: \.gzi index is damaged: it says 18446744073709551615 entries/,
    );
    // an entry inside the file that is not a block start
    const mid = gzi('gzi-mid.fa.gz', [[1000n, 65280n]]);
    expect(errorOf(() => readAll(mid)).message).toMatch(
      /gzi-mid\.fa\.gz: corrupt bgzip block at compressed offset 1000: not a BGZF block header/,
    );
    expect(() => parseGzi(Buffer.alloc(3), 'x.gzi')).toThrow(DnaDataError);
  });

  it('a block cut short (with its .gzi present) is a truncation error', () => {
    const { coff } = idx();
    const f = join(tmp.dir, 'cut.fa.gz');
    const orig = readFileSync(G27);
    const c = coff[coff.length - 1]!;
    // the last data block loses its second half; the EOF marker is kept, so only the block is short
    writeFileSync(f, Buffer.concat([orig.subarray(0, c + 200), orig.subarray(orig.length - 28)]));
    copyFileSync(`${G27}.gzi`, `${f}.gzi`);
    expect(errorOf(() => readAll(f)).message).toMatch(
      new RegExp(`cut\\.fa\\.gz: truncated bgzip block at compressed offset ${c}: it needs \\d+ bytes, 200 remain`),
    );
  });
});

describe('the CLI error mapping', () => {
  it('turns data and file-system errors into one line, keeps bugs (node ERR_* codes) as they are', async () => {
    await expect(
      asUserErrors(() => {
        throw new DnaDataError('x.fa: bad');
      }),
    ).rejects.toBeInstanceOf(UserError);
    const fsErr = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT', path: '/nope' });
    await expect(
      asUserErrors(() => {
        throw fsErr;
      }),
    ).rejects.toThrow(/^\/nope: ENOENT/);
    const bug = Object.assign(new RangeError('The value of "offset" is out of range.'), { code: 'ERR_OUT_OF_RANGE' });
    await expect(
      asUserErrors(() => {
        throw bug;
      }),
    ).rejects.toBe(bug);
  });
  it('prints the stack of an unexpected error with MAMBA_DEBUG, and only the message without', () => {
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const old = process.env.MAMBA_DEBUG;
    try {
      const bug = new RangeError('boom');
      delete process.env.MAMBA_DEBUG;
      expect(exitCodeFor('mamba-dna', bug)).toBe(1);
      expect(spy.mock.calls.map((c) => String(c[0])).join('')).toBe('mamba-dna: error: boom\n');
      spy.mockClear();
      process.env.MAMBA_DEBUG = '1';
      exitCodeFor('mamba-dna', bug);
      expect(spy.mock.calls.map((c) => String(c[0])).join('')).toMatch(/boom\n.*RangeError: boom\n\s+at /s);
    } finally {
      spy.mockRestore();
      if (old === undefined) delete process.env.MAMBA_DEBUG;
      else process.env.MAMBA_DEBUG = old;
    }
  });
});
