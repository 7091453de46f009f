#!/usr/bin/env node
// The reference a DNA language model must beat: order-k Markov models (k-mer counts with add-1/2
// smoothing) trained on the same training part and scored on the same held-out part as `mamba-dna train`
// (first 95% / last 5% of each record). Prints held-out bits per base for k = 0..max.
//   node pipelines/markov-baseline.js [FASTA] [--max-order 12]
import { join } from 'node:path';
import { root } from './lib.js';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: node pipelines/markov-baseline.js [FASTA (default: the shipped G27 genome)] [--max-order K]');
  process.exit(0);
}
const mi = args.indexOf('--max-order');
const maxK = mi >= 0 ? Number(args[mi + 1]) : 12;
const file = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--max-order');
const dna = await import(join(root, 'dist', 'data', 'dna', 'index.js'));
const { train, valid } = dna.openHoldoutSplits(file ?? dna.DEFAULT_DNA_DATA, 0.05);
const collect = (src) => {
  const parts = [];
  for (const w of src.sequentialWindowsSync(Math.min(src.maxWindowLength(), 1 << 22))) parts.push(w.tokens);
  return parts;
};
// map tokens A C G T -> 0..3; N and others break the context
const code = (t) => (t >= 4 && t <= 7 ? t - 4 : -1);
const tr = collect(train), va = collect(valid);
console.log(`train ${tr.reduce((a, p) => a + p.length, 0).toLocaleString('en-US')} bases, held out ${va.reduce((a, p) => a + p.length, 0).toLocaleString('en-US')} bases`);
console.log('order  held-out bits/base');
for (let k = 0; k <= maxK; k++) {
  const size = 4 ** k;
  const counts = new Uint32Array(size * 4);
  const walk = (parts, fn) => {
    for (const p of parts) {
      let ctx = 0, len = 0;
      for (let i = 0; i < p.length; i++) {
        const c = code(p[i]);
        if (c < 0) { len = 0; ctx = 0; continue; }
        if (len >= k) fn(ctx, c);
        ctx = k ? ((ctx * 4 + c) % size) : 0;
        len++;
      }
    }
  };
  walk(tr, (ctx, c) => counts[ctx * 4 + c]++);
  let bits = 0, n = 0;
  walk(va, (ctx, c) => {
    const row = ctx * 4;
    const tot = counts[row] + counts[row + 1] + counts[row + 2] + counts[row + 3];
    bits -= Math.log2((counts[row + c] + 0.5) / (tot + 2));
    n++;
  });
  console.log(`${String(k).padStart(5)}  ${(bits / n).toFixed(4)}`);
}
