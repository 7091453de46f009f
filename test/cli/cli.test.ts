// The CLIs as a user runs them: child processes on the shipped data (train a few steps, eval, info,
// predict, resume) and the bad-input cases with their exit codes. Needs `npm run build` (dist/).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(__dirname, '..', '..');
const bin = (cli: 'dna' | 'audio') => join(root, 'bin', `mamba-${cli}.js`);

function run(cli: 'dna' | 'audio', args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [bin(cli), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, MAMBA_NUM_THREADS: '1' },
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let dir: string;
beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'dna.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  dir = mkdtempSync(join(tmpdir(), 'mamba-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const small = ['--seq-len', '128', '--batch', '2', '--eval-windows', '4', '--eval-every', '2'];

describe('mamba-dna', () => {
  it('--help of the CLI and of every command exits 0 and shows an example', () => {
    const top = run('dna', ['--help'], dir);
    expect(top.code).toBe(0);
    for (const cmd of ['train', 'eval', 'predict', 'info', 'index', 'region', 'tokenize', 'doctor']) {
      expect(top.out).toContain(cmd);
      const r = run('dna', [cmd, '--help'], dir);
      expect(r.code, cmd).toBe(0);
      expect(r.out, cmd).toMatch(/Examples:/);
    }
  });

  it('trains a few steps on the shipped genome, then eval, info and resume work from the run folder', () => {
    const out = join(dir, 'lm');
    const t = run('dna', ['train', ...small, '--steps', '4', '--out', out], dir);
    expect(t.code, t.err).toBe(0);
    for (const f of [
      'config.json',
      'model.safetensors',
      'metrics.jsonl',
      'run.json',
      'trainer_state.json',
      'loss.svg',
      'report.html',
    ])
      expect(existsSync(join(out, f)), f).toBe(true);
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.filter((r) => r.split === 'train').map((r) => r.step)).toEqual([1, 2, 3, 4]);
    for (const r of rows) {
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(r.bits_per_token).toBeCloseTo(r.loss / Math.LN2, 10);
    }
    expect(rows.some((r) => r.split === 'eval')).toBe(true);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.d_model).toBeGreaterThan(0);

    const e = run('dna', ['eval', '--checkpoint', out, '--windows', '4', '--json'], dir);
    expect(e.code, e.err).toBe(0);
    const ev = JSON.parse(e.out);
    expect(ev.bits_per_token).toBeGreaterThan(0.5);
    expect(ev.bits_per_token).toBeLessThan(5);
    expect(ev.count).toBe(4 * 128);

    const i = run('dna', ['info', '--checkpoint', out], dir);
    expect(i.code).toBe(0);
    expect(i.out).toMatch(/trained 4 of 4 steps/);

    const r = run('dna', ['train', '--out', out, '--resume', '--steps', '6'], dir);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/resuming .* at step 4 of 6/);
    const rows2 = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows2.filter((x) => x.split === 'train').map((x) => x.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // the first four steps are kept as they were
    expect(
      rows2
        .filter((x) => x.split === 'train')
        .slice(0, 4)
        .map((x) => x.loss),
    ).toEqual(
      rows
        .filter((x) => x.split === 'train')
        .map((x) => x.loss)
        .slice(0, 4),
    );

    // generation: FASTA continuation of a real region of the shipped genome
    const g = run(
      'dna',
      [
        'generate',
        '--checkpoint',
        out,
        '--prompt',
        'gi|208433976|ref|NC_011333.1|:1001-1200',
        '--length',
        '150',
        '-o',
        join(dir, 'gen.fa'),
      ],
      dir,
    );
    expect(g.code, g.err).toBe(0);
    const fa = readFileSync(join(dir, 'gen.fa'), 'utf8').split('\n');
    expect(fa[0]).toMatch(/^>generated_1 length=150 prompt=gi\|208433976\|ref\|NC_011333\.1\|:1001-1200/);
    expect(fa.slice(1).join('').length).toBe(150);
    expect(fa[1]).toHaveLength(60);
    const g2 = run('dna', ['generate', '--checkpoint', out, '-o', join(dir, 'gen.fa')], dir);
    expect(g2.code).toBe(1);
    expect(g2.err).toMatch(/already exists/);
    // several samples in one batch: one FASTA record each, seeded apart
    const g3 = run(
      'dna',
      ['generate', '--checkpoint', out, '--samples', '3', '--length', '80', '-o', join(dir, 'three.fa')],
      dir,
    );
    expect(g3.code, g3.err).toBe(0);
    const recs = readFileSync(join(dir, 'three.fa'), 'utf8').split('>').filter(Boolean);
    expect(
      recs.map((r) =>
        r
          .split('\n')[0]!
          .match(/^generated_(\d) .* seed=(\d)$/)
          ?.slice(1),
      ),
    ).toEqual([
      ['1', '0'],
      ['2', '1'],
      ['3', '2'],
    ]);
    const seqs = recs.map((r) => r.split('\n').slice(1).join(''));
    expect(seqs.map((q) => q.length)).toEqual([80, 80, 80]);
    expect(new Set(seqs).size).toBe(3);
    expect(run('dna', ['generate', '--checkpoint', out, '--samples', '0', '-o', join(dir, 'x.fa')], dir).code).toBe(2);

    // the other CLI refuses this checkpoint
    const a = run('audio', ['info', '--checkpoint', out], dir);
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/holds a dna model; use mamba-dna/);
  });

  it('refuses bad usage with exit 2 and bad input with exit 1, one line, no stack trace', () => {
    const bad = run('dna', ['train', '--bogus'], dir);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown option '--bogus'/);
    const badVal = run('dna', ['train', '--seq-len', 'many'], dir);
    expect(badVal.code).toBe(2);
    const badTask = run('dna', ['train', '--task', 'dance'], dir);
    expect(badTask.code).toBe(2);
    const missing = run('dna', ['train', '--data', join(dir, 'nope.fa'), '--out', join(dir, 'x1')], dir);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/nope\.fa: no such file/);
    expect(missing.err).not.toMatch(/\n\s+at /);
    const tiny = join(dir, 'tiny.fa');
    writeFileSync(tiny, '>a\nACGTACGTAC\n>b\nACGTAC\n');
    const long = run('dna', ['train', '--data', tiny, '--seq-len', '64', '--out', join(dir, 'x2')], dir);
    expect(long.code).toBe(1);
    expect(long.err).toMatch(
      /--seq-len 64 needs windows of 65 tokens, but the longest record of the training part of .*tiny\.fa holds 9/,
    );
    expect(existsSync(join(dir, 'x2'))).toBe(false);
    const exists = join(dir, 'lm');
    const again = run('dna', ['train', ...small, '--steps', '1', '--out', exists], dir);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already exists.*--force/);
    const one = join(dir, 'oneclass.json');
    writeFileSync(
      one,
      JSON.stringify({
        name: 'one',
        classes: ['a'],
        sources: [
          { path: tiny, label: 'a', split: 'train' },
          { path: tiny, label: 'a', split: 'test' },
        ],
      }),
    );
    const oneClass = run('dna', ['train', '--task', 'classify', '--data', one, '--out', join(dir, 'x3')], dir);
    expect(oneClass.code).toBe(1);
    expect(oneClass.err).toMatch(/at least two class/);
    const noCkpt = run('dna', ['eval', '--checkpoint', join(dir, 'none')], dir);
    expect(noCkpt.code).toBe(1);
    const noCkptFlag = run('dna', ['eval'], dir);
    expect(noCkptFlag.code).toBe(2);
  });
});

