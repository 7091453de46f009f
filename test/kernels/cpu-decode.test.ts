// The fused decoding ops (decodeIn, decodeSsm, decodeOut) through their CPU twins, composed over a block,
// against the unfused CPU step (RMSNorm, in_proj, conv1dStep, x_proj, decodeSsm on the whole x_proj, out_proj)
// on awkward sizes, several steps in a row from random states; decodeSsm on the whole x_proj, token after token,
// against the parallel scan forward (decode-step.ts); and the wrappers' and bindings' argument checks.
import { describe, expect, it } from 'vitest';
import {
  Tensor,
  columns,
  conv1dStep,
  convXProjStep,
  cpuOp,
  decodeFusable,
  decodeIn,
  decodeInProj,
  decodeOut,
  decodeParts,
  decodeSsm,
  gemm,
  nativeLimits,
} from '../../src/backend/index.js';
import { MambaBlock, Workspace, type MixerCache, type ModelDType } from '../../src/nn/index.js';
import { Rng } from '../../src/util/rng.js';
import { randn, relErr } from '../helpers.js';
import { forwardReference, stepInputs, stepOverTokens, type StepCase } from './decode-step.js';

function host(a: Float64Array, dtype: ModelDType, shape: number[]): Tensor {
  return Tensor.from(dtype === 'f64' ? a : Float32Array.from(a), shape);
}

/** A block whose A_log, D, dt bias, conv and norm weights are moved off their init (so each term matters). */
function block(
  dims: { dModel: number; dInner: number; dtRank: number; dState: number; dConv: number },
  dtype: ModelDType,
  seed: number,
): MambaBlock {
  const b = new MambaBlock('b', dims, 1e-5, { device: 'cpu', dtype }, new Rng(seed), { nLayer: 2 });
  const r = new Rng(seed + 1);
  for (const p of b.parameters()) {
    if (!/A_log|\.D$|dt_proj\.bias|conv1d|norm/.test(p.name)) continue;
    const d = p.value.data;
    for (let i = 0; i < d.length; i++) d[i] = d[i]! + 0.3 * r.normal();
  }
  return b;
}

function cache(B: number, E: number, K: number, N: number, dtype: ModelDType, seed: number): MixerCache {
  return {
    conv: host(randn(B * E * K, seed), dtype, [B, E, K]),
    ssm: host(randn(B * E * N, seed + 1, 0.5), dtype, [B, E, N]),
  };
}
const copy = (c: MixerCache, dtype: ModelDType): MixerCache => ({
  conv: host(c.conv.toFloat64(), dtype, [...c.conv.shape]),
  ssm: host(c.ssm.toFloat64(), dtype, [...c.ssm.shape]),
});

