// Kernels over Tensors, dispatched by device: each op checks shapes, dtypes and devices, then calls the
// CPU kernel (native/cpu) or its CUDA twin (native/cuda) with the same arguments: positional for the short
// ones, one named argument object for the kernels with many (the scan and fused decoding ops).
import { cpuOp, cudaOp, native, nativeLimits } from './native.js';
import { DTYPE_BYTES, Tensor, TensorError, assertDtype, sameDevice, type DType } from './tensor.js';

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
 * C = alpha * op(A) @ op(B) + beta * C for 2-D row-major tensors; op is an optional transpose. A, B and C may each be
 * columns of a wider tensor (their rows then lie that tensor's width apart), as x_proj's one output is read and
 * written as its dt, B and C column blocks.
 * CPU: f32 or f64. CUDA: f32 or bf16 inputs (cuBLAS, fp32 accumulation), C f32 or bf16.
 */
export function gemm(aIn: Strided, bIn: Strided, cIn: Strided, opts: GemmOptions = {}): Strided {
  const { transA = false, transB = false, alpha = 1, beta = 0 } = opts;
  const a = stridedBase(aIn),
    b = stridedBase(bIn),
    c = stridedBase(cIn);
  const dev = sameDevice('gemm', a, b, c);
  if (a.shape.length !== 2 || b.shape.length !== 2 || c.shape.length !== 2)
    throw new TensorError('gemm: A, B and C must be 2-D');
  const [ar, ac] = stridedShape(aIn),
    [br, bc] = stridedShape(bIn);
  const M = transA ? ac : ar,
    K = transA ? ar : ac;
  const Kb = transB ? bc : br,
    N = transB ? br : bc;
  if (K !== Kb)
    throw new TensorError(
      `gemm: inner sizes differ (${K} vs ${Kb}) for A [${ar}, ${ac}]${transA ? 'ᵀ' : ''} and B [${br}, ${bc}]${transB ? 'ᵀ' : ''}`,
    );
  const [cr, cc] = stridedShape(cIn);
  if (cr !== M || cc !== N) throw new TensorError(`gemm: C must be [${M}, ${N}], got [${cr}, ${cc}]`);
  if (a.dtype !== b.dtype) throw new TensorError(`gemm: A is ${a.dtype} but B is ${b.dtype}`);
  const A = strided(aIn, ar, ac, 'gemm', 'A'),
    Bs = strided(bIn, br, bc, 'gemm', 'B'),
    C = strided(cIn, M, N, 'gemm', 'C');
  if (dev === 'cpu') {
    assertDtype(a, ['f32', 'f64'], 'gemm A (cpu)');
    if (c.dtype !== a.dtype) throw new TensorError(`gemm: C must be ${a.dtype} on the CPU`);
    cpuOp('gemm')({
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A: A.arr,
      lda: A.stride,
      B: Bs.arr,
      ldb: Bs.stride,
      beta,
      C: C.arr,
      ldc: C.stride,
    });
  } else {
    assertDtype(a, ['f32', 'bf16'], 'gemm A (cuda)');
    assertDtype(c, ['f32', 'bf16'], 'gemm C (cuda)');
    cudaOp('gemm')({
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A: A.arr,
      lda: A.stride,
      B: Bs.arr,
      ldb: Bs.stride,
      beta,
      C: C.arr,
      ldc: C.stride,
      abType: a.dtype,
      cType: c.dtype,
    });
  }
  return cIn;
}

/** A fresh C = op(A) @ op(B). */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  const M = opts.transA ? a.shape[1]! : a.shape[0]!;
  const N = opts.transB ? b.shape[0]! : b.shape[1]!;
  const c = Tensor.empty([M, N], a.dtype === 'bf16' ? 'f32' : a.dtype, a.device);
  gemm(a, b, c, opts);
  return c;
}

// ---- model kernels ----------------------------------------------------------------------------
// Each wrapper checks element counts, dtypes and devices, then passes raw storage in the argument order
// of native/KERNELS.md. CPU: all float tensors of one call share f32 or f64. CUDA: activations share
// f32 or bf16 (passed as a trailing dtype argument), parameters and optimizer state stay f32.

/** A contiguous [T, D] tensor, or columns of a wider [T, C] tensor (see `columns`). */
export type Strided = Tensor | ColumnSlice;

type Storage = ReturnType<() => Tensor['storage']>;

function isSlice(s: Strided): s is ColumnSlice {
  return !(s instanceof Tensor);
}

function stridedBase(s: Strided): Tensor {
  return isSlice(s) ? s.base : s;
}

/** Rows and columns of a 2-D tensor or of its column slice. */
function stridedShape(s: Strided): [number, number] {
  return isSlice(s) ? [s.base.shape[0]!, s.width] : [s.shape[0]!, s.shape[1]!];
}

