// The great-apes recipe from a tiny alignment written here: per species and split one bgzip FASTA with
// .fai and .gzi, contiguous splits in human order, and a manifest the classifier and the LM can open.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDataset, GREAT_APES_SPLIT } from '../../../src/data/dna/datasets.js';
import { openGenomeSet } from '../../../src/data/dna/genome-set.js';
import { readMafBlocks, ungapped } from '../../../src/data/dna/maf.js';
import { APES, syntheticApesMaf } from './maf-fixture.js';
import { tempDir } from './helpers.js';
import { needs } from '../../tools.js';

const samtoolsNeeded = needs('samtools');

const { dir, cleanup } = tempDir('mamba-apes-');
afterAll(cleanup);

describe('dataset build great-apes', () => {
  const maf = join(dir, 'apes.maf');
  writeFileSync(maf, syntheticApesMaf(40, 300, 7));

  it('writes one FASTA per species and split whose bases are the rows of contiguous block runs, in human order', async () => {
    const out = join(dir, 'set');
    const r = await buildDataset('great-apes', out, { maf });
    expect(r.genomes).toBe(12);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.classes).toEqual(['Homo sapiens', 'Pan troglodytes', 'Gorilla gorilla', 'Pongo pygmaeus']);
    expect(m.split.fractions).toEqual(GREAT_APES_SPLIT);
    const nValid = Math.round(40 * GREAT_APES_SPLIT.valid),
      nTest = Math.round(40 * GREAT_APES_SPLIT.test);
    expect(m.split.blocks).toEqual({ train: 40 - nValid - nTest, valid: nValid, test: nTest });
    const blocks = [];
    for await (const b of readMafBlocks(maf)) blocks.push(b);
    const ranges = {
      train: [0, 40 - nValid - nTest],
      valid: [40 - nValid - nTest, 40 - nTest],
      test: [40 - nTest, 40],
    } as const;
    for (const s of m.sources) {
      const k = APES.indexOf(s.species);
      const [a, b] = ranges[s.split as keyof typeof ranges];
      const expected = blocks
        .slice(a, b)
        .map((x) => ungapped(x.rows[k]!))
        .join('');
      const fa = gunzipSync(readFileSync(join(out, s.path))).toString('latin1');
      const [header, ...lines] = fa.trim().split('\n');
      expect(header).toMatch(new RegExp(`^>${s.species}_${s.split} `));
      expect(lines.join('')).toBe(expected);
      expect(s.bases).toBe(expected.length);
      for (const ext of ['.fai', '.gzi']) expect(existsSync(join(out, s.path + ext)), s.path + ext).toBe(true);
    }
    // human regions: train ends before valid starts, valid before test (no shared human base)
    const h = m.split.human_regions as Record<string, string>;
    const span = (x: string) => x.split(':')[1]!.split('-').map(Number);
    expect(span(h.train!)[1]!).toBeLessThan(span(h.valid!)[0]!);
    expect(span(h.valid!)[1]!).toBeLessThan(span(h.test!)[0]!);
    // the classifier opens it: 4 classes, one source per class and split
    const test = openGenomeSet(join(out, 'manifest.json'), 'test');
    expect(test.classes).toHaveLength(4);
    expect(test.sources).toHaveLength(4);
    test.close();
  });

  it.skipIf(samtoolsNeeded.skip)(
    samtoolsNeeded.title('writes FASTA that samtools faidx reads identically'),
    async () => {
      const out = join(dir, 'set');
      const p = join(out, 'ptro', 'test.fa.gz');
      const viaSamtools = execFileSync('samtools', ['faidx', p, 'Ptro_test:101-220'], { encoding: 'latin1' });
      const all = gunzipSync(readFileSync(p)).toString('latin1').trim().split('\n').slice(1).join('');
      expect(viaSamtools.split('\n').slice(1).join('')).toBe(all.slice(100, 220));
    },
  );

  it('refuses a non-empty folder without force, a missing MAF, and too few blocks, naming the file', async () => {
    await expect(buildDataset('great-apes', join(dir, 'set'), { maf })).rejects.toThrow(/not empty.*--force/);
    await expect(buildDataset('great-apes', join(dir, 'x'), { maf: join(dir, 'none.maf') })).rejects.toThrow(
      /none\.maf: no such file/,
    );
    const two = join(dir, 'two.maf');
    writeFileSync(two, syntheticApesMaf(2, 50));
    await expect(buildDataset('great-apes', join(dir, 'y'), { maf: two })).rejects.toThrow(
      /2 alignment block\(s\).*at least 3/,
    );
    expect(existsSync(join(dir, 'y'))).toBe(false);
  });
});

describe('mamba-dna dataset build great-apes (CLI)', () => {
  const bin = join(__dirname, '..', '..', '..', 'bin', 'mamba-dna.js');
  const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

  it('builds from --maf, lists the recipe, and refuses --maf for other recipes in one line', () => {
    const maf = join(dir, 'cli.maf');
    writeFileSync(maf, syntheticApesMaf(12, 80, 2));
    const ok = run(['dataset', 'build', 'great-apes', '--out', join(dir, 'cli-set'), '--maf', maf]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/12 alignment blocks read.*split 9 \/ 1 \/ 2 blocks/);
    expect(existsSync(join(dir, 'cli-set', 'hsap', 'test.fa.gz.fai'))).toBe(true);
    expect(run(['dataset', 'list']).stdout).toMatch(/^great-apes\t.*maffilter-examples/m);
    const bad = run(['dataset', 'build', 'species', '--out', join(dir, 'no'), '--maf', maf]);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--maf is for the great-apes recipe, not species/);
  });
});
