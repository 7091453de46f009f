#!/usr/bin/env node
// The decoding step's ops one at a time, as a CUDA graph replays them: each op is captured REPS times in a row
// into one graph (every node waits for the one before, as in the step's graph), the graph is launched RUNS times,
// and the time per op is the median launch time / REPS. So the launch gaps between dependent kernels count, and
// the host's argument handling does not (MAMBA_OP_PROFILE times ops eagerly, host gaps included).
// usage: node bench/decode-ops.js [--preset 130m] [--batch 64,16,8,1] [--precision bf16|f32] [--reps 100] [--runs 7]
import {
  Tensor,
  columns,
  conv1dStep,
  convXProjStep,
  cudaOp,
  decodeInProj,
  decodeOut,
  decodeSsm,
  gemm,
  negExp,
  resolveDevice,
  synchronize,
} from '../dist/backend/index.js';
import { MambaLM, makeConfig } from '../dist/model/index.js';
import { Decoder } from '../dist/generate/index.js';
import { mmWeight } from '../dist/nn/param.js';
import { Workspace } from '../dist/nn/index.js';
import { Rng } from '../dist/util/rng.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const preset = opt('--preset', '130m');
const batches = opt('--batch', '64,16,8,1').split(',').map(Number);
const precision = opt('--precision', 'bf16');
const REPS = Number(opt('--reps', '100')),
  RUNS = Number(opt('--runs', '7'));
const device = resolveDevice('cuda');
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/** us per call of op() when replayed from a graph of REPS calls */
function graphTime(op) {
  op(); // eager warm-up: buffers allocated before the capture
  synchronize(device);
  cudaOp('captureBegin')();
  let exec;
  try {
    for (let i = 0; i < REPS; i++) op();
  } finally {
    exec = cudaOp('captureEnd')();
  }
  cudaOp('graphLaunch')(exec);
  synchronize(device);
  const t = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    cudaOp('graphLaunch')(exec);
    synchronize(device);
    t.push(((performance.now() - t0) * 1000) / REPS);
  }
  return median(t);
}

const cfg = makeConfig(preset, { vocab_size: 50280 });
const model = MambaLM.create(cfg, { device, seed: 1, precision });
model.refreshHalf();
const act = precision === 'bf16' ? 'bf16' : 'f32';
const blk = model.backbone.layers[0];
const m = blk.mixer;
const { dModel: D, dInner: E, dtRank: R, dState: N } = m.dims;
const rng = new Rng(1);
const dev = (n, shape, dtype = 'f32') =>
  Tensor.from(
    Array.from({ length: n }, () => 0.5 * rng.normal()),
    shape,
    dtype,
    'cuda',
  );

