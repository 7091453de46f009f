#!/usr/bin/env node
// Do real human -> chimpanzee substitutions look less unlikely to a DNA model than random ones?
// From the great-apes alignment (Debian maffilter-examples: an Ensembl Compara EPO alignment of four great
// apes over part of human chr22), the aligned sites where the human (Hsap) and chimpanzee (Ptro) rows
// hold different bases (both A/C/G/T, no gap) are real substitutions. This writes
//   hsap.fa       chr22 in human coordinates from the Hsap rows (N where no block covers it)
//   real.vcf      REF = human base, ALT = chimpanzee base, at every such site of the test region
//   random.vcf    the same sites, ALT = one of the two bases that are neither the human nor the chimp base
// scores both with `mamba-dna variants` and reports the AUROC of the LLR separating real from random
// substitutions (goal >= 0.65), with the AUROC of a transition-only score beside it as the reference of
// what Ts/Tv alone explains. The split follows the great-apes recipe's rule: blocks in human-coordinate
// order, the first 80% train, the next 5% valid, the last 15% test; the model (unless --checkpoint is
// given) trains on the concatenated Hsap rows of the train blocks only.
//   node pipelines/substitutions.js                      small, on the CPU (tiny model, 2,000 sites)
//   node pipelines/substitutions.js --full               on a GPU: small preset, every test site
//   node pipelines/substitutions.js --checkpoint RUN     score with a model trained elsewhere on human DNA
// --spans and --precisions score the same sites once per combination (variants --span, --precision), one row each:
// how much of the LLR's separation is in the bases right after the change, and what bf16 rounding costs it.
// Model-free reference rows (--markov-orders): the exact LLR of an order-k Markov model trained on the same train
// blocks (the site and the k bases after it are all it changes); --no-model writes those alone (CPU, seconds).
import { existsSync, writeFileSync, readFileSync, createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { cli, machine, pipelineArgs, root, writeResults } from './lib.js';
import { MarkovModel } from './markov.js';

const MAF =
  '/usr/share/doc/maffilter/examples/Gorilla/Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz';
const usage = `usage: node pipelines/substitutions.js [--full] [--device auto|cpu|cuda] [--out DIR] [--checkpoint RUN]
  [--max-sites N] [--context N] [--strand forward|both] [--steps N] [--max-blocks N] [--maf FILE] [--seed N]
  [--spans all,S,...] [--precisions run,f32,bf16] [--markov-orders 6,10] [--no-model]`;
const a = pipelineArgs('substitutions', usage, {
  checkpoint: { type: 'string' },
  'max-sites': { type: 'string' },
  context: { type: 'string' },
  strand: { type: 'string', default: 'forward' },
  steps: { type: 'string' },
  'max-blocks': { type: 'string' },
  maf: { type: 'string' },
  seed: { type: 'string', default: '1' },
  spans: { type: 'string', default: 'all' },
  precisions: { type: 'string', default: 'run' },
  'markov-orders': { type: 'string', default: '6,10' },
  'no-model': { type: 'boolean', default: false },
});
const full = a.full;
const mafPath = a.maf ?? MAF;
if (!existsSync(mafPath)) {
  console.error(
    `substitutions: ${mafPath} is missing; install it with \`apt-get install maffilter-examples\` (or pass --maf)`,
  );
  process.exit(1);
}
const mafModule = join(root, 'dist', 'data', 'dna', 'maf.js');
if (!existsSync(mafModule)) {
  console.error(
    `substitutions: ${mafModule} is missing: this pipeline needs the MAF reader (src/data/dna/maf.ts); run \`npx tsc\``,
  );
  process.exit(1);
}
const { readMafBlocks } = await import(mafModule);
const context = Number(a.context ?? 4096);
const maxSites = a['max-sites'] !== undefined ? Number(a['max-sites']) : full ? Infinity : 2000;
const maxBlocks = a['max-blocks'] !== undefined ? Number(a['max-blocks']) : Infinity;
if (!(Number.isInteger(context) && context >= 2)) usageError('--context must be an integer >= 2');
if (!(maxSites >= 1)) usageError('--max-sites must be at least 1');
if (!['forward', 'both'].includes(a.strand)) usageError('--strand must be forward or both');
const spans = a.spans.split(',').map((v) => (v === 'all' ? 'all' : Number(v)));
if (!spans.every((v) => v === 'all' || (Number.isInteger(v) && v >= 0)))
  usageError('--spans must be a comma list of "all" and integers >= 0');
const precisions = a.precisions.split(',');
if (!precisions.every((v) => ['run', 'f32', 'bf16'].includes(v))) usageError('--precisions must list run, f32 or bf16');
const markovOrders = a['markov-orders'] ? a['markov-orders'].split(',').map(Number) : [];
if (!markovOrders.every((k) => Number.isInteger(k) && k >= 0 && k <= 12))
  usageError('--markov-orders must be a comma list of integers in 0..12');
const withModel = !a['no-model'];
if (!withModel && !markovOrders.length) usageError('--no-model leaves only the Markov rows: give --markov-orders');
const out = resolve(a.out);

function usageError(msg) {
  console.error(`substitutions: ${msg}\n${usage}`);
  process.exit(2);
}

// a seeded generator (mulberry32): the sample of sites and the random bases are reproducible
let seed = Number(a.seed) >>> 0;
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const COMPLEMENT = { A: 'T', C: 'G', G: 'C', T: 'A', N: 'N', '-': '-' };
const reverseComplement = (text) =>
  [...text]
    .reverse()
    .map((c) => COMPLEMENT[c.toUpperCase()] ?? 'N')
    .join('');
/** The 0-based + strand start of a row. */
const plusStart = (row) => (row.strand === '+' ? row.start : row.srcSize - row.start - row.size);

// 1. the Hsap and Ptro rows of every block, in human-coordinate order
const t0 = Date.now();
const blocks = [];
let chrom, chromSize;
for await (const b of readMafBlocks(mafPath)) {
  const h = b.rows.find((r) => r.species === 'Hsap');
  const p = b.rows.find((r) => r.species === 'Ptro');
  if (!h) continue;
  if (chrom !== undefined && h.chrom !== chrom) {
    console.error(
      `substitutions: the Hsap rows lie on more than one chromosome (${chrom}, ${h.chrom}); this pipeline expects one`,
    );
    process.exit(1);
  }
  chrom = h.chrom;
  chromSize = h.srcSize;
  // the columns of a block on the human + strand: a block whose human row is on - is read reversed and
  // complemented, the chimp row with it (whatever its own strand), so aligned bases stay aligned
  const flip = h.strand === '-';
  blocks.push({
    start: plusStart(h),
    size: h.size,
    h: flip ? reverseComplement(h.text) : h.text,
    p: p && (flip ? reverseComplement(p.text) : p.text),
  });
  if (blocks.length >= maxBlocks) break;
}
blocks.sort((x, y) => x.start - y.start);
console.log(
  `read ${blocks.length} blocks with a human row from ${mafPath} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);
const nTrain = Math.floor(blocks.length * 0.8),
  nValid = Math.floor(blocks.length * 0.05);
const split = {
  train: blocks.slice(0, nTrain),
  valid: blocks.slice(nTrain, nTrain + nValid),
  test: blocks.slice(nTrain + nValid),
};
const ungapped = (text) => text.replace(/-/g, '');
// the Hsap rows of the train blocks, joined: the model's training FASTA and the Markov reference's counts
const trainText = Buffer.from(split.train.map((b) => ungapped(b.h)).join(''), 'latin1');

// 2. the human FASTA in human coordinates, and the training FASTA (train blocks only, concatenated)
const name = `chr${chrom}`;
const chr = Buffer.alloc(chromSize, 'N');
for (const b of blocks) {
  const s = ungapped(b.h);
  if (s.length !== b.size)
    throw new Error(`a Hsap row at ${b.start} has ${s.length} bases, its size field says ${b.size}`);
  chr.write(s, b.start, 'latin1');
}
const hsapFa = join(out, 'hsap.fa');
await writeFasta(hsapFa, [[name, chr]]);

// 3. sites of the test region: human and chimp both A/C/G/T and different
const sites = [];
for (const b of split.test) {
  if (!b.p) continue;
  let pos = b.start;
  for (let c = 0; c < b.h.length; c++) {
    const h = b.h[c].toUpperCase();
    if (h === '-') continue;
    const p = b.p[c].toUpperCase();
    if ('ACGT'.includes(h) && 'ACGT'.includes(p) && h !== p) sites.push({ pos: pos + 1, ref: h, chimp: p });
    pos++;
  }
}
if (!sites.length) {
  console.error('substitutions: no human/chimp differences in the test region');
  process.exit(1);
}
// a seeded sample of at most --max-sites, kept in position order
let chosen = sites;
if (sites.length > maxSites) {
  const idx = sites.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  chosen = idx
    .slice(0, maxSites)
    .sort((x, y) => x - y)
    .map((i) => sites[i]);
}
for (const s of chosen) {
  const others = [...'ACGT'].filter((x) => x !== s.ref && x !== s.chimp);
  s.random = others[Math.floor(random() * others.length)];
}
const testSpan = `${name}:${split.test[0].start + 1}-${split.test[split.test.length - 1].start + split.test[split.test.length - 1].size}`;
const vcfHeader = [
  '##fileformat=VCFv4.2',
  `##contig=<ID=${name},length=${chromSize}>`,
  '##INFO=<ID=CHIMP,Number=1,Type=String,Description="The chimpanzee (Ptro) base aligned to this human base">',
  '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO',
].join('\n');
const writeVcf = (path, altOf) =>
  writeFileSync(
    path,
    `${vcfHeader}\n${chosen.map((s) => `${name}\t${s.pos}\t.\t${s.ref}\t${altOf(s)}\t.\tPASS\tCHIMP=${s.chimp}`).join('\n')}\n`,
  );
writeVcf(join(out, 'real.vcf'), (s) => s.chimp);
writeVcf(join(out, 'random.vcf'), (s) => s.random);
console.log(`${sites.length} human/chimp differences in the test region ${testSpan}; scoring ${chosen.length}`);

// 4. a model trained on the human train blocks, unless one is given
let checkpoint = a.checkpoint ? resolve(a.checkpoint) : undefined;
let training;
if (withModel && !checkpoint) {
  const trainFa = join(out, 'hsap-train.fa');
  await writeFasta(trainFa, [['Hsap.train', trainText]]);
  checkpoint = join(out, 'model');
  const steps = a.steps ?? (full ? '2000' : '300');
  const args = full
    ? [
        '--preset',
        'small',
        '--seq-len',
        String(context),
        '--batch',
        String(Math.max(1, 2 ** 18 / context)),
        '--lr',
        '2e-3',
      ]
    : ['--preset', 'tiny', '--seq-len', String(Math.min(context, 1024)), '--batch', '8', '--lr', '4e-3'];
  const r = cli('mamba-dna', [
    'train',
    '--data',
    trainFa,
    ...args,
    '--steps',
    steps,
    '--eval-windows',
    '32',
    '--device',
    a.device,
    '--out',
    checkpoint,
    '--force',
  ]);
  training = { steps: Number(steps), seconds: r.seconds, args: args.join(' ') };
}

// 5. score both VCFs
const score = (vcf, span, precision) => {
  const tag = `${span === 'all' ? '' : `.span${span}`}${precision === 'run' ? '' : `.${precision}`}`;
  const tsv = join(out, vcf.replace(/\.vcf$/, `${tag}.llr.tsv`));
  const r = cli('mamba-dna', [
    'variants',
    '--checkpoint',
    checkpoint,
    '--fasta',
    hsapFa,
    '--vcf',
    join(out, vcf),
    '--context',
    String(context),
    '--strand',
    a.strand,
    '--format',
    'tsv',
    '--device',
    a.device,
    ...(span === 'all' ? [] : ['--span', String(span)]),
    ...(precision === 'run' ? [] : ['--precision', precision]),
    '-o',
    tsv,
    '--force',
  ]);
  const values = readFileSync(tsv, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'))
    .filter((f) => f[6] === 'scored')
    .map((f) => ({ pos: Number(f[1]), llr: Number(f[5]) }));
  return { values, seconds: r.seconds };
};

// 6. AUROC (Mann-Whitney, ties count 1/2) of real vs random, paired win rate, and the transition reference
function auroc(pos, neg) {
  const all = [...pos.map((v) => [v, 1]), ...neg.map((v) => [v, 0])].sort((x, y) => x[0] - y[0]);
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j][0] === all[i][0]) j++;
    const avgRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k][1]) rankSum += avgRank;
    i = j;
  }
  return (rankSum - (pos.length * (pos.length + 1)) / 2) / (pos.length * neg.length);
}
const isTransition = (x, y) => ['AG', 'GA', 'CT', 'TC'].includes(x + y);
const tsAuc = auroc(
  chosen.map((s) => (isTransition(s.ref, s.chimp) ? 1 : 0)),
  chosen.map((s) => (isTransition(s.ref, s.random) ? 1 : 0)),
);
const mean = (xs) => xs.reduce((p, q) => p + q, 0) / xs.length;
const sd = (xs) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
const rows = [];
let realLlr, randLlr, auc; // of the first row: the ROC plot
/** A row from the real and random LLRs (each [{ pos, llr }]) of one scorer. */
function addRow(fields, real, rand, seconds) {
  const rl = real.map((v) => v.llr),
    nl = rand.map((v) => v.llr);
  const randByPos = new Map(rand.map((v) => [v.pos, v.llr]));
  let wins = 0,
    pairs = 0;
  for (const v of real) {
    const r = randByPos.get(v.pos);
    if (r === undefined) continue;
    pairs++;
    wins += v.llr > r ? 1 : v.llr === r ? 0.5 : 0;
  }
  const au = auroc(rl, nl);
  if (!rows.length) [realLlr, randLlr, auc] = [rl, nl, au];
  rows.push({
    ...fields,
    strand: a.strand,
    sites: chosen.length,
    test_sites: sites.length,
    auroc: au,
    paired_win_rate: wins / pairs,
    mean_llr_real: mean(rl),
    mean_llr_random: mean(nl),
    sd_llr_real: sd(rl),
    transition_auroc: tsAuc,
    real_transition_fraction: mean(chosen.map((s) => (isTransition(s.ref, s.chimp) ? 1 : 0))),
    variants_per_s: seconds ? (rl.length + nl.length) / seconds : NaN,
  });
  console.log(
    `${fields.scorer}${fields.precision === '-' ? '' : `, precision ${fields.precision}`}, span ${fields.span}: AUROC real vs random ${au.toFixed(4)} (goal >= 0.65; ${au >= 0.65 ? 'met' : 'missed'}); transitions alone: ${tsAuc.toFixed(4)}`,
  );
}
if (withModel)
  for (const precision of precisions)
    for (const span of spans) {
      const real = score('real.vcf', span, precision),
        rand = score('random.vcf', span, precision);
      const H = Math.floor(context / 2);
      addRow(
        { scorer: 'model', context, precision, span: span === 'all' ? H : Math.min(span, H) },
        real.values,
        rand.values,
        real.seconds + rand.seconds,
      );
    }

