// The Mamba-1 mixer (selective SSM) as in the reference mamba_simple.py, with a hand-written backward.
// Shapes: T = B*L tokens, D = d_model, E = d_inner = expand*D, R = dt_rank, N = d_state, K = d_conv.
//   xz = x W_in^T [T,2E]; xs, z = columns; xc = SiLU(conv(xs) + b_conv) [T,E]
//   xdbl = xc W_x^T [T, R+2N]: dtIn = columns 0..R, B = R..R+N, C = R+N..R+2N (one product, read as column blocks)
//   delta = dtIn W_dt^T [T,E]; y = scan(xc, delta, b_dt (softplus), A = -exp(A_log), B, C, D, z) [T,E]
//   out = y W_out^T [T,D]
import {
  DTYPE_BYTES,
  Tensor,
  addProduct,
  columns,
  conv1dBackward,
  conv1dForward,
  conv1dStep,
  convXProjFusable,
  convXProjStep,
  decodeFusable,
  decodeIn,
  decodeInProj,
  decodeInProjFusable,
  decodeOut,
  decodeParts,
  decodeSsm,
  fill,
  gemm,
  negExp,
  selectiveScanBackward,
  selectiveScanForward,
  type ScanArgs,
  type Strided,
} from '../backend/index.js';
import type { Rng } from '../util/rng.js';
import {
  actDtype,
  asDtype,
  makeParam,
  mmWeight,
  uniformInit,
  type BufferSet,
  GrowBuffer,
  type NNContext,
  type Param,
  type Workspace,
} from './param.js';

export interface MixerDims {
  dModel: number;
  dInner: number;
  dtRank: number;
  dState: number;
  dConv: number;
}

export interface MixerInit {
  /** n_layer, for the reference's 1/sqrt(n_layer) rescale of out_proj */
  nLayer: number;
  dtMin?: number;
  dtMax?: number;
  dtInitFloor?: number;
}

/** Per-sequence recurrent state for generation: conv [B,E,K] (oldest first) and SSM [B,E,N]. */
export interface MixerCache {
  conv: Tensor;
  ssm: Tensor;
  /**
   * What the next block's decoding step reads (its weights and cache; MambaBlock.stepReads), set by the model's
   * step: this block's decodeSsm pulls it into L2 on CUDA. Empty for the last block.
   */
  next?: readonly Tensor[];
}

/**
 * The buffers of the mixer's forward over T tokens that backward reads, in the workspace its block is given (one
 * per block, or one shared by all blocks when they recompute). backward overwrites one of them (MixerGradients).
 */
class MixerActivations {
  /** [T, 2E] in_proj output: xs columns 0..E, the gate z columns E..2E */
  readonly xz: GrowBuffer;
  /** [T, R + 2N] x_proj output: dtIn columns 0..R, B columns R..R+N, C columns R+N..R+2N */
  readonly xdbl: GrowBuffer;
  /** [T, E] scan output */
  readonly y: GrowBuffer;
  constructor(ws: Workspace) {
    this.xz = ws.buffer();
    this.xdbl = ws.buffer();
    this.y = ws.buffer();
  }
}
export const MIXER_ACTIVATIONS: BufferSet<MixerActivations> = {
  name: 'mixer activations',
  make: (ws) => new MixerActivations(ws),
};

/**
 * The two forward intermediates that backward rebuilds from what each block keeps, as the reference's
 * checkpoint_lvl=1 does: xc = SiLU(conv(xs) + b) from xz, delta = dtIn W_dt^T. One set serves every block (the
 * model's shared workspace), so they are not kept per layer: 2E of the mixer's 5E + 2R + 2N values per token
 * (130m, 8 x 2048, bf16: 2.4 GB), for one conv and one small product per layer in backward. `holder` is the
 * forward call whose values the set holds: the top block's backward, and one right after a recompute, find their
 * own and skip the rebuild.
 */
