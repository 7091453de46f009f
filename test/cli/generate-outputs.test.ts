// generate in both CLIs: unique record names (generated_1..N, prompt and seed in the description) that
// our index and samtools accept; the continuation alone unless --with-prompt; audio at the run's rate,
// its default prompt skipping trailing digital silence; --seconds with --length is refused.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../../src/data/audio/wav.js';
import { indexFasta } from '../../src/data/dna/indexed.js';
import { hasSamtools } from '../data/dna/helpers.js';
import { rng } from '../helpers.js';
import { cli, requireDist } from './run-cli.js';

let dir: string;
const tiny = ['--seq-len', '64', '--batch', '2', '--steps', '1', '--eval-windows', '1', '--device', 'cpu'];
beforeAll(() => {
  requireDist();
  dir = mkdtempSync(join(tmpdir(), 'mamba-generate-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('mamba-dna generate', () => {
  let run = '';
  beforeAll(() => {
    const r = rng(3);
    const seq = Array.from({ length: 3000 }, () => 'ACGT'[Math.floor(r() * 4)]).join('');
    writeFileSync(join(dir, 'g.fa'), `>chrA\n${seq.match(/.{1,60}/g)!.join('\n')}\n`);
    run = join(dir, 'dna-lm');
    const t = cli('dna', ['train', '--data', join(dir, 'g.fa'), ...tiny, '--out', run]);
    if (t.code !== 0) throw new Error(t.err);
  });

  it('--samples 4 writes generated_1..4 with prompt and seed; our index and samtools keep all four', () => {
    const out = join(dir, 'four.fa');
    const g = cli('dna', [
      'generate',
      '--checkpoint',
      run,
      '--data',
      join(dir, 'g.fa'),
      '--prompt',
      'chrA:1-100',
      '--samples',
      '4',
      '--length',
      '70',
      '--seed',
      '5',
      '-o',
      out,
    ]);
    expect(g.code, g.err).toBe(0);
    const heads = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('>'));
    expect(heads).toEqual(
      [1, 2, 3, 4].map((k) => `>generated_${k} length=70 prompt=chrA:1-100 temperature=1 seed=${4 + k}`),
    );
    const idx = indexFasta(out);
    expect(idx.records.map((r) => [r.name, r.length])).toEqual([1, 2, 3, 4].map((k) => [`generated_${k}`, 70]));
    if (hasSamtools) {
      const st = spawnSync('samtools', ['faidx', out, 'generated_4'], { encoding: 'latin1' });
      expect(st.status, st.stderr).toBe(0);
      expect(readFileSync(`${out}.fai`, 'utf8').trim().split('\n')).toHaveLength(4);
      const ours = cli('dna', ['region', out, 'generated_4']);
      expect(ours.out).toBe(st.stdout);
    }
  });

  it.skipIf(!hasSamtools)('samtools faidx indexes the generated file itself (needs samtools)', () => {
    const out = join(dir, 'for-samtools.fa');
    expect(cli('dna', ['generate', '--checkpoint', run, '--samples', '3', '--length', '20', '-o', out]).code).toBe(0);
    const st = spawnSync('samtools', ['faidx', out], { encoding: 'latin1' });
    expect(st.status, st.stderr).toBe(0);
    expect(st.stderr).toBe('');
    expect(
      readFileSync(`${out}.fai`, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
    ).toEqual(['generated_1', 'generated_2', 'generated_3']);
  });

  it('--with-prompt writes the prompt then the continuation; -o - writes stdout', () => {
    const g = cli('dna', [
      'generate',
      '--checkpoint',
      run,
      '--data',
      join(dir, 'g.fa'),
      '--prompt',
      'chrA:1-100',
      '--length',
      '30',
      '--with-prompt',
      '-o',
      '-',
    ]);
    expect(g.code, g.err).toBe(0);
    const [head, ...lines] = g.out.trim().split('\n');
    expect(head).toMatch(/^>generated_1 length=30 prompt_length=100 prompt=chrA:1-100 /);
    const seq = lines.join('');
    expect(seq).toHaveLength(130);
    const prompt = cli('dna', ['region', join(dir, 'g.fa'), 'chrA:1-100'])
      .out.split('\n')
      .slice(1)
      .join('');
    expect(seq.slice(0, 100)).toBe(prompt);
  });
});

describe('mamba-audio generate', () => {
  let run = '';
  const rate = 8000;
  const tone = (n: number) =>
    Float32Array.from({ length: n }, (_, i) => 0.4 * Math.sin((2 * Math.PI * 300 * i) / rate));
  beforeAll(() => {
    writeFileSync(join(dir, 'tone8k.wav'), encodeWav(tone(rate * 2), rate, 16));
    run = join(dir, 'audio-lm');
    const t = cli('audio', [
      'train',
      '--task',
      'lm',
      '--data',
      join(dir, 'tone8k.wav'),
      '--rate',
      String(rate),
      ...tiny,
      '--out',
      run,
    ]);
    if (t.code !== 0) throw new Error(t.err);
    expect(t.err).not.toMatch(/resampling/);
  });

  it('train records --rate; without it, a note says the data is resampled', () => {
    expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).rate).toBe(rate);
    const t = cli('audio', [
      'train',
      '--task',
      'lm',
      '--data',
      join(dir, 'tone8k.wav'),
      ...tiny,
      '--steps',
      '1',
      '--out',
      join(dir, 'r16'),
    ]);
    expect(t.code, t.err).toBe(0);
    expect(t.err).toContain(`note: ${join(dir, 'tone8k.wav')} is 8000 Hz; resampling it to the model rate 16000 Hz`);
  });

  it('writes the continuation alone at the run rate, or --with-prompt; the prompt skips trailing silence', () => {
    // one second of tone, then two seconds of digital silence
    const withSilence = new Float32Array(rate * 3);
    withSilence.set(tone(rate));
    writeFileSync(join(dir, 'tail-silent.wav'), encodeWav(withSilence, rate, 16));
    const out = join(dir, 'cont.wav');
    const g = cli('audio', [
      'generate',
      '--checkpoint',
      run,
      '--prompt',
      join(dir, 'tail-silent.wav'),
      '--length',
      '200',
      '-o',
      out,
    ]);
    expect(g.code, g.err).toBe(0);
    expect(g.err).toMatch(/prompt \(.*tail-silent\.wav \(1\.00 s ending at 1\.00 s, before the trailing silence\)\)/);
    const wav = readFileSync(out);
    expect(wav.readUInt32LE(24)).toBe(rate);
    expect(wav.length).toBe(44 + 2 * 200);
    const both = cli('audio', [
      'generate',
      '--checkpoint',
      run,
      '--prompt',
      join(dir, 'tail-silent.wav'),
      '--length',
      '200',
      '--with-prompt',
      '-o',
      '-',
    ]);
    expect(both.code, both.err).toBe(0);
    expect(both.bytes.length).toBe(44 + 2 * (rate + 200));
  });

  it('--seconds with --length is a usage error; several samples cannot share stdout', () => {
    const r = cli('audio', [
      'generate',
      '--checkpoint',
      run,
      '--seconds',
      '1',
      '--length',
      '10',
      '-o',
      join(dir, 'x.wav'),
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toBe('mamba-audio: error: give --length (tokens) or --seconds, not both\n');
    const s = cli('audio', ['generate', '--checkpoint', run, '--samples', '2', '--length', '10', '-o', '-']);
    expect(s.code).toBe(2);
  });
});