function shapeStr(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

/** `t` must hold exactly `n` elements (any shape of that size, e.g. [T, D] or [B, L, D]). */
function needNumel(t: Tensor, n: number, name: string, what: string): void {
  if (t.numel !== n) throw new TensorError(`${name}: ${what} must hold ${n} elements, got ${shapeStr(t)}`);
}

function needI32(t: Tensor, name: string): void {
  if (t.dtype !== 'i32') throw new TensorError(`${name}: expected i32 ids/targets, got ${t.dtype}`);
}

function needInt(v: number, name: string, what: string, min = 0): void {
  if (!Number.isInteger(v) || v < min) throw new TensorError(`${name}: ${what} must be an integer >= ${min}, got ${v}`);
}

/** The storage and row stride of a strided argument that must be `rows` x `width`. */
function strided(
  s: Strided,
  rows: number,
  width: number,
  name: string,
  what: string,
): { arr: Storage; stride: number } {
  if (!isSlice(s)) {
    if (s.numel !== rows * width || (s.shape.length > 0 && s.shape[s.shape.length - 1] !== width && rows * width > 0)) {
      throw new TensorError(`${name}: ${what} must be [${rows}, ${width}], got ${shapeStr(s)}`);
    }
    return { arr: s.storage, stride: width };
  }
  const { base, col } = s;
  if (base.shape[0] !== rows || s.width !== width) {
    throw new TensorError(
      `${name}: ${what} must be ${rows} rows x ${width} columns, got columns [${col}, ${col + s.width}) of ${shapeStr(base)}`,
    );
  }
  const stride = base.shape[1]!;
  if (col === 0) return { arr: base.storage, stride };
  if (base.device === 'cpu') return { arr: base.data.subarray(col), stride };
  const b = DTYPE_BYTES[base.dtype];
  return { arr: cudaOp('view')(base.buffer, col * b, (base.numel - col) * b) as Storage, stride };
}

function nullableStorage(t: Tensor | null): Storage | null {
  return t ? t.storage : null;
}

/**
 * Checks devices and dtypes. `acts` are activations (CPU: f32/f64; CUDA: f32 or bf16, all equal);
 * `params` are weights, biases and accumulators (CPU: the activations' dtype; CUDA: f32).
 * Returns the device and the dtype argument CUDA kernels take last.
 */
function floatCall(
  name: string,
  acts: (Tensor | null | undefined)[],
  params: (Tensor | null | undefined)[] = [],
): { dev: 'cpu' | 'cuda'; dtype: DType } {
  const all = [...acts, ...params].filter((t): t is Tensor => !!t);
  const dev = sameDevice(name, ...all);
  const first = all[0];
  if (!first) return { dev, dtype: 'f32' };
  if (dev === 'cpu') {
    for (const t of all) {
      assertDtype(t, ['f32', 'f64'], `${name} (cpu)`);
      if (t.dtype !== first.dtype)
        throw new TensorError(
          `${name}: all float tensors must share one dtype on the CPU (got ${first.dtype} and ${t.dtype})`,
        );
    }
    return { dev, dtype: first.dtype };
  }
  const a = acts.find((t): t is Tensor => !!t);
  const dtype = a ? a.dtype : 'f32';
  for (const t of acts)
    if (t) {
      assertDtype(t, ['f32', 'bf16'], `${name} (cuda)`);
      if (t.dtype !== dtype)
        throw new TensorError(`${name}: activations must share one dtype (got ${dtype} and ${t.dtype})`);
    }
  for (const t of params) if (t) assertDtype(t, 'f32', `${name} parameter (cuda)`);
  return { dev, dtype };
}

function kernel(dev: 'cpu' | 'cuda', name: string): (...args: unknown[]) => unknown {
  return dev === 'cpu' ? cpuOp(name) : cudaOp(name);
}

/** Calls the kernel; CUDA gets the activation dtype as a trailing argument. */
function call(dev: 'cpu' | 'cuda', dtype: DType, name: string, args: unknown[]): unknown {
  return dev === 'cpu' ? cpuOp(name)(...args) : cudaOp(name)(...args, dtype);
}

function rows2(t: Tensor, name: string, what: string): [number, number] {
  if (t.shape.length !== 2) throw new TensorError(`${name}: ${what} must be 2-D, got ${shapeStr(t)}`);
  return [t.shape[0]!, t.shape[1]!];
}

/** out[t] = W[ids[t]]; ids outside 0..V-1 are a RangeError (CPU). */
export function embeddingForward(ids: Tensor, W: Tensor, out: Tensor): void {
  const name = 'embeddingForward';
  needI32(ids, name);
  const [V, D] = rows2(W, name, 'W');
  const T = ids.numel;
  needNumel(out, T * D, name, 'out');
  const { dev, dtype } = floatCall(name, [out], [W]);
  sameDevice(name, ids, W);
  call(dev, dtype, name, [ids.storage, W.storage, out.storage, T, V, D]);
}

/** dW[ids[t]] += dOut[t]. */
export function embeddingBackward(ids: Tensor, dOut: Tensor, dW: Tensor): void {
  const name = 'embeddingBackward';
  needI32(ids, name);
  const [V, D] = rows2(dW, name, 'dW');
  const T = ids.numel;
  needNumel(dOut, T * D, name, 'dOut');
  const { dev, dtype } = floatCall(name, [dOut], [dW]);
  sameDevice(name, ids, dW);
  call(dev, dtype, name, [ids.storage, dOut.storage, dW.storage, T, V, D]);
}

/** y[t] += b for y [T, C]. */
export function biasForward(y: Tensor, b: Tensor): void {
  const name = 'biasForward';
  const C = b.numel;
  if (C === 0 ? y.numel !== 0 : y.numel % C !== 0) throw new TensorError(`${name}: y ${shapeStr(y)} is not [T, ${C}]`);
  const T = C === 0 ? 0 : y.numel / C;
  const { dev, dtype } = floatCall(name, [y], [b]);
  call(dev, dtype, name, [y.storage, b.storage, T, C]);
}

/** db += sum over rows of dy [T, C]. */
export function biasBackward(dy: Tensor, db: Tensor): void {
  const name = 'biasBackward';
  const C = db.numel;
  if (C === 0 ? dy.numel !== 0 : dy.numel % C !== 0)
    throw new TensorError(`${name}: dy ${shapeStr(dy)} is not [T, ${C}]`);
  const T = C === 0 ? 0 : dy.numel / C;
  const { dev, dtype } = floatCall(name, [dy], [db]);
  call(dev, dtype, name, [dy.storage, db.storage, T, C]);
}

/**
 * r = x + residualIn (or x, or residualIn alone when x is null); rstd = 1/sqrt(mean r^2 + eps); out = r rstd w;
 * residualOut = r (may be null when x is null: the norm of a kept residual, as activation recomputation needs).
 */
export function rmsnormForward(
  x: Tensor | null,
  residualIn: Tensor | null,
  w: Tensor,
  out: Tensor,
  residualOut: Tensor | null,
  rstd: Tensor,
  eps: number,
): void {
  const name = 'rmsnormForward';
  const D = w.numel;
  if (D === 0 || out.numel % D !== 0) throw new TensorError(`${name}: out ${shapeStr(out)} is not [T, ${D}]`);
  const T = out.numel / D;
  if (!x && !residualIn) throw new TensorError(`${name}: x and residualIn cannot both be null`);
  if (x && !residualOut) throw new TensorError(`${name}: residualOut may be null only when x is null`);
  if (x) needNumel(x, T * D, name, 'x');
  if (residualIn) needNumel(residualIn, T * D, name, 'residualIn');
  if (residualOut) needNumel(residualOut, T * D, name, 'residualOut');
  needNumel(rstd, T, name, 'rstd');
  if (!(eps >= 0)) throw new TensorError(`${name}: eps must be >= 0, got ${eps}`);
  // the residual stream and rstd stay f32 on CUDA; x/out follow the activation dtype there
  const { dev, dtype } = floatCall(name, [x, out], [residualIn, w, residualOut, rstd]);
  call(dev, dtype, name, [
    nullableStorage(x),
    nullableStorage(residualIn),
    w.storage,
    out.storage,
    nullableStorage(residualOut),
    rstd.storage,
    T,
    D,
    eps,
  ]);
}

/**
 * dR = dResidualOut + (d out / d r)^T dOut (the gradient of x and of residualIn); dW += sum dOut r rstd. `dRAct`
 * (CUDA, dOut's dtype) receives dR as well: the next block's products read it in the activation dtype.
 */
export function rmsnormBackward(
  dOut: Tensor,
  dResidualOut: Tensor | null,
  residualOut: Tensor,
  w: Tensor,
  rstd: Tensor,
  dR: Tensor,
  dW: Tensor,
  dRAct: Tensor | null = null,
): void {
  const name = 'rmsnormBackward';
  const D = w.numel;
  if (D === 0 || dOut.numel % D !== 0) throw new TensorError(`${name}: dOut ${shapeStr(dOut)} is not [T, ${D}]`);
  const T = dOut.numel / D;
  if (dResidualOut) needNumel(dResidualOut, T * D, name, 'dResidualOut');
  needNumel(residualOut, T * D, name, 'residualOut');
  needNumel(rstd, T, name, 'rstd');
  needNumel(dR, T * D, name, 'dR');
  needNumel(dW, D, name, 'dW');
  const { dev, dtype } = floatCall(name, [dOut], [dResidualOut, residualOut, w, rstd, dR, dW]);
  const args = [
    dOut.storage,
    nullableStorage(dResidualOut),
    residualOut.storage,
    w.storage,
    rstd.storage,
    dR.storage,
    dW.storage,
    T,
    D,
  ];
  if (!dRAct) {
    call(dev, dtype, name, args);
    return;
  }
  if (dev !== 'cuda')
    throw new TensorError(`${name}: dRAct is for CUDA (the CPU's activations are its parameters' dtype)`);
  sameDevice(name, dOut, dRAct);
  if (dRAct.dtype !== dOut.dtype) throw new TensorError(`${name}: dRAct must be ${dOut.dtype}, got ${dRAct.dtype}`);
  needNumel(dRAct, T * D, name, 'dRAct');
  cudaOp(name)(...args, dtype, dRAct.storage);
}

function convShape(name: string, w: Tensor, B: number, L: number): { D: number; K: number; T: number } {
  const [D, K] = rows2(w, name, 'w');
  needInt(B, name, 'B');
  needInt(L, name, 'L');
  if (K < 1) throw new TensorError(`${name}: kernel width K must be >= 1`);
  return { D, K, T: B * L };
}

/** Causal depthwise conv over each sequence of length L: out[b,t,d] = act(bias[d] + sum_k w[d,k] x[b,t-K+1+k,d]). */
export function conv1dForward(
  x: Strided,
  w: Tensor,
  bias: Tensor | null,
  out: Tensor,
  B: number,
  L: number,
  silu: boolean,
): void {
  const name = 'conv1dForward';
  const { D, K, T } = convShape(name, w, B, L);
  if (bias) needNumel(bias, D, name, 'bias');
  needNumel(out, T * D, name, 'out');
  const { dev, dtype } = floatCall(name, [stridedBase(x), out], [w, bias]);
  const xs = strided(x, T, D, name, 'x');
  kernel(
    dev,
    name,
  )({
    x: xs.arr,
    xStride: xs.stride,
    w: w.storage,
    bias: nullableStorage(bias),
    out: out.storage,
    B,
    L,
    D,
    K,
    silu,
    dtype,
  });
}

/** dx = d/dx (overwritten), dw and dbias accumulated; recomputes the pre-activation when silu. */
export function conv1dBackward(
  x: Strided,
  w: Tensor,
  bias: Tensor | null,
  dOut: Tensor,
  dx: Strided,
  dw: Tensor,
  dbias: Tensor | null,
  B: number,
  L: number,
  silu: boolean,
): void {
  const name = 'conv1dBackward';
  const { D, K, T } = convShape(name, w, B, L);
  if (bias) needNumel(bias, D, name, 'bias');
  if (dbias) needNumel(dbias, D, name, 'dbias');
  needNumel(dOut, T * D, name, 'dOut');
  needNumel(dw, D * K, name, 'dw');
  const { dev, dtype } = floatCall(name, [stridedBase(x), dOut, stridedBase(dx)], [w, bias, dw, dbias]);
  const xs = strided(x, T, D, name, 'x');
  const dxs = strided(dx, T, D, name, 'dx');
  kernel(
    dev,
    name,
  )({
    x: xs.arr,
    xStride: xs.stride,
    w: w.storage,
    bias: nullableStorage(bias),
    dOut: dOut.storage,
    dx: dxs.arr,
    dxStride: dxs.stride,
    dw: dw.storage,
    dbias: nullableStorage(dbias),
    B,
    L,
    D,
    K,
    silu,
    dtype,
  });
}

/** One decoding step: shifts x [B, D] into convState [B, D, K] (oldest first) and writes the conv output. */
export function conv1dStep(
  convState: Tensor,
  x: Strided,
  w: Tensor,
  bias: Tensor | null,
  out: Tensor,
  silu: boolean,
): void {
  const name = 'conv1dStep';
  const [D, K] = rows2(w, name, 'w');
  if (D === 0 || convState.numel % (D * K) !== 0)
    throw new TensorError(`${name}: convState ${shapeStr(convState)} is not [B, ${D}, ${K}]`);
  const B = convState.numel / (D * K);
  if (bias) needNumel(bias, D, name, 'bias');
  needNumel(out, B * D, name, 'out');
  const { dev, dtype } = floatCall(name, [stridedBase(x), out], [convState, w, bias]);
  const xs = strided(x, B, D, name, 'x');
  kernel(
    dev,
    name,
  )({
    convState: convState.storage,
    x: xs.arr,
    xStride: xs.stride,
    w: w.storage,
    bias: nullableStorage(bias),
    out: out.storage,
    B,
    D,
    K,
    silu,
    dtype,
  });
}

export interface ScanArgs {
  /** [T, D] input */
  u: Tensor;
  /** [T, D] raw delta (before deltaBias and softplus) */
  delta: Tensor;
  deltaBias: Tensor | null;
  /** [D, N] = -exp(A_log) */
  A: Tensor;
  /** [T, N] (columns of x_proj's output); Bm and Cm must share one row stride */
  Bm: Strided;
  Cm: Strided;
  Dskip: Tensor | null;
  /** [T, D] gate (columns of in_proj's output) or null */
  z: Strided | null;
  B: number;
  L: number;
  deltaSoftplus: boolean;
}

export interface ScanGrads {
  du: Tensor;
  ddelta: Tensor;
  /** accumulated */
  dA: Tensor;
  /** overwritten; must have the same row stride as Bm/Cm */
  dB: Strided;
  dC: Strided;
  dDskip: Tensor | null;
  dDeltaBias: Tensor | null;
  /** overwritten; same row stride as z (may be z itself: each z value is read before its dz is written) */
  dz: Strided | null;
  /**
   * [T, D] optional: the forward's output y, rebuilt from the states the backward recomputes (a recomputing caller
   * then skips the forward scan); may be dy itself (each dy value is read before its y is written)
   */
  y?: Tensor | null;
}

interface ScanPrep {
  D: number;
  N: number;
  T: number;
  bc: { B: Storage; C: Storage; stride: number };
  z: { arr: Storage | null; stride: number };
}

function scanPrep(name: string, a: ScanArgs, rows: number): ScanPrep {
  const [D, N] = rows2(a.A, name, 'A');
  if (N < 1) throw new TensorError(`${name}: d_state N must be >= 1`);
  needNumel(a.u, rows * D, name, 'u');
  needNumel(a.delta, rows * D, name, 'delta');
  if (a.deltaBias) needNumel(a.deltaBias, D, name, 'deltaBias');
  if (a.Dskip) needNumel(a.Dskip, D, name, 'Dskip');
  const b = strided(a.Bm, rows, N, name, 'Bm');
  const c = strided(a.Cm, rows, N, name, 'Cm');
  if (b.stride !== c.stride)
    throw new TensorError(
      `${name}: Bm and Cm must share one row stride (${b.stride} vs ${c.stride}); take both as columns of one tensor`,
    );
  const z = a.z ? strided(a.z, rows, D, name, 'z') : { arr: null, stride: D };
  return { D, N, T: rows, bc: { B: b.arr, C: c.arr, stride: b.stride }, z };
}

/** The argument object the scan kernels share (native/KERNELS.md): one object for the CPU and CUDA twins. */
interface ScanFields {
  u: Storage;
  delta: Storage;
  deltaBias: Storage | null;
  A: Storage;
  Bm: Storage;
  Cm: Storage;
  bcStride: number;
  Dskip: Storage | null;
  z: Storage | null;
  zStride: number;
  B: number;
  L: number;
  D: number;
  N: number;
  deltaSoftplus: boolean;
  /** CUDA: the activations' f32 | bf16; CPU: f32 | f64, checked against the arrays */
  dtype: DType;
}
interface ScanForwardFields extends ScanFields {
  y: Storage;
  lastState: Storage | null;
}
interface ScanBackwardFields extends ScanFields {
  dy: Storage;
  du: Storage;
  ddelta: Storage;
  dA: Storage;
  dB: Storage;
  dC: Storage;
  dDskip: Storage | null;
  dDeltaBias: Storage | null;
  dz: Storage | null;
  y: Storage | null;
}

function scanFields(a: ScanArgs, p: ScanPrep, dtype: DType): ScanFields {
  return {
    u: a.u.storage,
    delta: a.delta.storage,
    deltaBias: nullableStorage(a.deltaBias),
    A: a.A.storage,
    Bm: p.bc.B,
    Cm: p.bc.C,
    bcStride: p.bc.stride,
    Dskip: nullableStorage(a.Dskip),
    z: p.z.arr,
    zStride: p.z.stride,
    B: a.B,
    L: a.L,
    D: p.D,
    N: p.N,
    deltaSoftplus: a.deltaSoftplus,
    dtype,
  };
}

function scanActs(a: ScanArgs): Tensor[] {
  const out = [a.u, a.delta, stridedBase(a.Bm), stridedBase(a.Cm)];
  if (a.z) out.push(stridedBase(a.z));
  return out;
}

/** Selective scan over B sequences of length L; y overwritten; lastState [B, D, N] (f32 on CUDA) if given. */
export function selectiveScanForward(a: ScanArgs, y: Tensor, lastState: Tensor | null): void {
  const name = 'selectiveScanForward';
  needInt(a.B, name, 'B');
  needInt(a.L, name, 'L');
  const p = scanPrep(name, a, a.B * a.L);
  needNumel(y, p.T * p.D, name, 'y');
  if (lastState) needNumel(lastState, a.B * p.D * p.N, name, 'lastState');
  const { dev, dtype } = floatCall(name, [...scanActs(a), y], [a.deltaBias, a.A, a.Dskip, lastState]);
  const args: ScanForwardFields = {
    ...scanFields(a, p, dtype),
    y: y.storage,
    lastState: nullableStorage(lastState),
  };
  kernel(dev, name)(args);
}

/** Gradients of selectiveScanForward; states are recomputed chunk by chunk (never stored for all of L). */
export function selectiveScanBackward(a: ScanArgs, dy: Tensor, g: ScanGrads): void {
  const name = 'selectiveScanBackward';
  needInt(a.B, name, 'B');
  needInt(a.L, name, 'L');
  const p = scanPrep(name, a, a.B * a.L);
  const n = p.T * p.D;
  needNumel(dy, n, name, 'dy');
  needNumel(g.du, n, name, 'du');
  needNumel(g.ddelta, n, name, 'ddelta');
  needNumel(g.dA, p.D * p.N, name, 'dA');
  if (g.dDskip) needNumel(g.dDskip, p.D, name, 'dDskip');
  if (g.dDeltaBias) needNumel(g.dDeltaBias, p.D, name, 'dDeltaBias');
  if (!!a.z !== !!g.dz) throw new TensorError(`${name}: dz must be given exactly when z is`);
  const dB = strided(g.dB, p.T, p.N, name, 'dB');
  const dC = strided(g.dC, p.T, p.N, name, 'dC');
  if (dB.stride !== p.bc.stride || dC.stride !== p.bc.stride)
    throw new TensorError(
      `${name}: dB and dC must have Bm's row stride ${p.bc.stride} (got ${dB.stride}, ${dC.stride})`,
    );
  const dz = g.dz ? strided(g.dz, p.T, p.D, name, 'dz') : null;
  if (dz && dz.stride !== p.z.stride)
    throw new TensorError(`${name}: dz must have z's row stride ${p.z.stride} (got ${dz.stride})`);
  if (g.y) needNumel(g.y, n, name, 'y');
  const acts = [...scanActs(a), dy, g.du, g.ddelta, stridedBase(g.dB), stridedBase(g.dC)];
  if (g.dz) acts.push(stridedBase(g.dz));
  if (g.y) acts.push(g.y);
  const { dev, dtype } = floatCall(name, acts, [a.deltaBias, a.A, a.Dskip, g.dA, g.dDskip, g.dDeltaBias]);
  const args: ScanBackwardFields = {
    ...scanFields(a, p, dtype),
    dy: dy.storage,
    du: g.du.storage,
    ddelta: g.ddelta.storage,
    dA: g.dA.storage,
    dB: dB.arr,
    dC: dC.arr,
    dDskip: nullableStorage(g.dDskip),
    dDeltaBias: nullableStorage(g.dDeltaBias),
    dz: dz ? dz.arr : null,
    y: nullableStorage(g.y ?? null),
  };
  kernel(dev, name)(args);
}

// ---- fused decoding step (small batches): three kernels per block instead of six; native/cuda/decode.cu ----

/** Partial sums decodeIn leaves for decodeSsm: ceil(E / limits.decodeChunk) (native/src/decode.h). */
export function decodeParts(E: number): number {
  return Math.ceil(E / nativeLimits().decodeChunk);
}

function decodeBatch(name: string, rows: number): void {
  const max = nativeLimits().decodeMaxBatch;
  if (!Number.isInteger(rows) || rows < 1 || rows > max) {
    throw new TensorError(`${name}: the fused decoding ops take 1..${max} sequences, got ${rows}`);
  }
}

/**
 * Whether the CUDA fused decoding ops take these sizes (B sequences, activations of `actBytes` bytes); callers
 * use the unfused step otherwise. The addon answers (limits.decodeFits): batch, d_state and d_conv bounds and the
 * shared memory of the B normalised rows and of the x_proj outputs, as the kernels' bindings check them.
 */
export function decodeFusable(
  d: { dModel: number; dInner: number; dtRank: number; dState: number; dConv: number },
  B: number,
  actBytes: number,
): boolean {
  return Number.isInteger(B) && nativeLimits().decodeFits(B, d.dModel, d.dInner, d.dtRank, d.dState, d.dConv, actBytes);
}

/** The sizes the first op of a decoding step reads from its weights: d_model D, d_inner E, d_conv K, batch B. */
function inProjSizes(name: string, x: Tensor, xName: string, normW: Tensor, Win: Tensor, convW: Tensor) {
  const D = normW.numel;
  const [E2, Dw] = rows2(Win, name, 'Win');
  const [E, K] = rows2(convW, name, 'convW');
  if (Dw !== D || E2 !== 2 * E)
    throw new TensorError(`${name}: Win must be [${2 * E}, ${D}] (2 d_inner x d_model), got ${shapeStr(Win)}`);
  if (D === 0 || x.numel % D !== 0) throw new TensorError(`${name}: ${xName} ${shapeStr(x)} is not [B, ${D}]`);
  const B = x.numel / D;
  decodeBatch(name, B);
  return { B, D, E, K };
}

/**
 * First op of the fused step, for B <= limits.decodeMaxBatch sequences: r = hIn + rIn (rIn null: r = hIn) -> rOut; n = RMSNorm(r) * normW;
 * xz = n Win^T split into xs and z; xc = SiLU(conv step of xs into convState [B, E, K] + convBias) -> xc; z -> z;
 * and the x_proj partial sums xPart[p, b, :] = sum over channels e in [32p, 32p + 32) of xc[b, e] Wx[:, e].
 * hIn, Win, Wx, xc, z are activations (bf16 or f32 on CUDA); rIn, rOut, normW, convState, conv weights and xPart
 * the parameter dtype. rOut must not overlap hIn or rIn.
 */
export function decodeIn(
  hIn: Tensor,
  rIn: Tensor | null,
  normW: Tensor,
  eps: number,
  Win: Tensor,
  convState: Tensor,
  convW: Tensor,
  convBias: Tensor | null,
  Wx: Tensor,
  rOut: Tensor,
  xc: Tensor,
  z: Tensor,
  xPart: Tensor,
): void {
  const name = 'decodeIn';
  const { B, D, E, K } = inProjSizes(name, hIn, 'hIn', normW, Win, convW);
  const [J, Ex] = rows2(Wx, name, 'Wx');
  if (Ex !== E) throw new TensorError(`${name}: Wx must have ${E} columns (d_inner), got ${shapeStr(Wx)}`);
  if (rIn) needNumel(rIn, B * D, name, 'rIn');
  needNumel(rOut, B * D, name, 'rOut');
  if (rOut === rIn || rOut === hIn)
    throw new TensorError(`${name}: rOut must not be hIn or rIn (every block reads them while one writes rOut)`);
  needNumel(convState, B * E * K, name, 'convState');
  if (convBias) needNumel(convBias, E, name, 'convBias');
  needNumel(xc, B * E, name, 'xc');
  needNumel(z, B * E, name, 'z');
  needNumel(xPart, decodeParts(E) * B * J, name, `xPart [${decodeParts(E)}, ${B}, ${J}]`);
  if (!(eps >= 0)) throw new TensorError(`${name}: eps must be >= 0, got ${eps}`);
  const { dev, dtype } = floatCall(name, [hIn, Win, Wx, xc, z], [rIn, normW, convState, convW, convBias, rOut, xPart]);
  kernel(
    dev,
    name,
  )({
    hIn: hIn.storage,
    rIn: nullableStorage(rIn),
    normW: normW.storage,
    Win: Win.storage,
    convState: convState.storage,
    convW: convW.storage,
    convBias: nullableStorage(convBias),
    Wx: Wx.storage,
    rOut: rOut.storage,
    xc: xc.storage,
    z: z.storage,
    xPart: xPart.storage,
    B,
    D,
    E,
    K,
    J,
    eps,
    dtype,
  });
}

/**
 * Whether decodeInProj takes these sizes on CUDA (bf16 activations, tensor cores; limits.decodeInProjFits): d_model
 * a multiple of 8, d_conv <= limits.decodeMaxConv, a tile that fits in shared memory. The CPU twin takes any.
 */
export function decodeInProjFusable(d: { dModel: number; dInner: number; dConv: number }, B: number): boolean {
  return Number.isInteger(B) && nativeLimits().decodeInProjFits(B, d.dModel, d.dInner, d.dConv);
}

/**
 * The batched step's first op: n = RMSNorm(r) * normW; xz = n Win^T; xc = SiLU(conv step of the xs half into
 * convState [B, E, K] + convBias); z = the other half. r is the residual stream itself (the previous layer's out_proj
 * accumulates into it), so no norm kernel runs. r, normW and the conv buffers are the parameter dtype; Win, xc and z
 * activations (bf16 on CUDA, where the product runs on tensor cores: see decodeInProjFusable).
 */
export function decodeInProj(
  r: Tensor,
  normW: Tensor,
  eps: number,
  Win: Tensor,
  convState: Tensor,
  convW: Tensor,
  convBias: Tensor | null,
  xc: Tensor,
  z: Tensor,
): void {
  const name = 'decodeInProj';
  const { B, D, E, K } = inProjSizes(name, r, 'r', normW, Win, convW);
  needNumel(convState, B * E * K, name, 'convState');
  if (convBias) needNumel(convBias, E, name, 'convBias');
  needNumel(xc, B * E, name, 'xc');
  needNumel(z, B * E, name, 'z');
  if (!(eps >= 0)) throw new TensorError(`${name}: eps must be >= 0, got ${eps}`);
  const { dev, dtype } = floatCall(name, [Win, xc, z], [r, normW, convState, convW, convBias]);
  kernel(
    dev,
    name,
  )({
    r: r.storage,
    normW: normW.storage,
    Win: Win.storage,
    convState: convState.storage,
    convW: convW.storage,
    convBias: nullableStorage(convBias),
    xc: xc.storage,
    z: z.storage,
    B,
    D,
    E,
    K,
    eps,
    dtype,
  });
}

/**
 * Whether convXProj takes these sizes on CUDA (bf16 activations, tensor cores; limits.convXProjFits): d_inner a
 * multiple of 8, d_conv <= limits.decodeMaxConv, x_proj at most 128 wide. The CPU twin takes any.
 */
export function convXProjFusable(
  d: { dInner: number; dtRank: number; dState: number; dConv: number },
  B: number,
): boolean {
  return Number.isInteger(B) && nativeLimits().convXProjFits(B, d.dInner, d.dConv, d.dtRank + 2 * d.dState);
}

/**
 * The batched step's conv step and x_proj in one op: xc = SiLU(conv step of x into convState [B, E, K] + convBias),
 * as conv1dStep; xProj = xc Wx^T [B, J]. x (the xs columns of in_proj's output), Wx, xc and xProj are activations
 * (bf16 on CUDA: see convXProjFusable), the conv buffers the parameter dtype.
 */
export function convXProjStep(
  convState: Tensor,
  x: Strided,
  convW: Tensor,
  convBias: Tensor | null,
  Wx: Tensor,
  xc: Tensor,
  xProj: Tensor,
): void {
  const name = 'convXProj';
  const [E, K] = rows2(convW, name, 'convW');
  const [J, Ex] = rows2(Wx, name, 'Wx');
  if (Ex !== E) throw new TensorError(`${name}: Wx must be [J, ${E}], got ${shapeStr(Wx)}`);
  if (E === 0 || convState.numel % (E * K) !== 0)
    throw new TensorError(`${name}: convState ${shapeStr(convState)} is not [B, ${E}, ${K}]`);
  const B = convState.numel / (E * K);
  decodeBatch(name, B);
  if (convBias) needNumel(convBias, E, name, 'convBias');
  needNumel(xc, B * E, name, 'xc');
  needNumel(xProj, B * J, name, 'xProj');
  const { dev, dtype } = floatCall(name, [stridedBase(x), Wx, xc, xProj], [convState, convW, convBias]);
  const xs = strided(x, B, E, name, 'x');
  kernel(
    dev,
    name,
  )({
    x: xs.arr,
    xStride: xs.stride,
    convState: convState.storage,
    convW: convW.storage,
    convBias: nullableStorage(convBias),
    Wx: Wx.storage,
    xc: xc.storage,
    xProj: xProj.storage,
    B,
    E,
    K,
    J,
    dtype,
  });
}

/**
 * Second op of the fused step, and the scan step of the unfused one: x_proj -> dtIn [R], B [N], C [N] per sequence,
 * given either as decodeIn's partial sums (`{ parts }`, [P, B, R + 2N], parameter dtype) or whole (`{ proj }`, [B,
 * R + 2N], an activation: the product of the unfused step); dt = softplus(dtIn Wdt^T + dtBias); ssmState =
 * exp(dt A) ssmState + dt B xc (in place, [B, E, N]); y = (C . ssmState + Dskip xc) * SiLU(z). xc, z (may be the
 * gate columns of xz), Wdt, y are activations; A = -exp(A_log) [E, N]. `prefetch`: buffers the next block's step reads,
 * which the CUDA kernel pulls into L2 while it runs (at most 16; no effect on any result, ignored on the CPU).
 */
export function decodeSsm(
  x: { parts: Tensor } | { proj: Tensor },
  xc: Tensor,
  z: Strided,
  Wdt: Tensor,
  dtBias: Tensor | null,
  A: Tensor,
  Dskip: Tensor | null,
  ssmState: Tensor,
  y: Tensor,
  prefetch: readonly Tensor[] = [],
): void {
  const name = 'decodeSsm';
  const [E, R] = rows2(Wdt, name, 'Wdt');
  const [Ea, N] = rows2(A, name, 'A');
  if (Ea !== E) throw new TensorError(`${name}: A must be [${E}, N], got ${shapeStr(A)}`);
  if (E === 0 || xc.numel % E !== 0) throw new TensorError(`${name}: xc ${shapeStr(xc)} is not [B, ${E}]`);
  const B = xc.numel / E;
  decodeBatch(name, B);
  const zs = strided(z, B, E, name, 'z');
  needNumel(y, B * E, name, 'y');
  needNumel(ssmState, B * E * N, name, 'ssmState');
  if (dtBias) needNumel(dtBias, E, name, 'dtBias');
  if (Dskip) needNumel(Dskip, E, name, 'Dskip');
  const J = R + 2 * N;
  const parts = 'parts' in x ? x.parts : null,
    proj = 'proj' in x ? x.proj : null;
  if (parts) needNumel(parts, decodeParts(E) * B * J, name, `xPart [${decodeParts(E)}, ${B}, ${J}]`);
  if (proj) needNumel(proj, B * J, name, `xProj [${B}, ${J}]`);
  const { dev, dtype } = floatCall(name, [xc, stridedBase(z), Wdt, y, proj], [parts, dtBias, A, Dskip, ssmState]);
  const pf = prefetch.find((t) => t.device !== dev);
  if (pf) throw new TensorError(`${name}: a prefetch buffer is on ${pf.device}, the op on ${dev}`);
  kernel(
    dev,
    name,
  )({
    ...(parts ? { xPart: parts.storage } : { xProj: proj!.storage }),
    ...(prefetch.length > 0 ? { prefetch: prefetch.map((t) => t.storage) } : {}),
    xc: xc.storage,
    z: zs.arr,
    zStride: zs.stride,
    Wdt: Wdt.storage,
    dtBias: nullableStorage(dtBias),
    A: A.storage,
    Dskip: nullableStorage(Dskip),
    ssmState: ssmState.storage,
    y: y.storage,
    B,
    E,
    R,
    N,
    dtype,
  });
}

/** Third op of the fused step: hOut = y Wout^T (y [B, E], Wout [D, E], hOut [B, D], all activations). */
export function decodeOut(y: Tensor, Wout: Tensor, hOut: Tensor): void {
  const name = 'decodeOut';
  const [D, E] = rows2(Wout, name, 'Wout');
  if (E === 0 || y.numel % E !== 0) throw new TensorError(`${name}: y ${shapeStr(y)} is not [B, ${E}]`);
  const B = y.numel / E;
  decodeBatch(name, B);
  needNumel(hOut, B * D, name, 'hOut');
  const { dev, dtype } = floatCall(name, [y, Wout, hOut]);
  call(dev, dtype, name, [y.storage, Wout.storage, hOut.storage, B, D, E]);
}

/** Entries of the params tensor of sampleTokens: temperature, topK, topP, unused (native/src/sample.h). */
export const SAMPLE_PARAMS = 4;

/**
 * The next token of every row of logits [B, Vp] among its first V entries (the real vocabulary), on the device
 * that holds them: params [4] f32 = temperature (0: greedy argmax), topK (0: all), topP (1: all), unused;
 * seeds [B] i32; steps [B] i32 (the counter each row draws at; incremented); tokens [B] i32 out. Sampling is
 * Gumbel-max over a counter-based hash of (seed, step, token), so the CPU twin and the CUDA kernel choose the
 * same tokens (native/src/sample.h).
 */
export function sampleTokens(
  logits: Tensor,
  V: number,
  params: Tensor,
  seeds: Tensor,
  steps: Tensor,
  tokens: Tensor,
): void {
  const name = 'sampleTokens';
  const [B, Vp] = rows2(logits, name, 'logits');
  if (!Number.isInteger(V) || V < 1 || V > Vp) throw new TensorError(`${name}: V must be 1..${Vp}, got ${V}`);
  assertDtype(params, 'f32', `${name} params`);
  needNumel(params, SAMPLE_PARAMS, name, 'params');
  for (const [t, what] of [
    [seeds, 'seeds'],
    [steps, 'steps'],
    [tokens, 'tokens'],
  ] as const) {
    needI32(t, `${name} ${what}`);
    needNumel(t, B, name, what);
  }
  const dev = sameDevice(name, logits, params, seeds, steps, tokens);
  assertDtype(logits, dev === 'cpu' ? ['f32', 'f64'] : ['f32', 'bf16'], `${name} logits (${dev})`);
  const args = {
    logits: logits.storage,
    params: params.storage,
    seeds: seeds.storage,
    steps: steps.storage,
    tokens: tokens.storage,
    B,
    V,
    Vp,
  };
  kernel(dev, name)(dev === 'cuda' ? { ...args, dtype: logits.dtype } : args);
}

/**
 * losses[t] = logsumexp(logits[t]) - logits[t, target] (0 where target == ignoreIndex);
 * dLogits (if given) = gradScale * (softmax - onehot), zero rows where ignored. Targets out of range: RangeError.
 * `checkTargets` false (callers that checked the targets on the host): on CUDA the op then does not read the range
 * check back, so it does not wait for the GPU (a target out of range gets a NaN loss there).
 */
export function crossEntropyForward(
  logits: Tensor,
  targets: Tensor,
  losses: Tensor,
  dLogits: Tensor | null,
  gradScale: number,
  ignoreIndex = -1,
  checkTargets = true,
): void {
  const name = 'crossEntropyForward';
  needI32(targets, name);
  const [T, V] = rows2(logits, name, 'logits');
  needNumel(targets, T, name, 'targets');
  if (dLogits) needNumel(dLogits, T * V, name, 'dLogits');
  if (!Number.isInteger(ignoreIndex)) throw new TensorError(`${name}: ignoreIndex must be an integer`);
  const { dev, dtype } = floatCall(name, [logits, dLogits], [losses]);
  sameDevice(name, logits, targets);
  call(dev, dtype, name, [
    logits.storage,
    targets.storage,
    losses.storage,
    nullableStorage(dLogits),
    T,
    V,
    gradScale,
    ignoreIndex,
    checkTargets,
  ]);
}

function poolDims(name: string, x: Tensor, out: Tensor, B: number, L: number, mode: string): { D: number; m: number } {
  needInt(B, name, 'B');
  needInt(L, name, 'L', 1);
  if (mode !== 'mean' && mode !== 'last')
    throw new TensorError(`${name}: mode must be 'mean' or 'last', got '${String(mode)}'`);
  const D = B === 0 ? 0 : out.numel / B;
  if (!Number.isInteger(D)) throw new TensorError(`${name}: ${shapeStr(out)} is not [${B}, D]`);
  needNumel(x, B * L * D, name, `[B*L, D] = [${B * L}, ${D}] tensor`);
  return { D, m: mode === 'mean' ? 0 : 1 };
}

/** Sequence pooling: out[b] = mean over l of x[b, l] ('mean') or x[b, L-1] ('last'). */
export function poolForward(x: Tensor, out: Tensor, B: number, L: number, mode: 'mean' | 'last'): void {
  const name = 'poolForward';
  const { D, m } = poolDims(name, x, out, B, L, mode);
  const { dev, dtype } = floatCall(name, [x, out]);
  call(dev, dtype, name, [x.storage, out.storage, B, L, D, m]);
}

/** dx overwritten from dOut [B, D]. */
export function poolBackward(dOut: Tensor, dx: Tensor, B: number, L: number, mode: 'mean' | 'last'): void {
  const name = 'poolBackward';
  const { D, m } = poolDims(name, dx, dOut, B, L, mode);
  const { dev, dtype } = floatCall(name, [dOut, dx]);
  call(dev, dtype, name, [dOut.storage, dx.storage, B, L, D, m]);
}

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count for the bias corrections */
  step: number;
  /** each gradient is read as grad * gradScale (the global-norm clip's factor); default 1 */
  gradScale?: number;
}

