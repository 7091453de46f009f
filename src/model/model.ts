// The Mamba backbone (embedding, residual blocks, final RMSNorm) and the two models on it: MambaLM
// (next-token, LM head tied to the embedding) and MambaClassifier (pooled sequence classification).
// Activations live in grow-only workspaces on the model's device: steps of one (B, L) allocate nothing.
import {
  DTYPE_BYTES,
  Tensor,
  fillMany,
  resolveDevice,
  type DType,
  type Device,
  type DeviceRequest,
  type Strided,
} from '../backend/index.js';
import { MambaBlock } from '../nn/block.js';
import { ClassifierHead, LMHead } from '../nn/heads.js';
import { Embedding, RMSNorm } from '../nn/layers.js';
import type { MixerCache } from '../nn/mixer.js';
import { Workspace, actDtype, refreshHalf, type ModelDType, type NNContext, type Param } from '../nn/param.js';
import { crossEntropyForward, poolForward } from '../backend/index.js';
import { Rng } from '../util/rng.js';
import { derived, validateConfig, type MambaConfig } from './config.js';

export interface CreateOptions {
  device?: DeviceRequest;
  dtype?: ModelDType;
  seed?: number;
  /** recompute every block's inside during backward (keeps only the residual stream per layer) */
  recompute?: boolean;
  /**
   * CUDA only: 'bf16' keeps activations in bf16 (half the memory, tensor-core matmuls on bf16 copies of
   * the weights) with f32 master weights, gradients, optimizer state, residual stream and reductions.
   */
  precision?: 'f32' | 'bf16';
}

/** Next-token batch: B sequences of L tokens; targets[t] < 0 are ignored. */
export interface LMBatch {
  B: number;
  L: number;
  inputs: Int32Array;
  targets: Int32Array;
}

export interface ClassifyBatch {
  B: number;
  L: number;
  inputs: Int32Array;
  labels: Int32Array;
}

export class ModelError extends Error {
  override name = 'ModelError';
}

function checkBatch(inputs: Int32Array, B: number, L: number, V: number): void {
  if (!Number.isInteger(B) || B < 1 || !Number.isInteger(L) || L < 1)
    throw new ModelError(`batch: B and L must be positive integers, got B=${B}, L=${L}`);
  if (inputs.length !== B * L)
    throw new ModelError(`batch: inputs hold ${inputs.length} tokens, expected B*L = ${B * L}`);
  for (let i = 0; i < inputs.length; i++) {
    const v = inputs[i]!;
    if (v < 0 || v >= V)
      throw new ModelError(`batch: token ${v} at position ${i} is outside the vocabulary 0..${V - 1}`);
  }
}

export interface BackboneForwardOptions {
  /** keep what a backward needs (default true); false: the lean forward of evaluation and inference */
  grad?: boolean;
  /** one cache per layer, filled with the state after the last token (prefill before decoding) */
  caches?: MixerCache[] | null;
}

export class MambaBackbone {
  readonly config: MambaConfig;
  readonly ctx: NNContext;
  readonly embedding: Embedding;
  readonly layers: MambaBlock[];
  readonly normF: RMSNorm;
  readonly ws: Workspace;
  readonly #blockWs: Workspace[];
  readonly #sharedWs: Workspace;
  readonly #dws: Workspace;
  /** the one workspace every block's forward shares when no backward follows */
  readonly #inferWs: Workspace;
  #shape: { B: number; L: number } | null = null;

  constructor(config: MambaConfig, ctx: NNContext, rng: Rng, recompute = false) {
    this.config = config;
    this.ctx = ctx;
    const d = derived(config);
    const dims = {
      dModel: config.d_model,
      dInner: d.dInner,
      dtRank: d.dtRank,
      dState: config.d_state,
      dConv: config.d_conv,
    };
    this.embedding = new Embedding('backbone.embeddings', d.paddedVocab, config.d_model, ctx, rng);
    this.layers = [];
    for (let i = 0; i < config.n_layer; i++) {
      this.layers.push(
        new MambaBlock(
          `backbone.layers.${i}`,
          dims,
          config.norm_epsilon,
          ctx,
          rng,
          { nLayer: config.n_layer },
          recompute,
        ),
      );
    }
    this.normF = new RMSNorm('backbone.norm_f', config.d_model, config.norm_epsilon, ctx);
    const act = actDtype(ctx);
    this.ws = new Workspace(ctx.device, act);
    this.#blockWs = this.layers.map(() => new Workspace(ctx.device, act));
    this.#sharedWs = new Workspace(ctx.device, act);
    this.#dws = new Workspace(ctx.device, act);
    this.#inferWs = new Workspace(ctx.device, act);
  }

