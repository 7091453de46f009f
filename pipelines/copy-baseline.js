#!/usr/bin/env node
// What could long context buy on the human test region at all? A model-free reference for dna-scaling.js: an
// order-k Markov model (trained on the Hsap train region) mixed with a copy rule that only long context allows:
// where the K bases before a position occurred earlier inside the window, predict the base that followed that
// occurrence (the most recent one). Repeats (Alu, L1, segmental duplications) give such matches, so the share
// of positions with one, and the bits per base of the mixture, grow with the window length L if the region holds
// repeats a long-context model could copy from. Windows tile the test region as in the LM evaluation, so position
// i sits at offset i mod L of its window and may use a match at most that far back. The mixture weight of the
// copy rule (given a match, per octave of the match's distance) is fitted on the valid region with the whole
// region as history.
//   node pipelines/copy-baseline.js             toy size (L = 2^6 .. 2^10, K = 8, Markov orders 2, 4)
//   node pipelines/copy-baseline.js --full      L = 2^10 .. 2^20, K = 16, Markov orders 6 .. 12 (CPU, about a minute)
import { join, resolve } from 'node:path';
import { fmt, machine, pipelineArgs, sweepLengths, writeResults } from './lib.js';
import { greatApesBases, greatApesSet, greatApesSplit } from './great-apes-data.js';
import { MarkovModel } from './markov.js';

const usage = `usage: node pipelines/copy-baseline.js [--full] [--out DIR] [--dataset DIR] [--maf FILE]
    [--lengths 10,12,...] [--k K] [--orders 6,8,10,12]
Builds the great-apes set (mamba-dna dataset build great-apes) into --dataset if it is missing.`;
const a = pipelineArgs('copy-baseline', usage, {
  dataset: { type: 'string' },
  maf: { type: 'string' },
  lengths: { type: 'string' },
  k: { type: 'string' },
  orders: { type: 'string' },
});
const full = a.full;
const exps = sweepLengths(a.lengths, full ? [10, 12, 14, 16, 18, 20] : [6, 8, 10]);
const K = Number(a.k ?? (full ? 16 : 8));
const orders = a.orders ? a.orders.split(',').map(Number) : full ? [6, 8, 10, 12] : [2, 4];
const fail = (msg) => {
  console.error(`copy-baseline: ${msg}\n${usage}`);
  process.exit(2);
};
if (!(Number.isInteger(K) && K >= 4 && K <= 26)) fail('--k must be an integer in 4..26 (2K bits in a number)');
if (orders.some((k) => !(Number.isInteger(k) && k >= 0 && k <= 13))) fail('--orders must be integers in 0..13');
if (exps.some((e) => !(Number.isInteger(e) && e >= 1 && e <= 24))) fail('--lengths must be exponents in 1..24');

const manifest = greatApesSet(resolve(a.dataset ?? join(a.out, '..', 'great-apes-data')), a.maf);
const seq = Object.fromEntries(['train', 'valid', 'test'].map((s) => [s, greatApesBases(manifest, 'Hsap', s)]));
console.log(
  `Hsap train ${fmt.int(seq.train.length)}, valid ${fmt.int(seq.valid.length)}, test ${fmt.int(seq.test.length)} bases`,
);

/** Order-k Markov log2 P of every position of target (NaN where the base or its k context holds N). */
function markovBits(k, train, target) {
  const m = new MarkovModel(k).train(train);
  const out = new Float64Array(target.length).fill(NaN);
  m.walk(target, (i, c, b) => (out[i] = m.bits(c, b)));
  return out;
}

/**
 * For every position i of s: the distance back to the most recent earlier occurrence of the K bases before i
 * (0 if none), and the base that followed it.
 */
function copyMatches(s) {
  const dist = new Int32Array(s.length),
    next = new Uint8Array(s.length);
  const last = new Map();
  const mod = 4 ** K;
  let code = 0,
    len = 0;
  for (let i = 0; i < s.length; i++) {
    // code holds the K bases before i
    if (len >= K) {
      const j = last.get(code);
      if (j !== undefined) {
        dist[i] = i - j;
        next[i] = s[j];
      }
      last.set(code, i);
    }
    const b = s[i];
    if (b > 3) len = 0;
    else {
      code = (code * 4 + b) % mod;
      len++;
    }
  }
  return { dist, next };
}

/** log2 P of base b under the mixture: copy weight w on the copied base (w = 0: the Markov model alone). */
const mixBits = (markov, b, copied, w) => (w ? Math.log2(w * (b === copied ? 1 : 0) + (1 - w) * 2 ** markov) : markov);
/** The octave of a match distance d >= 1: the copy weight is fitted per octave (near repeats are surer). */
const octave = (d) => Math.floor(Math.log2(d));

// 1. the Markov order: the best on the valid region
let order,
  bestValid = Infinity;
const validBits = {};
for (const k of orders) {
  const v = markovBits(k, seq.train, seq.valid);
  let sum = 0,
    n = 0;
  for (const x of v) {
    if (Number.isNaN(x)) continue;
    sum -= x;
    n++;
  }
  validBits[k] = sum / n;
  if (sum / n < bestValid) [bestValid, order] = [sum / n, k];
}
console.log(
  `Markov on valid, bits per base: ${orders.map((k) => `order ${k} ${validBits[k].toFixed(4)}`).join(', ')}; using order ${order}`,
);

