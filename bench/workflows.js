#!/usr/bin/env node
// Throughput of the inference workflows as a user runs them (the CLI commands, timed by their own
// stderr summary, which starts after the model is loaded): `score` bases/s, `variants` variants/s at two
// contexts, `embed` items/s. A randomly initialised model of the chosen preset (speed does not depend on
// the weights), bf16 activations on a GPU as a trained run would use.
//   GPU: node bench/workflows.js --great-apes DIR|MAF          (the whole Hsap alignment row, N = 2^16)
//   GPU: node bench/workflows.js --fasta hsap-row.fa.gz         (the same from a FASTA of the row)
//   CPU: node bench/workflows.js                                (a 2^16-base region of G27, smaller contexts)
// --great-apes: a great-apes set folder (`mamba-dna dataset build great-apes`, manifest.json) or the MAF to
// build it from; its Hsap train, valid and test records (contiguous in human order) are joined into one record,
// the whole 21.6 Mbp Hsap row. --fasta FILE: the genome scored whole (GPU) or in part (CPU); without either, G27
// repeated 13 times (21.5 Mbp) on a GPU, G27 itself on the CPU. On a GPU a prefill row follows: the prefill of
// generation (backbone.prefill, 16 x 8,192 tokens, 130m shape, bf16) beside the training forward of that shape
// (--no-prefill skips it). --out DIR also writes workflows-<device>.{json,md} there. --score-batch-tokens N passes
// --batch-tokens N to score (tokens per forward pass). --score-only: the score row alone, nothing written (A/B runs).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { cudaDeviceInfo, cudaOp, resolveDevice } from '../dist/backend/index.js';
import { Decoder } from '../dist/generate/index.js';
import { IndexedFasta } from '../dist/data/dna/index.js';
import { MambaLM, makeConfig, saveModel } from '../dist/model/index.js';
import { writeReadmeSection } from './readme.js';

const { values: o } = parseArgs({
  options: {
    device: { type: 'string', default: 'auto' },
    fasta: { type: 'string' },
    'great-apes': { type: 'string' },
    'no-prefill': { type: 'boolean', default: false },
    preset: { type: 'string', default: 'small' },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    // tokens per forward pass of score (default: the command's own, 2^23 on an H200); e.g. 4194304
    'score-batch-tokens': { type: 'string' },
    // only the score row, nothing written (A/B runs of score)
    'score-only': { type: 'boolean', default: false },
    // runs of each command: the row is the run with the median rate
    runs: { type: 'string', default: '3' },
  },
});
const device = resolveDevice(o.device);
const gpu = device === 'cuda';
const root = resolve(new URL('..', import.meta.url).pathname);
const G27 = join(root, 'datasets', 'dna', 'h_pylori', 'G27.fa.gz');
const tmp = mkdtempSync(join(tmpdir(), 'mamba-bench-wf-'));

// the model: random init, saved as a run folder (run.json asks for bf16 activations on a GPU)
const run = join(tmp, 'run');
mkdirSync(run);
const model = MambaLM.create(makeConfig(o.preset, { domain: 'dna', task: 'lm', vocab_size: 16 }), { seed: 1 });
saveModel(run, model);
writeFileSync(
  join(run, 'run.json'),
  JSON.stringify({
    tool: 'bench',
    domain: 'dna',
    task: 'lm',
    data: '',
    precision: gpu ? 'bf16' : 'f32',
    created: new Date().toISOString(),
  }),
);
const params = model.numParameters();

