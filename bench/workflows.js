#!/usr/bin/env node
// Throughput of the inference workflows as a user runs them (the CLI commands, timed by their own
// stderr summary, which starts after the model is loaded): `score` bases/s, `variants` variants/s at two
// contexts, `embed` items/s. A randomly initialised model of the chosen preset (speed does not depend on
// the weights), bf16 activations on a GPU as a trained run would use.
//   GPU: node bench/workflows.js --fasta hsap-row.fa.gz      (the whole 21.6 Mbp Hsap alignment row, N = 2^16)
//   CPU: node bench/workflows.js                               (a 2^16-base region of G27, smaller contexts)
// --fasta FILE: the genome scored whole (GPU) or in part (CPU); without it, G27 repeated 13 times
// (21.5 Mbp) on a GPU, G27 itself on the CPU. --out DIR also writes workflows-<device>.{json,md} there.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { cudaDeviceInfo, resolveDevice } from '../dist/backend/index.js';
import { IndexedFasta } from '../dist/data/dna/index.js';
import { MambaLM, makeConfig, saveModel } from '../dist/model/index.js';
import { writeReadmeSection } from './readme.js';

const { values: o } = parseArgs({
  options: {
    device: { type: 'string', default: 'auto' },
    fasta: { type: 'string' },
    preset: { type: 'string', default: 'small' },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
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
if (!o.fasta && gpu) {
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
const rows = [];

// 1. score: the whole record on a GPU, a 2^16-base region on the CPU
{
  const N = gpu ? 2 ** 16 : 2 ** 12;
  const region = gpu ? rec.name : `${rec.name}:1-${2 ** 16}`;
  const r = cli([
    'score',
    '--checkpoint',
    run,
    fasta,
    region,
    '--context',
    String(N),
    '-o',
    join(tmp, 'score.bedGraph'),
  ]);
  const m = /all regions\t(\d+) bases scored.*\t([\d.]+) s, ([\d,]+) bases\/s/.exec(r.err);
  rows.push({
    what: 'score',
    context: N,
    work: `${num(m[1]).toLocaleString('en-US')} bases (${gpu ? 'whole record' : 'region'})`,
    seconds: Number(m[2]),
    rate: num(m[3]),
    unit: 'bases/s',
    wall: r.wall,
  });
  console.log(`score N=${N}: ${m[3]} bases/s (${m[2]} s, ${r.wall.toFixed(1)} s wall with startup)`);
}

// 2. variants: SNVs at seeded positions of the record, REF from the genome
for (const N of [2 ** 12, 2 ** 16]) {
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
  const r = cli([
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
  ]);
  const m = /(\d+) scored in ([\d.]+) s \(([\d,.]+) per s/.exec(r.err);
  rows.push({
    what: 'variants (SNVs)',
    context: N,
    work: `${m[1]} variants`,
    seconds: Number(m[2]),
    rate: num(m[3]),
    unit: 'variants/s',
    wall: r.wall,
  });
  console.log(`variants N=${N}: ${m[3]} per s (${m[2]} s, ${r.wall.toFixed(1)} s wall with startup)`);
}

// 3. embed: 1,024-base BED intervals tiling the record, mean pooled
{
  const n = gpu ? 16384 : 256,
    W = 1024;
  const bed = join(tmp, 'tiles.bed');
  const tiles = [];
  for (let i = 0; i < n && (i + 1) * W <= rec.length; i++) tiles.push(`${rec.name}\t${i * W}\t${(i + 1) * W}`);
  writeFileSync(bed, `${tiles.join('\n')}\n`);
  const r = cli(['embed', '--checkpoint', run, fasta, '--bed', bed, '--window', String(W), '-o', join(tmp, 'e.npy')]);
  const m = /(\d+) items, (\d+) bases in ([\d.]+) s \(([\d.]+) items\/s, (\d+) bases\/s/.exec(r.err);
  rows.push({
    what: 'embed (1 kbp intervals, mean)',
    context: W,
    work: `${m[1]} intervals`,
    seconds: Number(m[3]),
    rate: Number(m[4]),
    unit: 'items/s',
    wall: r.wall,
  });
  console.log(`embed: ${m[4]} items/s, ${m[5]} bases/s (${r.wall.toFixed(1)} s wall with startup)`);
}
fa.close();
rmSync(tmp, { recursive: true, force: true });

const name = gpu ? cudaDeviceInfo(0).name : 'CPU';
const section = [
  `## Workflows (${gpu ? `cuda, ${name}` : 'cpu'}, ${o.preset} preset)`,
  '',
  `Command: \`node bench/workflows.js${o.fasta ? ' --fasta FILE' : ''} --device ${device}${o.preset !== 'small' ? ` --preset ${o.preset}` : ''}\` ` +
    `on ${name}; ${o.preset} preset (${params.toLocaleString('en-US')} ` +
    `parameters, random init), ${gpu ? 'bf16' : 'f32'} activations; genome: ${genomeNote}. Rates are the commands' own stderr ` +
    'summaries (after the model is loaded, output writing included); wall = the whole command with Node startup and model load.',
  '',
  '| command | context N | work | seconds | rate | wall s |',
  '| --- | ---: | --- | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.what} | 2^${Math.log2(r.context)} | ${r.work} | ${r.seconds.toFixed(1)} | ${r.rate >= 100 ? Math.round(r.rate).toLocaleString('en-US') : r.rate.toPrecision(3)} ${r.unit} | ${r.wall.toFixed(1)} |`,
  ),
].join('\n');
console.log(`\n${section}`);
if (o.out) {
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, `workflows-${device}-${o.preset}.md`), `${section}\n`);
  writeFileSync(
    join(o.out, `workflows-${device}-${o.preset}.json`),
    `${JSON.stringify({ device: name, preset: o.preset, params, genome: genomeNote, rows }, null, 2)}\n`,
  );
}
if (!o['no-write']) writeReadmeSection(section);
