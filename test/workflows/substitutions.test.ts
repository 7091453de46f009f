// pipelines/substitutions.js end to end at toy size on the CPU: the VCFs it writes agree with the human
// FASTA it builds and with the alignment's rules, and it reports an AUROC. Skipped until the MAF reader
// (src/data/dna/maf.ts, another branch) is merged, and where maffilter-examples is not installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IndexedFasta } from '../../src/data/dna/index.js';
import { root } from './helpers.js';

const MAF =
  '/usr/share/doc/maffilter/examples/Gorilla/Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz';
const haveReader = existsSync(join(root, 'src', 'data', 'dna', 'maf.ts'));
const haveMaf = existsSync(MAF);
if (!haveReader)
  console.log('skipping pipelines/substitutions.js: src/data/dna/maf.ts (the MAF reader) is not in this tree yet');
else if (!haveMaf) console.log('skipping pipelines/substitutions.js: needs the Debian package maffilter-examples');

const dir = mkdtempSync(join(tmpdir(), 'mamba-subs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!haveReader || !haveMaf)('pipelines/substitutions.js (toy size)', () => {
  it('writes real and random VCFs against the human FASTA and reports the AUROC', () => {
    const out = join(dir, 'subs');
    const r = spawnSync(
      process.execPath,
      [
        join(root, 'pipelines', 'substitutions.js'),
        '--out',
        out,
        '--max-blocks',
        '300',
        '--max-sites',
        '100',
        '--steps',
        '10',
        '--context',
        '256',
        '--device',
        'cpu',
        '--spans',
        'all,4',
      ],
      { encoding: 'utf8', env: { ...process.env, MAMBA_NUM_THREADS: '1' }, timeout: 600_000 },
    );
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    const row = res.rows[0];
    // one model row per --spans entry, then the Markov reference rows (orders 6 and 10 by default)
    expect(res.rows.map((x: { scorer: string; span: number }) => `${x.scorer} ${x.span}`)).toEqual([
      'model 128',
      'model 4',
      'Markov order 6 6',
      'Markov order 10 10',
    ]);
    expect(res.rows[1].auroc).not.toBe(row.auroc);
    for (const m of res.rows.slice(2)) expect(m.auroc).toBeGreaterThan(0.3);
    expect(row.sites).toBe(100);
    expect(row.auroc).toBeGreaterThanOrEqual(0);
    expect(row.auroc).toBeLessThanOrEqual(1);
    const recs = (f: string) =>
      readFileSync(join(out, f), 'utf8')
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .map((l) => l.split('\t'));
    const real = recs('real.vcf'),
      rand = recs('random.vcf');
    expect(real.length).toBe(100);
    const fa = IndexedFasta.open(join(out, 'hsap.fa'));
    try {
      real.forEach((f, i) => {
        const g = rand[i]!;
        expect(g[1]).toBe(f[1]);
        const base = fa
          .bases(f[0]!, Number(f[1]) - 1, Number(f[1]))
          .toString('latin1')
          .toUpperCase();
        expect(f[3]).toBe(base); // REF is the human base at POS (1-based)
        expect(f[4]).not.toBe(f[3]);
        expect(f[7]).toBe(`CHIMP=${f[4]}`);
        expect([f[3], f[4]]).not.toContain(g[4]);
      });
    } finally {
      fa.close();
    }
  }, 600_000);
});
