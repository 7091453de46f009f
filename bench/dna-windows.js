#!/usr/bin/env node
// DNA window throughput: random 2^20-base windows (tokens out) through the .fai layout, from plain and
// bgzip FASTA, beside the raw read speed of the same bytes (pread of the plain bytes, raw BGZF block
// inflation). Writes its table into bench/README.md under "DNA windows".
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { openSync, readSync, closeSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { BgzfWriter, DEFAULT_DNA_DATA, IndexedFasta, openDnaSource, scanBgzf } from '../dist/data/dna/index.js';
import { Rng } from '../dist/util/rng.js';
import { writeReadmeSection } from './readme.js';

const L = 1 << 20;
const SHORT = 1025; // a window of the 2^10 training draw (L + 1 bases)
const WINDOWS = 24; // windows per run
const RUNS = 7;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => (x / 1e6).toFixed(0);

function timeRuns(fn) {
  fn(); // warm the page cache and the JIT
  const rates = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    const bytes = fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(bytes / s);
  }
  return median(rates);
}

const tmp = mkdtempSync(join(tmpdir(), 'dna-bench-'));
try {
  const genomes = [
    { label: 'H. pylori G27 (shipped)', bgz: DEFAULT_DNA_DATA, plainBytes: gunzipSync(readFileSync(DEFAULT_DNA_DATA)) },
  ];
  const ecoli = '/usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz';
  if (existsSync(ecoli)) {
    const bytes = gunzipSync(readFileSync(ecoli));
    const w = new BgzfWriter();
    w.write(bytes);
    const bgz = join(tmp, 'ecoli.fa.gz');
    writeFileSync(bgz, w.finish().data);
    genomes.push({ label: 'E. coli K-12 MG1655', bgz, plainBytes: bytes });
  }
  const rows = [];
  for (const g of genomes) {
    const plain = join(tmp, `${rows.length}.fa`);
    writeFileSync(plain, g.plainBytes);
    const fa = IndexedFasta.open(plain, { writeIndex: false });
    const rec = fa.records[0];
    const span = Math.floor((L - 1) / rec.lineBases) * rec.lineWidth + ((L - 1) % rec.lineBases) + 1;
    console.log(
      `${g.label}: ${rec.length.toLocaleString('en-US')} bases, ${rec.lineBases} bases/line; window ${L} bases = ${span} file bytes; ${WINDOWS} windows x ${RUNS} runs, median`,
    );

    // floors: the raw bytes of a window by pread (plain), every BGZF block inflated (bgzip)
    const fd = openSync(plain, 'r');
    const buf = Buffer.allocUnsafe(span);
    const rng0 = new Rng(1);
    const preadRate = timeRuns(() => {
      for (let i = 0; i < WINDOWS; i++)
        readSync(fd, buf, 0, span, rec.offset + rng0.int(g.plainBytes.length - span - rec.offset));
      return WINDOWS * span;
    });
    closeSync(fd);
    const compressed = readFileSync(g.bgz);
    const idx = scanBgzf(g.bgz);
    const inflateRate = timeRuns(() => {
      let out = 0;
      for (let b = 0; b < idx.coff.length; b++) {
        const c = idx.coff[b];
        const xlen = compressed.readUInt16LE(c + 10);
        const bsize = compressed.readUInt16LE(c + 16) + 1;
        out += inflateRawSync(compressed.subarray(c + 12 + xlen, c + bsize - 8)).length;
      }
      return out;
    });

    // bases per second of `count` random windows of `length` bases per run
    const rate = (path, opts, length = L, count = WINDOWS) => {
      const src = openDnaSource(path, { writeIndex: false, ...opts });
      const rng = new Rng(7);
      const v = timeRuns(() => {
        let n = 0;
        for (let i = 0; i < count; i++) n += src.randomWindowSync(length, rng).tokens.length;
        return n;
      });
      src.close();
      return v;
    };
    const plainRate = rate(plain, {});
    const bgzRate = rate(g.bgz, {});
    const bgzCold = rate(g.bgz, { cacheBlocks: 0 });
    // the draw of a training step at L = 2^10: 1,024 random windows of 1,025 bases, after a warm-up that fills
    // the window cache; with the whole file's blocks cached (the window source's default) and with 4 (the
    // reader's default, which a window source had before)
    const rateShort = (opts) => rate(g.bgz, opts, SHORT, 1024);
    const shortCached = rateShort({});
    const shortFour = rateShort({ cacheBlocks: 4 });
    fa.close();
    const row = { genome: g.label, plainRate, bgzRate, bgzCold, preadRate, inflateRate, shortCached, shortFour };
    rows.push(row);
    console.log(
      `  plain FASTA windows: ${fmt(plainRate)} M bases/s   (pread of the window's bytes: ${fmt(preadRate)} MB/s)`,
    );
    console.log(
      `  bgzip windows:       ${fmt(bgzRate)} M bases/s   (no block cache: ${fmt(bgzCold)} M bases/s; raw BGZF inflate: ${fmt(inflateRate)} MB/s)`,
    );
    console.log(
      `  bgzip 1 kb windows:  ${fmt(shortCached)} M bases/s with the window cache, ${fmt(shortFour)} M bases/s with 4 blocks`,
    );
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const table = [
    '## DNA windows',
    '',
    `Random windows of 2^20 = 1,048,576 bases, tokens out (\`FastaWindowSource.randomWindowSync\`: one read of the window's bytes, a memcpy per line placed by the .fai layout, then one in-place pass through a 64K-entry table that maps two bases per load), one core, ${cpu}, node ${process.version}. ${WINDOWS} windows per run, median of ${RUNS} runs. Floors: pread of the same number of file bytes at random offsets (page cache), and raw inflation of every BGZF block of the file (bytes out). A window source keeps up to 8,192 decompressed blocks (512 MiB, shared by its files: \`WINDOW_CACHE_BLOCKS\`), so each block of these genomes is inflated once; "no cache" inflates every block of every window. Target: at least 100 M bases/s. The last two columns are the draw of a training step at L = 2^10 (1,024 windows of 1,025 bases per run, after a warm-up): with the window cache, and with the 4 blocks a window source kept before, when every window inflated a block of its own.`,
    '',
    '| genome | plain FASTA windows (M bases/s) | pread floor (MB/s) | bgzip windows (M bases/s) | bgzip, no cache (M bases/s) | raw BGZF inflate (MB/s) | bgzip 1 kb windows (M bases/s) | the same, 4 blocks cached |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.genome} | ${fmt(r.plainRate)} | ${fmt(r.preadRate)} | ${fmt(r.bgzRate)} | ${fmt(r.bgzCold)} | ${fmt(r.inflateRate)} | ${fmt(r.shortCached)} | ${fmt(r.shortFour)} |`,
    ),
    '',
    'Command: `npm run build && node bench/dna-windows.js`',
    '',
  ].join('\n');
  writeReadmeSection(table);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