/** In-place AdamW with decoupled weight decay: p -= lr (mhat / (sqrt(vhat) + eps) + wd p). */
export function adamwStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, o: AdamWOptions): void {
  const name = 'adamwStep';
  const n = param.numel;
  needNumel(grad, n, name, 'grad');
  needNumel(m, n, name, 'm');
  needNumel(v, n, name, 'v');
  needInt(o.step, name, 'step', 1);
  const { dev } = floatCall(name, [], [param, grad, m, v]);
  kernel(
    dev,
    name,
  )({
    param: param.storage,
    grad: grad.storage,
    m: m.storage,
    v: v.storage,
    n,
    lr: o.lr,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weightDecay,
    step: o.step,
    gradScale: o.gradScale,
  });
}

/** Sum of squares with double accumulation (for the global gradient norm). */
export function sumSquares(x: Tensor): number {
  const { dev, dtype } = floatCall('sumSquares', [x]);
  return call(dev, dtype, 'sumSquares', [x.storage, x.numel]) as number;
}

/** x *= s in place. */
export function scale(x: Tensor, s: number): void {
  const { dev, dtype } = floatCall('scale', [x]);
  call(dev, dtype, 'scale', [x.storage, x.numel, s]);
}

/** out = a + b (out may alias a). */
export function add(a: Tensor, b: Tensor, out: Tensor): void {
  needNumel(b, a.numel, 'add', 'b');
  needNumel(out, a.numel, 'add', 'out');
  const { dev, dtype } = floatCall('add', [a, b, out]);
  call(dev, dtype, 'add', [a.storage, b.storage, out.storage, a.numel]);
}

