// `mamba-dna score` on the shipped G27 genome with a tiny model trained here on the CPU: the track equals
// the per-token losses of the model's eval forward on the documented windows (to 1e-4 bits), the
// bedGraph is sorted and well formed, strands average, chunking does not change a value, bad BED fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IndexedFasta, encodeString, reverseComplement } from '../../src/data/dna/index.js';
import { loadModel, type MambaLM } from '../../src/model/index.js';
import { BedGraphWriter } from '../../src/data/dna/bedgraph.js';
import { SCORE_CONVENTION } from '../../src/cli/score-command.js';
import { planWindows, scoreTrack } from '../../src/workflows/track.js';
import { G27, G27_NAME, cli, g27, parseBedGraph, perBase, revcomp, root, trainTinyDna, writeFasta } from './helpers.js';

let dir: string;
let run: string;
let model: MambaLM;
const N = 64,
  H = 32;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mamba-score-'));
  run = trainTinyDna(dir);
  model = loadModel(run) as MambaLM;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** log2 P of window positions 1..W-1 from the eval forward (inputs w[0..W-2], targets w[1..W-1]). */
function evalLogProbs(seq: string): number[] {
  const t = encodeString(seq);
  const L = t.length - 1;
  const r = model.forward({
    B: 1,
    L,
    inputs: Int32Array.from(t.subarray(0, L)),
    targets: Int32Array.from(t.subarray(1)),
  });
  return Array.from(r.losses, (l) => -l / Math.LN2);
}

/** The window start the documented layout gives position p of a record of length len. */
function windowStart(p: number, len: number): number {
  if (p <= N) return 0;
  const k = Math.floor((p - N - 1) / H) + 1;
  const kmax = Math.floor((len - 1 - N) / H);
  return k <= kmax ? k * H : len - 1 - N;
}

