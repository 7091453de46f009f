#!/usr/bin/env node
// Is there a species signal in the great-apes set at all? A cheap, model-free reference for
// pipelines/great-apes.js: a multinomial naive-Bayes classifier on k-mer counts (k = 3..10), trained on
// each species' train region and tested on windows of L = 2^10 .. 2^20 bases from its test region (the
// same windows per species as great-apes.js scores). Case is folded as the model's tokenizer does (the
// FASTA keeps the alignment's soft-masking, whose share differs by species' assembly, not by biology);
// k-mers with N are skipped. A control scores windows of the train region, which the counts have seen.
//   node pipelines/great-apes-baseline.js             toy size (2^6, 2^8; k = 3, 4)
//   node pipelines/great-apes-baseline.js --full      2^10 .. 2^20, k = 3, 6, 8, 10 (CPU, 34 s on 2 cores)
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fmt, machine, pipelineArgs, sweepLengths, wilson, writeResults } from './lib.js';
import { greatApesBases, greatApesSet, greatApesSplit } from './great-apes-data.js';

const usage = `usage: node pipelines/great-apes-baseline.js [--full] [--out DIR] [--dataset DIR] [--maf FILE]
    [--lengths 10,12,...] [--ks 3,6,8,10]
Builds the great-apes set (mamba-dna dataset build great-apes) into --dataset if it is missing.`;
const a = pipelineArgs('great-apes-baseline', usage, {
  dataset: { type: 'string' },
  maf: { type: 'string' },
  lengths: { type: 'string' },
  ks: { type: 'string' },
});
const full = a.full;
const exps = sweepLengths(a.lengths, full ? [10, 12, 14, 16, 18, 20] : [6, 8]);
const ks = a.ks ? a.ks.split(',').map(Number) : full ? [3, 6, 8, 10] : [3, 4];
if (ks.some((k) => !(Number.isInteger(k) && k >= 1 && k <= 12))) {
  console.error('great-apes-baseline: --ks must be integers in 1..12');
  process.exit(2);
}
/** Test windows per species: the count great-apes.js evaluates. */
const testWindows = (L) => Math.max(16, Math.min(256, Math.floor(2 ** 22 / L)));

const manifest = greatApesSet(resolve(a.dataset ?? join(a.out, '..', 'great-apes-data')), a.maf);
const species = JSON.parse(readFileSync(manifest, 'utf8'))
  .sources.filter((s) => s.split === 'test')
  .map((s) => s.species);

/** The k-mer code starting at every position (-1 where the k-mer holds a non-ACGT base or runs off the end). */
function kmerCodes(seq, k) {
  const codes = new Int32Array(seq.length).fill(-1);
  const mask = 4 ** k - 1;
  let code = 0,
    valid = 0;
  for (let i = 0; i < seq.length; i++) {
    const b = seq[i];
    if (b > 3) valid = 0;
    else {
      code = ((code * 4) & mask) + b; // 4^12 fits in 31 bits
      valid++;
    }
    if (valid >= k) codes[i - k + 1] = code;
  }
  return codes;
}

/** log P(k-mer | species): add-one smoothed frequencies of the species' train k-mers. */
function logProbs(codes, k) {
  const counts = new Float64Array(4 ** k);
  let total = 0;
  for (const c of codes)
    if (c >= 0) {
      counts[c]++;
      total++;
    }
  const lp = new Float64Array(counts.length);
  const denom = Math.log(total + counts.length);
  for (let i = 0; i < counts.length; i++) lp[i] = Math.log(counts[i] + 1) - denom;
  return lp;
}

/** Per class, a prefix sum of the log probability of each k-mer start, so any window scores in O(1). */
function prefixScores(codes, tables) {
  return tables.map((lp) => {
    const p = new Float64Array(codes.length + 1);
    for (let i = 0; i < codes.length; i++) p[i + 1] = p[i] + (codes[i] >= 0 ? lp[codes[i]] : 0);
    return p;
  });
}

/** Evenly spread window starts: `count` windows of L over a sequence of n (overlapping when n < count * L). */
const starts = (n, L, count) =>
  Array.from({ length: count }, (_, i) => (count === 1 ? 0 : Math.round((i * (n - L)) / (count - 1))));

