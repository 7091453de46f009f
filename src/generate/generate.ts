// Recurrent generation: the prompt goes through the parallel scan once (which leaves every layer's SSM
// state and last conv inputs in a cache), then one token at a time through the recurrence (conv1dStep,
// selectiveScanStep): O(1) work and memory per token, whatever the length generated so far.
// Sampling: temperature (0 = greedy), top-k, top-p (nucleus), seeded.
import { Tensor, cudaOp } from '../backend/index.js';
import type { MixerCache } from '../nn/mixer.js';
import { MambaLM } from '../model/model.js';
import { Rng } from '../util/rng.js';

export interface SampleOptions {
  /** 0: greedy (argmax); default 1 */
  temperature?: number;
  /** keep the k most likely tokens (0: all) */
  topK?: number;
  /** keep the smallest set of tokens whose probability reaches p (1: all) */
  topP?: number;
}

export class GenerateError extends Error {
  override name = 'GenerateError';
}

function checkSample(o: SampleOptions): Required<SampleOptions> {
  const temperature = o.temperature ?? 1,
    topK = o.topK ?? 0,
    topP = o.topP ?? 1;
  if (!(temperature >= 0) || !Number.isFinite(temperature))
    throw new GenerateError(`temperature must be a number >= 0, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw new GenerateError(`topK must be an integer >= 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new GenerateError(`topP must be in (0, 1], got ${topP}`);
  return { temperature, topK, topP };
}

/** Draws one token from logits[off .. off+V) (V = the real vocabulary, padding excluded). */
export function sampleToken(logits: ArrayLike<number>, off: number, V: number, o: SampleOptions, rng: Rng): number {
  const { temperature, topK, topP } = checkSample(o);
  let best = 0;
  for (let v = 1; v < V; v++) if (logits[off + v]! > logits[off + best]!) best = v;
  if (temperature === 0) return best;
  const idx = Array.from({ length: V }, (_, v) => v).sort((a, b) => logits[off + b]! - logits[off + a]! || a - b);
  const k = topK > 0 ? Math.min(topK, V) : V;
  const mx = logits[off + best]!;
  const p = idx.slice(0, k).map((v) => Math.exp((logits[off + v]! - mx) / temperature));
  let sum = p.reduce((a, b) => a + b, 0);
  let keep = p.length;
  if (topP < 1) {
    let c = 0;
    for (let i = 0; i < p.length; i++) {
      c += p[i]! / sum;
      if (c >= topP) {
        keep = i + 1;
        break;
      }
    }
    sum = p.slice(0, keep).reduce((a, b) => a + b, 0);
  }
  let u = rng.next() * sum;
  for (let i = 0; i < keep; i++) {
    u -= p[i]!;
    if (u < 0) return idx[i]!;
  }
  return idx[keep - 1]!;
}

/** Recurrent decoder over B sequences with a per-layer state cache. */
export class Decoder {
  readonly model: MambaLM;
  readonly B: number;
  readonly caches: MixerCache[];
  #ids: Tensor;
  #started = false;

  /**
   * On CUDA the step (3 fused ops per layer at B <= 8, else about 8) is launch-bound: after one eager step it is captured
   * once into a CUDA graph and replayed with a single launch. `cudaGraph: false` (or the environment
   * variable MAMBA_CUDA_GRAPH=0) keeps every step eager; a capture that fails falls back to eager.
   */
  #graph: unknown = null;
  #graphState: 'off' | 'warmup' | 'capture' | 'ready';

  constructor(model: MambaLM, B = 1, opts: { cudaGraph?: boolean } = {}) {
    if (!(model instanceof MambaLM)) throw new GenerateError('generation needs a language model (task lm)');
    const useGraph = (opts.cudaGraph ?? process.env.MAMBA_CUDA_GRAPH !== '0') && model.device === 'cuda';
    this.#graphState = useGraph ? 'warmup' : 'off';
    this.model = model;
    this.B = B;
    this.caches = model.backbone.newCaches(B);
    this.#ids = Tensor.zeros([B], 'i32', model.device);
    model.invalidate();
    // weights do not change while decoding: one refresh of the bf16 copies serves every step
    model.refreshHalf();
  }

  /** Runs B prompts of equal length L (flat [B*L]) in parallel; returns the logits after each prompt's last token [B, Vp]. prefillMany takes prompts of different lengths. */
  prefill(prompt: Int32Array, L: number): Float64Array {
    if (L < 1) throw new GenerateError('the prompt must hold at least one token');
    if (prompt.length !== this.B * L)
      throw new GenerateError(`prompt holds ${prompt.length} tokens, expected B*L = ${this.B * L}`);
    const m = this.model;
    const V = m.config.vocab_size;
    for (let i = 0; i < prompt.length; i++)
      if (prompt[i]! < 0 || prompt[i]! >= V)
        throw new GenerateError(`prompt token ${prompt[i]} at ${i} is outside the vocabulary 0..${V - 1}`);
    const h = m.backbone.prefill(m.backbone.uploadIds(prompt, 'promptIds'), this.B, L, this.caches);
    const D = m.config.d_model;
    // the last position of every sequence
    const last = m.backbone.ws.get('lastH', [this.B, D]);
    for (let b = 0; b < this.B; b++) last.view(b * D, [D]).copyFrom(h.view((b * L + L - 1) * D, [D]));
    this.#started = true;
    return m.headLogits(last, this.B).toFloat64();
  }

  /**
   * Runs B prompts of any lengths (each at least one token); returns the logits after each prompt's last
   * token [B, Vp]. Every prompt goes through the parallel scan alone (B = 1) and its conv and SSM states
   * are copied into row b of the batch's caches, so the batched steps that follow start exactly where each
   * prompt ended: no padding ever enters a state.
   */
  prefillMany(prompts: ArrayLike<number>[]): Float64Array {
    if (prompts.length !== this.B)
      throw new GenerateError(`prefillMany needs ${this.B} prompts, got ${prompts.length}`);
    const m = this.model;
    const V = m.config.vocab_size,
      D = m.config.d_model;
    prompts.forEach((p, b) => {
      if (p.length < 1) throw new GenerateError(`prompt ${b} is empty: every prompt must hold at least one token`);
      for (let i = 0; i < p.length; i++)
        if (!(p[i]! >= 0 && p[i]! < V))
          throw new GenerateError(`prompt ${b}: token ${p[i]} at ${i} is outside the vocabulary 0..${V - 1}`);
    });
    const one = m.backbone.newCaches(1);
    const last = m.backbone.ws.get('lastH', [this.B, D]);
    try {
      for (let b = 0; b < this.B; b++) {
        const p = Int32Array.from(prompts[b]!);
        const h = m.backbone.prefill(m.backbone.uploadIds(p, 'promptIds'), 1, p.length, one);
        last.view(b * D, [D]).copyFrom(h.view((p.length - 1) * D, [D]));
        one.forEach((c, i) => {
          const dst = this.caches[i]!;
          const nc = c.conv.numel,
            ns = c.ssm.numel;
          dst.conv.view(b * nc, [nc]).copyFrom(c.conv.view(0, [nc]));
          dst.ssm.view(b * ns, [ns]).copyFrom(c.ssm.view(0, [ns]));
        });
      }
      this.#started = true;
      return m.headLogits(last, this.B).toFloat64();
    } finally {
      for (const c of one) {
        c.conv.dispose();
        c.ssm.dispose();
      }
    }
  }

  /** Feeds one token per sequence; returns the next logits [B, Vp]. */
  step(tokens: Int32Array): Float64Array {
    if (tokens.length !== this.B) throw new GenerateError(`step needs ${this.B} tokens, got ${tokens.length}`);
    const V = this.model.config.vocab_size;
    for (const t of tokens)
      if (t < 0 || t >= V) throw new GenerateError(`token ${t} is outside the vocabulary 0..${V - 1}`);
    this.#ids.copyFrom(Tensor.from(Int32Array.from(tokens), [this.B]));
    this.#started = true;
    return this.#compute().toFloat64();
  }

  /** The device work of one step: ids -> logits, eager or through the captured graph. */
  #compute(): Tensor {
    const run = () => this.model.headLogits(this.model.backbone.step(this.#ids, this.caches), this.B);
    if (this.#graphState === 'off') return run();
    if (this.#graphState === 'warmup') {
      // the first step allocates every workspace the graph will point at
      this.#graphState = 'capture';
      return run();
    }
    if (this.#graphState === 'capture') {
      let logits: Tensor;
      try {
        cudaOp('captureBegin')();
        try {
          logits = run();
        } finally {
          this.#graph = cudaOp('captureEnd')();
        }
        this.#logits = logits;
        this.#graphState = 'ready';
      } catch {
        this.#graph = null;
        this.#graphState = 'off';
        return run();
      }
    }
    cudaOp('graphLaunch')(this.#graph);
    return this.#logits!;
  }

  #logits: Tensor | null = null;

  get started(): boolean {
    return this.#started;
  }
}

export interface GenerateOptions extends SampleOptions {
  maxNewTokens: number;
  seed?: number;
  /** stop a sequence when it samples this token */
  stopToken?: number;
  /** called with each new token (sequence 0) */
  onToken?: (token: number, index: number) => void;
}

/** Continues one prompt by up to maxNewTokens sampled tokens; returns the new tokens only. */
export function generate(model: MambaLM, prompt: ArrayLike<number>, o: GenerateOptions): Int32Array {
  const { onToken, ...rest } = o;
  return generateMany(model, [prompt], {
    ...rest,
    onToken:
      onToken &&
      ((tok, i, b) => {
        if (b === 0) onToken(tok, i);
      }),
  })[0]!;
}

export interface GenerateManyOptions extends Omit<GenerateOptions, 'onToken'> {
  /** called with each new token of sequence b */
  onToken?: (token: number, index: number, b: number) => void;
  /** called after every step with the number of tokens generated per sequence so far */
  onStep?: (done: number) => void;
}

/**
 * Continues B prompts (of any lengths) together, one batched step per token: sequence b samples with its own
 * generator seeded seed + b, and stops at stopToken on its own (the batch runs until every sequence stopped
 * or reached maxNewTokens). Returns the new tokens of each sequence.
 */
export function generateMany(model: MambaLM, prompts: ArrayLike<number>[], o: GenerateManyOptions): Int32Array[] {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0)
    throw new GenerateError(`maxNewTokens must be an integer >= 0, got ${o.maxNewTokens}`);
  if (prompts.length < 1) throw new GenerateError('generateMany needs at least one prompt');
  checkSample(o);
  const B = prompts.length;
  const dec = new Decoder(model, B);
  const rngs = prompts.map((_, b) => new Rng((o.seed ?? 0) + b));
  const V = model.config.vocab_size;
  const L0 = prompts[0]!.length;
  let logits: Float64Array;
  if (prompts.every((p) => p.length === L0)) {
    const flat = new Int32Array(B * L0);
    prompts.forEach((p, b) => flat.set(Int32Array.from(p), b * L0));
    logits = dec.prefill(flat, L0);
  } else {
    logits = dec.prefillMany(prompts);
  }
  const stride = logits.length / B;
  const out: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(B).fill(o.maxNewTokens === 0);
  const next = new Int32Array(B);
  for (let i = 0; i < o.maxNewTokens; i++) {
    for (let b = 0; b < B; b++) {
      if (done[b]) {
        next[b] = out[b]!.length ? out[b]![out[b]!.length - 1]! : 0;
        continue;
      }
      const tok = sampleToken(logits, b * stride, V, o, rngs[b]!);
      out[b]!.push(tok);
      o.onToken?.(tok, out[b]!.length - 1, b);
      next[b] = tok;
      if (tok === o.stopToken || out[b]!.length === o.maxNewTokens) done[b] = true;
    }
    o.onStep?.(i + 1);
    if (done.every(Boolean)) break;
    logits = dec.step(next);
  }
  return out.map((t) => Int32Array.from(t));
}