export function fill(x: Tensor, value: number): void {
  const { dev, dtype } = floatCall('fill', [x]);
  call(dev, dtype, 'fill', [x.storage, x.numel, value]);
}

export function synchronize(device: 'cpu' | 'cuda'): void {
  if (device === 'cuda') cudaOp('synchronize')();
}

/**
 * Tuned cuBLAS products on CUDA (native/cuda/dynlibs.h): the first product of each shape is timed against cuBLASLt's
 * candidates and the fastest is kept for the process. Training steps turn it on; the choice rests on timings, so
 * results may differ in their last bits between processes, which inference should not. A no-op without CUDA.
 */
export function setGemmTuning(on: boolean): void {
  const fn = native().cuda?.gemmTuning;
  if (fn) fn(on);
}

// ---- multi-tensor ops: one launch (and for the norm one synchronisation) over many tensors on CUDA;
// on the CPU the per-tensor kernels one by one (the CUDA kernels' twins) ----

function multiDevice(name: string, ts: Tensor[]): 'cpu' | 'cuda' {
  if (ts.length === 0) return 'cpu';
  const dev = sameDevice(name, ...ts);
  if (dev === 'cuda') for (const t of ts) assertDtype(t, 'f32', `${name} (cuda)`);
  return dev;
}

/** Sum of squares of every element of every tensor (double accumulation). */
export function sumSquaresMany(ts: Tensor[]): number {
  if (multiDevice('sumSquaresMany', ts) === 'cpu') return ts.reduce((s, t) => s + sumSquares(t), 0);
  return cudaOp('multiSumSquares')(
    ts.map((t) => t.storage),
    ts.map((t) => t.numel),
  ) as number;
}

