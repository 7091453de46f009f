// The CUDA gemm with tuned products (native/cuda/dynlibs.cc: the first product of a shape timed against cuBLASLt's
// candidates) against a float64 reference, beside the fixed choice: the 130m step's kinds of product (a small inner
// size, a weight gradient accumulated with beta 1, column views of a wider tensor at offsets that are not 16-byte
// aligned), in f32 and bf16. The tuned product is checked on its first call (which tunes on a scratch copy of C and
// must leave C to the real product: accumulated once) and on a second (the kept choice).
import { describe, expect, it } from 'vitest';
import { cudaAvailable } from '../../src/backend/device.js';
import { Tensor, bf16BitsToF32, columns, f32ToBf16Bits, gemm, native, setGemmTuning } from '../../src/backend/index.js';
import { randn, relErr } from '../helpers.js';

type DT = 'f32' | 'bf16';
const round = (dt: DT) => (x: number) => (dt === 'f32' ? Math.fround(x) : bf16BitsToF32(f32ToBf16Bits(x)));
function up(a: Float64Array, shape: number[], dt: DT): Tensor {
  if (dt === 'f32') return Tensor.from(Float32Array.from(a), shape, 'f32', 'cuda');
  return Tensor.from(Uint16Array.from(a, f32ToBf16Bits), shape, 'bf16', 'cuda');
}

// C[M,N] = op(A) op(B) + beta C0 in float64, A [M,K] or [K,M] (transA) with rows lda apart starting at column off
// (C's view likewise), B [K,N] or [N,K] with rows ldb apart
function ref(
  A: Float64Array,
  lda: number,
  B: Float64Array,
  ldb: number,
  C0: Float64Array,
  ldc: number,
  M: number,
  N: number,
  K: number,
  ta: boolean,
  tb: boolean,
  beta: number,
  off: number,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[off + (ta ? k * lda + m : m * lda + k)]! * B[tb ? n * ldb + k : k * ldb + n]!;
      out[m * N + n] = s + beta * C0[m * ldc + off + n]!;
    }
  return out;
}

// [M, N, K, transA, transB, beta, input dtype, output dtype, columns of padding before A's and C's views]
const cases: [number, number, number, boolean, boolean, number, DT, DT, number][] = [
  [512, 384, 48, false, true, 0, 'bf16', 'bf16', 0], // dt_proj forward (rank 48)
  [512, 384, 40, false, false, 1, 'bf16', 'bf16', 0], // x_proj dx added into du
  [384, 24, 512, true, false, 1, 'bf16', 'f32', 3], // a weight gradient from a column view at an odd offset
  [256, 200, 96, false, true, 0, 'f32', 'f32', 1], // f32, C a column view
  [33, 17, 70, true, true, 0.5, 'f32', 'f32', 0], // awkward sizes
];

describe.skipIf(!cudaAvailable())('CUDA gemm: tuned products against the fixed choice and a float64 reference', () => {
  // first in the file (each test file runs in a process of its own): no tuned product has allocated the workspace yet
  it('allocates the tuned products workspace (4 MiB) at the first tuned product, counted in memoryStats().scratch', () => {
    const scratch = () => (native().cuda!.memoryStats() as { scratch: number }).scratch;
    const before = scratch();
    const a = up(randn(256 * 64, 4), [256, 64], 'bf16'),
      c = Tensor.empty([256, 256], 'f32', 'cuda');
    setGemmTuning(true);
    try {
      gemm(a, a, c, { transB: true });
    } finally {
      setGemmTuning(false);
    }
    expect(scratch() - before).toBe(4 * 2 ** 20);
    a.dispose();
    c.dispose();
  });

  for (const [M, N, K, ta, tb, beta, dt, ct, pad] of cases) {
    it(`${M}x${N}x${K} ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} beta ${beta}, ${dt} -> ${ct}, views ${pad} columns in`, () => {
      const [ar, ac] = ta ? [K, M] : [M, K],
        [br, bc] = tb ? [N, K] : [K, N];
      const lda = ac + pad,
        ldc = N + pad;
      const A = randn(ar * lda, 1).map(round(dt)),
        B = randn(br * bc, 2).map(round(dt)),
        C0 = randn(M * ldc, 3).map(round(ct));
      const want = ref(A, lda, B, bc, C0, ldc, M, N, K, ta, tb, beta, pad);
      const tol = dt === 'f32' && ct === 'f32' ? 1e-5 : 1e-2;
      const run = (tuned: boolean): Float64Array => {
        const a = up(A, [ar, lda], dt),
          b = up(B, [br, bc], dt),
          c = up(C0, [M, ldc], ct);
        setGemmTuning(tuned);
        try {
          gemm(columns(a, pad, ac), b, columns(c, pad, N), { transA: ta, transB: tb, beta });
        } finally {
          setGemmTuning(false);
        }
        const h = c.toFloat64();
        const got = new Float64Array(M * N);
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) got[m * N + n] = h[m * ldc + pad + n]!;
          // the padding columns of C are not written
          for (let n = 0; n < pad; n++) expect(h[m * ldc + n]).toBe(C0[m * ldc + n]);
        }
        for (const t of [a, b, c]) t.dispose();
        return got;
      };
      const fixed = run(false),
        first = run(true),
        kept = run(true);
      expect(relErr(fixed, want), 'fixed').toBeLessThan(tol);
      expect(relErr(first, want), 'tuned, first call').toBeLessThan(tol);
      expect(relErr(kept, want), 'tuned, kept choice').toBeLessThan(tol);
    });
  }
});
