// markov-baseline writes its results like every pipeline: results.json, results.md, bits.svg, report.html.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'mamba-markov-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pipelines/markov-baseline.js', () => {
  it('scores orders 0..k on the held-out 5% of the shipped genome and writes the results files', () => {
    const r = spawnSync(
      process.execPath,
      [join(root, 'pipelines', 'markov-baseline.js'), '--max-order', '3', '--out', dir],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(res.rows.map((x: { order: number }) => x.order)).toEqual([0, 1, 2, 3]);
    // order 0 is the base composition of H. pylori (39% GC): just under 2 bits
    expect(res.rows[0].bits_per_base).toBeGreaterThan(1.9);
    expect(res.rows[0].bits_per_base).toBeLessThan(2);
    expect(res.held_out_bases).toBeGreaterThan(80_000);
    for (const f of ['results.md', 'bits.svg', 'report.html']) expect(existsSync(join(dir, f)), f).toBe(true);
  });
});