// the genome
let fasta = o.fasta ? resolve(o.fasta) : G27;
let genomeNote = o.fasta ? fasta : 'G27 (H. pylori, 1.65 Mbp)';
if (o['great-apes']) {
  // the Hsap row: train | valid | test are contiguous runs of blocks in human order, so joined they are the row
  let dir = resolve(o['great-apes']);
  if (!existsSync(join(dir, 'manifest.json'))) {
    const maf = dir;
    dir = join(tmp, 'great-apes');
    const b = spawnSync(
      process.execPath,
      [join(root, 'bin', 'mamba-dna.js'), 'dataset', 'build', 'great-apes', '--maf', maf, '--out', dir, '--force'],
      { encoding: 'utf8' },
    );
    if (b.status !== 0) {
      console.error(b.stderr);
      process.exit(1);
    }
  }
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const parts = ['train', 'valid', 'test'].map((split) => {
    const src = m.sources.find((x) => x.species === 'Hsap' && x.split === split);
    if (!src) throw new Error(`${dir}/manifest.json: no Hsap ${split} source`);
    const f = IndexedFasta.open(resolve(dir, src.path));
    const r = f.records[0];
    const text = f.bases(r, 0, r.length).toString('latin1');
    f.close();
    return text;
  });
  const row = parts.join('');
  fasta = join(tmp, 'hsap-row.fa');
  const lines = [];
  for (let i = 0; i < row.length; i += 60) lines.push(row.slice(i, i + 60));
  writeFileSync(fasta, `>hsap_row\n${lines.join('\n')}\n`);
  genomeNote = `the whole Hsap row of the great-apes alignment (train + valid + test, ${(row.length / 1e6).toFixed(1)} Mbp)`;
} else if (!o.fasta && gpu) {
  const g = gunzipSync(readFileSync(G27)).toString('latin1');
  const seq = g.slice(g.indexOf('\n') + 1).replace(/\n/g, '');
  fasta = join(tmp, 'g27x13.fa');
  const rec = seq.repeat(13);
  const lines = [];
  for (let i = 0; i < rec.length; i += 60) lines.push(rec.slice(i, i + 60));
  writeFileSync(fasta, `>g27x13\n${lines.join('\n')}\n`);
  genomeNote = `G27 repeated 13 times (${(rec.length / 1e6).toFixed(1)} Mbp) - no --fasta given`;
}
const fa = IndexedFasta.open(fasta);
const rec = fa.records[0];

const RUNS = Number(o.runs);
if (!(Number.isInteger(RUNS) && RUNS >= 1)) {
  console.error(`workflows: --runs must be an integer >= 1, got ${o.runs}`);
  process.exit(2);
}

/**
 * Runs a command RUNS times and parses its stderr summary with `re`; returns the match and wall time of the
 * run whose rate (group `rateGroup` of the match) is the median, and every run's rate.
 */
function timed(args, re, rateGroup) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const r = cli(args);
    const m = re.exec(r.err);
    if (!m) {
      console.error(`workflows: no summary line in the output of ${args[0]}:\n${r.err}`);
      process.exit(1);
    }
    runs.push({ r, m, rate: num(m[rateGroup]) });
  }
  const sorted = [...runs].sort((x, y) => x.rate - y.rate);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  return { r: mid.r, m: mid.m, rates: runs.map((x) => x.rate) };
}

function cli(args) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'bin', 'mamba-dna.js'), ...args, '--device', device, '--force'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  return { err: r.stderr, wall: (Date.now() - t0) / 1000 };
}
const num = (s) => Number(s.replace(/,/g, ''));
const fmtRates = (rates) =>
  `${rates.length}: ${rates.map((v) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3))).join(', ')}`;
const rows = [];

// 1. score: the whole record on a GPU, a 2^16-base region on the CPU
{
  const N = gpu ? 2 ** 16 : 2 ** 12;
  const region = gpu ? rec.name : `${rec.name}:1-${2 ** 16}`;
  const { r, m, rates } = timed(
    [
      'score',
      '--checkpoint',
      run,
      fasta,
      region,
      '--context',
      String(N),
      ...(o['score-batch-tokens'] ? ['--batch-tokens', o['score-batch-tokens']] : []),
      '-o',
      join(tmp, 'score.bedGraph'),
    ],
    /all regions\t(\d+) bases scored.*\t([\d.]+) s, ([\d,]+) bases\/s/,
    3,
  );
  rows.push({
    what: 'score',
    context: N,
    work: `${num(m[1]).toLocaleString('en-US')} bases (${gpu ? 'whole record' : 'region'})`,
    seconds: Number(m[2]),
    rate: num(m[3]),
    unit: 'bases/s',
    wall: r.wall,
    rates,
  });
  console.log(
    `score N=${N}: ${m[3]} bases/s (${m[2]} s, ${r.wall.toFixed(1)} s wall with startup; median of ${fmtRates(rates)})`,
  );
}

