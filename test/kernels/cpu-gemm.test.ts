// CPU gemm (blocked AVX2 path for f32): shapes that cross every blocking edge (MR=6, NR=16, KC=256,
// MC=96, NC=2048), all transpose combinations, alpha/beta, beta = 0 over NaN, K = 0.
import { describe, expect, it } from 'vitest';
import { Tensor, cpuOp, gemm } from '../../src/backend/index.js';
import { randn, relErr } from '../helpers.js';

function ref(
  A: Float64Array,
  B: Float64Array,
  C0: Float64Array,
  M: number,
  N: number,
  K: number,
  ta: boolean,
  tb: boolean,
  alpha: number,
  beta: number,
): Float64Array {
  const C = new Float64Array(M * N);
  const row = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const a = ta ? A[k * M + i]! : A[i * K + k]!;
      for (let j = 0; j < N; j++) row[j] += a * (tb ? B[j * K + k]! : B[k * N + j]!);
    }
    for (let j = 0; j < N; j++) C[i * N + j] = alpha * row[j]! + (beta === 0 ? 0 : beta * C0[i * N + j]!);
  }
  return C;
}

describe('cpu gemm (blocked)', () => {
  const shapes: [number, number, number][] = [
    [37, 2061, 17],
    [101, 33, 517],
    [7, 16, 256],
    [193, 47, 260],
    [301, 5, 130],
    [29, 8, 3],
    [4, 128, 1100],
    [1, 300, 129],
    [2, 17, 7],
    [3, 1030, 33],
  ];
  for (const [M, N, K] of shapes) {
    for (const [ta, tb] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      it(`M=${M} N=${N} K=${K} transA=${ta} transB=${tb}`, () => {
        const A = randn(M * K, M + K),
          B = randn(K * N, N + K),
          C0 = randn(M * N, 5);
        const want = ref(A, B, C0, M, N, K, ta, tb, 0.75, -0.5);
        const c = Tensor.from(Float32Array.from(C0), [M, N]);
        gemm(
          Tensor.from(Float32Array.from(A), ta ? [K, M] : [M, K]),
          Tensor.from(Float32Array.from(B), tb ? [N, K] : [K, N]),
          c,
          { transA: ta, transB: tb, alpha: 0.75, beta: -0.5 },
        );
        expect(relErr(c.toFloat64(), want)).toBeLessThan(1e-5);
      });
    }
  }
  it('beta = 0 overwrites NaN in C; K = 0 scales C by beta', () => {
    const M = 13,
      N = 21,
      K = 9;
    const A = randn(M * K, 1),
      B = randn(K * N, 2);
    const c = Tensor.from(new Float32Array(M * N).fill(NaN), [M, N]);
    gemm(Tensor.from(Float32Array.from(A), [M, K]), Tensor.from(Float32Array.from(B), [K, N]), c);
    expect(relErr(c.toFloat64(), ref(A, B, new Float64Array(M * N), M, N, K, false, false, 1, 0))).toBeLessThan(1e-5);
    const c2 = Tensor.from(new Float32Array(6).fill(2), [2, 3]);
    gemm(Tensor.zeros([2, 0]), Tensor.zeros([0, 3]), c2, { beta: 0.5 });
    expect(Array.from(c2.data)).toEqual([1, 1, 1, 1, 1, 1]);
  });
  it('fmaPeak measures a positive rate and rejects bad arguments', () => {
    expect(cpuOp('fmaPeak')(1, 0.02)).toBeGreaterThan(0.1);
    expect(() => cpuOp('fmaPeak')(0, 0.1)).toThrow(RangeError);
  });
});
