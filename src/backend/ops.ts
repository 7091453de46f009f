// Kernels over Tensors, dispatched by device: each op checks shapes, dtypes and devices, then calls the
// CPU kernel (native/cpu) or its CUDA twin (native/cuda) with the same argument order.
import { cpuOp, cudaOp } from './native.js';
import { Tensor, TensorError, assertDtype, sameDevice } from './tensor.js';

/**
 * Columns [col, col + width) of a 2-D row-major tensor `base` [T, stride]: how strided kernel arguments
 * (z inside the in_proj output, B and C inside the x_proj output) are passed without copies.
 * A plain contiguous [T, D] tensor is the slice col 0, width D.
 */
export interface ColumnSlice {
  base: Tensor;
  col: number;
  width: number;
}

export function columns(base: Tensor, col: number, width: number): ColumnSlice {
  if (base.shape.length !== 2) throw new TensorError(`columns: expected a 2-D tensor, got [${base.shape.join(', ')}]`);
  if (!Number.isInteger(col) || !Number.isInteger(width) || col < 0 || width < 0 || col + width > base.shape[1]!) {
    throw new TensorError(`columns [${col}, ${col + width}) are outside a tensor with ${base.shape[1]} columns`);
  }
  return { base, col, width };
}

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  /** 0 overwrites C, 1 accumulates into it. */
  beta?: number;
}

/**
 * C = alpha * op(A) @ op(B) + beta * C for 2-D row-major tensors; op is an optional transpose.
 * CPU: f32 or f64. CUDA: f32 or bf16 inputs (cuBLAS, fp32 accumulation), C f32 or bf16.
 */
export function gemm(a: Tensor, b: Tensor, c: Tensor, opts: GemmOptions = {}): Tensor {
  const { transA = false, transB = false, alpha = 1, beta = 0 } = opts;
  const dev = sameDevice('gemm', a, b, c);
  if (a.shape.length !== 2 || b.shape.length !== 2 || c.shape.length !== 2) throw new TensorError('gemm: A, B and C must be 2-D');
  const [ar, ac] = a.shape as [number, number];
  const [br, bc] = b.shape as [number, number];
  const M = transA ? ac : ar, K = transA ? ar : ac;
  const Kb = transB ? bc : br, N = transB ? br : bc;
  if (K !== Kb) throw new TensorError(`gemm: inner sizes differ (${K} vs ${Kb}) for A [${a.shape.join(', ')}]${transA ? 'ᵀ' : ''} and B [${b.shape.join(', ')}]${transB ? 'ᵀ' : ''}`);
  if (c.shape[0] !== M || c.shape[1] !== N) throw new TensorError(`gemm: C must be [${M}, ${N}], got [${c.shape.join(', ')}]`);
  if (a.dtype !== b.dtype) throw new TensorError(`gemm: A is ${a.dtype} but B is ${b.dtype}`);
  if (dev === 'cpu') {
    assertDtype(a, ['f32', 'f64'], 'gemm A (cpu)');
    if (c.dtype !== a.dtype) throw new TensorError(`gemm: C must be ${a.dtype} on the CPU`);
    cpuOp('gemm')(transA, transB, M, N, K, alpha, a.data, ac, b.data, bc, beta, c.data, N);
  } else {
    assertDtype(a, ['f32', 'bf16'], 'gemm A (cuda)');
    assertDtype(c, ['f32', 'bf16'], 'gemm C (cuda)');
    cudaOp('gemm')(transA, transB, M, N, K, alpha, a.buffer, ac, b.buffer, bc, beta, c.buffer, N, a.dtype, c.dtype);
  }
  return c;
}

/** A fresh C = op(A) @ op(B). */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  const M = opts.transA ? a.shape[1]! : a.shape[0]!;
  const N = opts.transB ? b.shape[0]! : b.shape[1]!;
  const c = Tensor.empty([M, N], a.dtype === 'bf16' ? 'f32' : a.dtype, a.device);
  return gemm(a, b, c, opts);
}

export function synchronize(device: 'cpu' | 'cuda'): void {
  if (device === 'cuda') cudaOp('synchronize')();
}
