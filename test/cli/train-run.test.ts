// The run folder as a user meets it (child processes): data checked before a folder is made, resume of
// the other domain, torn metrics, a run stopped before its first checkpoint, evaluations that say what
// they scored, and classifier runs reported as cross-entropy and accuracy. Needs dist/ (npm run build).
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.js';

const root = join(__dirname, '..', '..');
const bin = (cli: 'dna' | 'audio') => join(root, 'bin', `mamba-${cli}.js`);

function run(cli: 'dna' | 'audio', args: string[]) {
  const r = spawnSync(process.execPath, [bin(cli), ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, MAMBA_NUM_THREADS: '1' },
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function fasta(path: string, n: number, seed: number): string {
  const r = new Rng(seed);
  let prev = 0,
    s = '';
  for (let i = 0; i < n; i++) {
    prev = r.next() < 0.7 ? (prev + 1) % 4 : r.int(4);
    s += 'ACGT'[prev];
  }
  writeFileSync(path, `>rec${seed}\n${s.match(/.{1,60}/g)!.join('\n')}\n`);
  return path;
}

const metrics = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const trainLosses = (out: string) =>
  metrics(out)
    .filter((r) => r.split === 'train')
    .map((r) => [r.step, r.loss]);

let dir: string, genome: string, other: string, lmRun: string;
const tiny = ['--preset', 'tiny', '--seq-len', '64', '--batch', '2', '--eval-windows', '3', '--device', 'cpu'];
beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'dna.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  dir = mkdtempSync(join(tmpdir(), 'mamba-train-run-'));
  genome = fasta(join(dir, 'g.fa'), 20000, 1);
  other = fasta(join(dir, 'other.fa'), 3000, 2);
  lmRun = join(dir, 'lm');
  const t = run('dna', ['train', '--data', genome, ...tiny, '--steps', '4', '--eval-every', '2', '--out', lmRun]);
  if (t.code !== 0) throw new Error(t.err);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('train: data and run folder', () => {
  it('a held-out part shorter than --seq-len is an error before the first step, naming the part and both lengths; no folder is left', () => {
    const short = fasta(join(dir, 'short.fa'), 2000, 3);
    const out = join(dir, 'short-run');
    const r = run('dna', [
      'train',
      '--data',
      short,
      '--preset',
      'tiny',
      '--seq-len',
      '256',
      '--device',
      'cpu',
      '--out',
      out,
    ]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(
      /--seq-len 256 needs windows of 257 tokens, but the longest record of the held-out part of .*short\.fa holds 100/,
    );
    expect(r.err).toMatch(/use --seq-len 64 or less/);
    expect(existsSync(out)).toBe(false);
  });

  it('plain gzip FASTA: the advice converts it to bgzip under its own name', () => {
    const gz = join(dir, 'plain.fa.gz');
    writeFileSync(gz, gzipSync(readFileSync(genome)));
    const r = run('dna', ['train', '--data', gz, ...tiny, '--out', join(dir, 'gz-run')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `convert it with \`gunzip ${gz} && bgzip ${join(dir, 'plain.fa')}\` (which writes ${gz} again, as bgzip)`,
    );
  });

  it('the --preset help says what each preset is', () => {
    const h = run('dna', ['train', '--help']);
    expect(h.out.replace(/\s+/g, ' ')).toMatch(
      /tiny: d_model 32, 2 layers; small: d_model 256, 8 layers; 130m: d_model 768, 24 layers/,
    );
    expect(h.out).toMatch(
      /dataset build species --out data\/species && mamba-dna train --task classify --data data\/species/,
    );
    // the default labelled set is built, not shipped: the error says how
    const c = run('dna', ['train', '--task', 'classify', '--device', 'cpu']);
    expect(c.code).toBe(1);
    expect(c.err).toContain(
      `build it first with \`mamba-dna dataset build species --out ${join(dir, 'datasets', 'build', 'species')}\``,
    );
  });

  it('--resume on a run of the other domain names the domain; "an audio"', () => {
    const r = run('audio', ['train', '--out', lmRun, '--resume']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/holds a dna run \(lm\); resume it with mamba-dna, not mamba-audio/);
    const fake = join(dir, 'fake-audio');
    cpSync(lmRun, fake, { recursive: true });
    for (const f of ['run.json', 'config.json']) {
      const p = join(fake, f);
      writeFileSync(p, readFileSync(p, 'utf8').replace('"domain": "dna"', '"domain": "audio"'));
    }
    const i = run('dna', ['info', '--checkpoint', fake]);
    expect(i.err).toMatch(/holds an audio model; use mamba-audio, not mamba-dna/);
    const t = run('dna', ['train', '--out', fake, '--resume']);
    expect(t.err).toMatch(/holds an audio run \(lm\); resume it with mamba-audio/);
  });

  it('a torn last line of metrics.jsonl is dropped with a warning on resume', () => {
    const out = join(dir, 'torn');
    cpSync(lmRun, out, { recursive: true });
    appendFileSync(join(out, 'metrics.jsonl'), '{"step":5,"split":"tr');
    const r = run('dna', ['train', '--out', out, '--resume', '--steps', '6']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/warning: .*metrics\.jsonl: dropped its torn last line/);
    // the summary names the evaluation it quotes
    expect(r.out).toMatch(/done at step 6 in [\d.]+ s: last eval \(step 6\): loss [\d.]+ nats, [\d.]+ bits\/token/);
    expect(trainLosses(out).map((x) => x[0])).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a run stopped before its first checkpoint starts again under --resume and reproduces the same run', () => {
    const out = join(dir, 'early');
    cpSync(lmRun, out, { recursive: true });
    // what a kill before the first save leaves: run.json, best/run.json and a few metric rows
    for (const f of [
      'checkpoint.json',
      'checkpoints',
      'model.safetensors',
      'config.json',
      'training_state.safetensors',
      'trainer_state.json',
    ]) {
      rmSync(join(out, f), { recursive: true, force: true });
    }
    const again = run('dna', ['train', '--data', genome, ...tiny, '--out', out]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(
      /already exists and is not empty; use --resume to continue its run, --force to replace it/,
    );
    // on the device the run was made on (--resume takes --device as given, auto by default): the same bits
    const r = run('dna', ['train', '--out', out, '--resume', '--device', 'cpu']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/has no checkpoint yet .*starting it again from step 0 of 4/);
    expect(trainLosses(out)).toEqual(trainLosses(lmRun));
    expect(readFileSync(join(out, 'model.safetensors'))).toEqual(readFileSync(join(lmRun, 'model.safetensors')));
  });

  it("--force replaces the earlier run's files and leaves other files in the folder alone", () => {
    const out = join(dir, 'forced');
    cpSync(lmRun, out, { recursive: true });
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const r = run('dna', [
      'train',
      '--data',
      genome,
      ...tiny,
      '--steps',
      '2',
      '--eval-every',
      '2',
      '--out',
      out,
      '--force',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine');
    expect(JSON.parse(readFileSync(join(out, 'checkpoint.json'), 'utf8')).step).toBe(2);
    expect(trainLosses(out)).toEqual(trainLosses(lmRun).slice(0, 2));
    expect(readdirSync(join(out, 'checkpoints'))).toEqual(['step-00000002']);
  });
});

describe('eval says what it scored', () => {
  it('names the file, part, windows and tokens on stderr and in its JSON', () => {
    const e = run('dna', ['eval', '--checkpoint', lmRun, '--windows', '3', '--json']);
    expect(e.code, e.err).toBe(0);
    const j = JSON.parse(e.out);
    expect(j).toMatchObject({
      task: 'lm',
      data: genome,
      part: 'held-out part',
      windows: 3,
      tokens: 3 * 64,
      seq_len: 64,
    });
    expect(j.scored).toMatch(/g\.fa: .*valid part: last 5%/);
    expect(e.err).toMatch(/scored the held-out part of .*g\.fa: 3 windows of 64 tokens \(192 tokens\)/);
  });

  it("RUN/best is scored on the run's data, not the shipped genome", () => {
    const e = run('dna', ['eval', '--checkpoint', join(lmRun, 'best'), '--windows', '2', '--json']);
    expect(e.code, e.err).toBe(0);
    expect(JSON.parse(e.out)).toMatchObject({ data: genome, part: 'held-out part', seq_len: 64 });
  });

  it('--split test on an lm run without a test part is an error; --data OTHER scores all of OTHER', () => {
    const t = run('dna', ['eval', '--checkpoint', lmRun, '--split', 'test']);
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/--split test: .*g\.fa has no test part/);
    const o = run('dna', ['eval', '--checkpoint', lmRun, '--data', other, '--windows', '1000', '--json']);
    expect(o.code, o.err).toBe(0);
    // all of a 3,000-base record: 46 windows of 65 bases
    expect(JSON.parse(o.out)).toMatchObject({ data: other, part: 'all', windows: Math.floor(3000 / 65) });
    expect(o.err).toMatch(/scored all of .*other\.fa: 46 windows/);
  });
});

describe('classifier runs', () => {
  it('evaluate on the valid split, report cross-entropy and accuracy by name, and show data, config and confusion', () => {
    const out = join(dir, 'digits');
    const t = run('audio', [
      'train',
      '--seq-len',
      '800',
      '--batch',
      '4',
      '--steps',
      '2',
      '--eval-windows',
      '1',
      '--device',
      'cpu',
      '--out',
      out,
    ]);
    expect(t.code, t.err).toBe(0);
    expect(t.err).toMatch(/evaluating on the valid split/);
    expect(t.err).toMatch(/eval @ step 2: cross-entropy [\d.]+ nats, accuracy [\d.]+ \(\d+ of 20\)/);
    expect(t.err + t.out).not.toMatch(/bits\/tok|perplexity/);
    for (const r of metrics(out)) expect(r.bits_per_token).toBeUndefined();
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    for (const s of ['Confusion matrix', 'Model config', 'Training options', 'cross-entropy (nats)', 'digits'])
      expect(html).toContain(s);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toContain('cross-entropy (nats)');
    const e = run('audio', ['eval', '--checkpoint', out, '--json']);
    expect(e.code, e.err).toBe(0);
    const j = JSON.parse(e.out);
    expect(j).toMatchObject({ task: 'classify', part: 'test split', windows: 30, seq_len: 800 });
    expect(j.cross_entropy).toBe(j.loss);
    expect(j.bits_per_token).toBeUndefined();
    expect(j.perplexity).toBeUndefined();
  });
});
