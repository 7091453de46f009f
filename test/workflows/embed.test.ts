// `mamba-dna embed` and model.embed on G27 pieces with a randomly initialised model (the equalities need no
// training): shapes, reverse-complement invariance with --strand both (to 1e-5), per-base vectors, and the
// .npy / .safetensors / .tsv outputs read back by readers written here; the npy writer's header alignment.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeString } from '../../src/data/dna/index.js';
import { MambaLM, PRESETS, makeConfig, saveModel } from '../../src/model/index.js';
import { NpyWriter, npyHeader } from '../../src/util/npy.js';
import { cli, g27, readNpy, revcomp, writeFasta } from './helpers.js';

let dir: string;
let run: string;
let model: MambaLM;
const D = 32;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mamba-embed-'));
  run = join(dir, 'run');
  mkdirSync(run);
  model = MambaLM.create(
    makeConfig({ ...PRESETS.tiny, d_model: D, n_layer: 2 }, { domain: 'dna', task: 'lm', vocab_size: 16 }),
    { seed: 7 },
  );
  saveModel(run, model);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('mamba-dna embed', () => {
  const x = () => g27().slice(20000, 20700);
  const fasta = () => {
    const p = join(dir, 'items.fa');
    writeFasta(p, [
      { name: 'x', seq: x() },
      { name: 'rcx', seq: revcomp(x()) },
      { name: 'y', seq: g27().slice(40000, 40300) },
    ]);
    return p;
  };

  it('gives one vector per record, equal for x and RC(x) with --strand both (windows of 256 and a shorter last one)', () => {
    const fa = fasta();
    const both = cli(
      'dna',
      ['embed', '--checkpoint', run, fa, '--strand', 'both', '--window', '256', '-o', join(dir, 'both.npy')],
      dir,
    );
    expect(both.code, both.err).toBe(0);
    const e = readNpy(join(dir, 'both.npy'));
    expect(e.shape).toEqual([3, D]);
    const row = (i: number) => e.data.subarray(i * D, (i + 1) * D);
    expect(maxDiff(row(0), row(1))).toBeLessThan(1e-5);
    expect(maxDiff(row(0), row(2))).toBeGreaterThan(1e-3);
    const fwd = cli('dna', ['embed', '--checkpoint', run, fa, '--window', '256', '-o', join(dir, 'fwd.npy')], dir);
    expect(fwd.code, fwd.err).toBe(0);
    const f = readNpy(join(dir, 'fwd.npy'));
    // one strand alone is not invariant, so the equality above is the averaging's doing
    expect(maxDiff(f.data.subarray(0, D), f.data.subarray(D, 2 * D))).toBeGreaterThan(1e-3);
    // forward mean of x = the length-weighted mean of model.embed over its windows
    const t = encodeString(x());
    const w = [t.subarray(0, 256), t.subarray(256, 512), t.subarray(512)];
    const want = new Float64Array(D);
    for (const s of w) {
      const v = model.embed(Int32Array.from(s), 1, s.length, 'mean');
      for (let d = 0; d < D; d++) want[d]! += (v[d]! * s.length) / t.length;
    }
    expect(maxDiff(f.data.subarray(0, D), want)).toBeLessThan(1e-5);
    const tsv = readFileSync(join(dir, 'fwd.tsv'), 'utf8').trimEnd().split('\n');
    expect(tsv).toEqual([
      'index\tname\tlength\tshape\trow',
      `0\tx\t700\t${D}\t0`,
      `1\trcx\t700\t${D}\t1`,
      `2\ty\t300\t${D}\t2`,
    ]);
  });

  it('--pool none gives a vector per base; with --strand both RC(x) at p equals x at length-1-p', () => {
    const fa = fasta();
    const r = cli(
      'dna',
      [
        'embed',
        '--checkpoint',
        run,
        fa,
        'x',
        'rcx',
        '--pool',
        'none',
        '--strand',
        'both',
        '--window',
        '512',
        '-o',
        join(dir, 'none.npy'),
      ],
      dir,
    );
    expect(r.code, r.err).toBe(0);
    const e = readNpy(join(dir, 'none.npy'));
    expect(e.shape).toEqual([1400, D]);
    let worst = 0;
    for (let p = 0; p < 700; p++)
      worst = Math.max(
        worst,
        maxDiff(e.data.subarray(p * D, (p + 1) * D), e.data.subarray((700 + 699 - p) * D, (700 + 700 - p) * D)),
      );
    expect(worst).toBeLessThan(1e-5);
    // mean of the per-position vectors of one window = the mean pooling of model.embed
    const t = Int32Array.from(encodeString(x()).subarray(0, 300));
    const all = model.embed(t, 1, 300, 'none'),
      mean = model.embed(t, 1, 300, 'mean'),
      last = model.embed(t, 1, 300, 'last');
    const m = new Float64Array(D);
    for (let p = 0; p < 300; p++) for (let d = 0; d < D; d++) m[d]! += all[p * D + d]! / 300;
    expect(maxDiff(mean, m)).toBeLessThan(1e-5);
    expect(maxDiff(last, all.subarray(299 * D))).toBe(0);
  });

  it('writes safetensors with the names in the metadata', () => {
    const fa = fasta();
    const out = join(dir, 'e.safetensors');
    const r = cli('dna', ['embed', '--checkpoint', run, fa, '--pool', 'last', '-o', out], dir);
    expect(r.code, r.err).toBe(0);
    const b = readFileSync(out);
    const hlen = Number(b.readBigUInt64LE(0));
    const header = JSON.parse(b.subarray(8, 8 + hlen).toString('utf8'));
    expect(header.embeddings.dtype).toBe('F32');
    expect(header.embeddings.shape).toEqual([3, D]);
    expect(JSON.parse(header.__metadata__.names)).toEqual(['x', 'rcx', 'y']);
    expect(header.__metadata__.pool).toBe('last');
    const [s, e] = header.embeddings.data_offsets;
    expect(e - s).toBe(3 * D * 4);
    const bad = cli('dna', ['embed', '--checkpoint', run, fa, '-o', join(dir, 'e.bin')], dir);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/must end in \.npy or \.safetensors/);
  });
});

describe('npy writer', () => {
  it('aligns the data to 64 bytes, writes 1-tuples with a comma, and refuses a short write', () => {
    for (const shape of [[5], [3, 7], [2, 3, 4], [0, 8]]) expect(npyHeader(shape).length % 64).toBe(0);
    expect(npyHeader([5]).toString('latin1')).toContain("'shape': (5,)");
    const p = join(dir, 'w.npy');
    const w = new NpyWriter(p, [2, 3]);
    w.append(Float32Array.of(1, 2, 3));
    w.append(Float32Array.of(4.5, -5, 6e-8));
    w.close();
    expect(readNpy(p)).toEqual({ shape: [2, 3], data: Float32Array.of(1, 2, 3, 4.5, -5, 6e-8) });
    const short = new NpyWriter(join(dir, 's.npy'), [4]);
    short.append(Float32Array.of(1));
    expect(() => short.close()).toThrow(/1 values written, the shape \[4\] needs 4/);
    expect(() => readFileSync(join(dir, 's.npy'))).toThrow();
  });
});
