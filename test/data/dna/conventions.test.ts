// FASTA conventions as samtools has them: an empty record followed by another is left out of the .fai
// (and regions of the other records read as samtools prints them), a NUL byte in a header ends the name,
// the ragged-lines error names the short line. Compared with samtools where it is installed; the same
// checks run against literals (what samtools 1.16 writes) without it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BgzfWriter,
  DnaDataError,
  FaiBuilder,
  IndexedFasta,
  indexFasta,
  streamFasta,
} from '../../../src/data/dna/index.js';
import { formatFastaRecord, parseRegion } from '../../../src/data/dna/regions.js';
import { hasSamtools, tempDir, writeText } from './helpers.js';

const BIN = join(__dirname, '../../../bin/mamba-dna.js');
let tmp: ReturnType<typeof tempDir>;
beforeAll(() => (tmp = tempDir('mamba-conv-')));
afterAll(() => tmp?.cleanup());

/** Cases: FASTA text, the .fai samtools faidx writes, and regions with what samtools prints for them. */
const CASES: { name: string; text: string; fai: string; regions: [string, string][] }[] = [
  {
    name: 'empty-middle.fa',
    text: '>a\nACGT\n>b\n>c\nAC\n',
    fai: 'a\t4\t3\t4\t5\nc\t2\t14\t2\t3\n',
    regions: [
      ['a', '>a\nACGT\n'],
      ['c:2-2', '>c:2-2\nC\n'],
    ],
  },
  {
    name: 'empty-blank.fa',
    text: '>a\nACGT\n>b\n\n>c\nAC\n',
    fai: 'a\t4\t3\t4\t5\nc\t2\t15\t2\t3\n',
    regions: [['c', '>c\nAC\n']],
  },
  {
    name: 'empty-first.fa',
    text: '>b desc\n>a\nACGT\n',
    fai: 'a\t4\t11\t4\t5\n',
    regions: [['a:1-3', '>a:1-3\nACG\n']],
  },
  {
    // the empty record's name may be used again by a later record: only indexed names must be unique
    name: 'empty-reused.fa',
    text: '>b\n>b\nAC\n',
    fai: 'b\t2\t6\t2\t3\n',
    regions: [['b', '>b\nAC\n']],
  },
  {
    name: 'nul-header.fa',
    text: '>x\0yz desc\nACGT\n>q\nGG\n',
    fai: 'x\t4\t11\t4\t5\nq\t2\t19\t2\t3\n',
    regions: [
      ['x', '>x\nACGT\n'],
      ['q:1-1', '>q:1-1\nG\n'],
    ],
  },
  {
    name: 'nul-end.fa',
    text: '>x\0\nAC\n',
    fai: 'x\t2\t4\t2\t3\n',
    regions: [['x', '>x\nAC\n']],
  },
];

function ours(f: string, region: string): string {
  const r = spawnSync(process.execPath, [BIN, 'region', f, region], { encoding: 'latin1' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

describe('FASTA conventions as samtools', () => {
  for (const c of CASES) {
    it(`${c.name}: .fai and regions`, () => {
      const f = writeText(join(tmp.dir, c.name), c.text);
      const { records } = indexFasta(f);
      expect(readFileSync(`${f}.fai`, 'latin1')).toBe(c.fai);
      const fa = IndexedFasta.open(f);
      for (const [region, want] of c.regions) {
        const r = parseRegion(region, fa);
        expect(formatFastaRecord(r.label, fa.bases(r.name, r.start, r.end))).toBe(want);
      }
      fa.close();
      // the CLI once per case (each run costs a node start)
      expect(ours(f, c.regions[0]![0])).toBe(c.regions[0]![1]);
      // the same index from the bgzip copy
      const w = new BgzfWriter();
      w.write(Buffer.from(c.text, 'latin1'));
      const g = writeText(join(tmp.dir, `${c.name}.gz`), w.finish().data);
      expect(indexFasta(g).records).toEqual(records);
      if (hasSamtools) {
        const s = join(tmp.dir, `sam-${c.name}`);
        writeText(s, c.text);
        expect(spawnSync('samtools', ['faidx', s]).status).toBe(0);
        expect(readFileSync(`${s}.fai`, 'latin1')).toBe(c.fai);
        for (const [region, want] of c.regions)
          expect(spawnSync('samtools', ['faidx', s, region], { encoding: 'latin1' }).stdout).toBe(want);
      }
    });
  }

  it('the builder lists the empty records it left out; streaming skips them too', async () => {
    const b = new FaiBuilder('x.fa');
    b.push(Buffer.from('>a\nAC\n>e1\n>e2 d\n\n>c\nG\n'));
    expect(b.finish().map((r) => r.name)).toEqual(['a', 'c']);
    expect(b.skipped).toEqual([
      { name: 'e1', line: 3 },
      { name: 'e2', line: 4 },
    ]);
    expect(b.headers).toEqual([
      { name: 'a', description: '' },
      { name: 'c', description: '' },
    ]);
    const f = writeText(join(tmp.dir, 'stream.fa'), '>a\nAC\n>e\n>c\nG\n');
    const got: string[] = [];
    for await (const r of streamFasta(f)) got.push(`${r.name}=${r.bases.toString()}`);
    expect(got).toEqual(['a=AC', 'c=G']);
  });

  it('a trailing empty record fails, as in samtools', () => {
    const f = writeText(join(tmp.dir, 'trail.fa'), '>a\nACGT\n>b\n');
    expect(() => indexFasta(f)).toThrow(DnaDataError);
    expect(() => indexFasta(f)).toThrow(/trail\.fa: line 3: the last record 'b' is empty/);
    if (hasSamtools) expect(spawnSync('samtools', ['faidx', f]).status).not.toBe(0);
  });

  it('the ragged-lines error names the short line and the line after it', () => {
    // line numbers count every line, headers included; the short line is line 5
    const text = '>a\nACGT\n>b\nACGTACGT\nACG\nACGTACGT\n';
    const f = writeText(join(tmp.dir, 'ragged.fa'), text);
    expect(() => indexFasta(f)).toThrow(
      /ragged\.fa: line 5: record 'b' has a line of 3 bases, shorter than its first line \(8 bases\), that is not its last line \(line 6 follows with 8 bases\)/,
    );
    const g = writeText(join(tmp.dir, 'longer.fa'), '>a\nACGT\n>b\nACG\nACGTA\n');
    expect(() => indexFasta(g)).toThrow(
      /longer\.fa: line 5: record 'b' has lines of different lengths \(3 bases per line from line 4, then 5 here\)/,
    );
    // the line number survives chunk boundaries (bgzip blocks split lines)
    const big = '>a\n' + 'ACGTACGTAC\n'.repeat(20000) + 'ACG\n' + 'ACGTACGTAC\n';
    const w = new BgzfWriter();
    w.write(Buffer.from(big));
    const h = writeText(join(tmp.dir, 'ragged-big.fa.gz'), w.finish().data);
    expect(() => indexFasta(h)).toThrow(
      /ragged-big\.fa\.gz: line 20002: record 'a' has a line of 3 bases.*\(line 20003 follows/,
    );
    if (hasSamtools) {
      // samtools reports the line after the short one ("unexpected ... at line 6"); it refuses the file as we do
      const r = spawnSync('samtools', ['faidx', f], { encoding: 'latin1' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/line 6/);
    }
  });

  it('formatFastaRecord wraps as samtools does', () => {
    expect(formatFastaRecord('r', Buffer.from('ACGTACG'), 3)).toBe('>r\nACG\nTAC\nG\n');
  });
});
