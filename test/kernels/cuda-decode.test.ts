// The fused decoding ops on CUDA (native/cuda/decode.cu) against their CPU twins run in float64 on the same
// (rounded) inputs, f32 and bf16, at awkward shapes and the 130m shape; decodeSsm on the whole x_proj, token
// after token, against the parallel scan forward (decode-step.ts); then whole-model decoding with
// MAMBA_DECODE_FUSED on and off, eager and replayed from a CUDA graph. Skips without a GPU.
import { afterEach, describe, expect, it } from 'vitest';
import {
  Tensor,
  bf16BitsToF32,
  columns,
  convXProjStep,
  cudaAvailable,
  cudaOp,
  decodeIn,
  decodeInProj,
  decodeOut,
  decodeParts,
  decodeSsm,
  f32ToBf16Bits,
} from '../../src/backend/index.js';
import { Decoder } from '../../src/generate/index.js';
import { MambaLM, makeConfig } from '../../src/model/index.js';
import { FUSED_STEP_MAX_BATCH, RESIDUAL_STEP_MAX_BATCH } from '../../src/nn/mixer.js';
import { Rng } from '../../src/util/rng.js';
import { randn, randu, relErr } from '../helpers.js';
import { forwardReference, stepInputs, stepOverTokens, type StepCase } from './decode-step.js';

type DT = 'f32' | 'bf16';
const TOL: Record<DT, number> = { f32: 1e-4, bf16: 1e-2 };
const bfRound = (x: number) => bf16BitsToF32(f32ToBf16Bits(x));
/** the values a tensor of dtype dt holds */
const q = (a: Float64Array, dt: DT) => a.map(dt === 'bf16' ? bfRound : Math.fround);

function gpu(a: Float64Array, shape: number[], dt: DT = 'f32'): Tensor {
  if (dt === 'f32') return Tensor.from(Float32Array.from(a), shape, 'f32', 'cuda');
  return Tensor.from(Uint16Array.from(a, f32ToBf16Bits), shape, 'bf16', 'cuda');
}
const cpu = (a: Float64Array, shape: number[]) => Tensor.from(Float64Array.from(a), shape);

interface Shape {
  name: string;
  B: number;
  D: number;
  E: number;
  R: number;
  N: number;
  K: number;
}
const SHAPES: Shape[] = [
  { name: 'awkward', B: 3, D: 40, E: 80, R: 3, N: 16, K: 4 },
  // d_model 44: bf16 in_proj rows are not whole 16-byte vectors (the scalar loop), f32 rows are
  { name: 'unaligned bf16 rows', B: 5, D: 44, E: 72, R: 5, N: 8, K: 3 },
  // odd sizes: scalar loops everywhere, E % 32 = 10 (a block holds xs and z rows), dt_rank past the registers (64)
  { name: 'odd', B: 2, D: 37, E: 74, R: 70, N: 5, K: 2 },
  // d_inner below one block of 32 rows, the largest batch
  { name: 'tiny d_inner', B: 8, D: 12, E: 20, R: 2, N: 4, K: 4 },
  { name: '130m', B: 1, D: 768, E: 1536, R: 48, N: 16, K: 4 },
  { name: '130m B=8', B: 8, D: 768, E: 1536, R: 48, N: 16, K: 4 },
  // past one group of 8 sequences: full groups side by side (grid y), and a partial last group
  { name: 'odd B=9', B: 9, D: 37, E: 74, R: 70, N: 5, K: 2 },
  { name: 'awkward B=33', B: 33, D: 40, E: 80, R: 3, N: 16, K: 4 },
  { name: '130m B=64', B: 64, D: 768, E: 1536, R: 48, N: 16, K: 4 },
  { name: '130m B=33', B: 33, D: 768, E: 1536, R: 48, N: 16, K: 4 },
];

function close(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  const e = relErr(got, want);
  if (!(e < tol)) console.error(`${name}: relative error ${e.toExponential(2)}`);
  expect(e, name).toBeLessThan(tol);
}