// 2. the copy weight per octave of match distance, fitted on the valid region (history: all of it before each
// position); the loss is a sum over positions, so each octave's weight is fitted on its own
const valid = { markov: markovBits(order, seq.train, seq.valid), ...copyMatches(seq.valid) };
const byOctave = Array.from({ length: 32 }, () => []);
for (let i = 0; i < seq.valid.length; i++) {
  const m = valid.markov[i],
    d = valid.dist[i];
  if (!Number.isNaN(m) && d > 0) byOctave[octave(d)].push([m, seq.valid[i] === valid.next[i]]);
}
const weights = byOctave.map((xs) => {
  let best = 0,
    bestSum = Infinity;
  for (let w = 0; w <= 0.99; w += 0.01) {
    let sum = 0;
    for (const [m, right] of xs) sum -= Math.log2(w * (right ? 1 : 0) + (1 - w) * 2 ** m);
    if (sum < bestSum) [bestSum, best] = [sum, w];
  }
  return xs.length ? best : 0;
});
const weightText = weights
  .map((w, j) => (byOctave[j].length ? `2^${j}: ${w.toFixed(2)}` : ''))
  .filter(Boolean)
  .join(', ');
console.log(`copy weight by match distance (valid): ${weightText}`);

// 3. the test region at each window length: position i at offset i mod L may copy from at most that far back
const test = { markov: markovBits(order, seq.train, seq.test), ...copyMatches(seq.test) };
const rows = [];
const curves = [];
for (const e of exps) {
  const L = 2 ** e;
  let n = 0,
    markovSum = 0,
    mixSum = 0,
    usable = 0,
    correct = 0;
  // bits by offset in octave bins [2^j, 2^(j+1)) (offset 0 in the first), as the LM position curves
  const binSum = new Float64Array(e + 1),
    binN = new Float64Array(e + 1);
  for (let i = 0; i < seq.test.length; i++) {
    const m = test.markov[i];
    if (Number.isNaN(m)) continue;
    const o = i % L,
      d = test.dist[i];
    const u = d > 0 && d <= o;
    const bits = -mixBits(m, seq.test[i], test.next[i], u ? weights[octave(d)] : 0);
    n++;
    markovSum -= m;
    mixSum += bits;
    if (u) {
      usable++;
      if (test.next[i] === seq.test[i]) correct++;
    }
    const bin = o < 1 ? 0 : Math.min(e, Math.floor(Math.log2(o)));
    binSum[bin] += bits;
    binN[bin]++;
  }
  rows.push({
    seq_len: L,
    positions: n,
    markov_bits: markovSum / n,
    mix_bits: mixSum / n,
    usable: usable / n,
    copy_accuracy: usable ? correct / usable : 0,
  });
  curves.push({
    L,
    points: [...binN].flatMap((c, j) => (c ? [[Math.max(1, 2 ** j), binSum[j] / c]] : [])),
  });
  const r = rows[rows.length - 1];
  console.log(
    `L = 2^${e}: Markov ${r.markov_bits.toFixed(4)}, with copies ${r.mix_bits.toFixed(4)} bits/base; ` +
      `${(100 * r.usable).toFixed(2)}% of positions with a usable match, ${(100 * r.copy_accuracy).toFixed(1)}% of those right`,
  );
}

await writeResults(a.out, {
  title: 'What exact repeats inside the window could buy on the human test region (Markov + copy, no model)',
  command: `node pipelines/copy-baseline.js ${process.argv.slice(2).join(' ')}`.trim(),
  meta: {
    machine: machine('cpu'),
    data: `Hsap rows of the great-apes set: train ${seq.train.length} bases (Markov counts), valid ${seq.valid.length} (order and copy weight), test ${seq.test.length}`,
    split: greatApesSplit(manifest),
    markov: `order ${order} (best on valid of ${orders.join(', ')}: ${orders.map((k) => validBits[k].toFixed(4)).join(', ')} bits/base), add-1/2 smoothing`,
    copy: `K = ${K}: where the ${K} bases before a position occurred earlier in the window, the base after the most recent occurrence gets a weight by the octave of its distance (fitted on valid: ${weightText}), the Markov distribution the rest`,
    windows:
      'windows of L tile the test region; position i is at offset i mod L and may copy from at most that far back',
  },
  columns: [
    { key: 'seq_len', label: 'L', format: (v) => `2^${Math.log2(v)}` },
    { key: 'positions', label: 'positions', format: fmt.int },
    { key: 'markov_bits', label: 'Markov bits/base', format: (v) => v.toFixed(4) },
    { key: 'mix_bits', label: 'Markov + copy bits/base', format: (v) => v.toFixed(4) },
    { key: 'usable', label: 'positions with a match in the window', format: (v) => `${(100 * v).toFixed(2)}%` },
    { key: 'copy_accuracy', label: 'copied base right', format: (v) => `${(100 * v).toFixed(1)}%` },
  ],
  rows,
  plots: [
    {
      file: 'bits.svg',
      series: [
        { name: `Markov order ${order}`, points: rows.map((r) => [r.seq_len, r.markov_bits]) },
        { name: `Markov + copy (K = ${K})`, points: rows.map((r) => [r.seq_len, r.mix_bits]) },
      ],
      options: {
        title: 'Held-out bits per base vs window length, no model',
        xLabel: 'window length L (bases)',
        yLabel: 'bits per base',
        logX: true,
      },
    },
    {
      file: 'position.svg',
      series: curves.map((c) => ({ name: `L = 2^${Math.log2(c.L)}`, points: c.points })),
      options: {
        title: 'Markov + copy: bits per base by position in the window',
        xLabel: 'position in window (octave bins)',
        yLabel: 'bits per base',
        logX: true,
      },
    },
  ],
});
