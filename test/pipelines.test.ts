// The pipeline scripts end to end at toy sizes (the real runs are minutes on a CPU, or --full on a GPU):
// they must build their data, drive the CLIs and write results.json, results.md and their plots.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { needs } from './tools.js';
import { syntheticApesMaf } from './data/dna/maf-fixture.js';
import { buildMusic } from '../src/data/audio/datasets.js';

const root = join(__dirname, '..');
// the DNA pipelines build their genome sets from Debian's example data (xz unpacks some of it)
const genomes = needs('ragout-examples', 'kleborate-examples', 'xz');
const dir = mkdtempSync(join(tmpdir(), 'mamba-pipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pipeline(name: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'pipelines', `${name}.js`), ...args], {
    encoding: 'utf8',
    env: { ...process.env, MAMBA_NUM_THREADS: '1' },
    timeout: 600_000,
  });
  expect(r.status, r.stderr + r.stdout.slice(-2000)).toBe(0);
  return r.stdout;
}

describe.skipIf(genomes.skip)(genomes.title('pipelines (toy sizes)'), () => {
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
    const args = [
      '--lengths',
      '6,7',
      '--steps',
      '4',
      '--device',
      'cpu',
      '--out',
      join(out, 'dna-scaling'),
      '--maf',
      maf,
    ];
    pipeline('dna-scaling', args);
    const res = JSON.parse(readFileSync(join(out, 'dna-scaling', 'results.json'), 'utf8'));
    expect(res.rows.map((r: { seq_len: number }) => r.seq_len)).toEqual([64, 128]);
    expect(res.tokens_per_step).toBe(1024);
    // whether the budget let the shortest model stop improving: its valid trajectory and last-quarter gain
    expect(res.budget_check).toMatch(
      /^L = 2\^6: valid bits per base (\d\.\d{4}, )+\d\.\d{4} at steps [\d, ]+; the last \d+ steps gained -?\d\.\d{4}/,
    );
    for (const r of res.rows) {
      expect(r.batch * r.accum * r.seq_len).toBe(1024); // same tokens per step at every L
      expect(r.test_bits).toBeGreaterThan(1);
      expect(r.test_bits).toBeLessThan(4.5);
      expect(r.position_curve.at(-1).to).toBe(r.seq_len);
      expect(r.position_curve[0].from).toBe(1);
    }
    for (const f of ['results.md', 'bits.svg', 'position.svg', 'report.html'])
      expect(existsSync(join(out, 'dna-scaling', f)), f).toBe(true);
    const again = pipeline('dna-scaling', args);
    expect(again).toMatch(/already trained to step 4, kept/);
    expect(again).not.toMatch(/position-eval\.js/);
    // --report-only rewrites the results from the run folders, keeping the command of the run
    const command = JSON.parse(readFileSync(join(out, 'dna-scaling', 'results.json'), 'utf8')).command;
    const re = pipeline('dna-scaling', [...args, '--report-only']);
    expect(re).not.toMatch(/\$ mamba-dna train/);
    expect(JSON.parse(readFileSync(join(out, 'dna-scaling', 'results.json'), 'utf8')).command).toBe(command);
    // a length asked for without a finished run folder is named, not silently left out
    const lengths = args.indexOf('--lengths') + 1;
    const more = args.map((x, i) => (i === lengths ? '6,7,8' : x));
    pipeline('dna-scaling', [...more, '--report-only']);
    const rewritten = JSON.parse(readFileSync(join(out, 'dna-scaling', 'results.json'), 'utf8'));
    expect(rewritten.rows).toHaveLength(2);
    expect(rewritten.not_run).toBe('no finished run folder for L = 2^8 (--report-only)');
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

  it('great-apes-baseline: k-mer naive Bayes per window length, on test windows and on seen train windows', () => {
    pipeline('great-apes-baseline', ['--ks', '3,6', '--maf', maf, '--out', join(out, 'great-apes-baseline')]);
    const res = JSON.parse(readFileSync(join(out, 'great-apes-baseline', 'results.json'), 'utf8'));
    expect(res.rows.map((r: { seq_len: number }) => r.seq_len)).toEqual([64, 256]);
    for (const r of res.rows) {
      expect(r.test_windows).toBe(4 * 256);
      expect(r.k3).toBeGreaterThanOrEqual(0);
      expect(r.k3_ci[0]).toBeLessThanOrEqual(r.k3);
      // the synthetic species differ by 1-4% substitutions everywhere: seen 6-mers of 256 bases tell them apart
      if (r.seq_len === 256) expect(r.k6_train).toBeGreaterThan(0.5);
    }
    expect(res.confusion.k6_L8.flat().reduce((x: number, y: number) => x + y, 0)).toBe(4 * 256);
  });

  it('copy-baseline: Markov alone and with copies from exact repeats inside the window, per window length', () => {
    // a valid block's and the last test block's human rows repeat the block before them (about 400 bases back): a
    // repeat only windows longer than that distance can copy from (the valid one sets the copy weight)
    const lines = syntheticApesMaf(40, 400, 3).split('\n');
    const hsap = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('s Hsap.'));
    for (const b of [30, 39]) {
      const f = hsap[b - 1]![0].split(' ');
      f[2] = hsap[b]![0].split(' ')[2]!; // this block's start; size and text of the one before
      lines[hsap[b]![1]] = f.join(' ');
    }
    const planted = join(dir, 'planted.maf');
    writeFileSync(planted, lines.join('\n'));
    const dataset = join(out, 'planted-data');
    pipeline('copy-baseline', ['--maf', planted, '--dataset', dataset, '--out', join(out, 'copy-baseline')]);
    const res = JSON.parse(readFileSync(join(out, 'copy-baseline', 'results.json'), 'utf8'));
    const rows = res.rows as { seq_len: number; markov_bits: number; mix_bits: number; usable: number }[];
    expect(rows.map((r) => r.seq_len)).toEqual([64, 256, 1024]);
    for (const r of rows) {
      expect(r.markov_bits).toBeGreaterThan(0);
      expect(r.markov_bits).toBe(rows[0]!.markov_bits); // the Markov model does not see the window
      expect(r.usable).toBeGreaterThanOrEqual(0);
    }
    // a window twice as long offers every position at least the matches it had: power-of-two tilings nest
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.usable).toBeGreaterThanOrEqual(rows[i - 1]!.usable);
    // windows of 64 cannot reach the planted copy, windows of 1,024 can: more matches, mostly right, fewer bits
    const [short, long] = [rows[0]!, rows[2]!] as const;
    expect(long.usable - short.usable).toBeGreaterThan(0.02);
    expect(long.mix_bits).toBeLessThan(short.mix_bits - 0.02);
    expect(existsSync(join(out, 'copy-baseline', 'position.svg'))).toBe(true);
  });
});