console.log(
  `${preset} ${precision}: d_model ${D}, d_inner ${E}, dt_rank ${R}, d_state ${N}; ${REPS} ops per graph, median of ${RUNS} launches`,
);
console.log('| batch | op | us per call |');
console.log('| ---: | --- | ---: |');
for (const B of batches) {
  const ws = new Workspace('cuda', act);
  const cache = m.newCache(B);
  const hIn = dev(B * D, [B, D], act),
    rIn = dev(B * D, [B, D]),
    rOut = dev(B * D, [B, D]),
    hOut = dev(B * D, [B, D], act),
    rstd = dev(B, [B]);
  const normOut = dev(B * D, [B, D], act),
    xz = dev(B * 2 * E, [B, 2 * E], act),
    xc = dev(B * E, [B, E], act),
    xProj = dev(B * (R + 2 * N), [B, R + 2 * N], act),
    y = dev(B * E, [B, E], act),
    zb = dev(B * E, [B, E], act);
  const headW = mmWeight(model.backbone.embedding.weight);
  const A = dev(E * N, [E, N]);
  negExp(m.ALog.value, A);
  const logits = dev(B * headW.shape[0], [B, headW.shape[0]], act);
  const rows = [
    ['rmsnorm with residual (block norm)', () => blk.norm.forward(hIn, rIn, normOut, rOut, rstd)],
    ['in_proj gemm', () => gemm(normOut, mmWeight(m.inProj), xz, { transB: true })],
    ['conv1dStep', () => conv1dStep(cache.conv, columns(xz, 0, E), m.convWeight.value, m.convBias.value, xc, true)],
    ['x_proj gemm', () => gemm(xc, mmWeight(m.xProj), xProj, { transB: true })],
    ...(act === 'bf16'
      ? [
          [
            'convXProj (conv step and x_proj on tensor cores)',
            () =>
              convXProjStep(
                cache.conv,
                columns(xz, 0, E),
                m.convWeight.value,
                m.convBias.value,
                mmWeight(m.xProj),
                xc,
                xProj,
              ),
          ],
        ]
      : []),
    [
      'decodeSsm on x_proj',
      () =>
        decodeSsm(
          { proj: xProj },
          xc,
          columns(xz, E, E),
          mmWeight(m.dtProjWeight),
          m.dtProjBias.value,
          A,
          m.Dskip.value,
          cache.ssm,
          y,
        ),
    ],
    ['out_proj gemm', () => gemm(y, mmWeight(m.outProj), hOut, { transB: true })],
    [
      'block step, unfused (norm, in_proj, conv step and x_proj: convXProj unless MAMBA_DECODE_CONVX=0, decodeSsm, out_proj)',
      () => (blk.norm.forward(hIn, rIn, normOut, rOut, rstd), m.step(normOut, hOut, cache, ws)),
    ],
    ['block step, fused (decodeIn, decodeSsm, decodeOut)', () => blk.stepFused(hIn, rIn, hOut, rOut, cache, ws)],
    [
      'decodeInProj (norm, in_proj on tensor cores, conv step)',
      () =>
        decodeInProj(
          rOut,
          blk.norm.weight.value,
          blk.norm.eps,
          mmWeight(m.inProj),
          cache.conv,
          m.convWeight.value,
          m.convBias.value,
          xc,
          zb,
        ),
    ],
    ['out_proj gemm into the residual (beta 1)', () => gemm(y, mmWeight(m.outProj), rOut, { transB: true, beta: 1 })],
    [
      'block step, residual form (decodeInProj, x_proj, decodeSsm, out_proj into r)',
      () => blk.stepOnResidual(rOut, cache, ws),
    ],
    ['head gemm (tied embedding)', () => gemm(hOut, headW, logits, { transB: true })],
    // the fused step's product kernel (rows of W against groups of 8 sequences) on the unfused step's products
    ['in_proj on decodeOut', () => decodeOut(normOut, mmWeight(m.inProj), xz)],
    ['x_proj on decodeOut', () => decodeOut(xc, mmWeight(m.xProj), xProj)],
    ['out_proj on decodeOut', () => decodeOut(y, mmWeight(m.outProj), hOut)],
  ];
  for (const [name, op] of rows) console.log(`| ${B} | ${name} | ${graphTime(op).toFixed(2)} |`);
  // the whole step as generation runs it: one graph launch per token (embedding, layers, norm, head, greedy
  // choice on the device), the tokens kept on the device as generateMany keeps them
  const dec = new Decoder(model, B);
  dec.startSampling({ temperature: 0 });
  dec.sampleFirst(Array.from({ length: B }, () => Array.from({ length: 16 }, () => rng.int(50000))));
  const steps = 50,
    toks = Tensor.zeros([steps, B], 'i32', 'cuda');
  for (let i = 0; i < 3; i++) dec.sampleNextInto(toks, i);
  synchronize(device);
  const t = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) dec.sampleNextInto(toks, i);
    synchronize(device);
    t.push(((performance.now() - t0) * 1000) / steps);
  }
  console.log(
    `| ${B} | whole step (${m.fusedStep(B) ? 'fused' : m.residualStep(B) ? 'residual-form' : 'unfused'} layers, head, greedy choice) | ${median(t).toFixed(2)} |`,
  );
}