/** x *= s in place for every tensor. */
export function scaleMany(ts: Tensor[], s: number): void {
  if (multiDevice('scaleMany', ts) === 'cpu') {
    for (const t of ts) scale(t, s);
    return;
  }
  cudaOp('multiScale')(
    ts.map((t) => t.storage),
    ts.map((t) => t.numel),
    s,
  );
}

/** Every element of every tensor set to value. */
export function fillMany(ts: Tensor[], value: number): void {
  if (multiDevice('fillMany', ts) === 'cpu') {
    for (const t of ts) fill(t, value);
    return;
  }
  cudaOp('multiFill')(
    ts.map((t) => t.storage),
    ts.map((t) => t.numel),
    value,
  );
}

/** dst[i] = bf16(src[i]) for f32 tensors src and bf16 tensors dst of equal sizes (CUDA). */
export function castBf16Many(src: Tensor[], dst: Tensor[]): void {
  if (src.length !== dst.length)
    throw new TensorError(`castBf16Many: ${src.length} sources for ${dst.length} destinations`);
  if (src.length === 0) return;
  multiDevice('castBf16Many', src);
  for (let i = 0; i < src.length; i++) {
    assertDtype(dst[i]!, 'bf16', 'castBf16Many destination');
    needNumel(dst[i]!, src[i]!.numel, 'castBf16Many', 'destination');
  }
  cudaOp('multiCastBf16')(
    src.map((t) => t.storage),
    dst.map((t) => t.storage),
    src.map((t) => t.numel),
  );
}

