#!/usr/bin/env node
// Host side of `mamba-dna score`, stage by stage, with the model's forward stubbed out (a stand-in that
// returns zero losses at once), so each rate is what the host alone allows: the GPU run's bases/s cannot beat
// the slowest stage unless it overlaps the forward. Stages: FASTA reading of the windows, window assembly and
// hand-out (LogProbPipeline, the whole track minus the forward), bedGraph formatting (runs and per base), the
// per-region summary, and the whole host path as `score` runs it: chunks produced, summed, formatted as bedGraph
// and written to a file, with the formatting and writing on the main thread (as score did before) and on the
// writer thread (BedGraphThread, as score does now).
//   node bench/score-host.js [--fasta FILE] [--copies K] [--context N] [--strand forward|both] [--reps 3]
// Default genome: E. coli K-12 MG1655 from Debian's ragout-examples (4.6 Mbp), else the shipped G27.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { BedGraphWriter } from '../dist/data/dna/bedgraph.js';
import { BedGraphThread } from '../dist/data/dna/bedgraph-thread.js';
import { AtomicOutput } from '../dist/util/text-output.js';
import { IndexedFasta, reverseComplement } from '../dist/data/dna/index.js';
import { planWindows, scoreTrack } from '../dist/workflows/track.js';

const { values: o } = parseArgs({
  options: {
    fasta: { type: 'string' },
    context: { type: 'string', default: String(2 ** 16) },
    strand: { type: 'string', default: 'forward' },
    'batch-tokens': { type: 'string', default: String(2 ** 23) },
    reps: { type: 'string', default: '3' },
    copies: { type: 'string', default: '1' },
  },
});
const root = resolve(new URL('..', import.meta.url).pathname);
const ECOLI = ['/usr/share/doc/ragout/examples', '/usr/share/doc/ragout-examples/examples']
  .map((d) => join(d, 'E.Coli/references/MG1655-K12.fasta.gz'))
  .find(existsSync);