describe('fused decoding step (CPU twins) vs the unfused step', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    for (const [N, B] of [
      [16, 1],
      [16, 3],
      [8, 3],
      [8, 1],
      // batches past one CUDA group of 8 sequences: full groups, a partial last one
      [16, 8],
      [16, 9],
      [4, 33],
      [16, 64],
    ] as const) {
      it(`d_model 40, d_inner 80, dt_rank 3, d_state ${N}, B = ${B} (${dtype}, 4 steps)`, () => {
        const dims = { dModel: 40, dInner: 80, dtRank: 3, dState: N, dConv: 4 };
        const { dModel: D, dInner: E, dConv: K } = dims;
        const blk = block(dims, dtype, 40 + N + B);
        const c0 = cache(B, E, K, N, dtype, 7),
          c1 = copy(c0, dtype);
        const wsA = new Workspace('cpu', dtype),
          wsB = new Workspace('cpu', dtype);
        const tol = dtype === 'f64' ? 1e-12 : 1e-5;
        for (let s = 0; s < 4; s++) {
          const hIn = host(randn(B * D, 100 + s), dtype, [B, D]);
          // the first block has no residual input
          const rIn = s === 0 ? null : host(randn(B * D, 200 + s), dtype, [B, D]);
          const want = { h: Tensor.zeros([B, D], dtype), r: Tensor.zeros([B, D], dtype) };
          const got = { h: Tensor.zeros([B, D], dtype), r: Tensor.zeros([B, D], dtype) };
          blk.step(hIn, rIn, want.h, want.r, Tensor.zeros([B], dtype), c0, wsA);
          blk.stepFused(hIn, rIn, got.h, got.r, c1, wsB);
          expect(relErr(got.r.toFloat64(), want.r.toFloat64()), `rOut, step ${s}`).toBeLessThan(tol);
          expect(relErr(got.h.toFloat64(), want.h.toFloat64()), `hOut, step ${s}`).toBeLessThan(tol);
          expect(relErr(c1.conv.toFloat64(), c0.conv.toFloat64()), `conv state, step ${s}`).toBeLessThan(tol);
          expect(relErr(c1.ssm.toFloat64(), c0.ssm.toFloat64()), `SSM state, step ${s}`).toBeLessThan(tol);
        }
      });
    }
  }

  // the residual form of the batched CUDA step (decodeInProj, x_proj, decodeSsm, out_proj accumulated into r)
  // through the CPU twin: r += mixer(RMSNorm(r)) must be the unfused step's rOut + hOut, block after block
  for (const dtype of ['f32', 'f64'] as const) {
    for (const [D, B] of [
      [40, 3],
      [37, 9],
      [40, 64],
    ] as const) {
      it(`residual form: d_model ${D}, B = ${B} (${dtype}, 4 steps)`, () => {
        const dims = { dModel: D, dInner: 80, dtRank: 3, dState: 16, dConv: 4 };
        const { dInner: E, dConv: K, dState: N } = dims;
        const blk = block(dims, dtype, 60 + D + B);
        const c0 = cache(B, E, K, N, dtype, 9),
          c1 = copy(c0, dtype);
        const wsA = new Workspace('cpu', dtype),
          wsB = new Workspace('cpu', dtype);
        const tol = dtype === 'f64' ? 1e-12 : 1e-5;
        let r = host(randn(B * D, 300), dtype, [B, D]);
        for (let s = 0; s < 4; s++) {
          // the unfused step from (hIn = r, no residual input): rOut = r, hOut = mixer(norm(r))
          const want = { h: Tensor.zeros([B, D], dtype), r: Tensor.zeros([B, D], dtype) };
          blk.step(r, null, want.h, want.r, Tensor.zeros([B], dtype), c0, wsA);
          const next = want.r.toFloat64().map((v, i) => v + want.h.toFloat64()[i]!);
          blk.stepOnResidual(r, c1, wsB);
          expect(relErr(r.toFloat64(), next), `r, step ${s}`).toBeLessThan(tol);
          expect(relErr(c1.conv.toFloat64(), c0.conv.toFloat64()), `conv state, step ${s}`).toBeLessThan(tol);
          expect(relErr(c1.ssm.toFloat64(), c0.ssm.toFloat64()), `SSM state, step ${s}`).toBeLessThan(tol);
          r = host(r.toFloat64(), dtype, [B, D]);
        }
      });
    }
  }

  it('x_proj partial sums cover runs of 32 channels (E = 80: 3 partials, the last of 16)', () => {
    expect(decodeParts(80)).toBe(3);
    expect(decodeParts(1536)).toBe(48);
    const dims = { dModel: 40, dInner: 80, dtRank: 3, dState: 8, dConv: 4 };
    const blk = block(dims, 'f64', 5);
    const m = blk.mixer,
      B = 2,
      E = 80,
      J = 3 + 16;
    const c = cache(B, E, 4, 8, 'f64', 3);
    const xc = Tensor.zeros([B, E], 'f64'),
      z = Tensor.zeros([B, E], 'f64'),
      xPart = Tensor.zeros([3, B, J], 'f64');
    decodeIn(
      host(randn(B * 40, 1), 'f64', [B, 40]),
      null,
      blk.norm.weight.value,
      1e-5,
      m.inProj.value,
      c.conv,
      m.convWeight.value,
      m.convBias.value,
      m.xProj.value,
      Tensor.zeros([B, 40], 'f64'),
      xc,
      z,
      xPart,
    );
    const x = xc.toFloat64(),
      w = m.xProj.value.toFloat64(),
      p = xPart.toFloat64();
    for (let b = 0; b < B; b++)
      for (let j = 0; j < J; j++) {
        let full = 0,
          parts = 0;
        for (let e = 0; e < E; e++) full += x[b * E + e]! * w[j * E + e]!;
        for (let q = 0; q < 3; q++) parts += p[(q * B + b) * J + j]!;
        expect(Math.abs(parts - full)).toBeLessThan(1e-12 * Math.max(1, Math.abs(full)));
      }
  });

  it("convXProj is the unfused step's conv1dStep and x_proj product (E = 40, J = 11, K = 3, x strided)", () => {
    const B = 3,
      E = 40,
      J = 11,
      K = 3;
    const xz = [1, 2, 3].map((s) => randn(B * 2 * E, s, 2)),
      conv0 = randn(B * E * K, 4),
      convW = randn(E * K, 5, 0.5),
      convB = randn(E, 6, 0.5),
      Wx = randn(J * E, 7, 0.3);
    const t = (a: Float64Array, shape: number[]) => Tensor.from(Float64Array.from(a), shape);
    const zeros = (shape: number[]) => Tensor.zeros(shape, 'f64');
    const fused = { st: t(conv0, [B, E, K]), xc: zeros([B, E]), xProj: zeros([B, J]) };
    const apart = { st: t(conv0, [B, E, K]), xc: zeros([B, E]), xProj: zeros([B, J]) };
    for (const x of xz) {
      const xs = columns(t(x, [B, 2 * E]), 0, E);
      convXProjStep(fused.st, xs, t(convW, [E, K]), t(convB, [E]), t(Wx, [J, E]), fused.xc, fused.xProj);
      conv1dStep(apart.st, xs, t(convW, [E, K]), t(convB, [E]), apart.xc, true);
      gemm(apart.xc, t(Wx, [J, E]), apart.xProj, { transB: true });
    }
    for (const k of ['st', 'xc', 'xProj'] as const)
      expect(relErr(fused[k].toFloat64(), apart[k].toFloat64()), k).toBeLessThan(1e-12);
    expect(() =>
      convXProjStep(fused.st, zeros([B, E]), t(convW, [E, K]), null, zeros([J, E + 1]), fused.xc, fused.xProj),
    ).toThrow(/convXProj: Wx must be \[J, 40\], got \[11, 41\]/);
  });

  it('argument checks name the problem', () => {
    const D = 8,
      E = 16,
      K = 4,
      N = 4,
      R = 2,
      J = R + 2 * N;
    const t = (shape: number[]) => Tensor.zeros(shape, 'f32');
    const args = (B: number, over: Partial<Record<string, Tensor | null>> = {}) => {
      const a: Record<string, Tensor | null> = {
        hIn: t([B, D]),
        rIn: t([B, D]),
        normW: t([D]),
        Win: t([2 * E, D]),
        conv: t([B, E, K]),
        convW: t([E, K]),
        convB: t([E]),
        Wx: t([J, E]),
        rOut: t([B, D]),
        xc: t([B, E]),
        z: t([B, E]),
        xPart: t([decodeParts(E), B, J]),
        ...over,
      };
      return () =>
        decodeIn(
          a.hIn!,
          a.rIn!,
          a.normW!,
          1e-5,
          a.Win!,
          a.conv!,
          a.convW!,
          a.convB!,
          a.Wx!,
          a.rOut!,
          a.xc!,
          a.z!,
          a.xPart!,
        );
    };
    expect(args(2)).not.toThrow();
    expect(args(9)).not.toThrow();
    expect(args(4097)).toThrow(/1\.\.4096 sequences, got 4097/);
    expect(args(2, { Win: t([2 * E, D + 1]) })).toThrow(/Win must be \[32, 8\]/);
    expect(args(2, { xPart: t([2, 2, J]) })).toThrow(/xPart \[1, 2, 10\] must hold 20 elements, got \[2, 2, 10\]/);
    const h = t([2, D]);
    expect(args(2, { hIn: h, rOut: h })).toThrow(/rOut must not be hIn or rIn/);
    const inProj = (over: Partial<Record<string, Tensor>> = {}) => {
      const a: Record<string, Tensor> = {
        r: t([2, D]),
        Win: t([2 * E, D]),
        conv: t([2, E, K]),
        xc: t([2, E]),
        ...over,
      };
      return () => decodeInProj(a.r!, t([D]), 1e-5, a.Win!, a.conv!, t([E, K]), null, a.xc!, t([2, E]));
    };
    expect(inProj()).not.toThrow();
    expect(inProj({ Win: t([2 * E + 1, D]) })).toThrow(/decodeInProj: Win must be \[32, 8\]/);
    expect(inProj({ r: t([2, D + 1]) })).toThrow(/decodeInProj: r \[2, 9\] is not \[B, 8\]/);
    expect(inProj({ conv: t([2, E, K - 1]) })).toThrow(/decodeInProj: convState/);
    expect(inProj({ xc: t([1, E]) })).toThrow(/decodeInProj: xc/);
    expect(() =>
      decodeSsm(
        { parts: t([1, 2, J]) },
        t([2, E]),
        t([2, E]),
        t([E, R]),
        t([E]),
        t([E + 1, N]),
        t([E]),
        t([2, E, N]),
        t([2, E]),
      ),
    ).toThrow(/A must be \[16, N\]/);
    expect(() =>
      decodeSsm(
        { proj: t([2, J + 1]) },
        t([2, E]),
        t([2, E]),
        t([E, R]),
        t([E]),
        t([E, N]),
        t([E]),
        t([2, E, N]),
        t([2, E]),
      ),
    ).toThrow(/xProj \[2, 10\] must hold 20 elements, got \[2, 11\]/);
    expect(() => decodeOut(t([2, E]), t([D, E]), t([3, D]))).toThrow(/hOut must hold 16 elements/);
    expect(() => decodeOut(t([2, E + 1]), t([D, E]), t([2, D]))).toThrow(/y \[2, 17\] is not \[B, 16\]/);
    // what the CUDA kernels take: larger d_state or batch fall back to the unfused step
    const d130m = { dModel: 768, dInner: 1536, dtRank: 48, dState: 16, dConv: 4 };
    expect(decodeFusable(d130m, 1, 2)).toBe(true);
    expect(decodeFusable(d130m, 8, 4)).toBe(true);
    expect(decodeFusable(d130m, 256, 2)).toBe(true);
    expect(decodeFusable(d130m, nativeLimits().decodeMaxBatch + 1, 2)).toBe(false);
    expect(decodeFusable({ ...d130m, dState: 32 }, 1, 2)).toBe(false);
    expect(decodeFusable({ ...d130m, dModel: 2048 }, 8, 4)).toBe(false);
    expect(decodeFusable({ ...d130m, dConv: 9 }, 1, 2)).toBe(false);
  });

  it('the limits come from the addon (native/src/decode.h), and the raw kernels take named fields', () => {
    const l = nativeLimits();
    expect([l.decodeChunk, l.decodeMaxBatch, l.decodeMaxState, l.decodeMaxConv, l.cudaScanMaxState]).toEqual([
      32, 4096, 16, 8, 16,
    ]);
    expect(decodeParts(33)).toBe(2);
    // the x_proj sums of decodeSsm: B * J values and up to 256 / (B * J) slices of partials, 4 bytes each
    const J = 48 + 2 * 16;
    expect(l.decodeFits(8, 768, 1536, 48, 16, 4, 2)).toBe(4 * (8 * J + 1 * 8 * J) <= l.decodeSharedBytes);
    expect(l.decodeFits(1, l.decodeSharedBytes / 2 + 1, 64, 4, 4, 4, 2)).toBe(false);
    expect(() => cpuOp('decodeSsm')({ B: 1 })).toThrow(/decodeSsm E: missing/);
    const f32 = (n: number) => new Float32Array(n);
    const ssm = { xProj: f32(3), xc: f32(1), z: f32(1), Wdt: f32(1), A: f32(1), ssmState: f32(1), y: f32(1) };
    const sizes = { B: 1, E: 1, R: 1, N: 1 };
    expect(() => cpuOp('decodeSsm')({ ...ssm, ...sizes })).not.toThrow();
    expect(() => cpuOp('decodeSsm')({ ...ssm, ...sizes, xPart: f32(3) })).toThrow(/give exactly one of xPart/);
    expect(() => cpuOp('decodeSsm')({ ...ssm, ...sizes, zStride: 0 })).toThrow(/zStride 0 is smaller than E = 1/);
    // one token per sequence: no sequence length
    expect(() => cpuOp('decodeSsm')({ ...ssm, ...sizes, L: 4 })).toThrow(/unknown field 'L'/);
    expect(() => cpuOp('decodeIn')([])).toThrow(/expected one argument object/);
  });
});

describe('decodeSsm on the whole x_proj, token after token, reproduces the scan forward (CPU)', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    for (const c of [
      { B: 3, L: 11, E: 13, R: 3, N: 5 },
      { B: 2, L: 9, E: 40, R: 4, N: 16 },
    ] as StepCase[]) {
      it(`B=${c.B}, L=${c.L}, d_inner ${c.E}, dt_rank ${c.R}, d_state ${c.N} (${dtype})`, () => {
        const round = dtype === 'f32' ? Math.fround : (v: number) => v;
        const x = stepInputs(c, 60 + c.E, round, round);
        const want = forwardReference(c, x, round);
        const make = (a: Float64Array, shape: number[]) => host(a, dtype, shape);
        const got = stepOverTokens(c, x, { act: make, par: make });
        const tol = dtype === 'f64' ? 1e-10 : 1e-4;
        expect(relErr(got.y, want.y), 'y at every token').toBeLessThan(tol);
        expect(relErr(got.state, want.last), 'final state').toBeLessThan(tol);
      });
    }
  }
});