export interface AdamWTensor {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  weightDecay: number;
  /** CUDA: a bf16 copy of param refreshed by the same pass */
  half?: Tensor;
}

/** adamwStep over many tensors (one pass per MT tensors on CUDA, refreshing bf16 copies where given). */
export function adamwMany(ts: AdamWTensor[], o: Omit<AdamWOptions, 'weightDecay'>): void {
  if (ts.length === 0) return;
  const name = 'adamwMany';
  needInt(o.step, name, 'step', 1);
  for (const t of ts) {
    const n = t.param.numel;
    needNumel(t.grad, n, name, 'grad');
    needNumel(t.m, n, name, 'm');
    needNumel(t.v, n, name, 'v');
  }
  const dev = multiDevice(
    name,
    ts.flatMap((t) => [t.param, t.grad, t.m, t.v]),
  );
  if (dev === 'cpu') {
    for (const t of ts) adamwStep(t.param, t.grad, t.m, t.v, { ...o, weightDecay: t.weightDecay });
    return;
  }
  for (const t of ts)
    if (t.half) {
      assertDtype(t.half, 'bf16', `${name} bf16 copy`);
      needNumel(t.half, t.param.numel, name, 'bf16 copy');
    }
  cudaOp('multiAdamw')({
    params: ts.map((t) => t.param.storage),
    grads: ts.map((t) => t.grad.storage),
    m: ts.map((t) => t.m.storage),
    v: ts.map((t) => t.v.storage),
    bf16Copies: ts.map((t) => (t.half ? t.half.storage : null)),
    numels: ts.map((t) => t.param.numel),
    weightDecays: ts.map((t) => t.weightDecay),
    lr: o.lr,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    step: o.step,
    gradScale: o.gradScale,
  });
}

/** out = -exp(x) elementwise (the mixer's A from A_log, on the model's device). */
export function negExp(x: Tensor, out: Tensor): void {
  needNumel(out, x.numel, 'negExp', 'out');
  const { dev } = floatCall('negExp', [], [x, out]);
  kernel(dev, 'negExp')(x.storage, out.storage, x.numel);
}

/** out += a * b elementwise. */
export function addProduct(a: Tensor, b: Tensor, out: Tensor): void {
  needNumel(b, a.numel, 'addProduct', 'b');
  needNumel(out, a.numel, 'addProduct', 'out');
  const { dev } = floatCall('addProduct', [], [a, b, out]);
  kernel(dev, 'addProduct')(a.storage, b.storage, out.storage, a.numel);
}