  parameters(): Param[] {
    return [...this.embedding.parameters(), ...this.layers.flatMap((l) => l.parameters()), ...this.normF.parameters()];
  }

  setRecompute(on: boolean): void {
    for (const l of this.layers) l.recompute = on;
  }

  /** Uploads token ids into the ids workspace. */
  uploadIds(inputs: Int32Array, name = 'ids'): Tensor {
    const ids = this.ws.get(name, [inputs.length], 'i32');
    ids.copyFrom(Tensor.from(inputs, [inputs.length]));
    return ids;
  }

  /**
   * ids [B*L] -> final normed hidden states [B*L, D]. With `grad` (the default) every block keeps what its
   * backward needs; with `grad: false` (evaluation, scoring, embeddings, prefill) nothing is kept for a
   * backward: all blocks share one workspace and the residual stream alternates between two buffers, so
   * activation memory is one layer's, whatever n_layer. `caches` (prefill) receive every layer's SSM state
   * after the last token and its last d_conv conv inputs, taken right after the layer runs (a later layer
   * overwrites a shared workspace).
   */
  forward(ids: Tensor, B: number, L: number, opts: BackboneForwardOptions = {}): Tensor {
    const grad = opts.grad ?? true;
    const caches = opts.caches ?? null;
    const T = B * L,
      D = this.config.d_model;
    // one buffer holds the embedding output and then each layer's output over its input: a block's norm has
    // consumed h (into r and norm(r)) before its mixer writes the new h, and nothing reads the old one after
    const h = this.ws.get('h', [T, D]);
    this.embedding.forward(ids, h);
    let r: Tensor | null = null;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      // the residual stream and rstd stay in the parameter dtype (f32 with bf16 activations); without a
      // backward, two residual buffers in turn (a layer's rOut never aliases its rIn) and one rstd serve all
      const rOut = this.ws.get(grad ? `r${i}` : i % 2 === 0 ? 'rA' : 'rB', [T, D], this.ctx.dtype);
      const rstd = this.ws.get(grad ? `rstd${i}` : 'rstdI', [T], this.ctx.dtype);
      const ws = !grad ? this.#inferWs : layer.recompute ? this.#sharedWs : this.#blockWs[i]!;
      // xc, delta and norm(r) (rebuilt by backward) in the shared workspace, or with everything else when no backward follows
      layer.forward(h, r, h, rOut, rstd, B, L, ws, caches ? caches[i]!.ssm : null, grad ? this.#sharedWs : ws);
      if (caches) layer.mixer.fillConvCache(caches[i]!);
      r = rOut;
    }
    const out = this.ws.get('final', [T, D]);
    this.normF.forward(h, r, out, this.ws.get('rF', [T, D], this.ctx.dtype), this.ws.get('rstdF', [T], this.ctx.dtype));
    // a backward needs the kept activations of a grad forward
    this.#shape = grad ? { B, L } : null;
    return out;
  }