// the model-free reference: order-k Markov counts of the train blocks (add-1/2); the exact LLR of a site sums
// log2 P over the site and the k bases after it (with --strand both, averaged with the reverse complement's)
const CODE = new Uint8Array(256).fill(4);
for (const [i, c] of [...'ACGT'].entries()) CODE[c.charCodeAt(0)] = CODE[c.toLowerCase().charCodeAt(0)] = i;
const trainCodes = Uint8Array.from(trainText, (c) => CODE[c]);
for (const k of markovOrders) {
  const m = new MarkovModel(k).train(trainCodes);
  /** log2 P of positions k.. of a window of 2k + 1 codes (positions with an N in their context add nothing) */
  const logP = (w) => {
    let sum = 0;
    m.walk(w, (i, c, b) => {
      if (i >= k) sum += m.bits(c, b);
    });
    return sum;
  };
  const rc = (w) =>
    w
      .slice()
      .reverse()
      .map((b) => (b > 3 ? 4 : 3 - b));
  const llrs = (altOf) =>
    chosen.map((s) => {
      const w = Uint8Array.from(chr.subarray(s.pos - 1 - k, s.pos + k), (c) => CODE[c]);
      const alt = w.slice();
      alt[k] = CODE[altOf(s).charCodeAt(0)];
      const fwd = logP(alt) - logP(w);
      return { pos: s.pos, llr: a.strand === 'both' ? (fwd + logP(rc(alt)) - logP(rc(w))) / 2 : fwd };
    });
  addRow(
    { scorer: `Markov order ${k}`, context: k, precision: '-', span: k },
    llrs((s) => s.chimp),
    llrs((s) => s.random),
  );
}

