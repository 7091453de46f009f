// Every non-scan CUDA kernel against its CPU twin run in float64 (the CPU kernels take Float64Array), on
// random data and awkward shapes. conv1d is also checked against a float64 TypeScript reference (it is
// used when the CPU twin is not in the build).
import { describe, expect, it } from 'vitest';
import { native } from '../../src/backend/native.js';
import { cudaAvailable } from '../../src/backend/device.js';
import { Tensor, bf16BitsToF32, f32ToBf16Bits } from '../../src/backend/tensor.js';
import { randn, randu, relErr } from '../helpers.js';

const F32 = 1e-4,
  BF16 = 1e-2;
type DT = 'f32' | 'bf16';
const bfRound = (x: number) => bf16BitsToF32(f32ToBf16Bits(x));

function up(a: Float64Array, dt: DT = 'f32'): Tensor {
  if (dt === 'f32') return Tensor.from(Float32Array.from(a), [a.length], 'f32', 'cuda');
  const bits = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) bits[i] = f32ToBf16Bits(a[i]!);
  return Tensor.from(bits, [a.length], 'bf16', 'cuda');
}
const upI = (a: Int32Array) => Tensor.from(a, [a.length], 'i32', 'cuda');
const f32r = (a: Float64Array) => a.map(Math.fround);
const close = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => {
  const e = relErr(got, want);
  if (!(e < tol)) console.error(`${name}: relative error ${e.toExponential(2)}`);
  expect(e, name).toBeLessThan(tol);
};
function ids(n: number, V: number, seed: number): Int32Array {
  return Int32Array.from(randu(n, seed, 0, V), Math.floor);
}

// causal depthwise conv1d in float64: x strided [T, xs] (columns 0..D), w [D, K]
function convRef(
  x: Float64Array,
  xs: number,
  w: Float64Array,
  bias: Float64Array | null,
  B: number,
  L: number,
  D: number,
  K: number,
  silu: boolean,
) {
  const pre = new Float64Array(B * L * D),
    out = new Float64Array(B * L * D);
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++)
      for (let d = 0; d < D; d++) {
        let a = bias ? bias[d]! : 0;
        for (let k = 0; k < K; k++) {
          const lk = l - K + 1 + k;
          if (lk >= 0) a += w[d * K + k]! * x[(b * L + lk) * xs + d]!;
        }
        const i = (b * L + l) * D + d;
        pre[i] = a;
        out[i] = silu ? a / (1 + Math.exp(-a)) : a;
      }
  return { pre, out };
}
function convBackRef(
  x: Float64Array,
  xs: number,
  w: Float64Array,
  bias: Float64Array | null,
  dOut: Float64Array,
  B: number,
  L: number,
  D: number,
  K: number,
  silu: boolean,
) {
  const { pre } = convRef(x, xs, w, bias, B, L, D, K, silu);
  const dpre = dOut.map((g, i) => {
    if (!silu) return g;
    const s = 1 / (1 + Math.exp(-pre[i]!));
    return g * s * (1 + pre[i]! * (1 - s));
  });
  const dx = new Float64Array(B * L * D),
    dw = new Float64Array(D * K),
    db = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++)
      for (let d = 0; d < D; d++) {
        const g = dpre[(b * L + l) * D + d]!;
        db[d] += g;
        for (let k = 0; k < K; k++) {
          const lk = l - K + 1 + k;
          if (lk < 0) continue;
          dw[d * K + k] += g * x[(b * L + lk) * xs + d]!;
          dx[(b * L + lk) * D + d] += g * w[d * K + k]!;
        }
      }
  return { dx, dw, db };
}
function strided(src: Float64Array, rows: number, stride: number, width: number): Float64Array {
  const o = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) o[r * width + j] = src[r * stride + j]!;
  return o;
}

