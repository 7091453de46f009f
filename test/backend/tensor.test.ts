import { describe, expect, it } from 'vitest';
import {
  Tensor,
  TensorError,
  bf16BitsToF32,
  f32ToBf16Bits,
  gemm,
  matmul,
  native,
  resolveDevice,
} from '../../src/backend/index.js';
import { randn, relErr } from '../helpers.js';

describe('Tensor', () => {
  it('round-trips values and shapes on the CPU', () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(Array.from(t.reshape([3, 2]).data)).toEqual([1, 2, 3, 4, 5, 6]);
    const v = t.view(2, [2]);
    v.data[0] = 30;
    expect(t.data[2]).toBe(30);
    expect(() => t.view(5, [2])).toThrow(TensorError);
    expect(() => t.reshape([4, 2])).toThrow(/cannot reshape/);
  });

  it('rounds float32 to bfloat16 to nearest even', () => {
    for (const x of [0, 1, -1, 3.14159, 1e-3, 65504, -2.5e-5]) {
      const back = bf16BitsToF32(f32ToBf16Bits(x));
      expect(Math.abs(back - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
    }
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie to even
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    const t = Tensor.from(randn(100, 1), [100]).cast('bf16').cast('f32');
    expect(t.dtype).toBe('f32');
  });

  it('rejects mismatched shapes, dtypes and devices with clear errors', () => {
    const a = Tensor.from(Float32Array.from(randn(6, 2)), [2, 3]);
    const b = Tensor.from(Float32Array.from(randn(8, 3)), [4, 2]);
    expect(() => matmul(a, b)).toThrow(/inner sizes differ/);
    const c = Tensor.from(new Float64Array(4), [2, 2]);
    expect(() => gemm(a, a, c, { transB: true })).toThrow(/C must be f32/);
    expect(() => Tensor.from([1, 2, 3], [2, 2])).toThrow(/needs 4 elements/);
    expect(() => Tensor.empty([2, -1])).toThrow(/non-negative/);
  });

  it('resolves devices: auto falls back to cpu without a GPU', () => {
    const dev = resolveDevice('auto');
    expect(['cpu', 'cuda']).toContain(dev);
    expect(resolveDevice('cpu')).toBe('cpu');
    if (dev === 'cpu') expect(() => resolveDevice('cuda')).toThrow(/cuda/);
  });

  it('reports how the addon was built', () => {
    const b = native().build;
    expect(typeof b.cuda).toBe('boolean');
    expect(native().cpu.gemm).toBeTypeOf('function');
  });
});

describe('cpu gemm', () => {
  // naive float64 reference
  function ref(
    A: Float64Array,
    B: Float64Array,
    M: number,
    N: number,
    K: number,
    ta: boolean,
    tb: boolean,
  ): Float64Array {
    const C = new Float64Array(M * N);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (ta ? A[k * M + i]! : A[i * K + k]!) * (tb ? B[j * K + k]! : B[k * N + j]!);
        C[i * N + j] = s;
      }
    return C;
  }
  for (const [ta, tb] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const) {
    it(`matches a float64 reference (transA=${ta}, transB=${tb}) on awkward shapes`, () => {
      const M = 37,
        N = 29,
        K = 53;
      const A = randn(M * K, 3),
        B = randn(K * N, 4);
      const C = ref(A, B, M, N, K, ta, tb);
      const a32 = Tensor.from(Float32Array.from(A), ta ? [K, M] : [M, K]);
      const b32 = Tensor.from(Float32Array.from(B), tb ? [N, K] : [K, N]);
      const c32 = matmul(a32, b32, { transA: ta, transB: tb });
      expect(relErr(c32.toFloat64(), C)).toBeLessThan(1e-5);
      const c64 = Tensor.from(new Float64Array(M * N).fill(1), [M, N]);
      gemm(Tensor.from(A, ta ? [K, M] : [M, K]), Tensor.from(B, tb ? [N, K] : [K, N]), c64, {
        transA: ta,
        transB: tb,
        alpha: 2,
        beta: 0.5,
      });
      expect(
        relErr(
          c64.data as Float64Array,
          C.map((x) => 2 * x + 0.5),
        ),
      ).toBeLessThan(1e-12);
    });
  }
});