describe.skipIf(!cudaAvailable())('fused decoding ops: CUDA vs CPU twins', () => {
  for (const s of SHAPES) {
    for (const dt of ['f32', 'bf16'] as const) {
      it(`decodeIn, decodeSsm, decodeOut: ${s.name} (B=${s.B}, D=${s.D}, E=${s.E}, R=${s.R}, N=${s.N}, K=${s.K}), ${dt}`, () => {
        const { B, D, E, R, N, K } = s;
        const J = R + 2 * N,
          P = decodeParts(E),
          tol = TOL[dt];
        let seed = 10;
        const act = (n: number, scale = 1) => q(randn(n, seed++, scale), dt); // activations and matmul weights
        const f32 = (n: number, scale = 1) => q(randn(n, seed++, scale), 'f32');
        // decodeIn, with and without a residual input
        for (const withR of [true, false]) {
          const hIn = act(B * D),
            rIn = withR ? f32(B * D) : null,
            normW = q(randu(D, seed++, 0.5, 1.5), 'f32');
          const Win = act(2 * E * D, 1 / Math.sqrt(D)),
            conv0 = f32(B * E * K),
            convW = f32(E * K, 0.5),
            convB = f32(E, 0.5);
          const Wx = act(J * E, 1 / Math.sqrt(E));
          const g = {
            conv: gpu(conv0, [B, E, K]),
            rOut: gpu(new Float64Array(B * D), [B, D]),
            xc: gpu(new Float64Array(B * E), [B, E], dt),
            z: gpu(new Float64Array(B * E), [B, E], dt),
            xPart: gpu(new Float64Array(P * B * J), [P, B, J]),
          };
          decodeIn(
            gpu(hIn, [B, D], dt),
            rIn && gpu(rIn, [B, D]),
            gpu(normW, [D]),
            1e-5,
            gpu(Win, [2 * E, D], dt),
            g.conv,
            gpu(convW, [E, K]),
            gpu(convB, [E]),
            gpu(Wx, [J, E], dt),
            g.rOut,
            g.xc,
            g.z,
            g.xPart,
          );
          const c = {
            conv: cpu(conv0, [B, E, K]),
            rOut: cpu(new Float64Array(B * D), [B, D]),
            xc: cpu(new Float64Array(B * E), [B, E]),
            z: cpu(new Float64Array(B * E), [B, E]),
            xPart: cpu(new Float64Array(P * B * J), [P, B, J]),
          };
          decodeIn(
            cpu(hIn, [B, D]),
            rIn && cpu(rIn, [B, D]),
            cpu(normW, [D]),
            1e-5,
            cpu(Win, [2 * E, D]),
            c.conv,
            cpu(convW, [E, K]),
            cpu(convB, [E]),
            cpu(Wx, [J, E]),
            c.rOut,
            c.xc,
            c.z,
            c.xPart,
          );
          for (const k of ['rOut', 'xc', 'z', 'conv', 'xPart'] as const)
            close(`decodeIn ${k}${withR ? '' : ' (no residual)'}`, g[k].toFloat64(), c[k].toFloat64(), tol);
        }
        // decodeSsm
        const xPart = f32(P * B * J, 0.3),
          xc = act(B * E),
          z = act(B * E),
          Wdt = act(E * R, 1 / Math.sqrt(R));
        const dtBias = q(randu(E, seed++, -3, -1), 'f32'),
          A = q(
            randn(E * N, seed++, 0.5).map((v) => -Math.exp(v)),
            'f32',
          );
        const Dskip = f32(E),
          h0 = f32(B * E * N, 0.5);
        const gs = { state: gpu(h0, [B, E, N]), y: gpu(new Float64Array(B * E), [B, E], dt) };
        decodeSsm(
          { parts: gpu(xPart, [P, B, J]) },
          gpu(xc, [B, E], dt),
          gpu(z, [B, E], dt),
          gpu(Wdt, [E, R], dt),
          gpu(dtBias, [E]),
          gpu(A, [E, N]),
          gpu(Dskip, [E]),
          gs.state,
          gs.y,
        );
        const cs = { state: cpu(h0, [B, E, N]), y: cpu(new Float64Array(B * E), [B, E]) };
        decodeSsm(
          { parts: cpu(xPart, [P, B, J]) },
          cpu(xc, [B, E]),
          cpu(z, [B, E]),
          cpu(Wdt, [E, R]),
          cpu(dtBias, [E]),
          cpu(A, [E, N]),
          cpu(Dskip, [E]),
          cs.state,
          cs.y,
        );
        close('decodeSsm state', gs.state.toFloat64(), cs.state.toFloat64(), tol);
        close('decodeSsm y', gs.y.toFloat64(), cs.y.toFloat64(), tol);
        // the unfused step's form: x_proj whole in the activation dtype, z the gate columns of xz [B, 2E]
        const xProj = act(B * J, 0.3),
          xz = act(B * 2 * E);
        const gIn = [
          gpu(xc, [B, E], dt),
          columns(gpu(xz, [B, 2 * E], dt), E, E),
          gpu(Wdt, [E, R], dt),
          gpu(dtBias, [E]),
          gpu(A, [E, N]),
          gpu(Dskip, [E]),
        ] as const;
        const gProj = { proj: gpu(xProj, [B, J], dt) };
        const gp = { state: gpu(h0, [B, E, N]), y: gpu(new Float64Array(B * E), [B, E], dt) };
        decodeSsm(gProj, ...gIn, gp.state, gp.y);
        const cIn = [
          cpu(xc, [B, E]),
          columns(cpu(xz, [B, 2 * E]), E, E),
          cpu(Wdt, [E, R]),
          cpu(dtBias, [E]),
          cpu(A, [E, N]),
          cpu(Dskip, [E]),
        ] as const;
        const cp = { state: cpu(h0, [B, E, N]), y: cpu(new Float64Array(B * E), [B, E]) };
        decodeSsm({ proj: cpu(xProj, [B, J]) }, ...cIn, cp.state, cp.y);
        close('decodeSsm (xProj, strided z) state', gp.state.toFloat64(), cp.state.toFloat64(), tol);
        close('decodeSsm (xProj, strided z) y', gp.y.toFloat64(), cp.y.toFloat64(), tol);
        // the same call pulling other buffers into L2 (as the model's step passes the next block's): a large one past
        // one 16 KB piece, one of 4 bytes (no whole 16-byte run), a view at an odd offset, and its own inputs
        const big = gpu(f32(70000), [70000]);
        const prefetch = [big, gpu(f32(1), [1]), big.view(3, [999]), gIn[2], gp.state];
        const gq = { state: gpu(h0, [B, E, N]), y: gpu(new Float64Array(B * E), [B, E], dt) };
        decodeSsm(gProj, ...gIn, gq.state, gq.y, [...prefetch, gq.state]);
        // the CPU twin takes the list and ignores it
        const cq = { state: cpu(h0, [B, E, N]), y: cpu(new Float64Array(B * E), [B, E]) };
        decodeSsm({ proj: cpu(xProj, [B, J]) }, ...cIn, cq.state, cq.y, [cpu(f32(5), [5]), cIn[2]]);
        expect(Array.from(cq.y.toFloat64()), 'CPU decodeSsm y with prefetch').toEqual(Array.from(cp.y.toFloat64()));
        expect(Array.from(gq.state.toFloat64()), 'decodeSsm state with prefetch').toEqual(
          Array.from(gp.state.toFloat64()),
        );
        expect(Array.from(gq.y.toFloat64()), 'decodeSsm y with prefetch').toEqual(Array.from(gp.y.toFloat64()));
        // decodeOut
        const y = act(B * E),
          Wout = act(D * E, 1 / Math.sqrt(E));
        const go = gpu(new Float64Array(B * D), [B, D], dt),
          co = cpu(new Float64Array(B * D), [B, D]);
        decodeOut(gpu(y, [B, E], dt), gpu(Wout, [D, E], dt), go);
        decodeOut(cpu(y, [B, E]), cpu(Wout, [D, E]), co);
        close('decodeOut', go.toFloat64(), co.toFloat64(), tol);
      });
    }
  }

  // decodeInProj (bf16 tensor cores): both tile forms (16 and 32 rows), rows past one tile (B = 70: three), a partial
  // last column tile (2E = 160: a block of x and z columns), d_model not a multiple of 32 (40: a partial superstep)
  for (const c of [
    { B: 3, D: 40, E: 80, K: 4 },
    { B: 5, D: 256, E: 512, K: 2 },
    { B: 17, D: 64, E: 128, K: 4 },
    { B: 16, D: 768, E: 1536, K: 4 },
    { B: 33, D: 768, E: 1536, K: 4 },
    { B: 64, D: 768, E: 1536, K: 4 },
    { B: 70, D: 40, E: 80, K: 3 },
  ]) {
    it(`decodeInProj: B=${c.B}, D=${c.D}, E=${c.E}, K=${c.K} (bf16) against its CPU twin`, () => {
      const { B, D, E, K } = c;
      let seed = 500 + B;
      const r = q(randn(B * D, seed++, 2), 'f32'),
        normW = q(randu(D, seed++, 0.5, 1.5), 'f32'),
        Win = q(randn(2 * E * D, seed++, 1 / Math.sqrt(D)), 'bf16'),
        conv0 = q(randn(B * E * K, seed++), 'f32'),
        convW = q(randn(E * K, seed++, 0.5), 'f32'),
        convB = q(randn(E, seed++, 0.5), 'f32');
      const run = (make: (a: Float64Array, shape: number[], dt?: DT) => Tensor) => {
        const o = {
          conv: make(conv0, [B, E, K]),
          xc: make(new Float64Array(B * E), [B, E], 'bf16'),
          z: make(new Float64Array(B * E), [B, E], 'bf16'),
        };
        // two steps: the conv state carries from the first into the second
        for (let i = 0; i < 2; i++)
          decodeInProj(
            make(r, [B, D]),
            make(normW, [D]),
            1e-5,
            make(Win, [2 * E, D], 'bf16'),
            o.conv,
            make(convW, [E, K]),
            make(convB, [E]),
            o.xc,
            o.z,
          );
        return o;
      };
      const g = run(gpu),
        h = run((a, shape) => cpu(a, shape));
      for (const k of ['xc', 'z', 'conv'] as const)
        close(`decodeInProj ${k}`, g[k].toFloat64(), h[k].toFloat64(), TOL.bf16);
    });
  }

  // convXProj (bf16 tensor cores, a cluster of 16 blocks per 8 sequences): the 130m shape at the batches the
  // unfused step serves, a partial last group of sequences (B = 3, 17), x_proj widths off a multiple of 8 (35, 44),
  // d_inner under one 32-channel run per block (80: most blocks of the cluster hold no channels), K = 2 and 3; x is
  // the xs columns of a [B, 2E] xz, as the step gives it
  for (const c of [
    { B: 3, E: 80, J: 35, K: 4 },
    { B: 17, E: 256, J: 44, K: 2 },
    { B: 9, E: 1024, J: 64, K: 3 },
    { B: 33, E: 1536, J: 80, K: 4 },
    { B: 64, E: 1536, J: 80, K: 4 },
  ]) {
    it(`convXProj: B=${c.B}, E=${c.E}, J=${c.J}, K=${c.K} (bf16) against its CPU twin`, () => {
      const { B, E, J, K } = c;
      let seed = 700 + B;
      const xz = [0, 1].map(() => q(randn(B * 2 * E, seed++, 2), 'bf16')),
        conv0 = q(randn(B * E * K, seed++), 'f32'),
        convW = q(randn(E * K, seed++, 0.5), 'f32'),
        convB = q(randn(E, seed++, 0.5), 'f32'),
        Wx = q(randn(J * E, seed++, 1 / Math.sqrt(E)), 'bf16');
      const run = (make: (a: Float64Array, shape: number[], dt?: DT) => Tensor) => {
        const o = {
          conv: make(conv0, [B, E, K]),
          xc: make(new Float64Array(B * E), [B, E], 'bf16'),
          xProj: make(new Float64Array(B * J), [B, J], 'bf16'),
        };
        // two steps: the conv state carries from the first into the second
        for (const x of xz)
          convXProjStep(
            o.conv,
            columns(make(x, [B, 2 * E], 'bf16'), 0, E),
            make(convW, [E, K]),
            make(convB, [E]),
            make(Wx, [J, E], 'bf16'),
            o.xc,
            o.xProj,
          );
        return o;
      };
      const g = run(gpu),
        h = run((a, shape) => cpu(a, shape));
      for (const k of ['xc', 'xProj', 'conv'] as const)
        close(`convXProj ${k}`, g[k].toFloat64(), h[k].toFloat64(), TOL.bf16);
    });
  }

  it('the kernels refuse what they cannot take, with a clear message', () => {
    const t = (shape: number[]) => Tensor.zeros(shape, 'f32', 'cuda');
    const E = 16,
      R = 2,
      N = 17,
      J = R + 2 * N;
    expect(() =>
      decodeSsm(
        { parts: t([1, 1, J]) },
        t([1, E]),
        t([1, E]),
        t([E, R]),
        t([E]),
        t([E, N]),
        t([E]),
        t([1, E, N]),
        t([1, E]),
      ),
    ).toThrow(/d_state N of 1\.\.16, got 17/);
    const D = 8,
      K = 9;
    expect(() =>
      decodeIn(
        t([1, D]),
        null,
        t([D]),
        1e-5,
        t([2 * E, D]),
        t([1, E, K]),
        t([E, K]),
        null,
        t([4, E]),
        t([1, D]),
        t([1, E]),
        t([1, E]),
        t([1, 1, 4]),
      ),
    ).toThrow(/K must be 1\.\.8/);
    // decodeInProj: tensor cores take bf16 only, and d_model a multiple of 8
    const inProj = (dt: DT, Dm: number) => () =>
      decodeInProj(
        t([2, Dm]),
        t([Dm]),
        1e-5,
        Tensor.zeros([2 * E, Dm], dt, 'cuda'),
        t([2, E, 4]),
        t([E, 4]),
        null,
        Tensor.zeros([2, E], dt, 'cuda'),
        Tensor.zeros([2, E], dt, 'cuda'),
      );
    expect(inProj('bf16', 8)).not.toThrow();
    expect(inProj('f32', 8)).toThrow(/decodeInProj runs on bf16 activations on CUDA/);
    expect(inProj('bf16', 12)).toThrow(/sizes outside decodeInProj's \(D a multiple of 8/);
    // convXProj: bf16 only, d_inner a multiple of 8
    const convX =
      (dt: DT, Ei: number, J = 4) =>
      () =>
        convXProjStep(
          t([2, Ei, 4]),
          Tensor.zeros([2, Ei], dt, 'cuda'),
          t([Ei, 4]),
          null,
          Tensor.zeros([J, Ei], dt, 'cuda'),
          Tensor.zeros([2, Ei], dt, 'cuda'),
          Tensor.zeros([2, J], dt, 'cuda'),
        );
    expect(convX('bf16', 16)).not.toThrow();
    expect(convX('f32', 16)).toThrow(/convXProj runs on bf16 activations on CUDA/);
    expect(convX('bf16', 12)).toThrow(/sizes outside convXProj's \(E a multiple of 8/);
    expect(convX('bf16', 16, 129)).toThrow(/J <= 128/);
    // the binding itself: named fields, each checked
    const buf = (n: number) => t([n]).buffer;
    const ssm = { xProj: buf(3), xc: buf(1), z: buf(1), Wdt: buf(1), A: buf(1), ssmState: buf(1), y: buf(1) };
    const sizes = { B: 1, E: 1, R: 1, N: 1, dtype: 'f32' };
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes })).not.toThrow();
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes, y: undefined })).toThrow(/decodeSsm y: missing/);
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes, xPart: buf(3) })).toThrow(/give exactly one of xPart/);
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes, dtype: 'f16' })).toThrow(
      /dtype must be 'f32' or 'bf16', got 'f16'/,
    );
    // prefetch: an array of at most 16 live buffers
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes, prefetch: [buf(8), buf(1)] })).not.toThrow();
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes, prefetch: buf(8) })).toThrow(
      /decodeSsm: prefetch must be an array of buffers/,
    );
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes, prefetch: Array.from({ length: 17 }, () => buf(4)) })).toThrow(
      /prefetch takes at most 16 buffers, got 17/,
    );
    expect(() => cudaOp('decodeSsm')({ ...ssm, ...sizes, prefetch: [3] })).toThrow(
      /decodeSsm prefetch: expected a CUDA buffer/,
    );
  });
});