const soxOgg =
  spawnSync('sox', ['--version'], { stdio: 'ignore' }).status === 0 &&
  /vorbis/i.test(spawnSync('sox', ['--help'], { encoding: 'utf8' }).stdout ?? '');

describe.skipIf(!soxOgg)(
  `music-scaling (toy size, Ogg tracks made with sox)${soxOgg ? '' : ' (skipped: needs sox with Ogg support: apt-get install sox libsox-fmt-base)'}`,
  () => {
    it('bits per sample, a position curve, a WAV continuation and its spectrogram per length', () => {
      const src = join(dir, 'ogg');
      mkdirSync(src, { recursive: true });
      [2, 2, 2, 2, 2].forEach((s, i) =>
        execFileSync('sox', [
          '-n',
          '-r',
          '44100',
          '-c',
          '2',
          join(src, `t${i}.ogg`),
          'synth',
          String(s),
          'pluck',
          String(220 + 55 * i),
          'sine',
          '3',
        ]),
      );
      const data = join(dir, 'music');
      buildMusic(data, { source: src, minSeconds: 1, format: 'tokens', testFraction: 0.2, validFraction: 0.2 });
      const out = join(dir, 'music-scaling');
      pipeline('music-scaling', ['--lengths', '8', '--steps', '3', '--device', 'cpu', '--out', out, '--dataset', data]);
      const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
      expect(res.rows.map((r: { seq_len: number }) => r.seq_len)).toEqual([256]);
      for (const r of res.rows) {
        expect(r.batch * r.accum * r.seq_len).toBe(2048);
        expect(r.test_bits).toBeGreaterThan(0);
        expect(r.test_bits).toBeLessThanOrEqual(8.5);
        expect(r.position_curve.at(-1).to).toBe(r.seq_len);
        // prompt 0.05 s + continuation 0.05 s at 16 kHz, 16-bit: 44-byte header + 2 bytes a sample
        expect(statSync(join(out, r.continuation)).size).toBe(44 + 2 * 1600);
        expect(readFileSync(join(out, r.spectrogram)).subarray(1, 4).toString()).toBe('PNG');
      }
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/spectrogram-L8\.png/);
    });
  },
);