class MixerTransient {
  /** [T, E] SiLU(conv(xs)), the scan's u */
  readonly xc: GrowBuffer;
  /** [T, E] raw delta (before dt_proj's bias and softplus) */
  readonly delta: GrowBuffer;
  holder: object | null = null;
  constructor(ws: Workspace) {
    this.xc = ws.buffer();
    this.delta = ws.buffer();
  }
}
const MIXER_TRANSIENT: BufferSet<MixerTransient> = {
  name: 'mixer transient (rebuilt in backward)',
  make: (ws) => new MixerTransient(ws),
};

/**
 * The mixer backward's buffers (one set can serve every block). Some gradients take no buffer: they overwrite
 * forward activations that are dead by then (MixerGradViews says which and why).
 */
class MixerGradients {
  /** dOut in the activation dtype when the residual gradient arrives in another (bf16 activations) */
  readonly dOutAct: GrowBuffer;
  /** [T, E] gradient of the scan's u, then (x_proj added) of xc */
  readonly du: GrowBuffer;
  /** [T, R + 2N] the gradient of x_proj's output, in its column blocks (dtIn, B, C) */
  readonly dxdbl: GrowBuffer;
  /** [T, 2E] the gradient of xz, unless a recomputed forward's xz and xc take it (MixerGradViews) */
  readonly dxz: GrowBuffer;
  /** [E, N] the scan's dA, in the parameter dtype */
  readonly dA: GrowBuffer;
  constructor(ws: Workspace, paramDtype: 'f32' | 'f64') {
    this.dOutAct = ws.buffer();
    this.du = ws.buffer();
    this.dxdbl = ws.buffer();
    this.dxz = ws.buffer();
    this.dA = ws.buffer(paramDtype);
  }
}
const MIXER_GRADIENTS_F32: BufferSet<MixerGradients> = {
  name: 'mixer gradients (f32 parameters)',
  make: (ws) => new MixerGradients(ws, 'f32'),
};
const MIXER_GRADIENTS_F64: BufferSet<MixerGradients> = {
  name: 'mixer gradients (f64 parameters)',
  make: (ws) => new MixerGradients(ws, 'f64'),
};

/**
 * The backward's gradient tensors for one call, with their aliases spelt out (the scan backward reads each delta,
 * z and dy value before it writes that element's ddelta, dz or y: native/KERNELS.md).
 */
interface MixerGradViews {
  /**
   * = the forward's y. When the forward ran the scan, y's only use left, the out_proj weight gradient, is taken before
   * dy is written; when a recomputation skipped it, the scan backward writes y over dy and that gradient follows.
   */
  dy: Tensor;
  /** = delta (rebuilt for backward) */
  ddelta: Tensor;
  /**
   * dz, dxs: the two column blocks of dxz. After a recomputation (a model short of memory) they take no buffer: dz
   * = the z columns of xz (z's only reader is the scan) and dxs = xc (its last readers, the scan and the x_proj
   * weight gradient, come before the conv backward), and in_proj's products run per block. Otherwise dxz is one
   * [T, 2E] buffer and in_proj takes two products: per block, the weight gradient's [E, D] output tiles do not
   * fill the GPU (the 130m step at 8 x 2048 ran 2.3% slower that way: bench/README.md).
   */
  dz: Strided;
  dxs: Strided;
  du: Tensor;
  dxdbl: Tensor;
  dA: Tensor;
}

/** The buffers of one decoding step over B sequences (the unfused step and the fused one share them). */
class MixerStepBuffers {
  /** unfused step: in_proj's output [B, 2E] and x_proj's [B, R + 2N] */
  readonly xz: GrowBuffer;
  readonly xProj: GrowBuffer;
  readonly xc: GrowBuffer;
  readonly y: GrowBuffer;
  /** fused step: the gate, and x_proj as decodeIn's partial sums [decodeParts(E), B, R + 2N] (parameter dtype) */
  readonly z: GrowBuffer;
  readonly xPart: GrowBuffer;
  constructor(ws: Workspace, paramDtype: 'f32' | 'f64') {
    this.xz = ws.buffer();
    this.xProj = ws.buffer();
    this.xc = ws.buffer();
    this.y = ws.buffer();
    this.z = ws.buffer();
    this.xPart = ws.buffer(paramDtype);
  }
}
const MIXER_STEP_F32: BufferSet<MixerStepBuffers> = {
  name: 'mixer step (f32 parameters)',
  make: (ws) => new MixerStepBuffers(ws, 'f32'),
};
const MIXER_STEP_F64: BufferSet<MixerStepBuffers> = {
  name: 'mixer step (f64 parameters)',
  make: (ws) => new MixerStepBuffers(ws, 'f64'),
};