const t0 = Date.now();
const seqs = { train: {}, test: {}, seen: {} };
for (const sp of species) for (const split of ['train', 'test']) seqs[split][sp] = greatApesBases(manifest, sp, split);
// the control's windows: the first 2^22 bases of each train region (as long as the longest test region)
const seenBases = Math.min(2 ** 22, ...species.map((sp) => seqs.train[sp].length));
for (const sp of species) seqs.seen[sp] = seqs.train[sp].subarray(0, seenBases);
console.log(
  `great-apes-baseline: read ${species.length} species' train and test regions in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);

const rows = exps.map((e) => ({ seq_len: 2 ** e }));
const confusion = {};
for (const k of ks) {
  const tables = species.map((sp) => logProbs(kmerCodes(seqs.train[sp], k), k));
  /** per L: windows right and scored over every species, and the confusion matrix, for windows of `split` */
  const tallies = (split) => {
    const per = rows.map(() => ({ right: 0, n: 0, conf: species.map(() => species.map(() => 0)) }));
    species.forEach((sp, truth) => {
      const seq = seqs[split][sp];
      const pre = prefixScores(kmerCodes(seq, k), tables);
      rows.forEach(({ seq_len: L }, i) => {
        if (seq.length < L) return;
        for (const s of starts(seq.length, L, testWindows(L))) {
          const last = s + L - k + 1; // k-mers wholly inside [s, s + L)
          let best = 0;
          for (let c = 1; c < species.length; c++)
            if (pre[c][last] - pre[c][s] > pre[best][last] - pre[best][s]) best = c;
          per[i].conf[truth][best]++;
          if (best === truth) per[i].right++;
          per[i].n++;
        }
      });
    });
    return per;
  };
  const test = tallies('test'),
    seen = tallies('seen');
  rows.forEach((row, i) => {
    const L = row.seq_len;
    row[`k${k}`] = test[i].n ? test[i].right / test[i].n : undefined;
    row[`k${k}_ci`] = wilson(test[i].right, test[i].n);
    row[`k${k}_train`] = seen[i].n ? seen[i].right / seen[i].n : undefined;
    row.test_windows = test[i].n;
    row.disjoint = Math.floor(Math.min(...species.map((sp) => seqs.test[sp].length)) / L);
    confusion[`k${k}_L${Math.log2(L)}`] = test[i].conf;
  });
  console.log(
    `great-apes-baseline: k = ${k}: test accuracy ${rows.map((r) => `2^${Math.log2(r.seq_len)} ${fmt.acc(r[`k${k}`])}`).join(', ')}`,
  );
}

const acc = (v) => fmt.acc(v);
const ci = (v) => (v && Number.isFinite(v[0]) ? `${v[0].toFixed(3)}-${v[1].toFixed(3)}` : '-');
await writeResults(a.out, {
  title: `Great apes: a k-mer naive-Bayes reference (${full ? 'full' : 'toy'}, CPU)`,
  command: `node pipelines/great-apes-baseline.js ${process.argv.slice(2).join(' ')}`.trim(),
  meta: {
    machine: machine('cpu'),
    data: `4 species (${species.join(', ')}) of the great-apes EPO alignment of human chr22, train and test regions (no base shared)`,
    split: greatApesSplit(manifest).human_regions,
    classifier:
      'multinomial naive Bayes: per species add-one smoothed frequencies of the k-mers of its whole train region; a window goes to the species that gives its k-mers the highest likelihood (equal priors); case folded, k-mers with N skipped',
    test_windows:
      'per species max(16, min(256, 2^22 / L)) windows spread evenly over its test region, as great-apes.js: overlapping where the region holds fewer disjoint ones (column "disjoint")',
    control: `the same number of windows from the first ${seenBases.toLocaleString('en-US')} bases of each train region, whose k-mers the counts include (memorisation, not generalisation)`,
    interval: '95% Wilson score interval',
    chance: 0.25,
    confusion,
  },
  columns: [
    { key: 'seq_len', label: 'L', format: fmt.pow2 },
    { key: 'test_windows', label: 'test windows' },
    { key: 'disjoint', label: 'disjoint per species' },
    ...ks.flatMap((k) => [
      { key: `k${k}`, label: `k = ${k} test acc`, format: acc },
      { key: `k${k}_ci`, label: `k = ${k} 95%`, format: ci },
      { key: `k${k}_train`, label: `k = ${k} train-region acc`, format: acc },
    ]),
  ],
  rows,
  plots: [
    {
      file: 'accuracy.svg',
      series: [
        ...ks.map((k) => ({ name: `k = ${k}, test region`, points: rows.map((r) => [r.seq_len, r[`k${k}`]]) })),
        ...ks.slice(-1).map((k) => ({
          name: `k = ${k}, train region (seen)`,
          points: rows.map((r) => [r.seq_len, r[`k${k}_train`]]),
        })),
      ],
      options: {
        title: 'k-mer naive Bayes: species accuracy vs window length',
        xLabel: 'window length (bases)',
        yLabel: 'accuracy',
        logX: true,
        yMin: 0,
        hline: { y: 0.25, label: 'chance (4 species)' },
      },
    },
  ],
});
console.log(`great-apes-baseline: ${((Date.now() - t0) / 1000).toFixed(0)} s in all`);
