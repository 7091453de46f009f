// stop 36 dev check: which outputs of the CUDA scan backward differ between two identical calls (the ones summed by atomics)
import { native } from '../dist/backend/native.js';
import { Tensor, f32ToBf16Bits } from '../dist/backend/tensor.js';
import { Rng } from '../dist/util/rng.js';
const cu = native().cuda;
function rnd(n, seed, mean, std, dtype) {
  const r = new Rng(seed);
  const h = dtype === 'bf16' ? new Uint16Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = mean + std * r.normal();
    h[i] = dtype === 'bf16' ? f32ToBf16Bits(v) : v;
  }
  return Tensor.from(h, [n], dtype, 'cuda');
}
for (const [B, L, D, N, dt, ck] of [
  [8, 2048, 1536, 16, 'bf16', ''],
  [3, 777, 96, 5, 'f32', ''],
  [4, 1500, 130, 4, 'bf16', '0'],
]) {
  const T = B * L,
    eb = dt === 'bf16' ? 2 : 4;
  const u = rnd(T * D, 1, 0, 1, dt),
    delta = rnd(T * D, 2, -1.2, 0.7, dt),
    z = rnd(T * D, 3, 0, 1, dt),
    bc = rnd(T * 2 * N, 4, 0, 1, dt),
    dy = rnd(T * D, 8, 0, 1, dt);
  const A = Tensor.from(
    Float32Array.from({ length: D * N }, (_, i) => -((i % N) + 1) * 0.5),
    [D * N],
    'f32',
    'cuda',
  );
  const bias = rnd(D, 6, 0, 0.3, 'f32'),
    Dk = rnd(D, 7, 0, 1, 'f32');
  const span = (T * 2 * N - N) * eb;
  const inputs = {
    u: u.buffer,
    delta: delta.buffer,
    deltaBias: bias.buffer,
    A: A.buffer,
    Bm: cu.view(bc.buffer, 0, span),
    Cm: cu.view(bc.buffer, 2 * N * 0 + N * eb, span),
    bcStride: 2 * N,
    Dskip: Dk.buffer,
    z: z.buffer,
    zStride: D,
    B,
    L,
    D,
    N,
    deltaSoftplus: true,
    dtype: dt,
  };
  const run = (mode) => {
    process.env.MAMBA_SCAN_ADJ = mode;
    if (ck) process.env.MAMBA_SCAN_CHECKPOINT_MB = ck;
    else delete process.env.MAMBA_SCAN_CHECKPOINT_MB;
    const o = {
      du: Tensor.empty([T * D], dt, 'cuda'),
      dd: Tensor.empty([T * D], dt, 'cuda'),
      dz: Tensor.empty([T * D], dt, 'cuda'),
      dbc: Tensor.zeros([T * 2 * N], dt, 'cuda'),
      dA: Tensor.zeros([D * N], 'f32', 'cuda'),
      dD: Tensor.zeros([D], 'f32', 'cuda'),
      dBias: Tensor.zeros([D], 'f32', 'cuda'),
    };
    cu.selectiveScanBackward({
      ...inputs,
      dy: dy.buffer,
      du: o.du.buffer,
      ddelta: o.dd.buffer,
      dA: o.dA.buffer,
      dB: cu.view(o.dbc.buffer, 0, span),
      dC: cu.view(o.dbc.buffer, N * eb, span),
      dDskip: o.dD.buffer,
      dDeltaBias: o.dBias.buffer,
      dz: o.dz.buffer,
    });
    cu.synchronize();
    return Object.fromEntries(Object.entries(o).map(([k, t]) => [k, t.toFloat64()]));
  };
  const ref = run('');
  for (const mode of ['again']) {
    const got = run(mode);
    const diff = Object.keys(ref).filter((k) => ref[k].some((v, i) => !Object.is(v, got[k][i])));
    const finite = Object.values(ref).every((a) => a.every(Number.isFinite));
    console.log(
      `B=${B} L=${L} D=${D} N=${N} ${dt} ckMB=${ck || 'default'} run twice: ${diff.length ? 'DIFFERS in ' + diff.join(',') : 'same bits'}${finite ? '' : ' (non-finite values)'}`,
    );
  }
}
