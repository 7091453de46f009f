#!/usr/bin/env node
// Training-step throughput of the whole model (zeroGrad + forward + backward + clip + AdamW), by device.
// Reference: model FLOPs = 6 x (matmul parameters) x tokens (forward 2, backward 4; the scan, conv and
// norms are not counted) against the device's peak. Writes bench/README.md "## Model training step (DEVICE)".
// usage: node bench/model-train.js [--device cpu|cuda] [--short] [--shape PRESET:BxL[:bf16][:recompute]]... [--runs N]
//        [--no-decode] [--no-write] [--untuned]
// --untuned: the products keep cuBLAS's fixed choice (by default the step's products are tuned, as the trainer's are).
// --shape times only the shapes given (e.g. --shape 130m:8x2048:bf16, the README's training row; bench/gpu-check.sh).
import { cpus } from 'node:os';
import { cudaDeviceInfo, native, resolveDevice, setGemmTuning, synchronize } from '../dist/backend/index.js';
import { MambaLM, makeConfig } from '../dist/model/index.js';
import { AdamW, gradClip } from '../dist/train/index.js';
import { Decoder } from '../dist/generate/index.js';
import { Rng } from '../dist/util/rng.js';
import { writeReadmeSection } from './readme.js';

const di = process.argv.indexOf('--device');
const device = resolveDevice(di > 0 ? process.argv[di + 1] : 'auto');
const ri = process.argv.indexOf('--runs');
const RUNS = ri > 0 ? Number(process.argv[ri + 1]) : 5;
if (!(Number.isInteger(RUNS) && RUNS >= 1)) {
  console.error(`model-train: --runs must be an integer >= 1, got ${process.argv[ri + 1]}`);
  process.exit(2);
}

// --shape PRESET:BxL[:bf16][:recompute], repeatable
function parseShape(spec) {
  const [preset, bl, ...flags] = spec.split(':');
  const m = /^(\d+)x(\d+)$/.exec(bl ?? '');
  const bad = flags.find((f) => f !== 'bf16' && f !== 'recompute');
  if (!preset || !m || bad !== undefined) {
    console.error(`model-train: --shape must be PRESET:BxL[:bf16][:recompute] (e.g. 130m:8x2048:bf16), got '${spec}'`);
    process.exit(2);
  }
  return [preset, Number(m[1]), Number(m[2]), flags.includes('recompute'), flags.includes('bf16') ? 'bf16' : 'f32'];
}
const tuned = !process.argv.includes('--untuned');
const picked = process.argv.flatMap((a, i) => (a === '--shape' ? [parseShape(process.argv[i + 1] ?? '')] : []));

// --short (cuda): the rows that the targets in the README are about, for a quick run
const short = process.argv.includes('--short');
const shapes =
  picked.length > 0
    ? picked
    : device === 'cuda' && short
      ? [
          ['small', 8, 2048, false, 'bf16'],
          ['130m', 8, 2048, false, 'bf16'],
          ['small', 1, 1048576, true, 'bf16'],
          ['130m', 1, 262144, true, 'bf16'],
        ]
      : device === 'cpu'
        ? [
            ['tiny', 8, 512, false],
            [{ d_model: 128, n_layer: 2 }, 16, 256, false],
            ['small', 4, 512, false],
          ]
        : [
            ['small', 8, 2048, false],
            ['130m', 8, 2048, false],
            ['130m', 8, 2048, false, 'bf16'],
            ['130m', 1, 65536, true],
            ['130m', 1, 262144, true],
            ['130m', 1, 262144, true, 'bf16'],
            ['small', 1, 1048576, true],
            ['small', 1, 1048576, true, 'bf16'],
            ['130m', 1, 1048576, true, 'bf16'],
          ];

function matmulParams(m) {
  // every 2-D weight is a matmul; the embedding counts once more as the tied LM head
  let n = 0;
  for (const p of m.parameters())
    if (p.value.shape.length === 2 && !p.name.includes('conv1d') && !p.name.includes('A_log')) n += p.value.numel;
  return n;
}

const rows = [];
for (const [preset, B, L, recompute, precision = 'f32'] of shapes) {
  const cfg = makeConfig(preset);
  const name0 = typeof preset === 'string' ? preset : `d${cfg.d_model}x${cfg.n_layer}`;
  let model;
  try {
    model = MambaLM.create(cfg, { device, seed: 1, recompute, precision });
    await runShape(model, cfg, B, L, recompute, precision, preset);
  } catch (e) {
    if (e?.name !== 'OutOfMemoryError') throw e;
    console.log(`${name0} ${precision} B=${B} L=${L}: out of memory (${e.message})`);
    rows.push([
      name0,
      precision,
      `${cfg.d_model} x ${cfg.n_layer}`,
      '',
      String(B),
      String(L),
      recompute ? 'yes' : 'no',
      'out of memory',
      '',
      '',
      '',
      ...(device === 'cuda' ? [''] : []),
    ]);
  } finally {
    model?.dispose();
  }
}