describe('Ctrl-C', () => {
  it('saves a checkpoint after the current step and exits 0; --resume continues from it', async () => {
    const out = join(dir, 'interrupted');
    const child = spawn(
      process.execPath,
      [
        bin('dna'),
        'train',
        '--seq-len',
        '64',
        '--batch',
        '2',
        '--steps',
        '100000',
        '--eval-every',
        '100000',
        '--out',
        out,
      ],
      { cwd: dir, env: { ...process.env, MAMBA_NUM_THREADS: '1' } },
    );
    let err = '',
      stdout = '';
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    child.stdout.on('data', (d) => {
      stdout += String(d);
    });
    // wait until at least one step has been logged, then interrupt
    const metrics = join(out, 'metrics.jsonl');
    await new Promise<void>((res) => {
      const t = setInterval(() => {
        if (existsSync(metrics) && readFileSync(metrics, 'utf8').includes('"split":"train"')) {
          clearInterval(t);
          child.kill('SIGINT');
          res();
        }
      }, 50);
    });
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(code, err).toBe(0);
    expect(err).toMatch(/interrupted: saving a checkpoint/);
    const m = /stopped at step (\d+)/.exec(stdout);
    expect(m, stdout).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThan(0);
    expect(step).toBeLessThan(100000);
    expect(JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8')).step).toBe(step);
    const r = run('dna', ['train', '--out', out, '--resume', '--steps', String(step + 2)], dir);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`done at step ${step + 2}`));
  });
});

describe('mamba-audio', () => {
  it('with no --task, trains a digit classifier on the shipped digits; predict gives class probabilities', () => {
    const out = join(dir, 'digits');
    const t = run(
      'audio',
      ['train', '--seq-len', '1000', '--batch', '4', '--steps', '2', '--eval-windows', '1', '--out', out],
      dir,
    );
    expect(t.code, t.err).toBe(0);
    const run_ = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(run_.classes).toHaveLength(10);
    const p = run(
      'audio',
      ['predict', '--checkpoint', out, join(root, 'datasets', 'audio', 'digits', 'test'), '--format', 'json'],
      dir,
    );
    expect(p.code, p.err).toBe(0);
    const preds = JSON.parse(p.out) as { item: string; predicted: string; probabilities: Record<string, number> }[];
    expect(preds.length).toBeGreaterThan(5);
    for (const r of preds) {
      const s = Object.values(r.probabilities).reduce((a, b) => a + b, 0);
      expect(s).toBeCloseTo(1, 5);
      expect(run_.classes).toContain(r.predicted);
    }
    const lm = run('audio', ['predict', '--checkpoint', join(dir, 'lm'), 'x.wav'], dir);
    expect(lm.code).toBe(1);
  });
});