// the ROC curve, from the real and random LLRs
const thresholds = [...new Set([...realLlr, ...randLlr])].sort((x, y) => y - x);
const step = Math.max(1, Math.floor(thresholds.length / 200));
const roc = [[0, 0]];
for (let i = 0; i < thresholds.length; i += step) {
  const t = thresholds[i];
  roc.push([
    randLlr.filter((v) => v >= t).length / randLlr.length,
    realLlr.filter((v) => v >= t).length / realLlr.length,
  ]);
}
roc.push([1, 1]);
const dev =
  a.device === 'auto' ? (await import(join(root, 'dist', 'backend', 'index.js'))).resolveDevice('auto') : a.device;
await writeResults(out, {
  title: 'Real human -> chimpanzee substitutions vs random ones, scored by mamba-dna variants',
  command: `node pipelines/substitutions.js ${process.argv.slice(2).join(' ')}`.trim(),
  meta: {
    machine: machine(dev),
    alignment: mafPath,
    test_region: testSpan,
    split: `blocks in human order: first 80% train (${split.train.length}), next 5% valid (${split.valid.length}), last 15% test (${split.test.length})`,
    control: 'same sites, ALT = a random base that is neither the human nor the chimp base',
    model: !withModel
      ? 'none (--no-model): the Markov reference rows only'
      : a.checkpoint
        ? checkpoint
        : { trained_on: 'Hsap rows of the train blocks', ...training },
    markov: 'order-k Markov counts of the train blocks, add-1/2; the LLR sums the site and the k bases after it',
    goal: 'AUROC >= 0.65',
  },
  columns: [
    { key: 'scorer', label: 'scorer' },
    { key: 'context', label: 'context N (Markov: order)' },
    { key: 'strand', label: 'strand' },
    { key: 'precision', label: 'precision' },
    { key: 'span', label: 'bases summed after the change' },
    { key: 'sites', label: 'sites scored' },
    { key: 'auroc', label: 'AUROC real vs random', format: (v) => v.toFixed(4) },
    { key: 'paired_win_rate', label: 'real > random at a site', format: (v) => v.toFixed(4) },
    { key: 'mean_llr_real', label: 'mean LLR real (bits)', format: (v) => v.toFixed(3) },
    { key: 'mean_llr_random', label: 'mean LLR random (bits)', format: (v) => v.toFixed(3) },
    { key: 'sd_llr_real', label: 'sd of LLR real (bits)', format: (v) => v.toFixed(3) },
    { key: 'transition_auroc', label: 'AUROC of transition-only score', format: (v) => v.toFixed(4) },
    { key: 'variants_per_s', label: 'variants/s', format: (v) => (Number.isFinite(v) ? v.toFixed(1) : '-') },
  ],
  rows,
  plots: [
    {
      file: 'roc.svg',
      series: [
        { name: `${rows[0].scorer} LLR (AUROC ${auc.toFixed(3)})`, points: roc },
        {
          name: 'chance',
          points: [
            [0, 0],
            [1, 1],
          ],
        },
      ],
      options: {
        title: 'ROC: real vs random substitutions',
        xLabel: 'false positive rate (random)',
        yLabel: 'true positive rate (real)',
        yMin: 0,
      },
    },
  ],
});

/** Writes FASTA with 60-base lines and its .fai beside it (the layout is ours, so the index is exact). */
async function writeFasta(path, records) {
  const s = createWriteStream(path);
  const fai = [];
  let offset = 0;
  for (const [n, seq] of records) {
    const header = `>${n}\n`;
    offset += Buffer.byteLength(header);
    fai.push(`${n}\t${seq.length}\t${offset}\t60\t61\n`);
    offset += seq.length + Math.ceil(seq.length / 60);
    s.write(header);
    for (let i = 0; i < seq.length; i += 60 * 4096) {
      const lines = [];
      for (let j = i; j < Math.min(seq.length, i + 60 * 4096); j += 60)
        lines.push(seq.toString('latin1', j, Math.min(seq.length, j + 60)));
      if (!s.write(`${lines.join('\n')}\n`)) await new Promise((r) => s.once('drain', r));
    }
  }
  await new Promise((r, j) => s.end((e) => (e ? j(e) : r())));
  writeFileSync(`${path}.fai`, fai.join(''));
}