describe.skipIf(!cudaAvailable())(
  'decodeSsm on the whole x_proj, token after token, reproduces the scan forward (CUDA)',
  () => {
    for (const dt of ['f32', 'bf16'] as const) {
      for (const c of [
        // whole 16-byte vectors: N = 16 states, Wdt rows of 8 values (32 bytes in f32, 16 in bf16)
        { B: 3, L: 9, E: 80, R: 8, N: 16 },
        // the scalar paths (N = 5 of 8 registers, rows of 5), and d_inner over two blocks of 128 channels
        { B: 2, L: 7, E: 200, R: 5, N: 5 },
      ] as StepCase[]) {
        it(`B=${c.B}, L=${c.L}, d_inner ${c.E}, dt_rank ${c.R}, d_state ${c.N} (${dt})`, () => {
          const act = dt === 'bf16' ? bfRound : Math.fround;
          const x = stepInputs(c, 70 + c.E, act, Math.fround);
          const want = forwardReference(c, x, act);
          const got = stepOverTokens(c, x, { act: (a, shape) => gpu(a, shape, dt), par: (a, shape) => gpu(a, shape) });
          close('y at every token', got.y, want.y, TOL[dt]);
          close('final state', got.state, want.last, TOL[dt]);
        });
      }
    }
  },
);