interface Saved {
  x: Tensor;
  xz: Tensor;
  xdbl: Tensor;
  y: Tensor;
  /**
   * a recomputation right before backward (a model short of memory): the forward skipped the scan, whose backward
   * rebuilds y, and the backward writes gradients over xz and xc (MixerGradViews)
   */
  recomputed: boolean;
  B: number;
  L: number;
  /** the workspace of the MixerTransient set, and the token of this call that its holder is compared with */
  tws: Workspace;
  token: object;
}

/**
 * The largest batch whose decoding step takes the fused kernels. They serve any batch (groups of 8 sequences side by
 * side), but their products run on CUDA cores, and past 4 the unfused step (cuBLAS products, decodeSsm on x_proj)
 * measured faster on an H200: 130m bf16, the whole step (24 layers, head, greedy choice) fused vs unfused, us:
 * B=1 381 vs 597, B=2 468 vs 593, B=4 591 vs 599, B=8 842 vs 610 (bench/decode-ops.js, bench/results/decode-h200/).
 */
export const FUSED_STEP_MAX_BATCH = 4;

/**
 * The largest batch whose decoding step takes the residual form (stepOnResidual), the smallest being
 * FUSED_STEP_MAX_BATCH + 1. Measured on an H200, 130m bf16, the whole step (bench/decode-ops.js), residual form vs
 * unfused, us: B=8 509 vs 548, B=16 514 vs 545 in one run; B=32 647 and B=64 780 in an earlier run of the same
 * kernel, against 603 and 686 unfused (bench/results/decode-h200/10-residual-form.txt): past 16 sequences every column
 * block re-reads the f32 rows, and cuBLAS's in_proj wins.
 */
export const RESIDUAL_STEP_MAX_BATCH = 16;

export class MambaMixer {
  readonly dims: MixerDims;
  readonly inProj: Param;
  readonly convWeight: Param;
  readonly convBias: Param;
  readonly xProj: Param;
  readonly dtProjWeight: Param;
  readonly dtProjBias: Param;
  readonly ALog: Param;
  readonly Dskip: Param;
  readonly outProj: Param;
  readonly ctx: NNContext;
  /** A = -exp(A_log), recomputed from A_log on the device at every forward (and once before decoding) */
  #A: Tensor;
  #aFresh = false;
  #saved: Saved | null = null;