  /** dFinal [B*L, D] -> parameter gradients (accumulated). */
  backward(dFinal: Tensor): void {
    if (!this.#shape) throw new ModelError('backward before forward');
    const T = this.#shape.B * this.#shape.L,
      D = this.config.d_model;
    // one residual-gradient buffer: each block reads g, then its norm backward adds into g in place
    // (element by element, so dIn may alias g)
    const g = this.#dws.get('gA', [T, D], this.ctx.dtype);
    // with bf16 activations each norm backward also writes g in bf16, which the block below reads (no cast)
    const gAct = actDtype(this.ctx) !== this.ctx.dtype ? this.#dws.get('gAct', [T, D]) : null;
    this.normF.backward(dFinal, null, g, gAct);
    for (let i = this.layers.length - 1; i >= 0; i--) this.layers[i]!.backward(g, g, this.#dws, gAct);
    this.embedding.backward(g);
  }

  /** Bytes held by activation and gradient workspaces. */
  workspaceBytes(): number {
    return (
      this.ws.bytes() +
      this.#sharedWs.bytes() +
      this.#inferWs.bytes() +
      this.#dws.bytes() +
      this.#blockWs.reduce((s, w) => s + w.bytes(), 0)
    );
  }

  // ---- recurrent decoding -------------------------------------------------------------------

  newCaches(B: number): MixerCache[] {
    return this.layers.map((l) => l.mixer.newCache(B));
  }

  /** Parallel pass over a prompt that leaves every layer's cache ready for step(). Returns final hidden [B*L, D]. */
  prefill(ids: Tensor, B: number, L: number, caches: MixerCache[]): Tensor {
    return this.forward(ids, B, L, { grad: false, caches });
  }

  /**
   * One token per sequence: ids [B] -> final hidden [B, D]. `ws` holds the step's buffers (default: the
   * backbone's own); a Decoder passes its own so that a captured CUDA graph owns every buffer it points at.
   */
  step(ids: Tensor, caches: MixerCache[], ws: Workspace = this.#sharedWs): Tensor {
    const B = ids.numel,
      D = this.config.d_model;
    const top = ws === this.#sharedWs ? this.ws : ws;
    // on CUDA each block's decodeSsm pulls the next block's weights and cache into L2 (MAMBA_DECODE_PREFETCH=0: not)
    const prefetch = this.ctx.device === 'cuda' && process.env.MAMBA_DECODE_PREFETCH !== '0';
    for (let i = 0; i < this.layers.length; i++)
      caches[i]!.next = prefetch && i + 1 < this.layers.length ? this.layers[i + 1]!.stepReads(caches[i + 1]!) : [];
    if (this.layers[0]!.mixer.residualStep(B)) {
      // the residual form: one f32 stream that each block's out_proj accumulates into, no norm kernels between
      const r = top.get('s_r', [B, D], this.ctx.dtype);
      this.embedding.forward(ids, r);
      for (let i = 0; i < this.layers.length; i++) this.layers[i]!.stepOnResidual(r, caches[i]!, ws);
      const out = top.get('s_final', [B, D]);
      this.normF.recompute(r, out, top.get('s_rstdF', [B], this.ctx.dtype));
      return out;
    }
    const h0 = top.get('s_h0', [B, D]);
    this.embedding.forward(ids, h0);
    let h = h0;
    let r: Tensor | null = null;
    // h and r alternate between two buffers each, so a layer's rOut never aliases its hIn or rIn (the fused
    // step reads them in every block while one block writes rOut)
    for (let i = 0; i < this.layers.length; i++) {
      const hOut = top.get(i % 2 === 0 ? 's_hA' : 's_hB', [B, D]);
      const rOut = top.get(i % 2 === 0 ? 's_rA' : 's_rB', [B, D], this.ctx.dtype);
      this.layers[i]!.step(h, r, hOut, rOut, top.get('s_rstd', [B], this.ctx.dtype), caches[i]!, ws);
      h = hOut;
      r = rOut;
    }
    const out = top.get('s_final', [B, D]);
    this.normF.forward(h, r, out, top.get('s_rF', [B, D], this.ctx.dtype), top.get('s_rstdF', [B], this.ctx.dtype));
    return out;
  }

  /** Brings what step() derives from the parameters (A = -exp(A_log)) up to date now, outside any graph capture. */
  prepareStep(): void {
    for (const l of this.layers) l.mixer.prepareStep();
  }

  invalidate(): void {
    for (const l of this.layers) l.mixer.invalidate();
  }

  /** Frees all device memory now (parameters, gradients, workspaces); the backbone is unusable after. */
  dispose(): void {
    for (const w of [this.ws, this.#sharedWs, this.#inferWs, this.#dws, ...this.#blockWs]) w.dispose();
    for (const l of this.layers) l.mixer.dispose();
    for (const p of [
      ...this.embedding.parameters(),
      ...this.normF.parameters(),
      ...this.layers.map((l) => l.norm.weight),
    ]) {
      p.value.dispose();
      p.grad.dispose();
    }
  }
}

function resolveCtx(opts: CreateOptions): NNContext {
  const device: Device = resolveDevice(opts.device ?? 'cpu');
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f64') throw new ModelError(`dtype must be 'f32' or 'f64', got ${String(dtype)}`);
  if (dtype === 'f64' && device !== 'cpu')
    throw new ModelError("dtype 'f64' exists only on the CPU (it serves the gradient checks)");
  const precision = opts.precision ?? 'f32';
  if (precision !== 'f32' && precision !== 'bf16')
    throw new ModelError(`precision must be 'f32' or 'bf16', got ${String(precision)}`);
  if (precision === 'bf16') {
    if (device !== 'cuda')
      throw new ModelError("precision 'bf16' needs a CUDA device (the CPU kernels compute in f32 or f64)");
    if (dtype !== 'f32') throw new ModelError("precision 'bf16' keeps f32 master weights: use dtype 'f32'");
    return { device, dtype, act: 'bf16' };
  }
  return { device, dtype };
}

export interface LMResult {
  /** mean loss (nats per token) over the counted targets */
  loss: number;
  /** number of targets counted (not ignored) */
  count: number;
}

export interface LMEvalResult extends LMResult {
  /** per-token losses (0 where ignored) */
  losses: Float64Array;
  /** argmax next-token predictions, when asked for */
  predictions?: Int32Array;
}

abstract class ModelBase {
  readonly config: MambaConfig;
  readonly ctx: NNContext;
  readonly backbone: MambaBackbone;
  readonly seed: number;
  protected readonly ws: Workspace;
  /**
   * What decoding keeps across Decoders, by batch size (src/generate: state buffers and a captured CUDA
   * graph pointing at them), freed with the model.
   */
  readonly decodeSessions = new Map<string, { dispose(): void }>();

  protected constructor(config: MambaConfig, opts: CreateOptions, rng: Rng) {
    validateConfig(config);
    this.config = config;
    this.ctx = resolveCtx(opts);
    this.seed = opts.seed ?? 0;
    this.backbone = new MambaBackbone(config, this.ctx, rng, opts.recompute ?? false);
    this.ws = new Workspace(this.ctx.device, actDtype(this.ctx));
  }

  get device(): Device {
    return this.ctx.device;
  }

  abstract parameters(): Param[];

  /** Number of scalar parameters. */
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.value.numel, 0);
  }

  zeroGrad(): void {
    fillMany(
      this.parameters().map((p) => p.grad),
      0,
    );
  }

  setRecompute(on: boolean): void {
    this.backbone.setRecompute(on);
  }

  /** Frees the model's device memory now rather than at garbage collection; the model is unusable after. */
  dispose(): void {
    for (const session of this.decodeSessions.values()) session.dispose();
    this.decodeSessions.clear();
    const backboneParams = new Set(this.backbone.parameters());
    for (const p of this.parameters())
      if (!backboneParams.has(p)) {
        p.value.dispose();
        p.grad.dispose();
      }
    this.backbone.dispose();
    this.ws.dispose();
  }

  /** Activation precision: 'bf16' or the parameter dtype. */
  get precision(): 'f32' | 'f64' | 'bf16' {
    return this.ctx.act ?? this.ctx.dtype;
  }

  /** Copies the f32 weights into their bf16 matmul copies (no-op without bf16 activations). */
  refreshHalf(): void {
    if (this.ctx.act) refreshHalf(this.parameters());
  }

  /** Call after parameter values are replaced (checkpoint load): the bf16 copies are recast before the next forward. */
  invalidate(): void {
    for (const p of this.parameters()) p.halfFresh = false;
    this.backbone.invalidate();
  }

  /**
   * Embeddings from the backbone's final normed hidden states (the input of the head): 'mean' and 'last'
   * pool each of the B sequences to one d_model vector ([B, D]), 'none' keeps every position ([B*L, D]).
   */
  embed(inputs: Int32Array, B: number, L: number, pool: 'mean' | 'last' | 'none' = 'mean'): Float32Array {
    checkBatch(inputs, B, L, this.config.vocab_size);
    this.refreshHalf();
    const h = this.backbone.forward(this.backbone.uploadIds(inputs), B, L, { grad: false });
    if (pool === 'none') return Float32Array.from(h.toFloat64());
    const pooled = this.ws.get('embedPooled', [B, this.config.d_model]);
    poolForward(h, pooled, B, L, pool);
    return Float32Array.from(pooled.toFloat64());
  }

  /**
   * Device bytes per token of a forward with no backward (`grad: false`): one layer's mixer activations, the
   * residual stream, the final hidden states and the logits (an LM's padded vocabulary), with a quarter on top
   * for the allocator and the libraries' scratch. Sizes the batches of score, variants and embed.
   */
  inferenceBytesPerToken(): number {
    const outWidth = this.config.task === 'lm' ? derived(this.config).paddedVocab : this.config.num_classes;
    const act = DTYPE_BYTES[actDtype(this.ctx)],
      par = DTYPE_BYTES[this.ctx.dtype];
    const { d_model: D, d_state: N } = this.config;
    const { dInner: E, dtRank: R } = derived(this.config);
    const mixer = (2 * E + E + R + 2 * N + E + E + D) * act; // xz, xc, x_proj output (dtIn, B, C), delta, y, the norm output
    const stream = 3 * D * act + 3 * D * par + 2 * par; // h (two) and final, r (two) and rF, rstd
    const io = 4 + 4 + par + outWidth * act; // ids, targets, loss, outputs
    return Math.ceil(1.25 * (mixer + stream + io));
  }

  protected hostLosses(losses: Tensor): Float64Array {
    return losses.toFloat64();
  }
}

export class MambaLM extends ModelBase {
  readonly head: LMHead;
  #hostLosses: Tensor | null = null;

  private constructor(config: MambaConfig, opts: CreateOptions) {
    const rng = new Rng(opts.seed ?? 0);
    super(config, opts, rng);
    if (config.task !== 'lm') throw new ModelError(`MambaLM needs task 'lm', got '${config.task}'`);
    const d = derived(config);
    this.head = new LMHead(
      config.tie_embeddings ? this.backbone.embedding.weight : null,
      d.paddedVocab,
      config.d_model,
      this.ctx,
      rng,
    );
  }

  static create(config: MambaConfig, opts: CreateOptions = {}): MambaLM {
    return new MambaLM(config, opts);
  }

  parameters(): Param[] {
    return [...this.backbone.parameters(), ...this.head.parameters()];
  }

  #hostTargets = new Int32Array(0);

  #logits(batch: LMBatch, grad: boolean): { logits: Tensor; targets: Tensor; count: number; T: number } {
    checkBatch(batch.inputs, batch.B, batch.L, this.config.vocab_size);
    const T = batch.B * batch.L;
    if (batch.targets.length !== T)
      throw new ModelError(`batch: targets hold ${batch.targets.length} tokens, expected ${T}`);
    // checked, counted and mapped in one pass into a kept host buffer: negative targets (any) are ignored, as -1,
    // the kernel's ignore index
    if (this.#hostTargets.length !== T) this.#hostTargets = new Int32Array(T);
    const mapped = this.#hostTargets;
    let count = 0;
    for (let i = 0; i < T; i++) {
      const v = batch.targets[i]!;
      if (v >= this.config.vocab_size)
        throw new ModelError(
          `batch: target ${v} at position ${i} is outside the vocabulary 0..${this.config.vocab_size - 1}`,
        );
      if (v >= 0) count++;
      mapped[i] = v < 0 ? -1 : v;
    }
    // the targets go up before the forward is queued: an upload waits for the work queued before it, so after the
    // forward it would make launchTokenLosses wait for the whole pass
    const targets = this.ws.get('targets', [T], 'i32');
    targets.copyFrom(Tensor.from(mapped, [T]));
    this.refreshHalf();
    const ids = this.backbone.uploadIds(batch.inputs);
    const h = this.backbone.forward(ids, batch.B, batch.L, { grad });
    const V = derived(this.config).paddedVocab;
    const logits = this.ws.get('logits', [T, V]);
    this.head.forward(h, logits);
    return { logits, targets, count, T };
  }

  /**
   * Forward and backward: gradients of gradScale * (sum of token losses) are added into the parameters'
   * grads (default gradScale = 1/count, i.e. the mean loss). Returns the mean loss.
   */
  forwardBackward(batch: LMBatch, gradScale?: number): LMResult {
    const { logits, targets, count, T } = this.#logits(batch, true);
    const dLogits = this.ws.get('dLogits', logits.shape);
    const losses = this.ws.get('losses', [T], this.ctx.dtype);
    crossEntropyForward(logits, targets, losses, dLogits, gradScale ?? 1 / Math.max(count, 1), -1);
    const dh = this.ws.get('dh', [T, this.config.d_model]);
    this.head.backward(dLogits, dh);
    this.backbone.backward(dh);
    const l = this.hostLosses(losses);
    let s = 0;
    for (let i = 0; i < T; i++) s += l[i]!;
    return { loss: s / Math.max(count, 1), count };
  }

  /** Logits [B*L, paddedVocab] of every position (host copy), e.g. to compare with recurrent decoding. */
  logits(inputs: Int32Array, B: number, L: number): Float64Array {
    checkBatch(inputs, B, L, this.config.vocab_size);
    this.refreshHalf();
    const h = this.backbone.forward(this.backbone.uploadIds(inputs), B, L, { grad: false });
    const logits = this.ws.get('logits', [B * L, derived(this.config).paddedVocab]);
    this.head.forward(h, logits);
    return logits.toFloat64();
  }

  /** The logits of B rows of final hidden states [B, paddedVocab] (decoding), into `out` or the model's workspace. */
  headLogits(h: Strided, B: number, out?: Tensor): Tensor {
    const logits = out ?? this.ws.get('stepLogits', [B, derived(this.config).paddedVocab]);
    this.head.logits(h, logits);
    return logits;
  }

  /** The dtype of the logits headLogits writes. */
  get logitsDtype(): DType {
    return this.ws.dtype;
  }

  /** Evaluation: per-token losses and (optionally) argmax predictions; no gradients. */
  forward(batch: LMBatch, opts: { predictions?: boolean } = {}): LMEvalResult {
    const { logits, losses, count, T } = this.#tokenLosses(batch);
    const l = this.hostLosses(losses);
    let s = 0;
    for (let i = 0; i < T; i++) s += l[i]!;
    const res: LMEvalResult = { loss: s / Math.max(count, 1), count, losses: l };
    if (opts.predictions) res.predictions = argmaxRows(logits.toFloat64(), T, logits.shape[1]!, this.config.vocab_size);
    return res;
  }

  /**
   * The forward of `forward()` without waiting for it: queues the work on the device and returns a function that
   * waits and returns the per-token losses (nats, 0 where ignored) [B*L], computed on the device from the logits so
   * only B*L numbers come back. Call it before the next forward of this model (they share the buffers). On CUDA the
   * host is free between the two calls: scoring prepares the next pass and writes the last one meanwhile.
   * The array returned is valid until the next call's results are collected.
   */
  launchTokenLosses(batch: LMBatch): () => Float32Array | Float64Array {
    const { losses, T } = this.#tokenLosses(batch);
    return () => {
      // on the CPU the next forward runs at once, into the same workspace: a copy
      if (losses.device === 'cpu') return losses.data.slice() as Float32Array | Float64Array;
      // on CUDA one host buffer, reused: a pass's losses are read before the next pass is collected
      if (!this.#hostLosses || this.#hostLosses.numel < T) this.#hostLosses = Tensor.empty([T], losses.dtype, 'cpu');
      return this.#hostLosses.view(0, [T]).copyFrom(losses).data as Float32Array;
    };
  }

  #tokenLosses(batch: LMBatch): { logits: Tensor; losses: Tensor; count: number; T: number } {
    const { logits, targets, count, T } = this.#logits(batch, false);
    const losses = this.ws.get('losses', [T], this.ctx.dtype);
    // #logits checked the targets on the host: no read-back, so launchTokenLosses does not wait for the forward
    crossEntropyForward(logits, targets, losses, null, 1, -1, false);
    return { logits, losses, count, T };
  }
}

export interface ClassifyResult {
  loss: number;
  /** examples classified right */
  correct: number;
  count: number;
  accuracy: number;
  predictions: Int32Array;
  /** [B, num_classes] logits, host copy */
  logits: Float64Array;
}

export class MambaClassifier extends ModelBase {
  readonly head: ClassifierHead;

  private constructor(config: MambaConfig, opts: CreateOptions) {
    const rng = new Rng(opts.seed ?? 0);
    super(config, opts, rng);
    if (config.task !== 'classify') throw new ModelError(`MambaClassifier needs task 'classify', got '${config.task}'`);
    this.head = new ClassifierHead(config.d_model, config.num_classes, config.pooling, this.ctx, rng);
  }

  static create(config: MambaConfig, opts: CreateOptions = {}): MambaClassifier {
    return new MambaClassifier(config, opts);
  }

  parameters(): Param[] {
    return [...this.backbone.parameters(), ...this.head.parameters()];
  }

  #run(batch: ClassifyBatch, grad: boolean, gradScale?: number): ClassifyResult {
    const { B, L } = batch;
    checkBatch(batch.inputs, B, L, this.config.vocab_size);
    const C = this.config.num_classes;
    if (batch.labels.length !== B) throw new ModelError(`batch: ${batch.labels.length} labels for B = ${B} sequences`);
    for (let i = 0; i < B; i++) {
      const v = batch.labels[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= C)
        throw new ModelError(`batch: label ${v} of sequence ${i} is outside 0..${C - 1}`);
    }
    this.refreshHalf();
    const ids = this.backbone.uploadIds(batch.inputs);
    const h = this.backbone.forward(ids, B, L, { grad });
    const logits = this.ws.get('logits', [B, C]);
    this.head.forward(h, logits, B, L, this.ws);
    const targets = this.ws.get('labels', [B], 'i32');
    targets.copyFrom(Tensor.from(Int32Array.from(batch.labels), [B]));
    const losses = this.ws.get('losses', [B], this.ctx.dtype);
    const dLogits = grad ? this.ws.get('dLogits', [B, C]) : null;
    crossEntropyForward(logits, targets, losses, dLogits, gradScale ?? 1 / B, -1);
    if (grad) {
      const dh = this.ws.get('dh', [B * L, this.config.d_model]);
      this.head.backward(dLogits!, dh, this.ws);
      this.backbone.backward(dh);
    }
    const l = this.hostLosses(losses);
    let s = 0;
    for (let i = 0; i < B; i++) s += l[i]!;
    const lg = logits.toFloat64();
    const predictions = argmaxRows(lg, B, C, C);
    let correct = 0;
    for (let i = 0; i < B; i++) if (predictions[i] === batch.labels[i]) correct++;
    return { loss: s / B, correct, count: B, accuracy: correct / B, predictions, logits: lg };
  }

  /** Forward and backward; gradients of gradScale * (sum of losses) (default: the mean). */
  forwardBackward(batch: ClassifyBatch, gradScale?: number): ClassifyResult {
    return this.#run(batch, true, gradScale);
  }

  forward(batch: ClassifyBatch): ClassifyResult {
    return this.#run(batch, false);
  }
}

export type MambaModel = MambaLM | MambaClassifier;

/** Creates the model the config's task asks for. */
export function createModel(config: MambaConfig, opts: CreateOptions = {}): MambaModel {
  return config.task === 'classify' ? MambaClassifier.create(config, opts) : MambaLM.create(config, opts);
}

/** Row-wise argmax over the first `limit` columns. */
export function argmaxRows(x: ArrayLike<number>, rows: number, cols: number, limit: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0,
      bv = -Infinity;
    for (let c = 0; c < limit; c++) {
      const v = x[r * cols + c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}
