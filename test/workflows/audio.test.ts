// `mamba-audio score` and `embed` on a shipped spoken digit with a randomly initialised audio model: the
// CSV bins cover the file, the first bin equals the eval forward's bits per sample, the SVG is drawn, and
// embeddings come one per file or one per window.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenizeWav } from '../../src/data/audio/index.js';
import { MambaLM, PRESETS, makeConfig, saveModel } from '../../src/model/index.js';
import { cli, readNpy, root } from './helpers.js';

let dir: string;
let run: string;
let model: MambaLM;
const wav = join(root, 'datasets', 'audio', 'digits', 'test', 'eight', 'en-gb-linda_eight_0.wav');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mamba-audio-wf-'));
  run = join(dir, 'run');
  mkdirSync(run);
  model = MambaLM.create(
    makeConfig({ ...PRESETS.tiny, d_model: 32, n_layer: 2 }, { domain: 'audio', task: 'lm', vocab_size: 256 }),
    { seed: 5 },
  );
  saveModel(run, model);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('mamba-audio score and embed', () => {
  it('writes bits per sample in time bins that cover the file, and an SVG plot', () => {
    const out = join(dir, 's.csv');
    const r = cli(
      'audio',
      ['score', '--checkpoint', run, wav, '--context', '1024', '--bin-seconds', '0.05', '-o', out],
      dir,
    );
    expect(r.code, r.err).toBe(0);
    const { tokens } = tokenizeWav(wav);
    const rows = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(rows[0]).toBe('file,start_s,end_s,samples,bits_per_sample');
    const bins = rows.slice(1).map((l) => l.split(','));
    expect(bins.reduce((a, b) => a + Number(b[3]), 0)).toBe(tokens.length - 1); // sample 0 has no context
    for (let i = 1; i < bins.length; i++) expect(bins[i]![1]).toBe(bins[i - 1]![2]);
    // bin 0 = samples 0..799, all in the first window: the eval forward on samples 0..800
    const L = 800;
    const f = model.forward({
      B: 1,
      L,
      inputs: Int32Array.from(tokens.subarray(0, L)),
      targets: Int32Array.from(tokens.subarray(1, L + 1)),
    });
    const want = f.losses.subarray(0, 799).reduce((a, l) => a + l / Math.LN2, 0) / 799;
    expect(Math.abs(Number(bins[0]![4]) - want)).toBeLessThan(1e-4);
    expect(readFileSync(join(dir, 's.svg'), 'utf8')).toMatch(/<svg[\s\S]*<polyline/);
    expect(r.err).toMatch(/samples scored\tmean \d+\.\d{4} bits per sample/);
  });

  it('embeds one vector per file, or per window of --window-seconds', () => {
    const { tokens } = tokenizeWav(wav);
    const a = cli('audio', ['embed', '--checkpoint', run, wav, wav, '-o', join(dir, 'f.npy')], dir);
    expect(a.code, a.err).toBe(0);
    const f = readNpy(join(dir, 'f.npy'));
    expect(f.shape).toEqual([2, 32]);
    const b = cli(
      'audio',
      ['embed', '--checkpoint', run, wav, '--window-seconds', '0.1', '-o', join(dir, 'w.npy')],
      dir,
    );
    expect(b.code, b.err).toBe(0);
    expect(readNpy(join(dir, 'w.npy')).shape).toEqual([Math.ceil(tokens.length / 1600), 32]);
    expect(readFileSync(join(dir, 'w.tsv'), 'utf8')).toMatch(/\n1\t.*en-gb-linda_eight_0\.wav@0\.100s\t1600\t32\t1\n/);
  });
});