describe('mamba-dna score', () => {
  it('equals the eval forward per-token losses on the same windows, at the start, middle and end of the record', () => {
    const seq = g27();
    const len = seq.length;
    const out = join(dir, 'start.bedGraph');
    const regions = [`${G27_NAME}:1-400`, `${G27_NAME}:500001-500300`, `${G27_NAME}:${len - 299}-${len}`];
    const r = cli(
      'dna',
      [
        'score',
        '--checkpoint',
        run,
        G27,
        ...regions,
        '--context',
        String(N),
        '--per-base',
        '--decimals',
        '6',
        '-o',
        out,
      ],
      dir,
    );
    expect(r.code, r.err).toBe(0);
    const { track, lines } = parseBedGraph(readFileSync(out, 'utf8'));
    expect(track).toMatch(/log2 P\(base \| up to N bases of left context\) in bits: <= 0/);
    const got = perBase(lines).get(G27_NAME)!;
    const positions = [...Array(399).keys()]
      .map((i) => i + 1)
      .concat(
        [...Array(300).keys()].map((i) => 500000 + i),
        [...Array(300).keys()].map((i) => len - 300 + i),
      );
    expect(got.has(0)).toBe(false); // no context, no value
    expect(got.size).toBe(positions.length);
    let worst = 0,
      shifted = 0;
    const cache = new Map<number, number[]>();
    for (const p of positions) {
      const s = windowStart(p, len);
      if (!cache.has(s)) cache.set(s, evalLogProbs(seq.slice(s, s + N + 1)));
      const want = cache.get(s)![p - s - 1]!;
      worst = Math.max(worst, Math.abs(got.get(p)! - want));
      // the same base with only 8 bases of context: the check below shows the model uses its context
      if (p >= 9) shifted += Math.abs(evalLogProbs(seq.slice(p - 8, p + 1))[7]! - want) / positions.length;
    }
    // the issue asks for 1e-4 bits; f32 batching differences are ~1e-6, and a window shifted by two bases
    // (more context for some bases) already differs by ~1e-4 with this small model, so hold it to 2e-5
    expect(worst).toBeLessThan(2e-5);
    expect(shifted).toBeGreaterThan(1e-3);
    // a summary line per region and one for all, in bits per base (positive)
    expect(r.err).toMatch(/:1-400\t399 bases scored\tmean \d\.\d{4} bits per base/);
    expect(r.err).toMatch(/all regions\t999 bases scored/);
  });

  it('every scored base but the first N sees between N/2 and N bases of context, each base once', () => {
    for (const len of [2, 50, 65, 66, 200, 1001, 4097]) {
      const seen = new Array<number>(len).fill(0);
      for (const w of planWindows(len, N, 0, len)) {
        for (let p = w.keepFrom; p < w.keepTo; p++) {
          seen[p]!++;
          const c = p - w.start;
          expect(c).toBeLessThanOrEqual(N);
          if (p > N) expect(c).toBeGreaterThanOrEqual(N / 2);
          else expect(c).toBe(p);
        }
      }
      expect(
        seen.slice(1).every((n) => n === 1),
        `len ${len}`,
      ).toBe(true);
      expect(seen[0]).toBe(0);
    }
  });

  it('streams in chunks whose values do not depend on the chunk size or the region asked for', () => {
    const fa = IndexedFasta.open(G27);
    try {
      const rec = fa.record(G27_NAME);
      const seq = {
        length: rec.length,
        read: (s: number, e: number) => fa.tokens(rec, s, e),
        reverseComplement: (t: Uint8Array) =>
          Uint8Array.from(t)
            .reverse()
            .map((x) => (x >= 4 && x <= 7 ? 11 - x : x)),
      };
      const opts = { context: N, strand: 'both' as const, batchTokens: 4096 };
      const whole = [...scoreTrack(model, seq, 1000, 1600, { ...opts, chunk: 1 << 20 })];
      const small = [...scoreTrack(model, seq, 1000, 1600, { ...opts, chunk: 100 })];
      const sub = [...scoreTrack(model, seq, 1234, 1300, opts)];
      expect(whole.length).toBe(1);
      expect(small.length).toBeGreaterThan(4);
      expect(Math.max(...small.map((c) => c.values.length))).toBeLessThanOrEqual(100 + H);
      const flat = small.flatMap((c) => [...c.values]);
      const ref = [...whole[0]!.values];
      expect(flat.length).toBe(ref.length);
      expect(Math.max(...flat.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(1e-6);
      expect(Math.max(...[...sub[0]!.values].map((v, i) => Math.abs(v - ref[234 + i]!)))).toBeLessThan(1e-6);
    } finally {
      fa.close();
    }
  });

  it('--strand both averages the forward value and the reverse-complement value of each base', () => {
    const seq = g27().slice(10000, 10050);
    const fa = join(dir, 'short.fa');
    writeFasta(fa, [{ name: 's', seq }]);
    const out = join(dir, 'both.bedGraph');
    const r = cli(
      'dna',
      [
        'score',
        '--checkpoint',
        run,
        fa,
        '--context',
        String(N),
        '--strand',
        'both',
        '--per-base',
        '--decimals',
        '6',
        '-o',
        out,
      ],
      dir,
    );
    expect(r.code, r.err).toBe(0);
    const got = perBase(parseBedGraph(readFileSync(out, 'utf8')).lines).get('s')!;
    const f = [NaN, ...evalLogProbs(seq)];
    const rc = [NaN, ...evalLogProbs(revcomp(seq))];
    const n = seq.length;
    expect(got.size).toBe(n);
    for (let p = 0; p < n; p++) {
      const a = f[p]!,
        b = rc[n - 1 - p]!;
      const want = Number.isNaN(a) ? b : Number.isNaN(b) ? a : (a + b) / 2;
      expect(Math.abs(got.get(p)! - want), `base ${p}`).toBeLessThan(1e-5);
    }
  });

  it('writes a sorted bedGraph (record order, then position) from unsorted, overlapping regions and a BED file', () => {
    const g = g27();
    const fa = join(dir, 'three.fa');
    // record order differs from name order, so sorting by name would be wrong
    writeFasta(fa, [
      { name: 'chrB', seq: g.slice(0, 3000) },
      { name: 'chrA', seq: g.slice(3000, 5000) },
      { name: 'chrC', seq: g.slice(5000, 6500) },
    ]);
    const bed = join(dir, 'r.bed');
    writeFileSync(bed, 'track name=x\n# a comment\nchrC\t100\t400\tc1\nchrA\t0\t500\nchrB\t1100\t1500\n');
    const args = [
      'score',
      '--checkpoint',
      run,
      fa,
      'chrB:1001-1200',
      'chrA:451-800',
      '--bed',
      bed,
      '--context',
      String(N),
      '--decimals',
      '1',
    ];
    const merged = cli('dna', [...args, '-o', join(dir, 'm.bedGraph')], dir);
    expect(merged.code, merged.err).toBe(0);
    const each = cli('dna', [...args, '--per-base', '-o', join(dir, 'p.bedGraph')], dir);
    expect(each.code, each.err).toBe(0);
    const m = parseBedGraph(readFileSync(join(dir, 'm.bedGraph'), 'utf8')).lines;
    const p = parseBedGraph(readFileSync(join(dir, 'p.bedGraph'), 'utf8')).lines;
    const rank: Record<string, number> = { chrB: 0, chrA: 1, chrC: 2 };
    for (const lines of [m, p]) {
      for (let i = 1; i < lines.length; i++) {
        const a = lines[i - 1]!,
          b = lines[i]!;
        expect(rank[a.chrom]! < rank[b.chrom]! || (a.chrom === b.chrom && a.end <= b.start), `line ${i + 1}`).toBe(
          true,
        );
      }
    }
    expect(m.length).toBeLessThan(p.length); // runs of equal rounded values share a line
    expect(p.every((l) => l.end - l.start === 1)).toBe(true);
    expect(perBase(m)).toEqual(perBase(p));
    const chrB = perBase(p).get('chrB')!;
    expect(Math.min(...chrB.keys())).toBe(1000);
    expect(Math.max(...chrB.keys())).toBe(1499); // 1001-1200 and BED 1100-1500 merged
    expect(merged.err).toMatch(/chrB:1001-1500\t500 bases scored/);
    expect(merged.err).toMatch(/chrA:1-800\t799 bases scored/); // base 0 of chrA has no context
  });

  it('writes, from its writer thread, the bytes an in-process BedGraphWriter gives, over many chunks and regions', () => {
    const g = g27();
    const fa = join(dir, 'chunks.fa');
    const records = [
      { name: 'chrB', seq: g.slice(20000, 26000) },
      { name: 'chrA', seq: g.slice(40000, 43000) },
    ];
    writeFasta(fa, records);
    // in record order and apart, so they are scored as given; 0-based half-open below
    const regions = [
      { name: 'chrB', start: 0, end: 2500 },
      { name: 'chrB', start: 3000, end: 6000 },
      { name: 'chrA', start: 100, end: 3000 },
    ];
    // 512 tokens a pass: chunks of 16 N = 1024 positions, 2-3 per region
    const batchTokens = 512;
    for (const [strand, extra] of [
      ['forward', ['--decimals', '2']],
      ['both', ['--per-base']],
    ] as const) {
      const out = join(dir, `chunks-${strand}.bedGraph`);
      const r = cli(
        'dna',
        [
          'score',
          '--checkpoint',
          run,
          fa,
          ...regions.map((x) => `${x.name}:${x.start + 1}-${x.end}`),
          '--context',
          String(N),
          '--batch-tokens',
          String(batchTokens),
          '--strand',
          strand,
          ...extra,
          '--device',
          'cpu', // the device of the in-process model below: the same bits are compared
          '-o',
          out,
        ],
        dir,
      );
      expect(r.code, r.err).toBe(0);
      const parts: Buffer[] = [];
      const strandText = strand === 'both' ? '; mean of both strands' : '';
      parts.push(Buffer.from(BedGraphWriter.trackLine('mamba score', `${SCORE_CONVENTION}; N=${N}${strandText}`)));
      const bg = new BedGraphWriter(
        { writeBytes: (b) => parts.push(Buffer.from(b)) },
        { decimals: extra[0] === '--decimals' ? 2 : 4, perBase: extra[0] === '--per-base' },
      );
      let chunks = 0;
      const fasta = IndexedFasta.open(fa);
      for (const x of regions) {
        const rec = fasta.record(x.name);
        const seq = {
          length: rec.length,
          read: (a: number, b: number) => fasta.tokens(rec, a, b),
          reverseComplement: (w: Uint8Array) => reverseComplement(w),
        };
        for (const c of scoreTrack(model, seq, x.start, x.end, { context: N, strand, batchTokens })) {
          bg.add(x.name, c.start, c.values);
          chunks++;
        }
      }
      fasta.close();
      bg.finish();
      expect(chunks).toBeGreaterThanOrEqual(6);
      expect(readFileSync(out).equals(Buffer.concat(parts)), `strand ${strand}`).toBe(true);
    }
  });

  it('writes standard output for -o - (the same bytes as a file), and stops quietly when the reader does', () => {
    const args = ['score', '--checkpoint', run, G27, `${G27_NAME}:1-3000`, `${G27_NAME}:200001-210000`];
    const file = cli('dna', [...args, '-o', join(dir, 'file.bedGraph')], dir);
    expect(file.code, file.err).toBe(0);
    const piped = cli('dna', [...args, '-o', '-'], dir);
    expect(piped.code, piped.err).toBe(0);
    expect(piped.out).toBe(readFileSync(join(dir, 'file.bedGraph'), 'utf8'));
    expect(existsSync(join(dir, '-'))).toBe(false);
    // a reader that leaves after 100 bytes: exit 141 (as a SIGPIPE death), no error line
    const bin = join(root, 'bin', 'mamba-dna.js');
    const quoted = [process.execPath, bin, ...args, '-o', '-'].map((a) => `'${a}'`).join(' ');
    const h = spawnSync('bash', ['-c', `${quoted} 2>err.txt | head -c 100 >/dev/null; echo \${PIPESTATUS[0]}`], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, MAMBA_NUM_THREADS: '1' },
    });
    expect(h.stdout.trim()).toBe('141');
    expect(readFileSync(join(dir, 'err.txt'), 'utf8')).not.toMatch(/error/);
  });

  it('ends with one error line and exit 1 when the output device is full (a write error on the writer thread)', () => {
    const r = cli('dna', ['score', '--checkpoint', run, G27, `${G27_NAME}:1-30000`, '-o', '/dev/full'], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^mamba-dna: error: ENOSPC: no space left on device, write$/m);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('refuses a malformed BED file with its line number, a missing run folder, an existing output or a missing folder', () => {
    const bed = join(dir, 'bad.bed');
    writeFileSync(bed, `browser position x\n${G27_NAME}\t10\t20\n${G27_NAME}\tten\t20\n`);
    const r = cli('dna', ['score', '--checkpoint', run, G27, '--bed', bed, '-o', join(dir, 'bad.bedGraph')], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.bed: line 3: start and end must be whole numbers/);
    expect(r.err).not.toMatch(/\n\s+at /);
    writeFileSync(join(dir, 'exists.bedGraph'), 'x');
    const e = cli(
      'dna',
      ['score', '--checkpoint', run, G27, `${G27_NAME}:1-100`, '-o', join(dir, 'exists.bedGraph')],
      dir,
    );
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/already exists; pass -f\/--force/);
    const d = cli(
      'dna',
      ['score', '--checkpoint', run, G27, `${G27_NAME}:1-100`, '-o', join(dir, 'no', 'such', 'x.bedGraph')],
      dir,
    );
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/the folder .*no\/such does not exist/);
    const c = cli('dna', ['score', '--checkpoint', join(dir, 'nothing'), G27, '-o', join(dir, 'c.bedGraph')], dir);
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/no such run folder/);
  });
});
