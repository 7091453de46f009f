#!/usr/bin/env node
// The reference a DNA language model must beat: order-k Markov models (k-mer counts with add-1/2
// smoothing) trained on the same training part and scored on the same held-out part as `mamba-dna train`
// (first 95% / last 5% of each record). Held-out bits per base for k = 0..max, written like every
// pipeline's results: results.json, results.md, bits.svg and report.html in runs/pipelines/markov-baseline/.
//   node pipelines/markov-baseline.js [--data FASTA] [--max-order 12] [--out DIR]
import { join, resolve } from 'node:path';
import { fmt, machine, pipelineArgs, root, writeResults } from './lib.js';
import { MarkovModel } from './markov.js';

const usage =
  'usage: node pipelines/markov-baseline.js [--data FASTA (default: the shipped G27 genome)] ' +
  '[--max-order K (default 12)] [--out DIR]';
const a = pipelineArgs('markov-baseline', usage, { data: { type: 'string' }, 'max-order': { type: 'string' } });
const maxK = Number(a['max-order'] ?? 12);
if (!Number.isInteger(maxK) || maxK < 0 || maxK > 14) {
  console.error(`markov-baseline: --max-order must be an integer in 0..14 (4^k contexts), got ${a['max-order']}`);
  process.exit(2);
}
const dna = await import(join(root, 'dist', 'data', 'dna', 'index.js'));
const file = resolve(a.data ?? dna.DEFAULT_DNA_DATA);
const { train, valid } = dna.openHoldoutSplits(file, 0.05);
const collect = (src) => {
  const parts = [];
  for (const w of src.sequentialWindowsSync(Math.min(src.maxWindowLength(), 1 << 22))) parts.push(w.tokens);
  return parts;
};
// tokens A C G T -> base codes 0..3; N and others (4) break the context
const codes = (parts) => parts.map((p) => Uint8Array.from(p, (t) => (t >= 4 && t <= 7 ? t - 4 : 4)));
const tr = codes(collect(train)),
  va = codes(collect(valid));
const count = (parts) => parts.reduce((s, p) => s + p.length, 0);
console.log(`train ${fmt.int(count(tr))} bases, held out ${fmt.int(count(va))} bases`);
const rows = [];
for (let k = 0; k <= maxK; k++) {
  const m = new MarkovModel(k);
  for (const p of tr) m.train(p);
  let bits = 0,
    n = 0;
  for (const p of va)
    m.walk(p, (_, ctx, c) => {
      bits -= m.bits(ctx, c);
      n++;
    });
  rows.push({ order: k, bits_per_base: bits / n, scored_bases: n });
}
const best = rows.reduce((b, r) => (r.bits_per_base < b.bits_per_base ? r : b));
await writeResults(a.out, {
  title: 'Order-k Markov references, held-out bits per base',
  command: `node pipelines/markov-baseline.js ${process.argv.slice(2).join(' ')}`.trim(),
  meta: {
    machine: machine('cpu'),
    data: file,
    split: 'train on the first 95% of each record, score the last 5%',
    smoothing: 'add-1/2',
    train_bases: count(tr),
    held_out_bases: count(va),
    best_order: best.order,
    best_bits_per_base: best.bits_per_base,
  },
  columns: [
    { key: 'order', label: 'order k' },
    { key: 'bits_per_base', label: 'held-out bits/base', format: fmt.bits },
    { key: 'scored_bases', label: 'scored bases', format: fmt.int },
  ],
  rows,
  plots: [
    {
      file: 'bits.svg',
      series: [{ name: 'order-k Markov', points: rows.map((r) => [r.order, r.bits_per_base]) }],
      options: {
        title: 'Held-out bits per base by Markov order',
        xLabel: 'order k',
        yLabel: 'bits per base',
        hline: { y: 2, label: '2 bits (uniform over ACGT)' },
      },
    },
  ],
});
