#!/usr/bin/env node
// One forward and one backward of the CUDA scan at D = 1536, N = 16, bf16 (twice each): a small driver for
// profilers (ncu) and for the per-pass times of MAMBA_SCAN_PROFILE=1.
// usage: [SCAN_ONCE_REPS=n] node bench/scan-once.js [log2 L = 16] [B = 1]  (n > 2: medians after a warm-up)
import { native } from '../dist/backend/native.js';
import { Tensor, f32ToBf16Bits } from '../dist/backend/tensor.js';
import { Rng } from '../dist/util/rng.js';

const lg = Number(process.argv[2] ?? 16),
  B = Number(process.argv[3] ?? 1);
const cu = native().cuda;
const D = 1536,
  N = 16,
  L = 2 ** lg,
  T = B * L;
// a random block of at most 2^20 values, uploaded once and tiled at shifted offsets (drawing 1.6 G values in JS
// would take minutes)
function rnd(n, seed, mean = 0, std = 1, dtype = 'bf16') {
  const r = new Rng(seed),
    blk = Math.min(n, 1 << 20),
    eb = dtype === 'bf16' ? 2 : 4;
  const h = dtype === 'bf16' ? new Uint16Array(blk) : new Float32Array(blk);
  for (let i = 0; i < blk; i++) {
    const v = mean + std * r.normal();
    h[i] = dtype === 'bf16' ? f32ToBf16Bits(v) : v;
  }
  const src = Tensor.from(h, [blk], dtype, 'cuda'),
    t = Tensor.empty([n], dtype, 'cuda');
  for (let off = 0, k = 0; off < n; off += blk, k++) {
    const len = Math.min(blk, n - off),
      s = (k * 7919) % Math.max(1, blk - len + 1);
    cu.copy(cu.view(t.buffer, off * eb, len * eb), cu.view(src.buffer, s * eb, len * eb), len * eb);
  }
  return t;
}
const u = rnd(T * D, 1),
  delta = rnd(T * D, 2, -1.2, 0.7),
  z = rnd(T * D, 3),
  bc = rnd(T * 2 * N, 4),
  dy = rnd(T * D, 8);
const A = Tensor.from(
  Float32Array.from({ length: D * N }, (_, i) => -((i % N) + 1)),
  [D * N],
  'f32',
  'cuda',
);
const bias = rnd(D, 6, 0, 0.3, 'f32'),
  Dk = rnd(D, 7, 0, 1, 'f32');
const y = Tensor.empty([T * D], 'bf16', 'cuda'),
  last = Tensor.empty([B * D * N], 'f32', 'cuda');
const du = Tensor.empty([T * D], 'bf16', 'cuda'),
  dd = Tensor.empty([T * D], 'bf16', 'cuda'),
  dz = Tensor.empty([T * D], 'bf16', 'cuda');
const dbc = Tensor.empty([T * 2 * N], 'bf16', 'cuda');
const dA = Tensor.zeros([D * N], 'f32', 'cuda'),
  dD = Tensor.zeros([D], 'f32', 'cuda'),
  dBias = Tensor.zeros([D], 'f32', 'cuda');
const span = (T * 2 * N - N) * 2;
const Bv = cu.view(bc.buffer, 0, span),
  Cv = cu.view(bc.buffer, 2 * N, span);
const dBv = cu.view(dbc.buffer, 0, span),
  dCv = cu.view(dbc.buffer, 2 * N, span);
const inputs = {
  u: u.buffer,
  delta: delta.buffer,
  deltaBias: bias.buffer,
  A: A.buffer,
  Bm: Bv,
  Cm: Cv,
  bcStride: 2 * N,
  Dskip: Dk.buffer,
  z: z.buffer,
  zStride: D,
  B,
  L,
  D,
  N,
  deltaSoftplus: true,
  dtype: 'bf16',
};
const reps = Number(process.env.SCAN_ONCE_REPS ?? 2),
  fw = [],
  bw = [];
for (let rep = 0; rep < reps; rep++) {
  const t0 = performance.now();
  cu.selectiveScanForward({ ...inputs, y: y.buffer, lastState: last.buffer });
  cu.synchronize();
  const t1 = performance.now();
  cu.selectiveScanBackward({
    ...inputs,
    dy: dy.buffer,
    du: du.buffer,
    ddelta: dd.buffer,
    dA: dA.buffer,
    dB: dBv,
    dC: dCv,
    dDskip: dD.buffer,
    dDeltaBias: dBias.buffer,
    dz: dz.buffer,
  });
  cu.synchronize();
  fw.push(t1 - t0);
  bw.push(performance.now() - t1);
  if (reps <= 2)
    console.log(
      `scan B=${B} L=2^${lg}: forward ${(t1 - t0).toFixed(3)} ms, backward ${(performance.now() - t1).toFixed(3)} ms`,
    );
}
if (reps > 2) {
  const med = (a) => [...a.slice(1)].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
  console.log(
    `scan B=${B} L=2^${lg}: median of ${reps - 1} after a warm-up: forward ${med(fw).toFixed(3)} ms, backward ${med(bw).toFixed(3)} ms`,
  );
}
