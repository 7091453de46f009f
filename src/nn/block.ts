// A residual block: r = x + residual (fused into the RMSNorm), h = mixer(norm(r)); outputs (h, r) as the
// reference Block with fused_add_norm and residual_in_fp32. norm(r) is not kept per block: it lives in a
// workspace shared by all blocks and backward recomputes it from r and rstd when another block has overwritten it.
// With `recompute`, the block keeps only r and rstd and runs norm + mixer again inside backward (the mixer up to its
// scan: the scan backward rebuilds y), so its mixer intermediates can share one workspace with every other block
// (activation recomputation for long sequences).
import type { Tensor } from '../backend/index.js';
import type { Rng } from '../util/rng.js';
import { RMSNorm } from './layers.js';
import { MambaMixer, type MixerCache, type MixerDims, type MixerInit } from './mixer.js';
import type { BufferSet, GrowBuffer, NNContext, Param, Workspace } from './param.js';

/** The block's own buffers: the norm output of a decoding step, and the norm output's gradient. */
class BlockBuffers {
  /** [B, D] norm(r) for a decoding step */
  readonly stepNormOut: GrowBuffer;
  /** [T, D] the gradient of norm(r) (in the gradient workspace) */
  readonly dNormOut: GrowBuffer;
  constructor(ws: Workspace) {
    this.stepNormOut = ws.buffer();
    this.dNormOut = ws.buffer();
  }
}
const BLOCK_BUFFERS: BufferSet<BlockBuffers> = { name: 'block', make: (ws) => new BlockBuffers(ws) };

/** [T, D] norm(r), the mixer's input, shared by all blocks; `holder` is the forward call whose value it holds. */
class BlockTransient {
  readonly normOut: GrowBuffer;
  holder: object | null = null;
  constructor(ws: Workspace) {
    this.normOut = ws.buffer();
  }
}
const BLOCK_TRANSIENT: BufferSet<BlockTransient> = {
  name: 'block transient (recomputed in backward)',
  make: (ws) => new BlockTransient(ws),
};

export class MambaBlock {
  readonly norm: RMSNorm;
  readonly mixer: MambaMixer;
  recompute: boolean;
  #saved: { r: Tensor; rstd: Tensor; B: number; L: number; ws: Workspace; tws: Workspace; token: object } | null = null;

  constructor(
    prefix: string,
    dims: MixerDims,
    eps: number,
    ctx: NNContext,
    rng: Rng,
    init: MixerInit,
    recompute = false,
  ) {
    this.norm = new RMSNorm(`${prefix}.norm`, dims.dModel, eps, ctx);
    this.mixer = new MambaMixer(`${prefix}.mixer`, dims, ctx, rng, init);
    this.recompute = recompute;
  }

  parameters(): Param[] {
    return [...this.norm.parameters(), ...this.mixer.parameters()];
  }

  /**
   * hIn, rIn (null for the first block) [T, D] -> hOut (mixer output; may be hIn itself, which the norm reads
   * before the mixer writes hOut), rOut (= hIn + rIn) [T, D], rstd [T].
   * `ws` holds the mixer intermediates kept for backward (shared between blocks when recomputing), `tws` (shared by
   * all blocks) the norm output and the intermediates backward rebuilds.
   */
  forward(
    hIn: Tensor,
    rIn: Tensor | null,
    hOut: Tensor,
    rOut: Tensor,
    rstd: Tensor,
    B: number,
    L: number,
    ws: Workspace,
    lastState: Tensor | null = null,
    tws: Workspace = ws,
  ): void {
    const D = this.mixer.dims.dModel;
    const t = tws.buffers(BLOCK_TRANSIENT);
    const normOut = t.normOut.take([B * L, D]);
    this.norm.forward(hIn, rIn, normOut, rOut, rstd);
    this.mixer.forward(normOut, hOut, B, L, ws, lastState, tws);
    const token = {};
    t.holder = token;
    this.#saved = { r: rOut, rstd, B, L, ws, tws, token };
  }

  /**
   * g = the gradient of (hOut + rOut) as the next layer sees it (equal for both outputs); writes dIn, the
   * gradient of hIn and of rIn (dIn may be g itself: g is read before the norm backward adds into dIn element by
   * element). `dws` holds gradient scratch (shareable between blocks). `gAct` (CUDA with bf16 activations, else
   * null) holds g in the activation dtype on entry, and dIn's on return.
   */
  backward(g: Tensor, dIn: Tensor, dws: Workspace, gAct: Tensor | null = null): void {
    const s = this.#saved;
    if (!s) throw new Error('MambaBlock.backward before forward');
    const D = this.mixer.dims.dModel;
    const t = s.tws.buffers(BLOCK_TRANSIENT);
    const normOut = t.normOut.take([s.B * s.L, D]);
    // r (the f32 residual) was kept: norm(r) gives the forward's normOut exactly
    if (this.recompute || t.holder !== s.token) {
      this.norm.recompute(s.r, normOut, s.rstd);
      t.holder = s.token;
    }
    // the mixer's output is not needed, only its intermediates
    if (this.recompute) this.mixer.forward(normOut, null, s.B, s.L, s.ws, null, s.tws);
    const dNormOut = dws.buffers(BLOCK_BUFFERS).dNormOut.take([s.B * s.L, D]);
    this.mixer.backward(g, dNormOut, dws, gAct);
    this.norm.backward(dNormOut, g, dIn, gAct);
  }

  /**
   * One decoding step: hIn, rIn [B, D] -> hOut, rOut (rOut must not alias hIn or rIn). On CUDA up to
   * FUSED_STEP_MAX_BATCH sequences it runs fused (3 kernels instead of 6: the batch-1 step is bound by its launches),
   * and rstd is then not written (nothing reads it while decoding).
   */
  step(
    hIn: Tensor,
    rIn: Tensor | null,
    hOut: Tensor,
    rOut: Tensor,
    rstd: Tensor,
    cache: MixerCache,
    ws: Workspace,
  ): void {
    const D = this.mixer.dims.dModel;
    if (this.mixer.fusedStep(hIn.numel / D)) {
      this.stepFused(hIn, rIn, hOut, rOut, cache, ws);
      return;
    }
    const normOut = ws.buffers(BLOCK_BUFFERS).stepNormOut.take([hIn.numel / D, D]);
    this.norm.forward(hIn, rIn, normOut, rOut, rstd);
    this.mixer.step(normOut, hOut, cache, ws);
  }

  /**
   * One decoding step on the residual stream r [B, D] itself: r += mixer(RMSNorm(r)) (MambaMixer.stepOnResidual).
   * The model takes it for every block when the first block's mixer.residualStep(B) says so.
   */
  stepOnResidual(r: Tensor, cache: MixerCache, ws: Workspace): void {
    this.mixer.stepOnResidual(r, this.norm.weight.value, this.norm.eps, cache, ws);
  }

  /** The buffers one decoding step of this block reads from memory with `cache` (MixerCache.next). */
  stepReads(cache: MixerCache): Tensor[] {
    return [this.norm.weight.value, ...this.mixer.stepReads(cache)];
  }

  /** The fused decoding step on any device (the CPU runs the kernels' twins: for tests). */
  stepFused(hIn: Tensor, rIn: Tensor | null, hOut: Tensor, rOut: Tensor, cache: MixerCache, ws: Workspace): void {
    this.mixer.stepFused(hIn, rIn, this.norm.weight.value, this.norm.eps, rOut, hOut, cache, ws);
  }
}
