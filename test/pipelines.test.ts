// The pipeline scripts end to end at toy sizes (the real runs are minutes on a CPU, or --full on a GPU):
// they must build their data, drive the CLIs and write results.json, results.md and their plots.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { needs } from './tools.js';

const root = join(__dirname, '..');
// the DNA pipelines build their genome sets from Debian's example data (xz unpacks some of it)
const genomes = needs('ragout-examples', 'kleborate-examples', 'xz');
const dir = mkdtempSync(join(tmpdir(), 'mamba-pipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pipeline(name: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'pipelines', `${name}.js`), ...args], { encoding: 'utf8', env: { ...process.env, MAMBA_NUM_THREADS: '1' }, timeout: 600_000 });
  expect(r.status, r.stderr + r.stdout.slice(-2000)).toBe(0);
  return r.stdout;
}

describe.skipIf(genomes.skip)(genomes.title('pipelines (toy sizes)'), () => {
  it('scaling: trains at each length and records held-out bits, tokens/s and peak memory', () => {
    const out = join(dir, 'scaling');
    pipeline('scaling', ['--lengths', '6,7', '--budget-log2', '11', '--step-log2', '9', '--device', 'cpu', '--out', out]);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(res.rows.map((r: { seq_len: number }) => r.seq_len)).toEqual([64, 128]);
    for (const r of res.rows) {
      expect(r.eval_bits_per_token).toBeGreaterThan(1);
      expect(r.eval_bits_per_token).toBeLessThan(4.5);
      expect(r.tokens_per_s).toBeGreaterThan(0);
      expect(r.peak_mem_bytes).toBeGreaterThan(2 ** 20);
    }
    for (const f of ['results.md', 'bits.svg', 'throughput.svg', 'memory.svg', 'report.html']) expect(existsSync(join(out, f)), f).toBe(true);
    // the species set the pipeline built is reused below
  });

  it('dna-species: a classifier per context length, accuracy on held-out strains', () => {
    const out = join(dir, 'scaling'); // same folder: reuses species-data
    pipeline('dna-species', ['--lengths', '6', '--steps', '4', '--no-pretrain', '--device', 'cpu', '--out', out]);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(res.rows).toHaveLength(1);
    expect(res.rows[0].test_accuracy).toBeGreaterThanOrEqual(0);
    expect(res.rows[0].test_accuracy).toBeLessThanOrEqual(1);
    expect(res.rows[0].test_examples).toBeGreaterThan(0);
    expect(res.rows[0].confusion).toHaveLength(5);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/held-out strains/);
  });
});