async function runShape(model, cfg, B, L, recompute, precision, preset) {
  const opt = new AdamW(model.parameters());
  try {
    const r = new Rng(1);
    const batch = {
      B,
      L,
      inputs: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
      targets: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
    };
    const step = () => {
      model.zeroGrad();
      setGemmTuning(tuned);
      try {
        model.forwardBackward(batch);
      } finally {
        setGemmTuning(false); // the decoding rows after keep the fixed choice, even after an out-of-memory step
      }
      opt.update(1e-3, gradClip(opt.params, 1).scale);
      synchronize(device);
    };
    step();
    if (device === 'cuda') native().cuda.resetPeakMemory();
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      step();
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    const t = times[Math.floor(times.length / 2)];
    const flops = 6 * matmulParams(model) * B * L;
    const name = typeof preset === 'string' ? preset : `d${cfg.d_model}x${cfg.n_layer}`;
    const row = [
      name,
      precision,
      `${cfg.d_model} x ${cfg.n_layer}`,
      (model.numParameters() / 1e6).toFixed(2),
      String(B),
      String(L),
      recompute ? 'yes' : 'no',
      (t * 1000).toFixed(1),
      Math.round((B * L) / t).toLocaleString('en-US'),
      (flops / t / 1e9).toFixed(1),
    ];
    row.push((model.backbone.workspaceBytes() / 2 ** 30).toFixed(2));
    if (device === 'cuda') {
      // everything this process holds on the GPU at the step's peak: parameters, optimizer state, workspaces,
      // cuBLAS's own and the scan's scratch buffer
      const m = native().cuda.memoryStats();
      row.push(((m.peak + m.scratch) / 2 ** 30).toFixed(2));
    }
    rows.push(row);
    console.log(
      `${name} ${precision} B=${B} L=${L} recompute=${recompute}: ${row[7]} ms/step, ${row[8]} tokens/s, ${row[9]} GFLOP/s (matmul), workspaces ${row[10]} GiB`,
    );
  } finally {
    opt.dispose();
  }
}

// recurrent decoding: time per token after prompts of different lengths (O(1) per token: the same)
const decodeRows = [];
if (!process.argv.includes('--no-decode')) {
  const preset = device === 'cpu' ? 'small' : '130m';
  const model = MambaLM.create(makeConfig(preset), { device, seed: 1 });
  const STEPS = device === 'cpu' ? 100 : 200;
  for (const P of [16, 4096]) {
    const r = new Rng(2);
    const dec = new Decoder(model, 1);
    const t0 = performance.now();
    dec.prefill(
      Int32Array.from({ length: P }, () => 4 + r.int(4)),
      P,
    );
    const tp = (performance.now() - t0) / 1000;
    const times = [];
    for (let rep = 0; rep < 3; rep++) {
      const t1 = performance.now();
      for (let i = 0; i < STEPS; i++) dec.step(Int32Array.of(4 + r.int(4)));
      times.push((performance.now() - t1) / STEPS);
    }
    times.sort((a, b) => a - b);
    const row = [
      preset,
      String(P),
      (tp * 1000).toFixed(1),
      times[1].toFixed(3),
      Math.round(1000 / times[1]).toLocaleString('en-US'),
    ];
    decodeRows.push(row);
    dec.caches.forEach((c) => {
      c.conv.dispose();
      c.ssm.dispose();
    });
    console.log(
      `decode ${preset} after a ${P}-token prompt: prefill ${row[2]} ms, ${row[3]} ms/token, ${row[4]} tokens/s`,
    );
  }
}

let hw;
if (device === 'cuda') {
  const i = cudaDeviceInfo(0);
  hw = `${i.name} (${(i.totalBytes / 2 ** 30).toFixed(0)} GiB), f32 weights; activations f32 (cuBLAS f32) or bf16 (bf16 matmuls with fp32 accumulation on bf16 copies of the weights). Peak for reference: H100 SXM 67 TFLOP/s FP32 (non-tensor), 495 TFLOP/s TF32 tensor (dense).`;
} else {
  hw = `${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores, f32; compare with the gemm rates of "CPU kernels" above.`;
}
const title =
  device === 'cuda' ? `## Model training step (cuda, ${cudaDeviceInfo(0).name})` : `## Model training step (${device})`;
const memCols = device === 'cuda' ? ' GPU memory at peak (GiB) |' : '';
const table = [
  title,
  '',
  `Whole step: zeroGrad, forward, backward, global-norm clip, AdamW; random DNA tokens; median of ${RUNS} after a warm-up. ${hw} GFLOP/s counts only the matmuls (6 x matmul parameters x tokens, tied head included). Workspaces = activation and gradient buffers (parameters and optimizer state not included).`,
  '',
  `| model | activations | d_model x layers | params (M) | B | L | recompute | ms/step | tokens/s | GFLOP/s (matmul) | workspaces (GiB) |${memCols}`,
  `|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|${device === 'cuda' ? '---:|' : ''}`,
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
  `Recurrent decoding, B=1 (one token through every layer's conv/SSM state, logits to the host each step; median of 3 runs): the time per token does not grow with the prompt.`,
  '',
  '| model | prompt tokens | prefill (ms) | ms/token | tokens/s |',
  '|---|---:|---:|---:|---:|',
  ...decodeRows.map((r) => `| ${r.join(' | ')} |`),
  '',
  `Command: \`npm run build && node bench/model-train.js --device ${device}${short ? ' --short' : ''}\`${device === 'cuda' ? ". GPU memory at peak = the caching allocator's peak (parameters, optimizer state, workspaces) plus the scan's scratch buffer." : ''}`,
  '',
].join('\n');
console.log(`\n${table}`);
if (!process.argv.includes('--no-write')) {
  writeReadmeSection(table);
}
