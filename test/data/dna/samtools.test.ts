// Our FASTA access against samtools on a real genome and a synthetic multi-record file: identical .fai,
// identical .gzi (bgzip -r), identical `faidx` output for hundreds of seeded random regions. Where samtools or
// bgzip is missing, their recorded outputs for the same inputs are replayed (test/tools.ts).
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BgzfWriter,
  DEFAULT_DNA_DATA,
  IndexedFasta,
  formatFastaRecord,
  indexFasta,
  parseBed,
  parseRegion,
  streamFasta,
} from '../../../src/data/dna/index.js';
import { rng } from '../../helpers.js';
import { expectSameAsTool, needs } from '../../tools.js';
import { bgzip, g27Bytes, samtools, syntheticFasta, tempDir, writeText } from './helpers.js';

const ragout = needs('ragout-examples');

/** n seeded random samtools regions over the records (mix of chr:s-e, chr:s, comma'd, whole). */
function randomRegions(records: { name: string; length: number }[], n: number, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const rec = records[Math.floor(r() * records.length)]!;
    const a = 1 + Math.floor(r() * rec.length);
    const maxLen = r() < 0.2 ? rec.length : 500;
    const b = Math.min(rec.length, a + Math.floor(r() * maxLen));
    const kind = r();
    if (kind < 0.05) out.push(rec.name);
    else if (kind < 0.1 && rec.length - a < 5000) out.push(`${rec.name}:${a}`);
    else if (kind < 0.2) out.push(`${rec.name}:${a.toLocaleString('en-US')}-${b.toLocaleString('en-US')}`);
    else out.push(`${rec.name}:${a}-${b}`);
  }
  return out;
}

function ours(fa: IndexedFasta, regions: string[]): string {
  return regions
    .map((t) => {
      const g = parseRegion(t, fa);
      return formatFastaRecord(g.label, fa.bases(g.name, g.start, g.end));
    })
    .join('');
}

describe('FASTA access matches samtools', () => {
  let tmp: ReturnType<typeof tempDir>;
  let plain: string, bgz: string, ourBgz: string, synth: string, synthGz: string;

  beforeAll(() => {
    tmp = tempDir();
    plain = writeText(join(tmp.dir, 'g27.fa'), g27Bytes());
    bgz = join(tmp.dir, 'g27.bgzip.fa.gz');
    bgzip(['-c', plain], { stdoutTo: bgz });
    // our BGZF writer on the same bytes
    const w = new BgzfWriter();
    w.write(readFileSync(plain));
    ourBgz = writeText(join(tmp.dir, 'g27.ours.fa.gz'), w.finish().data);
    synth = writeText(join(tmp.dir, 'synth.fa'), syntheticFasta(11).text);
    synthGz = join(tmp.dir, 'synth.fa.gz');
    bgzip(['-c', synth], { stdoutTo: synthGz });
  });
  afterAll(() => tmp?.cleanup());

  it('writes .fai files byte-identical to samtools faidx (plain, bgzip, CR LF, several line widths)', () => {
    for (const f of [plain, bgz, ourBgz, synth, synthGz]) {
      samtools(['faidx', f, '--fai-idx', `${f}.sam.fai`], { outputs: [`${f}.sam.fai`] });
      const r = indexFasta(f);
      expect(readFileSync(r.faiPath, 'latin1')).toBe(readFileSync(`${f}.sam.fai`, 'latin1'));
    }
  });

  it("writes .gzi files byte-identical to bgzip -r, for bgzip's files and our own", () => {
    for (const f of [bgz, ourBgz, synthGz]) {
      const r = indexFasta(f);
      const mine = readFileSync(r.gziPath!);
      rmSync(`${f}.gzi`);
      bgzip(['-r', f], { outputs: [`${f}.gzi`] });
      expect(mine.equals(readFileSync(`${f}.gzi`))).toBe(true);
    }
  });

  it('prints 300 random regions of the real genome exactly as samtools faidx (plain and bgzip)', () => {
    const fa = IndexedFasta.open(plain);
    const regions = randomRegions(fa.records as { name: string; length: number }[], 300, 1);
    expectSameAsTool(ours(fa, regions), 'samtools', ['faidx', plain, ...regions]);
    fa.close();
    for (const f of [bgz, ourBgz]) {
      const g = IndexedFasta.open(f);
      expect(g.compression).toBe('bgzf');
      expectSameAsTool(ours(g, regions), 'samtools', ['faidx', plain, ...regions]);
      g.close();
    }
  });

  it('prints 300 random regions of a multi-record CR LF / soft-masked file exactly as samtools', () => {
    for (const f of [synth, synthGz]) {
      const fa = IndexedFasta.open(f);
      const regions = randomRegions(fa.records as { name: string; length: number }[], 300, 2);
      expectSameAsTool(ours(fa, regions), 'samtools', ['faidx', f, ...regions]);
      fa.close();
    }
  });

  it('reads BED intervals as samtools reads the same 1-based regions', () => {
    const fa = IndexedFasta.open(synth);
    const bed = '# comment\ntrack name=x\nchr1\t0\t10\nchr2\t100\t333\tpeak\ncontig:3\t1233\t1234\n';
    const regs = parseBed(bed, 'x.bed', fa);
    const got = regs.map((g) => formatFastaRecord(g.label, fa.bases(g.name, g.start, g.end))).join('');
    expect(got).toBe(samtools(['faidx', synth, 'chr1:1-10', 'chr2:101-333', 'contig:3:1234-1234']));
    fa.close();
  });

  it('the mamba-dna region command prints what samtools prints', () => {
    const regions = randomRegions(
      [
        { name: 'chr1', length: 5000 },
        { name: 'chr2', length: 4000 },
      ],
      40,
      3,
    );
    const cli = execFileSync(
      process.execPath,
      [join(__dirname, '../../../bin/mamba-dna.js'), 'region', synthGz, ...regions],
      { encoding: 'latin1' },
    );
    expect(cli).toBe(samtools(['faidx', synthGz, ...regions]));
  });

  it('streams records with the same bases samtools returns (plain, bgzip, gzip)', async () => {
    const { records } = syntheticFasta(11);
    const gz = join(tmp.dir, 'synth.plain.fa.gz');
    writeText(gz, gzipSync(readFileSync(synth))); // plain gzip, not BGZF
    for (const f of [synth, synthGz, gz]) {
      const got = [];
      for await (const r of streamFasta(f)) got.push({ name: r.name, seq: r.bases.toString('latin1') });
      expect(got).toEqual(records);
    }
  });

  it.skipIf(ragout.skip)(
    ragout.title('the shipped default genome is the ragout G27 genome and samtools reads it'),
    () => {
      copyFileSync(DEFAULT_DNA_DATA, join(tmp.dir, 'shipped.fa.gz'));
      const f = join(tmp.dir, 'shipped.fa.gz');
      samtools(['faidx', f], { outputs: [`${f}.fai`, `${f}.gzi`] }); // samtools builds its own .fai + .gzi
      expect(readFileSync(`${f}.fai`, 'latin1')).toBe(readFileSync(`${DEFAULT_DNA_DATA}.fai`, 'latin1'));
      expect(readFileSync(`${f}.gzi`).equals(readFileSync(`${DEFAULT_DNA_DATA}.gzi`))).toBe(true);
      const fa = IndexedFasta.open(DEFAULT_DNA_DATA);
      const rec = fa.records[0]!;
      expect(rec.length).toBe(1652982);
      const regs = randomRegions([rec], 50, 4);
      expectSameAsTool(ours(fa, regs), 'samtools', ['faidx', plain, ...regs]);
      fa.close();
    },
  );
});