// 2. variants: SNVs at seeded positions of the record, REF from the genome
for (const N of o['score-only'] ? [] : [2 ** 12, 2 ** 16]) {
  const n = gpu ? (N <= 2 ** 12 ? 8000 : 400) : N <= 2 ** 12 ? 50 : 4;
  const vcf = join(tmp, `v${N}.vcf`);
  const lines = ['##fileformat=VCFv4.2', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO'];
  let s = 12345;
  const positions = new Set();
  while (positions.size < n) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    positions.add(1 + N + (s % (rec.length - 2 * N - 2)));
  }
  for (const p of [...positions].sort((a, b) => a - b)) {
    const ref = fa
      .bases(rec, p - 1, p)
      .toString('latin1')
      .toUpperCase();
    if (!'ACGT'.includes(ref)) continue;
    lines.push(`${rec.name}\t${p}\t.\t${ref}\t${'ACGT'['ACGT'.indexOf(ref) ^ 1]}\t.\tPASS\t.`);
  }
  writeFileSync(vcf, `${lines.join('\n')}\n`);
  const { r, m, rates } = timed(
    [
      'variants',
      '--checkpoint',
      run,
      '--fasta',
      fasta,
      '--vcf',
      vcf,
      '--context',
      String(N),
      '-o',
      join(tmp, `v${N}.out.vcf`),
    ],
    /(\d+) scored in ([\d.]+) s \(([\d,.]+) per s/,
    3,
  );
  rows.push({
    what: 'variants (SNVs)',
    context: N,
    work: `${m[1]} variants`,
    seconds: Number(m[2]),
    rate: num(m[3]),
    unit: 'variants/s',
    wall: r.wall,
    rates,
  });
  console.log(
    `variants N=${N}: ${m[3]} per s (${m[2]} s, ${r.wall.toFixed(1)} s wall with startup; median of ${fmtRates(rates)})`,
  );
}

// 3. embed: 1,024-base BED intervals tiling the record, mean pooled
if (!o['score-only']) {
  const n = gpu ? 16384 : 256,
    W = 1024;
  const bed = join(tmp, 'tiles.bed');
  const tiles = [];
  for (let i = 0; i < n && (i + 1) * W <= rec.length; i++) tiles.push(`${rec.name}\t${i * W}\t${(i + 1) * W}`);
  writeFileSync(bed, `${tiles.join('\n')}\n`);
  const { r, m, rates } = timed(
    ['embed', '--checkpoint', run, fasta, '--bed', bed, '--window', String(W), '-o', join(tmp, 'e.npy')],
    /(\d+) items, (\d+) bases in ([\d.]+) s \(([\d.]+) items\/s, (\d+) bases\/s/,
    4,
  );
  rows.push({
    what: 'embed (1 kbp intervals, mean)',
    context: W,
    work: `${m[1]} intervals`,
    seconds: Number(m[3]),
    rate: Number(m[4]),
    unit: 'items/s',
    wall: r.wall,
    rates,
  });
  console.log(
    `embed: ${m[4]} items/s, ${m[5]} bases/s (${r.wall.toFixed(1)} s wall with startup; median of ${fmtRates(rates)})`,
  );
}
fa.close();
rmSync(tmp, { recursive: true, force: true });

// 4. prefill (GPU): generation's prefill of 16 prompts of 8,192 tokens in the 130m shape, the no-gradient
// forward plus the last positions' logits, beside the training forward (keeps every layer's activations) and
// the no-gradient forward alone of the same batch; medians of 5 after a warm-up, synchronised
const prefillRows = [];
if (gpu && !o['no-prefill']) {
  const B = 16,
    L = 8192;
  const big = MambaLM.create(makeConfig('130m', { domain: 'dna', task: 'lm', vocab_size: 50280 }), {
    seed: 1,
    device: 'cuda',
    precision: 'bf16',
  });
  const prompt = Int32Array.from({ length: B * L }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 8) % 50280);
  const sync = () => cudaOp('synchronize')();
  const median = (f) => {
    f();
    sync();
    const ts = [];
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      f();
      sync();
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return ts.sort((a, b) => a - b)[2];
  };
  const dec = new Decoder(big, B, { cudaGraph: false });
  const bb = big.backbone;
  const ids = bb.uploadIds(prompt, 'benchIds');
  big.refreshHalf();
  const cases = [
    ['Decoder.prefill (backbone.prefill + last logits)', () => dec.prefill(prompt, L)],
    ['backbone.forward, grad: false', () => bb.forward(ids, B, L, { grad: false })],
    ['backbone.forward, training (activations kept)', () => bb.forward(ids, B, L)],
  ];
  for (const [what, f] of cases) {
    const ms = median(f);
    prefillRows.push({ what, ms, tokensPerS: (B * L) / (ms / 1000) });
    console.log(`${what}: ${ms.toFixed(1)} ms, ${Math.round((B * L) / (ms / 1000)).toLocaleString('en-US')} tokens/s`);
  }
  big.dispose();
}

const name = gpu ? cudaDeviceInfo(0).name : 'CPU';
const section = [
  `## Workflows (${gpu ? `cuda, ${name}` : 'cpu'}, ${o.preset} preset)`,
  '',
  `Command: \`node bench/workflows.js${o['great-apes'] ? ' --great-apes DIR' : o.fasta ? ' --fasta FILE' : ''} --device ${device}${o.preset !== 'small' ? ` --preset ${o.preset}` : ''}\` ` +
    `on ${name}; ${o.preset} preset (${params.toLocaleString('en-US')} ` +
    `parameters, random init), ${gpu ? 'bf16' : 'f32'} activations; genome: ${genomeNote}. Rates are the commands' own stderr ` +
    `summaries (after the model is loaded, output writing included), the run with the median rate of ${RUNS} (all of them in the last column); wall = that whole command with Node startup and model load.`,
  '',
  '| command | context N | work | seconds | rate | wall s | rates of the runs |',
  '| --- | ---: | --- | ---: | ---: | ---: | --- |',
  ...rows.map(
    (r) =>
      `| ${r.what} | 2^${Math.log2(r.context)} | ${r.work} | ${r.seconds.toFixed(1)} | ${r.rate >= 100 ? Math.round(r.rate).toLocaleString('en-US') : r.rate.toPrecision(3)} ${r.unit} | ${r.wall.toFixed(1)} | ${fmtRates(r.rates).replace(/^\d+: /, '')} |`,
  ),
  ...(prefillRows.length
    ? [
        '',
        'Prefill: 16 prompts x 8,192 tokens, 130m shape (d_model 768, 24 layers, vocab 50,280), bf16, random init; ' +
          'median of 5 after a warm-up, synchronised.',
        '',
        '| what | ms | tokens/s |',
        '| --- | ---: | ---: |',
        ...prefillRows.map(
          (r) => `| ${r.what} | ${r.ms.toFixed(1)} | ${Math.round(r.tokensPerS).toLocaleString('en-US')} |`,
        ),
      ]
    : []),
].join('\n');
console.log(`\n${section}`);
if (o.out) {
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, `workflows-${device}-${o.preset}.md`), `${section}\n`);
  writeFileSync(
    join(o.out, `workflows-${device}-${o.preset}.json`),
    `${JSON.stringify({ device: name, preset: o.preset, params, genome: genomeNote, rows, prefill: prefillRows }, null, 2)}\n`,
  );
}
if (!o['no-write'] && !o['score-only']) writeReadmeSection(section);