describe.skipIf(!cudaAvailable())('cuda kernels vs CPU twins', () => {
  const cu = () => native().cuda!;
  const cpu = () => native().cpu;

  it('embedding forward, backward (repeated ids, accumulating) and bad ids', () => {
    const T = 37,
      V = 11,
      D = 19;
    const id = ids(T, V, 1),
      W = f32r(randn(V * D, 2)),
      g = f32r(randn(T * D, 3)),
      dW0 = f32r(randn(V * D, 4));
    const out = Tensor.empty([T * D], 'f32', 'cuda'),
      idT = upI(id);
    cu().embeddingForward(idT.buffer, up(W).buffer, out.buffer, T, V, D);
    const wantOut = new Float64Array(T * D);
    cpu().embeddingForward(id, W, wantOut, T, V, D);
    close('embeddingForward', out.toFloat64(), wantOut, 1e-7);
    const dW = up(dW0),
      want = dW0.slice();
    cu().embeddingBackward(idT.buffer, up(g).buffer, dW.buffer, T, V, D);
    cpu().embeddingBackward(id, g, want, T, V, D);
    close('embeddingBackward', dW.toFloat64(), want, F32);
    const bad = id.slice();
    bad[5] = V;
    expect(() => cu().embeddingForward(upI(bad).buffer, up(W).buffer, out.buffer, T, V, D)).toThrow(
      /position 5 is outside 0..10/,
    );
    // bf16 activations (out, dOut), f32 table and gradient
    const ob = Tensor.empty([T * D], 'bf16', 'cuda');
    cu().embeddingForward(idT.buffer, up(W).buffer, ob.buffer, T, V, D, 'bf16');
    close('embeddingForward bf16', ob.toFloat64(), wantOut, BF16);
    const gq = g.map(bfRound),
      dWb = up(dW0),
      wantB = dW0.slice();
    cu().embeddingBackward(idT.buffer, up(gq, 'bf16').buffer, dWb.buffer, T, V, D, 'bf16');
    cpu().embeddingBackward(id, gq, wantB, T, V, D);
    close('embeddingBackward bf16', dWb.toFloat64(), wantB, F32);
  });

  it('bias forward and backward (T not a multiple of anything)', () => {
    const T = 333,
      C = 70;
    const y0 = f32r(randn(T * C, 5)),
      b = f32r(randn(C, 6)),
      db0 = f32r(randn(C, 7));
    const y = up(y0),
      want = y0.slice();
    cu().biasForward(y.buffer, up(b).buffer, T, C);
    cpu().biasForward(want, b, T, C);
    close('biasForward', y.toFloat64(), want, F32);
    const db = up(db0),
      wdb = db0.slice();
    cu().biasBackward(up(y0).buffer, db.buffer, T, C);
    cpu().biasBackward(y0, wdb, T, C);
    close('biasBackward', db.toFloat64(), wdb, F32);
    const yq = y0.map(bfRound),
      yb = up(yq, 'bf16'),
      wantb = yq.slice();
    cu().biasForward(yb.buffer, up(b).buffer, T, C, 'bf16');
    cpu().biasForward(wantb, b, T, C);
    close('biasForward bf16', yb.toFloat64(), wantb, BF16);
    const dbb = up(db0),
      wdbb = db0.slice();
    cu().biasBackward(up(yq, 'bf16').buffer, dbb.buffer, T, C, 'bf16');
    cpu().biasBackward(yq, wdbb, T, C);
    close('biasBackward bf16', dbb.toFloat64(), wdbb, F32);
  });

  // D = 300: the vector kernels (D % 4 == 0, rows moved 4 values at a time, lanes past D idle); 302: the scalar
  // ones; 768 x 2,500 rows: the backward's warps each walk several rows (its grid is two blocks per SM)
  for (const [withRes, D, T] of [
    [true, 300, 29],
    [false, 300, 29],
    [true, 302, 29],
    [true, 768, 2500],
  ] as const) {
    it(`rmsnorm forward/backward ${withRes ? 'with' : 'without'} residual, D = ${D}, T = ${T}, f32 and bf16 out`, () => {
      const eps = 1e-5;
      const x = f32r(randn(T * D, 8)),
        res = withRes ? f32r(randn(T * D, 9)) : null,
        w = f32r(randu(D, 10, 0.5, 1.5));
      const out = new Float64Array(T * D),
        rout = new Float64Array(T * D),
        rstd = new Float64Array(T);
      cpu().rmsnormForward(x, res, w, out, rout, rstd, T, D, eps); // f32 x: the backward's inputs
      expect(rstd.every((v) => v > 0)).toBe(true);
      for (const dt of ['f32', 'bf16'] as DT[]) {
        // bf16: x and out are bf16, the residual stream and rstd stay f32 (compared with the CPU on the rounded x)
        const xq = dt === 'bf16' ? x.map(bfRound) : x;
        const wOut = new Float64Array(T * D),
          wRout = new Float64Array(T * D),
          wRstd = new Float64Array(T);
        cpu().rmsnormForward(xq, res, w, wOut, wRout, wRstd, T, D, eps);
        const o = Tensor.empty([T * D], dt, 'cuda'),
          ro = Tensor.empty([T * D], 'f32', 'cuda'),
          rs = Tensor.empty([T], 'f32', 'cuda');
        cu().rmsnormForward(
          up(xq, dt).buffer,
          res ? up(res).buffer : null,
          up(w).buffer,
          o.buffer,
          ro.buffer,
          rs.buffer,
          T,
          D,
          eps,
          dt,
        );
        close(`rmsnorm out ${dt}`, o.toFloat64(), wOut, dt === 'f32' ? F32 : BF16);
        close(`rmsnorm residualOut ${dt}`, ro.toFloat64(), wRout, F32);
        close(`rmsnorm rstd ${dt}`, rs.toFloat64(), wRstd, F32);
        // the norm of the kept residual alone (x and residualOut null): recomputation's exact normOut
        const o2 = Tensor.empty([T * D], dt, 'cuda'),
          rs2 = Tensor.empty([T], 'f32', 'cuda');
        cu().rmsnormForward(null, ro.buffer, up(w).buffer, o2.buffer, null, rs2.buffer, T, D, eps, dt);
        expect(Array.from(o2.toFloat64()), `rmsnorm of residual ${dt}`).toEqual(Array.from(o.toFloat64()));
        expect(Array.from(rs2.toFloat64())).toEqual(Array.from(rs.toFloat64()));
      }
      const g = f32r(randn(T * D, 11)),
        dres = withRes ? f32r(randn(T * D, 12)) : null,
        dW0 = f32r(randn(D, 13));
      const dR = new Float64Array(T * D),
        dW = dW0.slice();
      cpu().rmsnormBackward(g, dres, rout, w, rstd, dR, dW, T, D);
      for (const dt of ['f32', 'bf16'] as DT[]) {
        const gq = dt === 'bf16' ? g.map(bfRound) : g;
        const wantR = new Float64Array(T * D),
          wantW = dW0.slice();
        cpu().rmsnormBackward(gq, dres, rout, w, rstd, wantR, wantW, T, D);
        // without and with dRAct, dR's copy in dOut's dtype
        for (const withAct of [false, true]) {
          const dRt = Tensor.empty([T * D], 'f32', 'cuda'),
            dWt = up(dW0),
            dRa = Tensor.empty([T * D], dt, 'cuda');
          cu().rmsnormBackward(
            up(gq, dt).buffer,
            dres ? up(dres).buffer : null,
            up(rout).buffer,
            up(w).buffer,
            up(rstd).buffer,
            dRt.buffer,
            dWt.buffer,
            T,
            D,
            dt,
            withAct ? dRa.buffer : null,
          );
          close(`rmsnorm dR ${dt}`, dRt.toFloat64(), wantR, F32);
          close(`rmsnorm dW ${dt}`, dWt.toFloat64(), wantW, F32);
          if (withAct) close(`rmsnorm dRAct ${dt}`, dRa.toFloat64(), wantR, dt === 'f32' ? F32 : BF16);
        }
      }
    });
  }

  // short sequences, and long ones that the kernels split into runs (halos between runs, several runs per block);
  // the last field: x and dx rows 2D apart (D a multiple of 4 with K <= 4 then takes the kernels that move 4 channels
  // a thread), else 2D + 3 (one channel a thread)
  const convCases: [boolean, boolean, DT, number, number, number, number, boolean][] = [
    [true, true, 'f32', 2, 13, 37, 4, false],
    [false, false, 'f32', 2, 13, 37, 4, false],
    [true, true, 'bf16', 2, 13, 37, 4, false],
    [true, true, 'f32', 3, 1100, 70, 4, false],
    [true, false, 'bf16', 2, 777, 130, 3, false],
    [false, true, 'f32', 1, 600, 33, 2, false],
    [true, true, 'bf16', 3, 1100, 70, 4, true],
    [true, false, 'f32', 2, 777, 130, 3, true],
    [false, true, 'bf16', 2, 13, 38, 2, true],
    [true, true, 'bf16', 3, 1100, 72, 4, true],
    [true, false, 'f32', 2, 777, 132, 3, true],
    [false, true, 'bf16', 1, 13, 36, 1, true],
    [true, true, 'f32', 2, 600, 40, 6, true],
  ];
  for (const [silu, bias, dt, B, L, D, K, pairs] of convCases) {
    it(`conv1d forward/backward/step: silu ${silu}, bias ${bias}, ${dt}, B ${B} L ${L} D ${D} K ${K}, x and dx rows ${pairs ? '2D' : '2D + 3'} apart`, () => {
      const xs = pairs ? 2 * D : 2 * D + 3,
        T = B * L;
      const q = dt === 'bf16' ? bfRound : Math.fround;
      const xw = randn(T * xs, 14).map(q),
        w = f32r(randn(D * K, 15, 0.5)),
        b = bias ? f32r(randn(D, 16)) : null;
      const ref = convRef(xw, xs, w, b, B, L, D, K, silu);
      const tol = dt === 'f32' ? F32 : BF16;
      const xT = up(xw, dt),
        wT = up(w),
        bT = b ? up(b) : null;
      const out = Tensor.empty([T * D], dt, 'cuda');
      cu().conv1dForward({
        x: xT.buffer,
        xStride: xs,
        w: wT.buffer,
        bias: bT ? bT.buffer : null,
        out: out.buffer,
        B,
        L,
        D,
        K,
        silu,
        dtype: dt,
      });
      close('conv1dForward', out.toFloat64(), ref.out, tol);
      if (cpu().conv1dForward && dt === 'f32') {
        const c = new Float64Array(T * D);
        cpu().conv1dForward({ x: xw, xStride: xs, w, bias: b, out: c, B, L, D, K, silu });
        close('conv1dForward vs cpu', out.toFloat64(), c, tol);
      }
      const g = randn(T * D, 17).map(q);
      const br = convBackRef(xw, xs, w, b, g, B, L, D, K, silu);
      const dxw = Tensor.zeros([T * xs], dt, 'cuda'),
        dw0 = f32r(randn(D * K, 18)),
        db0 = f32r(randn(D, 19));
      const dwT = up(dw0),
        dbT = b ? up(db0) : null;
      cu().conv1dBackward({
        x: xT.buffer,
        xStride: xs,
        w: wT.buffer,
        bias: bT ? bT.buffer : null,
        dOut: up(g, dt).buffer,
        dx: dxw.buffer,
        dxStride: xs,
        dw: dwT.buffer,
        dbias: dbT ? dbT.buffer : null,
        B,
        L,
        D,
        K,
        silu,
        dtype: dt,
      });
      const dxh = dxw.toFloat64();
      close('conv1d dx', strided(dxh, T, xs, D), br.dx, tol);
      for (let r = 0; r < T; r++) for (let j = D; j < xs; j++) expect(dxh[r * xs + j]).toBe(0); // other columns untouched
      close(
        'conv1d dw',
        dwT.toFloat64().map((v, i) => v - dw0[i]!),
        br.dw,
        dt === 'f32' ? 1e-4 : BF16,
      );
      if (dbT)
        close(
          'conv1d dbias',
          dbT.toFloat64().map((v, i) => v - db0[i]!),
          br.db,
          dt === 'f32' ? 1e-4 : BF16,
        );
      if (cpu().conv1dBackward && dt === 'f32') {
        const dxc = new Float64Array(T * xs),
          dwc = new Float64Array(D * K),
          dbc = new Float64Array(D);
        cpu().conv1dBackward({
          x: xw,
          xStride: xs,
          w,
          bias: b,
          dOut: g,
          dx: dxc,
          dxStride: xs,
          dw: dwc,
          dbias: b ? dbc : null,
          B,
          L,
          D,
          K,
          silu,
        });
        close('conv1d dx vs cpu', strided(dxh, T, xs, D), strided(dxc, T, xs, D), tol);
      }
      // the recurrent step, L times from a zero state, reproduces the forward (short sequences only: one call per step)
      if (L > 64) return;
      const st = Tensor.zeros([B * D * K], 'f32', 'cuda');
      const ys = new Float64Array(T * D);
      for (let l = 0; l < L; l++) {
        const rows = new Float64Array(B * xs);
        for (let bb = 0; bb < B; bb++) rows.set(xw.subarray((bb * L + l) * xs, (bb * L + l + 1) * xs), bb * xs);
        const o = Tensor.empty([B * D], dt, 'cuda');
        cu().conv1dStep({
          convState: st.buffer,
          x: up(rows, dt).buffer,
          xStride: xs,
          w: wT.buffer,
          bias: bT ? bT.buffer : null,
          out: o.buffer,
          B,
          D,
          K,
          silu,
          dtype: dt,
        });
        const oh = o.toFloat64();
        for (let bb = 0; bb < B; bb++) ys.set(oh.subarray(bb * D, (bb + 1) * D), (bb * L + l) * D);
      }
      close('conv1dStep', ys, ref.out, tol);
    });
  }

  it('cross-entropy: losses and gradient, ignored rows, V larger than a block, bad targets', () => {
    const T = 23,
      V = 300,
      gs = 0.37;
    const logits = f32r(randn(T * V, 20, 3)),
      tg = ids(T, V, 21);
    tg[3] = -1;
    tg[17] = -1;
    const losses = new Float64Array(T),
      dl = new Float64Array(T * V);
    cpu().crossEntropyForward(logits, tg, losses, dl, T, V, gs, -1);
    const lT = Tensor.empty([T], 'f32', 'cuda'),
      dT = Tensor.empty([T * V], 'f32', 'cuda'),
      tgT = upI(tg),
      lg = up(logits);
    cu().crossEntropyForward(lg.buffer, tgT.buffer, lT.buffer, dT.buffer, T, V, gs, -1);
    close('ce losses', lT.toFloat64(), losses, F32);
    close('ce dLogits', dT.toFloat64(), dl, F32);
    cu().crossEntropyForward(lg.buffer, tgT.buffer, lT.buffer, null, T, V, gs, -1);
    close('ce losses without gradient', lT.toFloat64(), losses, F32);
    const lq = logits.map(bfRound),
      lb = new Float64Array(T),
      db = new Float64Array(T * V);
    cpu().crossEntropyForward(lq, tg, lb, db, T, V, gs, -1);
    const dTb = Tensor.empty([T * V], 'bf16', 'cuda');
    cu().crossEntropyForward(up(lq, 'bf16').buffer, tgT.buffer, lT.buffer, dTb.buffer, T, V, gs, -1, true, 'bf16');
    close('ce losses bf16 logits', lT.toFloat64(), lb, F32);
    close('ce dLogits bf16', dTb.toFloat64(), db, BF16);
    const bad = tg.slice();
    bad[9] = V + 4;
    expect(() => cu().crossEntropyForward(lg.buffer, upI(bad).buffer, lT.buffer, null, T, V, gs, -1)).toThrow(
      /position 9/,
    );
    // checkTargets false (the caller checked them): nothing is read back, the bad row's loss is NaN, the rest stand
    cu().crossEntropyForward(lg.buffer, upI(bad).buffer, lT.buffer, null, T, V, gs, -1, false);
    const unchecked = lT.toFloat64();
    expect(Number.isNaN(unchecked[9]!)).toBe(true);
    close(
      'ce losses, targets not checked',
      unchecked.filter((_, t) => t !== 9),
      losses.filter((_, t) => t !== 9),
      F32,
    );
  });

  for (const mode of [0, 1]) {
    it(`pool ${mode === 0 ? 'mean' : 'last'} forward and backward (long L split across blocks; the same bits twice)`, () => {
      const B = 3,
        L = 1000,
        D = 70;
      const x = f32r(randn(B * L * D, 22)),
        g = f32r(randn(B * D, 23));
      const out = new Float64Array(B * D),
        dx = new Float64Array(B * L * D);
      cpu().poolForward(x, out, B, L, D, mode);
      cpu().poolBackward(g, dx, B, L, D, mode);
      const o = Tensor.empty([B * D], 'f32', 'cuda'),
        d = Tensor.empty([B * L * D], 'f32', 'cuda');
      cu().poolForward(up(x).buffer, o.buffer, B, L, D, mode);
      cu().poolBackward(up(g).buffer, d.buffer, B, L, D, mode);
      close('pool out', o.toFloat64(), out, F32);
      close('pool dx', d.toFloat64(), dx, F32);
      // the slices of L are added in a fixed order (no atomics): a second run gives the same bits
      const again = Tensor.empty([B * D], 'f32', 'cuda');
      cu().poolForward(up(x).buffer, again.buffer, B, L, D, mode);
      expect(Array.from(again.toFloat64())).toEqual(Array.from(o.toFloat64()));
      const xq = x.map(bfRound),
        gq = g.map(bfRound),
        outb = new Float64Array(B * D),
        dxb = new Float64Array(B * L * D);
      cpu().poolForward(xq, outb, B, L, D, mode);
      cpu().poolBackward(gq, dxb, B, L, D, mode);
      const ob = Tensor.empty([B * D], 'bf16', 'cuda'),
        db = Tensor.empty([B * L * D], 'bf16', 'cuda');
      cu().poolForward(up(xq, 'bf16').buffer, ob.buffer, B, L, D, mode, 'bf16');
      cu().poolBackward(up(gq, 'bf16').buffer, db.buffer, B, L, D, mode, 'bf16');
      close('pool out bf16', ob.toFloat64(), outb, BF16);
      close('pool dx bf16', db.toFloat64(), dxb, BF16);
    });
  }

  it('adamwStep (with the bf16 copy), sumSquares, scale, add (aliased), fill', () => {
    const n = 100_003;
    const p = f32r(randn(n, 24)),
      g = f32r(randn(n, 25)),
      m = f32r(randn(n, 26, 0.1)),
      v = f32r(randu(n, 27, 0, 0.01));
    const [lr, b1, b2, eps, wd, step] = [1e-3, 0.9, 0.95, 1e-8, 0.1, 3];
    const wp = p.slice(),
      wm = m.slice(),
      wv = v.slice();
    const hyper = { n, lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step, gradScale: 1.7 };
    cpu().adamwStep({ param: wp, grad: g, m: wm, v: wv, ...hyper });
    const pT = up(p),
      mT = up(m),
      vT = up(v),
      copy = Tensor.empty([n], 'bf16', 'cuda');
    cu().adamwStep({
      param: pT.buffer,
      grad: up(g).buffer,
      m: mT.buffer,
      v: vT.buffer,
      ...hyper,
      bf16Copy: copy.buffer,
    });
    close('adamw param', pT.toFloat64(), wp, F32);
    close('adamw m', mT.toFloat64(), wm, F32);
    close('adamw v', vT.toFloat64(), wv, F32);
    close('adamw bf16 copy', copy.toFloat64(), wp, BF16);
    expect(() =>
      cu().adamwStep({ param: pT.buffer, grad: pT.buffer, m: mT.buffer, v: vT.buffer, ...hyper, step: 0 }),
    ).toThrow(/step/);

    const x = f32r(randn(n, 28));
    close('sumSquares', [cu().sumSquares(up(x).buffer, n)], [cpu().sumSquares(x, n)], 1e-6);
    close(
      'sumSquares bf16',
      [cu().sumSquares(up(x, 'bf16').buffer, n, 'bf16')],
      [cpu().sumSquares(x.map(bfRound), n)],
      1e-6,
    );
    for (const dt of ['f32', 'bf16'] as DT[]) {
      const tol = dt === 'f32' ? F32 : BF16;
      const q = dt === 'bf16' ? x.map(bfRound) : x;
      const s = up(q, dt);
      cu().scale(s.buffer, n, -0.3, dt);
      close(
        `scale ${dt}`,
        s.toFloat64(),
        q.map((a) => a * -0.3),
        tol,
      );
      const a = up(q, dt),
        b = up(p, dt);
      cu().add(a.buffer, b.buffer, a.buffer, n, dt);
      close(
        `add aliased ${dt}`,
        a.toFloat64(),
        q.map((xv, i) => xv + (dt === 'bf16' ? bfRound(p[i]!) : p[i]!)),
        tol,
      );
      const f = up(x, dt);
      cu().fill(f.buffer, n, 0.7, dt);
      close(
        `fill ${dt}`,
        f.toFloat64(),
        new Float64Array(n).fill(dt === 'bf16' ? bfRound(0.7) : Math.fround(0.7)),
        1e-7,
      );
    }
  });

  // the multi-tensor kernels against the per-tensor CPU kernels (their twins), over more tensors than one
  // launch's table holds (40) and sizes from 0 to above one block's stride; every fourth tensor is a view one element
  // into its buffer (not 16-byte aligned: one element per access) and the rest take 4 at a time, then the tail
  it('multi-tensor sum of squares, scale, fill, AdamW (bf16 copies, gradient scale), bf16 casts; negExp, addProduct', () => {
    const sizes = Array.from({ length: 93 }, (_, i) => [0, 1, 37, 4099, 100_003][i % 5]! + (i % 7));
    const xs = sizes.map((n, i) => f32r(randn(n, 100 + i)));
    const upTo = (x: Float64Array, i: number, dt: DT = 'f32') =>
      i % 4 === 3 ? up(Float64Array.from([0, ...x]), dt).view(1, [x.length]) : up(x, dt);
    const bufs = xs.map((x, i) => upTo(x, i));
    const want = xs.reduce((s, x) => s + cpu().sumSquares(x, x.length), 0);
    close(
      'multiSumSquares',
      [
        cu().multiSumSquares(
          bufs.map((b) => b.buffer),
          sizes,
        ),
      ],
      [want],
      1e-9,
    );
    cu().multiScale(
      bufs.map((b) => b.buffer),
      sizes,
      -0.3,
    );
    xs.forEach((x, i) => {
      if (x.length)
        close(
          `multiScale ${i}`,
          bufs[i]!.toFloat64(),
          x.map((v) => Math.fround(v * Math.fround(-0.3))),
          1e-7,
        );
    });
    cu().multiFill(
      bufs.map((b) => b.buffer),
      sizes,
      0.7,
    );
    xs.forEach((x, i) => {
      if (x.length)
        close(`multiFill ${i}`, bufs[i]!.toFloat64(), new Float64Array(x.length).fill(Math.fround(0.7)), 1e-7);
    });
    const halves = sizes.map((n, i) => upTo(new Float64Array(n), i, 'bf16'));
    cu().multiCastBf16(
      xs.map((x, i) => upTo(x, i).buffer),
      halves.map((h) => h.buffer),
      sizes,
    );
    xs.forEach((x, i) => {
      if (x.length) close(`multiCastBf16 ${i}`, halves[i]!.toFloat64(), x.map(bfRound), 1e-7);
    });

    const [lr, b1, b2, eps, step] = [2e-3, 0.9, 0.95, 1e-8, 4];
    const ps = xs,
      gs = sizes.map((n, i) => f32r(randn(n, 300 + i))),
      ms = sizes.map((n, i) => f32r(randn(n, 400 + i, 0.1)));
    const vs = sizes.map((n, i) => f32r(randu(n, 500 + i, 0, 0.01))),
      wds = sizes.map((_, i) => (i % 3 === 0 ? 0 : 0.1));
    // misaligned: all four buffers at i % 4 == 3, the gradient alone at 1, the bf16 copy alone at 2
    const pT = ps.map((x, i) => upTo(x, i)),
      mT = ms.map((x, i) => upTo(x, i)),
      vT = vs.map((x, i) => upTo(x, i));
    const copies = sizes.map((n, i) => (i % 2 === 0 ? upTo(new Float64Array(n), i + 1, 'bf16') : null));
    const gradScale = 0.37;
    cu().multiAdamw({
      params: pT.map((t) => t.buffer),
      grads: gs.map((g, i) => upTo(g, i + 2).buffer),
      m: mT.map((t) => t.buffer),
      v: vT.map((t) => t.buffer),
      bf16Copies: copies.map((c) => (c ? c.buffer : null)),
      numels: sizes,
      weightDecays: wds,
      lr,
      beta1: b1,
      beta2: b2,
      eps,
      step,
      gradScale,
    });
    for (let i = 0; i < sizes.length; i++) {
      if (!sizes[i]) continue;
      const wp = ps[i]!.slice(),
        wm = ms[i]!.slice(),
        wv = vs[i]!.slice();
      cpu().adamwStep({
        param: wp,
        grad: gs[i]!,
        m: wm,
        v: wv,
        n: sizes[i]!,
        lr,
        beta1: b1,
        beta2: b2,
        eps,
        weightDecay: wds[i]!,
        step,
        gradScale,
      });
      close(`multiAdamw param ${i}`, pT[i]!.toFloat64(), wp, F32);
      close(`multiAdamw m ${i}`, mT[i]!.toFloat64(), wm, F32);
      close(`multiAdamw v ${i}`, vT[i]!.toFloat64(), wv, F32);
      if (copies[i]) close(`multiAdamw bf16 copy ${i}`, copies[i]!.toFloat64(), wp, BF16);
    }
    const one = [pT[1]!.buffer];
    expect(() =>
      cu().multiAdamw({
        params: one,
        grads: one,
        m: one,
        v: one,
        bf16Copies: [null],
        numels: [sizes[1]],
        weightDecays: [0],
        lr,
        beta1: b1,
        beta2: b2,
        eps,
        step: 0,
      }),
    ).toThrow(/step/);
    expect(() => cu().multiScale([bufs[0]!.buffer], [1, 2], 1)).toThrow(/buffers for 2 sizes/);
    expect(() => cu().multiScale([bufs[1]!.buffer], [1e9], 1)).toThrow(/needs/);

    const n = 5001;
    const a = f32r(randn(n, 600, 1.5)),
      b = f32r(randn(n, 601)),
      o0 = f32r(randn(n, 602));
    const ne = Tensor.empty([n], 'f32', 'cuda'),
      wantNe = new Float64Array(n);
    cu().negExp(up(a).buffer, ne.buffer, n);
    cpu().negExp(a, wantNe, n);
    close('negExp', ne.toFloat64(), wantNe, 1e-6);
    const o = up(o0),
      wantO = o0.slice();
    cu().addProduct(up(a).buffer, up(b).buffer, o.buffer, n);
    cpu().addProduct(a, b, wantO, n);
    close('addProduct', o.toFloat64(), wantO, 1e-6);
  });
});