// the package ships plain gzip, which random access refuses: a plain copy in a temp folder
const tmp = mkdtempSync(join(tmpdir(), 'mamba-score-host-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let fastaPath = o.fasta ? resolve(o.fasta) : join(root, 'datasets/dna/h_pylori/G27.fa.gz');
if (!o.fasta && ECOLI) {
  fastaPath = join(tmp, 'MG1655-K12.fa');
  writeFileSync(fastaPath, gunzipSync(readFileSync(ECOLI)));
}
// --copies K: the first record K times over as one record, a chromosome of a human row's length (21.6 Mbp) from
// E. coli's 4.6, so the track has as many passes as score's has there (the overlap of the writer thread needs them)
if (Number(o.copies) > 1) {
  const raw = readFileSync(fastaPath);
  const text = (fastaPath.endsWith('.gz') ? gunzipSync(raw) : raw).toString('latin1');
  const first = text.slice(0, text.indexOf('\n') + 1);
  const next = text.indexOf('\n>', first.length);
  const bases = text
    .slice(first.length, next < 0 ? text.length : next + 1)
    .replace(/\s/g, '')
    .repeat(Number(o.copies));
  const lines = [first];
  for (let i = 0; i < bases.length; i += 70) lines.push(`${bases.slice(i, i + 70)}\n`);
  fastaPath = join(tmp, 'copies.fa');
  writeFileSync(fastaPath, lines.join(''), 'latin1');
}
const N = Number(o.context),
  batchTokens = Number(o['batch-tokens']),
  reps = Number(o.reps);
const fa = IndexedFasta.open(fastaPath);
const rec = fa.records.reduce((a, r) => (r.length > a.length ? r : a));
const len = rec.length;
const seq = {
  length: len,
  read: (s, e) => fa.tokens(rec, s, e),
  reverseComplement: (t) => reverseComplement(t),
};

/** A model whose forward costs nothing: zero losses of the right length, at once. */
const stubModel = {
  device: 'cpu',
  launchTokenLosses: (batch) => {
    const out = new Float32Array(batch.B * batch.L);
    return () => out;
  },
};

/** The stub with losses that vary from base to base (as a model's do), so the bedGraph has a line per base or so. */
const variedLosses = new Map();
const variedModel = {
  device: 'cpu',
  launchTokenLosses: (batch) => {
    const n = batch.B * batch.L;
    let out = variedLosses.get(n);
    if (!out) {
      out = new Float32Array(n);
      let s = 7;
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        out[i] = 4 * Math.LN2 * (s / 2 ** 32) ** 2;
      }
      variedLosses.set(n, out);
    }
    return () => out;
  },
};

async function best(f) {
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await f();
    t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return t;
}
const rows = [];
const rate = (name, bases, secs, note = '') => {
  rows.push({ name, mbps: bases / secs / 1e6, secs, note });
  console.log(
    `${name.padEnd(44)} ${(bases / secs / 1e6).toFixed(1).padStart(7)} M bases/s  (${secs.toFixed(3)} s) ${note}`,
  );
};
const scored = len - 1;
console.log(`${fastaPath}: ${rec.name}, ${len.toLocaleString('en-US')} bases; N = ${N}, strand ${o.strand}\n`);

// 1. the FASTA reads of every window (N + 1 bases each, stride N/2)
let readBases = 0;
rate(
  'FASTA reads of the windows',
  scored,
  await best(() => {
    readBases = 0;
    for (const p of planWindows(len, N, 0, len)) readBases += fa.tokens(rec, p.start, p.keepTo).length;
  }),
  `(${(readBases / scored).toFixed(2)} bases read per base scored)`,
);

// 2. the whole track with the forward stubbed: reads, assembly into passes, hand-out, strand averaging
let values = new Float64Array(0);
rate(
  'track minus the forward (stub model)',
  scored,
  await best(() => {
    for (const c of scoreTrack(stubModel, seq, 0, len, { context: N, strand: o.strand, batchTokens }))
      values = c.values;
  }),
);

// realistic values for the writers: bits in [-4, 0), a new value at nearly every base (as a model gives)
const vals = new Float64Array(len);
let s = 1;
for (let i = 1; i < len; i++) {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  vals[i] = -4 * (s / 2 ** 32) ** 2;
}
vals[0] = NaN;
const nullSink = {
  bytes: 0,
  writeBytes(b) {
    this.bytes += b.length;
  },
};
for (const perBase of [false, true]) {
  nullSink.bytes = 0;
  rate(
    `bedGraph formatting (${perBase ? 'per base' : 'runs'}, 4 decimals)`,
    scored,
    await best(() => {
      const bg = new BedGraphWriter(nullSink, { decimals: 4, perBase });
      for (let c = 0; c < len; c += 1 << 20) bg.add(rec.name, c, vals.subarray(c, Math.min(len, c + (1 << 20))));
      bg.finish();
    }),
    `(${(nullSink.bytes / reps / scored).toFixed(1)} bytes per base)`,
  );
}
// the per-region summary loop of score-command
let sum = 0,
  counted = 0;
rate(
  'summary (count and sum of the values)',
  scored,
  await best(() => {
    sum = 0;
    counted = 0;
    for (const v of vals)
      if (!Number.isNaN(v)) {
        counted++;
        sum -= v;
      }
  }),
  `(mean ${(sum / Math.max(counted, 1)).toFixed(3)} bits)`,
);
// toFixed, the formatter the writer replaces, for comparison
rate(
  'toFixed(4) alone, for comparison',
  scored,
  await best(() => {
    let k = 0;
    for (let i = 1; i < len; i++) k += vals[i].toFixed(4).length;
    return k;
  }),
);

// the whole score path minus the forward: chunks of the track, the per-region summary, bedGraph runs (4
// decimals) written to a file through AtomicOutput, on the main thread as before and on the writer thread now
const outFile = join(tmp, 'score.bedGraph');
const header = BedGraphWriter.trackLine('mamba score', 'bench');
async function produce(add) {
  let n = 0,
    bits = 0;
  for (const c of scoreTrack(variedModel, seq, 0, len, { context: N, strand: o.strand, batchTokens })) {
    for (const v of c.values)
      if (!Number.isNaN(v)) {
        n++;
        bits -= v;
      }
    // the writer thread's add() is a promise (it rejects if the thread dies); the main thread's is not
    await add(c);
  }
  return bits / n;
}
const wrote = () => `(${(statSync(outFile).size / scored).toFixed(1)} bytes per base written)`;
rate(
  'score end to end, formatting on the main thread',
  scored,
  await best(async () => {
    const w = new AtomicOutput(outFile);
    w.write(header);
    const bg = new BedGraphWriter(w, { decimals: 4, perBase: false });
    await produce((c) => bg.add(rec.name, c.start, c.values));
    bg.finish();
    w.close();
  }),
  wrote(),
);
const before = readFileSync(outFile);
rate(
  'score end to end, formatting on the writer thread',
  scored,
  await best(async () => {
    const w = new AtomicOutput(outFile);
    const bg = await BedGraphThread.start(w.fd, { decimals: 4, perBase: false, header });
    await produce((c) => bg.add(rec.name, c.start, c.values));
    await bg.finish();
    w.close();
    await bg.stop();
  }),
  wrote(),
);
if (!before.equals(readFileSync(outFile))) throw new Error('the writer thread wrote other bytes than the main thread');
fa.close();
void values;