describe.skipIf(!cudaAvailable())('fused decoding in the model', () => {
  const saved = process.env.MAMBA_DECODE_FUSED;
  afterEach(() => {
    if (saved === undefined) delete process.env.MAMBA_DECODE_FUSED;
    else process.env.MAMBA_DECODE_FUSED = saved;
  });

  /** Prefill + steps with the fused path on or off (the environment is read at every eager step, so set it first). */
  function decode(
    model: MambaLM,
    fused: boolean,
    graph: boolean,
    B: number,
    prompt: Int32Array,
    L: number,
    steps: Int32Array[],
  ): Float64Array[] {
    process.env.MAMBA_DECODE_FUSED = fused ? '1' : '0';
    const dec = new Decoder(model, B, { cudaGraph: graph });
    const out = [Float64Array.from(dec.prefill(prompt, L))];
    for (const s of steps) out.push(Float64Array.from(dec.step(s)));
    return out;
  }

  for (const precision of ['f32', 'bf16'] as const) {
    for (const [B, dModel] of [
      [1, 768],
      [3, 40],
      [4, 64],
    ] as const) {
      it(`the same logits with MAMBA_DECODE_FUSED on and off, eager and from a CUDA graph (${precision}, B=${B}, d_model ${dModel})`, () => {
        const cfg = makeConfig({ d_model: dModel, n_layer: dModel === 768 ? 4 : 3, d_state: 16, vocab_size: 16 });
        const model = MambaLM.create(cfg, { seed: 3, device: 'cuda', precision });
        process.env.MAMBA_DECODE_FUSED = '1';
        expect(model.backbone.layers[0]!.mixer.fusedStep(B)).toBe(true);
        // larger batches take the unfused step (faster there); the kernels' own tests above cover them
        expect(model.backbone.layers[0]!.mixer.fusedStep(FUSED_STEP_MAX_BATCH + 1)).toBe(false);
        const r = new Rng(5),
          L = 6;
        const prompt = Int32Array.from({ length: B * L }, () => 4 + r.int(4));
        const steps = Array.from({ length: 10 }, () => Int32Array.from({ length: B }, () => 4 + r.int(4)));
        const want = decode(model, false, false, B, prompt, L, steps);
        // f32: the two paths differ only in summation order; bf16 also in where a few values round
        const tol = precision === 'f32' ? 1e-4 : 2e-2;
        for (const graph of [false, true]) {
          const got = decode(model, true, graph, B, prompt, L, steps);
          got.forEach((g, i) =>
            expect(relErr(g, want[i]!), `${graph ? 'graph' : 'eager'} step ${i}`).toBeLessThan(tol),
          );
        }
        model.dispose();
      });
    }
  }
});