  constructor(prefix: string, dims: MixerDims, ctx: NNContext, rng: Rng, init: MixerInit) {
    const { dModel: D, dInner: E, dtRank: R, dState: N, dConv: K } = dims;
    this.dims = dims;
    this.ctx = ctx;
    const p = (n: string) => `${prefix}.${n}`;
    this.inProj = makeParam(
      p('in_proj.weight'),
      [2 * E, D],
      uniformInit(2 * E * D, 1 / Math.sqrt(D), rng),
      ctx,
      true,
      true,
    );
    // PyTorch Conv1d default: bound 1/sqrt(fan_in), fan_in = (in/groups) * K = K
    this.convWeight = makeParam(p('conv1d.weight'), [E, K], uniformInit(E * K, 1 / Math.sqrt(K), rng), ctx, true);
    this.convBias = makeParam(p('conv1d.bias'), [E], uniformInit(E, 1 / Math.sqrt(K), rng), ctx, false);
    this.xProj = makeParam(
      p('x_proj.weight'),
      [R + 2 * N, E],
      uniformInit((R + 2 * N) * E, 1 / Math.sqrt(E), rng),
      ctx,
      true,
      true,
    );
    this.dtProjWeight = makeParam(p('dt_proj.weight'), [E, R], uniformInit(E * R, R ** -0.5, rng), ctx, true, true);
    // softplus(bias) log-uniform in [dtMin, dtMax]: bias = inverse softplus of dt
    const dtMin = init.dtMin ?? 1e-3,
      dtMax = init.dtMax ?? 1e-1,
      floor = init.dtInitFloor ?? 1e-4;
    const bias = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      const dt = Math.max(Math.exp(rng.next() * (Math.log(dtMax) - Math.log(dtMin)) + Math.log(dtMin)), floor);
      bias[e] = dt + Math.log(-Math.expm1(-dt));
    }
    this.dtProjBias = makeParam(p('dt_proj.bias'), [E], bias, ctx, false);
    const alog = new Float64Array(E * N);
    for (let e = 0; e < E; e++) for (let n = 0; n < N; n++) alog[e * N + n] = Math.log(n + 1);
    this.ALog = makeParam(p('A_log'), [E, N], alog, ctx, false);
    this.Dskip = makeParam(p('D'), [E], new Float64Array(E).fill(1), ctx, false);
    const outBound = 1 / Math.sqrt(E) / Math.sqrt(init.nLayer);
    this.outProj = makeParam(p('out_proj.weight'), [D, E], uniformInit(D * E, outBound, rng), ctx, true, true);
    this.#A = Tensor.zeros([E, N], ctx.dtype, ctx.device);
  }

  parameters(): Param[] {
    return [
      this.inProj,
      this.convWeight,
      this.convBias,
      this.xProj,
      this.dtProjWeight,
      this.dtProjBias,
      this.ALog,
      this.Dskip,
      this.outProj,
    ];
  }

  /** Recomputes A = -exp(A_log) where the parameters live (one small kernel, no host round trip). */
  #refreshA(): void {
    negExp(this.ALog.value, this.#A);
    this.#aFresh = true;
  }

  #scanArgs(xz: Tensor, xc: Tensor, delta: Tensor, xdbl: Tensor, B: number, L: number): ScanArgs {
    const { dInner: E, dtRank: R, dState: N } = this.dims;
    return {
      u: xc,
      delta,
      deltaBias: this.dtProjBias.value,
      A: this.#A,
      Bm: columns(xdbl, R, N),
      Cm: columns(xdbl, R + N, N),
      Dskip: this.Dskip.value,
      z: columns(xz, E, E),
      B,
      L,
      deltaSoftplus: true,
    };
  }

  /**
   * x [T, D] -> out [T, D] over B sequences of length L; the intermediates backward reads live in `ws` (views kept),
   * xc and delta in `tws` (MixerTransient: shared by all blocks). `lastState` [B, E, N] receives the SSM state after
   * the last token (for generation). `out` null skips the scan and out_proj: a recomputation before backward needs
   * only the scan's inputs, and the scan backward rebuilds y, which the out_proj weight gradient reads.
   */
  forward(
    x: Tensor,
    out: Tensor | null,
    B: number,
    L: number,
    ws: Workspace,
    lastState: Tensor | null = null,
    tws: Workspace = ws,
  ): void {
    const { dInner: E, dtRank: R, dState: N } = this.dims;
    const T = B * L;
    this.#refreshA();
    const a = ws.buffers(MIXER_ACTIVATIONS);
    const t = tws.buffers(MIXER_TRANSIENT);
    const xz = a.xz.take([T, 2 * E]);
    const xc = t.xc.take([T, E]);
    const xdbl = a.xdbl.take([T, R + 2 * N]);
    const delta = t.delta.take([T, E]);
    const y = a.y.take([T, E]);
    gemm(x, mmWeight(this.inProj), xz, { transB: true });
    conv1dForward(columns(xz, 0, E), this.convWeight.value, this.convBias.value, xc, B, L, true);
    gemm(xc, mmWeight(this.xProj), xdbl, { transB: true });
    gemm(columns(xdbl, 0, R), mmWeight(this.dtProjWeight), delta, { transB: true });
    if (out) {
      selectiveScanForward(this.#scanArgs(xz, xc, delta, xdbl, B, L), y, lastState);
      gemm(y, mmWeight(this.outProj), out, { transB: true });
    }
    const token = {};
    t.holder = token;
    this.#saved = { x, xz, xdbl, y, recomputed: !out, B, L, tws, token };
  }

  /** This call's xc and delta, rebuilt exactly as forward made them unless the shared set still holds them. */
  #transient(s: Saved): { xc: Tensor; delta: Tensor } {
    const { dInner: E } = this.dims;
    const T = s.B * s.L;
    const t = s.tws.buffers(MIXER_TRANSIENT);
    const xc = t.xc.take([T, E]);
    const delta = t.delta.take([T, E]);
    if (t.holder !== s.token) {
      conv1dForward(columns(s.xz, 0, E), this.convWeight.value, this.convBias.value, xc, s.B, s.L, true);
      gemm(columns(s.xdbl, 0, this.dims.dtRank), mmWeight(this.dtProjWeight), delta, { transB: true });
      t.holder = s.token;
    }
    return { xc, delta };
  }

  /**
   * dOut [T, D] -> dx [T, D] (overwritten); parameter gradients accumulated. `dOutAct`: dOut already in the
   * activation dtype (the norm backward above wrote it), else it is cast here.
   */
  backward(dOutIn: Tensor, dx: Tensor, ws: Workspace, dOutAct: Tensor | null = null): void {
    const s = this.#saved;
    if (!s) throw new Error('MambaMixer.backward before forward');
    const gb = ws.buffers(this.ctx.dtype === 'f64' ? MIXER_GRADIENTS_F64 : MIXER_GRADIENTS_F32);
    // the incoming gradient is the f32 residual gradient; matmuls take it in the activation dtype
    const dOut = dOutAct ?? asDtype(dOutIn, actDtype(this.ctx), gb.dOutAct);
    const { dInner: E, dtRank: R, dState: N } = this.dims;
    const T = s.B * s.L;
    const { xc, delta } = this.#transient(s);
    const dxz = s.recomputed ? null : gb.dxz.take([T, 2 * E]);
    const grads: MixerGradViews = {
      dy: s.y,
      ddelta: delta,
      dz: columns(dxz ?? s.xz, E, E),
      dxs: dxz ? columns(dxz, 0, E) : xc,
      du: gb.du.take([T, E]),
      dxdbl: gb.dxdbl.take([T, R + 2 * N]),
      dA: gb.dA.take([E, N]),
    };
    const { dy, ddelta, dz, dxs, du, dxdbl, dA } = grads;
    // out_proj (its weight gradient needs y: now if the forward scan made it, after the scan backward if not)
    if (!s.recomputed) gemm(dOut, s.y, this.outProj.grad, { transA: true, beta: 1 });
    gemm(dOut, mmWeight(this.outProj), dy);
    // scan: dA into a zeroed buffer, then d A_log = dA * A (A = -exp(A_log))
    fill(dA, 0);
    // ddelta overwrites delta (and dxs xc, below): from here the shared set holds no forward's values
    s.tws.buffers(MIXER_TRANSIENT).holder = null;
    selectiveScanBackward(this.#scanArgs(s.xz, xc, delta, s.xdbl, s.B, s.L), dy, {
      du,
      ddelta,
      dA,
      dB: columns(dxdbl, R, N),
      dC: columns(dxdbl, R + N, N),
      dDskip: this.Dskip.grad,
      dDeltaBias: this.dtProjBias.grad,
      dz,
      y: s.recomputed ? s.y : null,
    });
    if (s.recomputed) gemm(dOut, s.y, this.outProj.grad, { transA: true, beta: 1 });
    this.#accumulateALogGrad(dA);
    // dt_proj
    gemm(ddelta, columns(s.xdbl, 0, R), this.dtProjWeight.grad, { transA: true, beta: 1 });
    gemm(ddelta, mmWeight(this.dtProjWeight), columns(dxdbl, 0, R));
    // x_proj, its three column blocks in one product each; du becomes the full gradient of xc
    gemm(dxdbl, xc, this.xProj.grad, { transA: true, beta: 1 });
    gemm(dxdbl, mmWeight(this.xProj), du, { beta: 1 });
    // conv (SiLU inside): the gradient of xs
    conv1dBackward(
      columns(s.xz, 0, E),
      this.convWeight.value,
      this.convBias.value,
      du,
      dxs,
      this.convWeight.grad,
      this.convBias.grad,
      s.B,
      s.L,
      true,
    );
    // in_proj: one product for each of the weight gradient and dx, or two, by the weight's row blocks (xs's, z's)
    const win = mmWeight(this.inProj);
    if (dxz) {
      gemm(dxz, s.x, this.inProj.grad, { transA: true, beta: 1 });
      gemm(dxz, win, dx);
    } else {
      const D = this.dims.dModel;
      gemm(dxs, s.x, this.inProj.grad.view(0, [E, D]), { transA: true, beta: 1 });
      gemm(dz, s.x, this.inProj.grad.view(E * D, [E, D]), { transA: true, beta: 1 });
      gemm(dxs, win.view(0, [E, D]), dx);
      gemm(dz, win.view(E * D, [E, D]), dx, { beta: 1 });
    }
    // z and xc may be gradients now: a second backward needs a new forward
    this.#saved = null;
  }

  /** d A_log += dA * A, since A = -exp(A_log) gives dA/dA_log = A. */
  #accumulateALogGrad(dA: Tensor): void {
    addProduct(dA, this.#A, this.ALog.grad);
  }

  /** A zeroed cache for B sequences. */
  newCache(B: number): MixerCache {
    const { dInner: E, dState: N, dConv: K } = this.dims;
    return {
      conv: Tensor.zeros([B, E, K], this.ctx.dtype, this.ctx.device),
      ssm: Tensor.zeros([B, E, N], this.ctx.dtype, this.ctx.device),
    };
  }

  /**
   * After forward(..., lastState = cache.ssm) over a prompt: copies the last K conv inputs of every sequence
   * into cache.conv (zeros before the start), so decoding continues exactly where the parallel pass ended.
   */
  fillConvCache(cache: MixerCache): void {
    const s = this.#saved;
    if (!s) throw new Error('MambaMixer.fillConvCache before forward');
    const { dInner: E, dConv: K } = this.dims;
    // on the device, without a round trip per sequence: from a zero state, shift in each sequence's last
    // min(K, L) inputs with conv1dStep (its output is not needed); row t of sequence b is row b of xz seen as
    // [B, L * 2E], columns [2E t, 2E t + E)
    fill(cache.conv, 0);
    const rows = Math.min(K, s.L);
    const bySeq = s.xz.reshape([s.B, s.L * 2 * E]);
    if (!this.#convFillOut || this.#convFillOut.dtype !== s.xz.dtype)
      this.#convFillOut = new GrowBuffer(this.ctx.device, s.xz.dtype);
    const out = this.#convFillOut.take([s.B, E]);
    for (let t = s.L - rows; t < s.L; t++)
      conv1dStep(cache.conv, columns(bySeq, t * 2 * E, E), this.convWeight.value, null, out, false);
  }

  #convFillOut: GrowBuffer | null = null;

  /**
   * One token per sequence: x [B, D] -> out [B, D], O(1) in the length decoded so far. in_proj and out_proj run on
   * cuBLAS (tensor cores at large batches), the conv step and x_proj as one convXProj where it serves; dt_proj, the
   * state update and the gate are one decodeSsm.
   */
  step(x: Tensor, out: Tensor, cache: MixerCache, ws: Workspace): void {
    const { dInner: E, dtRank: R, dState: N } = this.dims;
    const B = cache.ssm.shape[0]!;
    if (!this.#aFresh) this.#refreshA();
    const sb = this.#stepBuffers(ws);
    const xz = sb.xz.take([B, 2 * E]);
    const xc = sb.xc.take([B, E]);
    const xProj = sb.xProj.take([B, R + 2 * N]);
    const y = sb.y.take([B, E]);
    gemm(x, mmWeight(this.inProj), xz, { transB: true });
    const xs = columns(xz, 0, E);
    if (this.takesConvXProj(B)) {
      convXProjStep(cache.conv, xs, this.convWeight.value, this.convBias.value, mmWeight(this.xProj), xc, xProj);
    } else {
      conv1dStep(cache.conv, xs, this.convWeight.value, this.convBias.value, xc, true);
      gemm(xc, mmWeight(this.xProj), xProj, { transB: true });
    }
    this.#ssmStep({ proj: xProj }, xc, columns(xz, E, E), cache, y);
    gemm(y, mmWeight(this.outProj), out, { transB: true });
  }

  /**
   * Whether the unfused step runs its conv step and x_proj as one convXProj (a kernel where there were two): on CUDA
   * with bf16 activations at sizes it takes, unless MAMBA_DECODE_CONVX=0. On the CPU, and for f32 activations,
   * conv1dStep and the gemm serve.
   */
  takesConvXProj(B: number): boolean {
    return (
      this.ctx.device === 'cuda' &&
      actDtype(this.ctx) === 'bf16' &&
      process.env.MAMBA_DECODE_CONVX !== '0' &&
      convXProjFusable(this.dims, B)
    );
  }

  /**
   * Whether MambaBlock.step takes the fused path for B sequences: on CUDA, B <= FUSED_STEP_MAX_BATCH and sizes the
   * kernels take (d_state <= 16, d_conv <= 8), unless MAMBA_DECODE_FUSED=0. Elsewhere the unfused step serves.
   */
  fusedStep(B: number): boolean {
    return (
      this.ctx.device === 'cuda' &&
      B <= FUSED_STEP_MAX_BATCH &&
      process.env.MAMBA_DECODE_FUSED !== '0' &&
      decodeFusable(this.dims, B, DTYPE_BYTES[actDtype(this.ctx)])
    );
  }

  /**
   * Whether the model's step takes the residual form (stepOnResidual) for B sequences: on CUDA with bf16
   * activations, FUSED_STEP_MAX_BATCH < B <= RESIDUAL_STEP_MAX_BATCH, at sizes decodeInProj takes, unless
   * MAMBA_DECODE_RESIDUAL=0 (then the unfused step serves, as on the CPU, for f32 activations and larger batches).
   */
  residualStep(B: number): boolean {
    return (
      this.ctx.device === 'cuda' &&
      actDtype(this.ctx) === 'bf16' &&
      B > FUSED_STEP_MAX_BATCH &&
      B <= RESIDUAL_STEP_MAX_BATCH &&
      process.env.MAMBA_DECODE_RESIDUAL !== '0' &&
      decodeInProjFusable(this.dims, B)
    );
  }

  /**
   * The block's norm and this mixer for one token per sequence, on the residual stream r [B, D] itself (parameter
   * dtype), in four ops instead of the unfused step's six: decodeInProj (RMSNorm, in_proj, conv step), x_proj,
   * decodeSsm, and out_proj accumulated into r (r += mixer(RMSNorm(r) * normW)), so the next block's residual add
   * needs no kernel. The same results as norm + step() up to rounding (the norm's rstd multiplies in_proj's sums).
   */
  stepOnResidual(r: Tensor, normW: Tensor, eps: number, cache: MixerCache, ws: Workspace): void {
    const { dInner: E, dtRank: R, dState: N } = this.dims;
    const B = cache.ssm.shape[0]!;
    if (!this.#aFresh) this.#refreshA();
    const sb = this.#stepBuffers(ws);
    const xc = sb.xc.take([B, E]);
    const z = sb.z.take([B, E]);
    const xProj = sb.xProj.take([B, R + 2 * N]);
    const y = sb.y.take([B, E]);
    decodeInProj(r, normW, eps, mmWeight(this.inProj), cache.conv, this.convWeight.value, this.convBias.value, xc, z);
    gemm(xc, mmWeight(this.xProj), xProj, { transB: true });
    this.#ssmStep({ proj: xProj }, xc, z, cache, y);
    gemm(y, mmWeight(this.outProj), r, { transB: true, beta: 1 });
  }

  /**
   * The block's norm and this mixer for one token per sequence in three ops (decodeIn, decodeSsm, decodeOut;
   * native/cuda/decode.cu) instead of eight: hIn, rIn (null for the first block) [B, D] -> rOut = hIn + rIn,
   * out = mixer(RMSNorm(rOut) * normW). The same results as norm + step(); rOut must not alias hIn or rIn.
   */
  stepFused(
    hIn: Tensor,
    rIn: Tensor | null,
    normW: Tensor,
    eps: number,
    rOut: Tensor,
    out: Tensor,
    cache: MixerCache,
    ws: Workspace,
  ): void {
    const { dInner: E, dtRank: R, dState: N } = this.dims;
    const B = cache.ssm.shape[0]!;
    if (!this.#aFresh) this.#refreshA();
    const sb = this.#stepBuffers(ws);
    const xc = sb.xc.take([B, E]);
    const z = sb.z.take([B, E]);
    const y = sb.y.take([B, E]);
    // x_proj leaves decodeIn as partial sums over runs of channels; decodeSsm adds them up
    const xPart = sb.xPart.take([decodeParts(E), B, R + 2 * N]);
    decodeIn(
      hIn,
      rIn,
      normW,
      eps,
      mmWeight(this.inProj),
      cache.conv,
      this.convWeight.value,
      this.convBias.value,
      mmWeight(this.xProj),
      rOut,
      xc,
      z,
      xPart,
    );
    this.#ssmStep({ parts: xPart }, xc, z, cache, y);
    decodeOut(y, mmWeight(this.outProj), out);
  }

  /** decodeSsm with this mixer's dt_proj, A and D: the scan step every decoding form shares. */
  #ssmStep(x: { proj: Tensor } | { parts: Tensor }, xc: Tensor, z: Strided, cache: MixerCache, y: Tensor): void {
    const w = mmWeight(this.dtProjWeight);
    decodeSsm(x, xc, z, w, this.dtProjBias.value, this.#A, this.Dskip.value, cache.ssm, y, cache.next);
  }

  /** The buffers one decoding step of this mixer reads from memory with `cache`: weights (as the step takes them) and the cache. */
  stepReads(cache: MixerCache): Tensor[] {
    return [
      mmWeight(this.inProj),
      this.convWeight.value,
      this.convBias.value,
      mmWeight(this.xProj),
      mmWeight(this.dtProjWeight),
      this.dtProjBias.value,
      this.#A,
      this.Dskip.value,
      mmWeight(this.outProj),
      cache.conv,
      cache.ssm,
    ];
  }

  #stepBuffers(ws: Workspace): MixerStepBuffers {
    return ws.buffers(this.ctx.dtype === 'f64' ? MIXER_STEP_F64 : MIXER_STEP_F32);
  }

  /** Frees device memory of the parameters and A (the mixer is unusable after). */
  dispose(): void {
    for (const p of this.parameters()) {
      p.value.dispose();
      p.grad.dispose();
    }
    this.#A.dispose();
    this.#convFillOut?.dispose();
  }

  /** Refreshes A now if the parameters changed (before a CUDA graph capture or replay of the step). */
  prepareStep(): void {
    if (!this.#aFresh) this.#refreshA();
  }

  /** Call after parameters change outside forward (e.g. a checkpoint load) so step() sees the new A. */
  invalidate(): void {
    this.#aFresh = false;
  }
}
