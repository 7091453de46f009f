// The pipeline scripts end to end at toy sizes (the real runs are minutes on a CPU, or --full on a GPU):
// they must build their data, drive the CLIs and write results.json, results.md and their plots.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { syntheticApesMaf } from './data/dna/maf-fixture.js';

const root = join(__dirname, '..');
const haveGenomes = existsSync('/usr/share/doc/ragout/examples/H.Pylori/references/SJM180.fasta.gz');
const dir = mkdtempSync(join(tmpdir(), 'mamba-pipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pipeline(name: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'pipelines', `${name}.js`), ...args], { encoding: 'utf8', env: { ...process.env, MAMBA_NUM_THREADS: '1' }, timeout: 600_000 });
  expect(r.status, r.stderr + r.stdout.slice(-2000)).toBe(0);
  return r.stdout;
}

describe.skipIf(!haveGenomes)('pipelines (toy sizes)', () => {
  it('dna-species: a classifier per context length, accuracy on held-out strains', () => {
    const out = join(dir, 'species');
    pipeline('dna-species', ['--lengths', '6', '--steps', '4', '--no-pretrain', '--device', 'cpu', '--out', out]);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(res.rows).toHaveLength(1);
    expect(res.rows[0].test_accuracy).toBeGreaterThanOrEqual(0);
    expect(res.rows[0].test_accuracy).toBeLessThanOrEqual(1);
    expect(res.rows[0].test_examples).toBeGreaterThan(0);
    expect(res.rows[0].confusion).toHaveLength(5);
    expect(res.rows[0].batch * res.rows[0].accum).toBe(8); // the same sequences per step at every length
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/held-out strains/);
  });
});

describe('long-context DNA pipelines (toy sizes, a synthetic alignment)', () => {
  const maf = join(dir, 'apes.maf');
  writeFileSync(maf, syntheticApesMaf(40, 400, 3));
  const out = join(dir, 'longctx');

  it('dna-scaling: held-out bits and a position curve per length; a rerun keeps finished lengths', () => {
    const args = ['--lengths', '6,7', '--steps', '4', '--device', 'cpu', '--out', join(out, 'dna-scaling'), '--maf', maf];
    pipeline('dna-scaling', args);
    const res = JSON.parse(readFileSync(join(out, 'dna-scaling', 'results.json'), 'utf8'));
    expect(res.rows.map((r: { seq_len: number }) => r.seq_len)).toEqual([64, 128]);
    expect(res.tokens_per_step).toBe(1024);
    for (const r of res.rows) {
      expect(r.batch * r.accum * r.seq_len).toBe(1024); // same tokens per step at every L
      expect(r.test_bits).toBeGreaterThan(1);
      expect(r.test_bits).toBeLessThan(4.5);
      expect(r.position_curve.at(-1).to).toBe(r.seq_len);
      expect(r.position_curve[0].from).toBe(1);
    }
    for (const f of ['results.md', 'bits.svg', 'position.svg', 'report.html']) expect(existsSync(join(out, 'dna-scaling', f)), f).toBe(true);
    const again = pipeline('dna-scaling', args);
    expect(again).toMatch(/already trained to step 4, kept/);
    expect(again).not.toMatch(/position-eval\.js/);
  });

  it('great-apes: a 4-way classifier per length from the pretrained model, accuracy with a Wilson interval', () => {
    pipeline('great-apes', ['--lengths', '6', '--steps', '3', '--device', 'cpu', '--out', join(out, 'great-apes')]);
    const res = JSON.parse(readFileSync(join(out, 'great-apes', 'results.json'), 'utf8'));
    expect(res.rows).toHaveLength(1);
    const r = res.rows[0];
    expect(r.batch * r.accum).toBe(4);
    expect(r.test_windows).toBe(4 * 256);
    expect(r.test_correct).toBe(Math.round(r.test_accuracy * r.test_windows));
    expect(r.ci[0]).toBeLessThanOrEqual(r.test_accuracy);
    expect(r.ci[1]).toBeGreaterThanOrEqual(r.test_accuracy);
    expect(r.confusion).toHaveLength(4);
    expect(res.pretrain).toMatch(/human next-token model/);
    expect(existsSync(join(out, 'great-apes', 'accuracy.svg'))).toBe(true);
  });
});