describe.skipIf(!cudaAvailable())('the residual form of the batched step in the model', () => {
  const saved = process.env.MAMBA_DECODE_RESIDUAL;
  afterEach(() => {
    if (saved === undefined) delete process.env.MAMBA_DECODE_RESIDUAL;
    else process.env.MAMBA_DECODE_RESIDUAL = saved;
  });
  it('the residual form serves batches past FUSED_STEP_MAX_BATCH up to RESIDUAL_STEP_MAX_BATCH', () => {
    const model = MambaLM.create(makeConfig({ d_model: 64, n_layer: 2, vocab_size: 16 }), {
      seed: 1,
      device: 'cuda',
      precision: 'bf16',
    });
    const m = model.backbone.layers[0]!.mixer;
    expect(m.residualStep(FUSED_STEP_MAX_BATCH)).toBe(false);
    expect(m.residualStep(FUSED_STEP_MAX_BATCH + 1)).toBe(true);
    expect(m.residualStep(RESIDUAL_STEP_MAX_BATCH)).toBe(true);
    expect(m.residualStep(RESIDUAL_STEP_MAX_BATCH + 1)).toBe(false);
    model.dispose();
  });
  for (const [B, dModel] of [
    [5, 40],
    [8, 768],
    [16, 64],
  ] as const) {
    it(`the same logits with MAMBA_DECODE_RESIDUAL on and off, eager and from a CUDA graph (bf16, B=${B}, d_model ${dModel})`, () => {
      const cfg = makeConfig({ d_model: dModel, n_layer: dModel === 768 ? 4 : 3, d_state: 16, vocab_size: 16 });
      const model = MambaLM.create(cfg, { seed: 4, device: 'cuda', precision: 'bf16' });
      const r = new Rng(6),
        L = 6;
      const prompt = Int32Array.from({ length: B * L }, () => 4 + r.int(4));
      const steps = Array.from({ length: 10 }, () => Int32Array.from({ length: B }, () => 4 + r.int(4)));
      const run = (on: boolean, graph: boolean) => {
        process.env.MAMBA_DECODE_RESIDUAL = on ? '1' : '0';
        expect(model.backbone.layers[0]!.mixer.residualStep(B)).toBe(on);
        const dec = new Decoder(model, B, { cudaGraph: graph });
        const out = [Float64Array.from(dec.prefill(prompt, L))];
        for (const s of steps) out.push(Float64Array.from(dec.step(s)));
        return out;
      };
      const want = run(false, false);
      for (const graph of [false, true]) {
        const got = run(true, graph);
        // bf16: the paths differ in where a few values round (rstd after the product, r w rounded once)
        got.forEach((g, i) => expect(relErr(g, want[i]!), `${graph ? 'graph' : 'eager'} step ${i}`).toBeLessThan(2e-2));
      }
      model.dispose();
    });
  }
});
