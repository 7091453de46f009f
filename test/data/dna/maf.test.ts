// The MAF reader on the real great-apes alignment (maffilter-examples) and on malformed input.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readMafBlocks, splitMafSrc, ungapped, type MafBlock } from '../../../src/data/dna/maf.js';
import { tempDir } from './helpers.js';

const REAL =
  '/usr/share/doc/maffilter/examples/Gorilla/Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz';
const { dir, cleanup } = tempDir('mamba-maf-');
afterAll(cleanup);

async function firstBlocks(path: string, n: number): Promise<MafBlock[]> {
  const out: MafBlock[] = [];
  for await (const b of readMafBlocks(path)) {
    out.push(b);
    if (out.length === n) break;
  }
  return out;
}

async function readAll(text: string, name = 'x.maf'): Promise<MafBlock[]> {
  const p = join(dir, name);
  writeFileSync(p, text);
  const out: MafBlock[] = [];
  for await (const b of readMafBlocks(p)) out.push(b);
  return out;
}

describe.skipIf(!existsSync(REAL))('readMafBlocks on the real great-apes alignment (maffilter-examples)', () => {
  it('reads the first blocks with the fields zcat shows', async () => {
    const [b1, b2, , , b5] = await firstBlocks(REAL, 5);
    // values read with: zcat FILE | head -8
    expect(b1!.rows.map((r) => [r.src, r.species, r.chrom, r.start, r.size, r.strand, r.srcSize])).toEqual([
      ['Hsap.22', 'Hsap', '22', 17443628, 4489, '+', 51304566],
      ['Ptro.22', 'Ptro', '22', 15821905, 4491, '+', 50165558],
      ['Ggor.22', 'Ggor', '22', 844583, 4494, '+', 35759306],
      ['Ppyg.Un', 'Ppyg', 'Un', 0, 4468, '+', 72422247],
    ]);
    expect(b1!.rows[0]!.text.startsWith('CTTGGCGCCCCTGGGAGGCTCTGAGG')).toBe(true);
    expect(b1!.line).toBe(3);
    // block 2: 3,914 alignment columns in every row, soft-masked lowercase kept
    expect(b2!.rows.map((r) => r.text.length)).toEqual([3914, 3914, 3914, 3914]);
    expect(b2!.rows[3]!.text.slice(0, 20)).toBe('ccaatgtccacctgggtttc');
    // block 5: gaps; size counts bases without '-' (Hsap 6 gap columns, Ptro 23)
    expect(b5!.rows[0]!.text.length - ungapped(b5!.rows[0]!).length).toBe(6);
    expect(b5!.rows[1]!.text.length - ungapped(b5!.rows[1]!).length).toBe(23);
    for (const r of b5!.rows) expect(ungapped(r).length).toBe(r.size);
  });
});

describe('readMafBlocks', () => {
  const good = [
    '##maf version=1',
    '# a comment',
    'a score=12.5',
    's hg.chr1.x 10 5 + 100 AC-GTA',
    's pt.chr1 3 4 - 50 A--GTA',
    'i pt.chr1 C 0 C 0',
    'q pt.chr1 9--999',
    '',
    'a',
    's hg.chr1.x 20 3 + 100 ACG',
    'e mm.chr2 0 10 + 90 I',
    's pt.chr1 40 3 + 50 ACG',
  ].join('\n');

  it('parses a, s lines with strand, gaps, dotted names and scores; skips i, e, q lines; ends a block at a blank line or EOF', async () => {
    const bs = await readAll(good);
    expect(bs).toHaveLength(2);
    expect(bs[0]!.score).toBe(12.5);
    expect(bs[1]!.score).toBeUndefined();
    expect(bs[0]!.rows[0]).toMatchObject({
      src: 'hg.chr1.x',
      species: 'hg',
      chrom: 'chr1.x',
      start: 10,
      size: 5,
      strand: '+',
      srcSize: 100,
      text: 'AC-GTA',
    });
    expect(bs[0]!.rows[1]).toMatchObject({ strand: '-', start: 3, size: 4 });
    expect(bs[1]!.rows.map((r) => r.src)).toEqual(['hg.chr1.x', 'pt.chr1']);
    expect(splitMafSrc('nodot')).toEqual({ species: 'nodot', chrom: '' });
  });

  it('streams gzip files the same as plain ones', async () => {
    const p = join(dir, 'g.maf.gz');
    writeFileSync(p, gzipSync(good));
    const out: MafBlock[] = [];
    for await (const b of readMafBlocks(p)) out.push(b);
    expect(out).toEqual(await readAll(good, 'plain.maf'));
  });

  it.each([
    ['a\ns hg.1 0 3 + 10 ACGT\n', /line 2: size is 3 but the text holds 4 bases/],
    ['a\ns hg.1 0 3 x 10 ACG\n', /line 2: strand must be \+ or -, got 'x'/],
    ['a\ns hg.1 -1 3 + 10 ACG\n', /line 2: field start must be a whole number >= 0, got '-1'/],
    ['a\ns hg.1 0 3 + 10\n', /line 2: an 's' line needs 7 fields/],
    ['a\ns hg.1 8 3 + 10 ACG\n', /line 2: start \+ size = 11 is beyond srcSize 10/],
    ['s hg.1 0 3 + 10 ACG\n', /line 1: 's' line outside an alignment block/],
    [
      'a\ns hg.1 0 3 + 10 ACG\ns pt.1 0 2 + 10 AC\n',
      /block at line 1: row pt.1 has 2 alignment columns, the first row has 3/,
    ],
    ['a\nx what\n', /line 2: unknown MAF line type 'x what'/],
    ['a score=high\ns hg.1 0 3 + 10 ACG\n', /line 1: score must be a number, got 'high'/],
    ['a\n\n', /line 1: alignment block has no 's' lines/],
  ])('rejects malformed MAF with the line: %j', async (text, msg) => {
    await expect(readAll(text, 'bad.maf')).rejects.toThrow(msg);
    await expect(readAll(text, 'bad.maf')).rejects.toThrow(/bad\.maf/);
  });

  it('rejects an empty file and a missing one', async () => {
    await expect(readAll('', 'empty.maf')).rejects.toThrow(/empty file/);
    await expect(readAll('x', 'one.maf')).rejects.toThrow(/unknown MAF line type/);
    const none = readMafBlocks(join(dir, 'missing.maf'));
    await expect(none.next()).rejects.toThrow(/no such file/);
  });
});
