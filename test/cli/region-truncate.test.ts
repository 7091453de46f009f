// `region` past the end of a record does what samtools faidx does: the bases up to the end, a warning on
// stderr in samtools' words, exit 0; a start past the end gives an empty record and its own warning.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasBgzip, hasSamtools } from '../data/dna/helpers.js';
import { cli, requireDist } from './run-cli.js';

let dir: string, fa: string, gz: string;
beforeAll(() => {
  requireDist();
  dir = mkdtempSync(join(tmpdir(), 'mamba-region-'));
  fa = join(dir, 'g.fa');
  writeFileSync(fa, '>c1 a description\nACGTACGTAC\nGTACG\n>c2\nAAAA\n');
  gz = join(dir, 'g.fa.gz');
  if (hasBgzip) spawnSync('sh', ['-c', `bgzip -c ${fa} > ${gz}`]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REGIONS = ['c1:10-30', 'c1:14-100', 'c1:16-20', 'c1:30', 'c1:15-15', 'c2:3-8', 'c1:1-3'];

// what samtools 1.16 prints for each region (stdout, stderr), checked against samtools itself below
const EXPECTED: Record<string, [string, string]> = {
  'c1:10-30': ['>c1:10-30\nCGTACG\n', '[faidx] Truncated sequence: c1:10-30\n'],
  'c1:14-100': ['>c1:14-100\nCG\n', '[faidx] Truncated sequence: c1:14-100\n'],
  'c1:16-20': ['>c1:16-20\n', '[faidx] Zero length sequence: c1:16-20\n'],
  'c1:30': ['>c1:30\n', '[faidx] Zero length sequence: c1:30\n'],
  'c1:15-15': ['>c1:15-15\nG\n', ''],
  'c2:3-8': ['>c2:3-8\nAA\n', '[faidx] Truncated sequence: c2:3-8\n'],
  'c1:1-3': ['>c1:1-3\nACG\n', ''],
};

describe('region past the end of a record', () => {
  it('matches the expected samtools output, one region at a time and all together', () => {
    for (const r of REGIONS) {
      const got = cli('dna', ['region', fa, r]);
      expect(got.code, r).toBe(0);
      expect([got.out, got.err], r).toEqual(EXPECTED[r]);
    }
    const all = cli('dna', ['region', fa, ...REGIONS]);
    expect(all.out).toBe(REGIONS.map((r) => EXPECTED[r]![0]).join(''));
    expect(all.err).toBe(REGIONS.map((r) => EXPECTED[r]![1]).join(''));
  });

  it.skipIf(!hasSamtools || !hasBgzip)(
    'is byte-identical to samtools faidx, stdout and stderr, plain and bgzip (needs samtools, bgzip)',
    () => {
      for (const file of [fa, gz]) {
        const st = spawnSync('samtools', ['faidx', file, ...REGIONS], { encoding: 'latin1' });
        const ours = cli('dna', ['region', file, ...REGIONS]);
        expect(ours.code).toBe(st.status);
        expect(ours.out, `${file} stdout`).toBe(st.stdout);
        expect(ours.err, `${file} stderr`).toBe(st.stderr);
      }
    },
  );

  it('tokenize stays exact: a region past the end is an error there', () => {
    const r = cli('dna', ['tokenize', fa, 'c1:10-30']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/region 'c1:10-30' is outside record 'c1' \(length 15\)/);
  });
});
