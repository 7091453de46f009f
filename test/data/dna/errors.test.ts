// Bad input: each case gives one clear error naming the file and the line or byte offset, and leaves
// nothing half-written (no .fai for a file that failed to index).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BgzfWriter,
  DnaDataError,
  IndexedFasta,
  indexFasta,
  openDnaSource,
  parseRegion,
  streamFasta,
} from '../../../src/data/dna/index.js';
import { tempDir, writeText } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => (tmp = tempDir()));
afterAll(() => tmp?.cleanup());

function fasta(name: string, text: string | Uint8Array): string {
  return writeText(join(tmp.dir, name), text);
}

function indexError(name: string, text: string): string {
  const f = fasta(name, text);
  let msg = '';
  try {
    IndexedFasta.open(f);
  } catch (e) {
    expect(e).toBeInstanceOf(DnaDataError);
    msg = (e as Error).message;
  }
  expect(msg).not.toBe('');
  expect(msg).not.toContain('\n');
  expect(existsSync(`${f}.fai`)).toBe(false); // nothing half-written
  return msg;
}

describe('bad FASTA input gives a clear one-line error', () => {
  it('no header line', () => {
    expect(indexError('nohdr.fa', 'ACGT\n>a\nAC\n')).toMatch(
      /nohdr\.fa: line 1 \(byte offset 0\): no FASTA header line/,
    );
  });
  it('a trailing empty record (samtools refuses it too)', () => {
    expect(indexError('empty2.fa', '>a\nACGT\n>b\n')).toMatch(/empty2\.fa: line 3: the last record 'b' is empty/);
    expect(indexError('empty3.fa', '>a\nACGT\n>b\n>c\n')).toMatch(/line 4: the last record 'c' is empty/);
  });
  it('duplicate names', () => {
    expect(indexError('dup.fa', '>a x\nACGT\n>a y\nAC\n')).toMatch(/dup\.fa: line 3: duplicate record name 'a'/);
  });
  it('inconsistent line lengths say why random access is impossible', () => {
    expect(indexError('ragged.fa', '>a\nACGT\nAC\nACGT\n')).toMatch(
      /ragged\.fa: line 3: record 'a' has a line of 2 bases, shorter than its first line \(4 bases\), that is not its last line \(line 4 follows with 4 bases\).*random access/,
    );
    expect(indexError('longer.fa', '>a\nACGT\nACGTA\n')).toMatch(/line 3: record 'a' has lines of different lengths/);
  });
  it('blank line inside a record and whitespace in sequence', () => {
    expect(indexError('blank.fa', '>a\nACGT\n\nAC\n')).toMatch(/blank\.fa: line 3: blank line inside record 'a'/);
    expect(indexError('space.fa', '>a\nAC GT\n')).toMatch(/space\.fa: line 2 \(byte offset 5\): whitespace/);
  });
  it('no records at all', () => {
    expect(indexError('none.fa', '\n\n')).toMatch(/none\.fa: no FASTA records/);
  });
  it('CR LF line ends are read correctly', () => {
    const f = fasta('crlf.fa', '>a desc\r\nACGT\r\nAC\r\n>b\r\nGG\r\n');
    const fa = IndexedFasta.open(f);
    expect(readFileSync(`${f}.fai`, 'latin1')).toBe('a\t6\t9\t4\t6\nb\t2\t23\t2\t4\n');
    expect(fa.bases('a', 0, 6).toString()).toBe('ACGTAC');
    expect(fa.bases('a', 3, 5).toString()).toBe('TA');
    fa.close();
  });
  it('a byte that is not a base is named with its byte offset', () => {
    const f = fasta('badbase.fa', '>a\nACGT\nAXGT\n');
    const fa = IndexedFasta.open(f);
    expect(() => fa.tokens('a', 0, 8)).toThrow(/badbase\.fa: record 'a': byte 'X' at byte offset 9 is not a DNA base/);
    fa.close();
  });
  it('a .fai that does not match its FASTA', () => {
    const f = fasta('stale.fa', '>a\nACGTACGT\nACGT\n');
    writeFileSync(`${f}.fai`, 'a\t12\t3\t4\t5\n'); // written for a different wrapping
    expect(() => IndexedFasta.open(f)).toThrow(/stale\.fa\.fai: does not match .*stale\.fa.*re-index/);
    writeFileSync(`${f}.fai`, 'a\t400\t3\t8\t9\n');
    expect(() => IndexedFasta.open(f)).toThrow(/past the end of the file/);
    writeFileSync(`${f}.fai`, 'a\tx\t3\t8\t9\n');
    expect(() => IndexedFasta.open(f)).toThrow(/stale\.fa\.fai: line 1 is not a valid \.fai line/);
  });
  it('a truncated bgzip file', () => {
    const w = new BgzfWriter();
    let s = '>a\n';
    for (let i = 0; i < 3000; i++) s += 'ACGTTGCAAGGCTTAACGTAGCTAGCTAGGATCGATCGATCGTAGCTAGCTAGCTAGCTAGCTAGCTAGCATCG\n';
    w.write(Buffer.from(s));
    const data = w.finish().data;
    const f = fasta('trunc.fa.gz', data.subarray(0, Math.floor(data.length * 0.7)));
    expect(() => IndexedFasta.open(f)).toThrow(/trunc\.fa\.gz: truncated bgzip file.*compressed offset/);
    expect(existsSync(`${f}.gzi`)).toBe(false);
    expect(existsSync(`${f}.fai`)).toBe(false);
    const g = fasta('noeof.fa.gz', data.subarray(0, data.length - 28));
    expect(() => IndexedFasta.open(g)).toThrow(
      /noeof\.fa\.gz: truncated bgzip file: the BGZF end-of-file block is missing/,
    );
  });
  it('a plain gzip file: a clear error for random access, streamed where that is not needed', async () => {
    const f = fasta('plain.fa.gz', gzipSync('>a\nACGT\nAC\n'));
    expect(() => openDnaSource(f)).toThrow(/plain\.fa\.gz: is gzip-compressed but not bgzip.*bgzip/);
    expect(() => indexFasta(f)).toThrow(/not bgzip/);
    const recs = [];
    for await (const r of streamFasta(f)) recs.push(`${r.name}=${r.bases.toString()}`);
    expect(recs).toEqual(['a=ACGTAC']);
  });
  it('streaming reports the same errors', async () => {
    const f = fasta('dup-stream.fa', '>a\nAC\n>a\nAC\n');
    await expect(async () => {
      for await (const _ of streamFasta(f)) void _;
    }).rejects.toThrow(/dup-stream\.fa: line 3: duplicate record name 'a'/);
  });
  it('regions outside a record or naming an unknown record', () => {
    const f = fasta('reg.fa', '>chr1\nACGTACGT\nAC\n>chr:2\nGG\n');
    const fa = IndexedFasta.open(f);
    expect(parseRegion('chr1:2-5', fa)).toMatchObject({ name: 'chr1', start: 1, end: 5 });
    expect(parseRegion('chr1:1,0', fa)).toMatchObject({ start: 9, end: 10 });
    expect(parseRegion('chr:2', fa)).toMatchObject({ name: 'chr:2', start: 0, end: 2 }); // a whole name wins
    expect(parseRegion('chr:2:2-2', fa)).toMatchObject({ name: 'chr:2', start: 1, end: 2 });
    expect(() => parseRegion('chr1:5-11', fa)).toThrow(
      /reg\.fa: region 'chr1:5-11' is outside record 'chr1' \(length 10\)/,
    );
    expect(() => parseRegion('chr1:11', fa)).toThrow(/outside record/);
    expect(() => parseRegion('chr1:0-3', fa)).toThrow(/1-based/);
    expect(() => parseRegion('chr1:5-3', fa)).toThrow(/before start/);
    expect(() => parseRegion('chrX:1-3', fa)).toThrow(/reg\.fa: unknown record name 'chrX'/);
    expect(() => parseRegion('chrX', fa)).toThrow(/no record named 'chrX'/);
    expect(() => fa.tokens('chr1', 5, 11)).toThrow(/outside record 'chr1' of length 10/);
    fa.close();
  });
  it('the CLI prints one line and exits 1, writing no output file', () => {
    const f = fasta('cli.fa', '>a\nACGT\n');
    const bin = join(__dirname, '../../../bin/mamba-dna.js');
    const out = join(tmp.dir, 'cli.tok');
    let stderr = '',
      status = 0;
    try {
      execFileSync(process.execPath, [bin, 'tokenize', f, 'a:2-9', '-o', out], { stdio: 'pipe' });
    } catch (e) {
      const err = e as { status: number; stderr: Buffer };
      status = err.status;
      stderr = err.stderr.toString();
    }
    expect(status).toBe(1);
    expect(stderr).toMatch(/^mamba-dna: error: .*cli\.fa: region 'a:2-9' is outside record 'a' \(length 4\)\n$/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    execFileSync(process.execPath, [bin, 'tokenize', f, 'a:2-3', '-o', out], { stdio: 'pipe' });
    expect(Array.from(readFileSync(out))).toEqual([5, 6]);
  });
});
