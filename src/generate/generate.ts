// Recurrent generation: the prompt goes through the parallel scan once (which leaves every layer's SSM
// state and last conv inputs in a cache), then one token at a time through the recurrence (conv1dStep,
// decodeSsm): O(1) work and memory per token, whatever the length generated so far.
// Sampling: temperature (0 = greedy), top-k, top-p (nucleus), seeded, on the device that holds the logits
// (sampleTokens; sampleToken is its host twin and gives the same tokens), so a step copies B tokens to the host
// at most, and none until the end when no callback asks for them.
import { SAMPLE_PARAMS, Tensor, columns, cudaOp, sampleTokens } from '../backend/index.js';
import type { MixerCache } from '../nn/mixer.js';
import { MambaLM } from '../model/model.js';
import { derived } from '../model/config.js';
import { Workspace } from '../nn/param.js';

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

/** The params tensor of sampleTokens for these settings: temperature, topK, topP (native/src/sample.h). */
function sampleParams(o: Required<SampleOptions>): Float32Array {
  const p = new Float32Array(SAMPLE_PARAMS);
  p[0] = o.temperature;
  p[1] = Math.min(o.topK, 2 ** 24); // exact in f32; larger means all of any real vocabulary
  p[2] = o.topP;
  return p;
}

/** A seed as the sampling kernels take it (int32 bits; a larger or negative seed wraps). */
const seedBits = (seed: number) => Math.trunc(seed) | 0;

/**
 * Draws one token from logits[off .. off+V) (V = the real vocabulary, padding excluded) on the host: the CPU
 * twin of the device sampler (sampleTokens, native/src/sample.h), so that draw `step` of a sequence seeded
 * `seed` is the token generate() picks on any device (greedy and top-k exactly; top-p up to the rounding of its
 * mass sums). Sampling is Gumbel-max: argmax of logit / T + Gumbel noise hashed from (seed, step, token), over
 * the top-k tokens (ties at the k-th value kept) and then the smallest top set holding the mass topP.
 */
export function sampleToken(
  logits: ArrayLike<number>,
  off: number,
  V: number,
  o: SampleOptions,
  seed: number,
  step: number,
): number {
  const settings = checkSample(o);
  if (!Number.isInteger(step) || step < 0) throw new GenerateError(`step must be an integer >= 0, got ${step}`);
  const row = new Float32Array(V);
  for (let v = 0; v < V; v++) row[v] = logits[off + v]!;
  const tokens = Tensor.zeros([1], 'i32');
  sampleTokens(
    Tensor.from(row, [1, V]),
    V,
    Tensor.from(sampleParams(settings)),
    Tensor.from(Int32Array.of(seedBits(seed))),
    Tensor.from(Int32Array.of(step | 0)),
    tokens,
  );
  return tokens.data[0]!;
}

/** A captured CUDA graph of one kind of step, after one eager warm-up step that allocates its buffers. */
class StepGraph {
  state: 'off' | 'warmup' | 'capture' | 'ready';
  exec: unknown = null;
  out: Tensor | null = null;
  constructor(on: boolean) {
    this.state = on ? 'warmup' : 'off';
  }

  /** run() eagerly, or captured on the second call and replayed from then on (a failed capture: eager). */
  run(step: () => Tensor): Tensor {
    if (this.state === 'off') return step();
    if (this.state === 'warmup') {
      this.state = 'capture';
      return step();
    }
    if (this.state === 'capture') {
      try {
        let out: Tensor;
        cudaOp('captureBegin')();
        try {
          out = step();
        } finally {
          this.exec = cudaOp('captureEnd')();
        }
        this.out = out;
        this.state = 'ready';
      } catch {
        this.exec = null;
        this.state = 'off';
        return step();
      }
    }
    cudaOp('graphLaunch')(this.exec);
    return this.out!;
  }
}

/**
 * Everything decoding B sequences on one model writes: the layers' conv and SSM states, the step's buffers, the
 * tokens and the sampler's settings, seeds and draw counters, and the CUDA graphs of the step that point at all
 * of them. Kept on the model (model.decodeSessions) so that a new Decoder of the same B reuses the graphs (a
 * capture costs a warm-up step and the capture itself); the weights the graphs read are updated in place, so a
 * change of weights needs only the refresh every Decoder does (refreshHalf, A), and the model's dispose() frees it.
 */
class DecodeSession {
  readonly caches: MixerCache[];
  readonly ws: Workspace;
  /** the tokens fed to the next step [B]; the device sampler writes them */
  readonly ids: Tensor;
  readonly logits: Tensor;
  readonly params: Tensor;
  readonly seeds: Tensor;
  readonly draws: Tensor;
  /** ids -> logits (Decoder.step), and ids -> logits -> sampled ids (generate) */
  readonly logitsGraph: StepGraph;
  readonly sampleGraph: StepGraph;
  owner: Decoder | null = null;

  constructor(model: MambaLM, B: number, graphs: boolean) {
    const dev = model.device;
    this.caches = model.backbone.newCaches(B);
    this.ws = new Workspace(dev, model.backbone.ws.dtype);
    this.ids = Tensor.zeros([B], 'i32', dev);
    this.logits = Tensor.zeros([B, derived(model.config).paddedVocab], model.logitsDtype, dev);
    this.params = Tensor.from(sampleParams({ temperature: 0, topK: 0, topP: 1 })).to(dev);
    this.seeds = Tensor.zeros([B], 'i32', dev);
    this.draws = Tensor.zeros([B], 'i32', dev);
    this.logitsGraph = new StepGraph(graphs);
    this.sampleGraph = new StepGraph(graphs);
  }

  dispose(): void {
    for (const c of this.caches) {
      c.conv.dispose();
      c.ssm.dispose();
    }
    this.ws.dispose();
    for (const t of [this.ids, this.logits, this.params, this.seeds, this.draws]) t.dispose();
    this.logitsGraph.state = this.sampleGraph.state = 'off';
    this.owner = null;
  }
}

/**
 * Recurrent decoder over B sequences. Its state (model.decodeSessions) is shared by every Decoder of the same
 * model, B and settings: a new one takes it over, and the Decoder it was taken from fails if used again
 * (`shared: false` gives a Decoder state of its own, for callers that interleave two of one B).
 */
export class Decoder {
  readonly model: MambaLM;
  readonly B: number;
  readonly #session: DecodeSession;
  #started = false;

  /**
   * On CUDA the step (3 fused ops per layer) is launch-bound: after one eager step it is captured into a CUDA
   * graph and replayed with a single launch, by this and every later Decoder of the same B. `cudaGraph: false`
   * (or the environment variable MAMBA_CUDA_GRAPH=0) keeps every step eager; a capture that fails falls back to
   * eager.
   */
  constructor(model: MambaLM, B = 1, opts: { cudaGraph?: boolean; shared?: boolean } = {}) {
    if (!(model instanceof MambaLM)) throw new GenerateError('generation needs a language model (task lm)');
    if (!Number.isInteger(B) || B < 1) throw new GenerateError(`B must be an integer >= 1, got ${B}`);
    const graphs = (opts.cudaGraph ?? process.env.MAMBA_CUDA_GRAPH !== '0') && model.device === 'cuda';
    this.model = model;
    this.B = B;
    // the graph holds the step's kernels: one per batch size, graph use and fused-step setting
    const key = `${B}:${graphs ? 'graph' : 'eager'}:${process.env.MAMBA_DECODE_FUSED === '0' ? 'unfused' : 'fused'}`;
    let session = opts.shared === false ? undefined : (model.decodeSessions.get(key) as DecodeSession | undefined);
    if (!session) {
      session = new DecodeSession(model, B, graphs);
      if (opts.shared !== false) model.decodeSessions.set(key, session);
    }
    session.owner = this;
    this.#session = session;
    model.invalidate();
    // weights do not change while decoding: one refresh of the bf16 copies and of A serves every step
    model.refreshHalf();
    model.backbone.prepareStep();
  }

  /** The layers' conv and SSM states. */
  get caches(): MixerCache[] {
    return this.#own().caches;
  }

  #own(): DecodeSession {
    const s = this.#session;
    if (s.owner !== this)
      throw new GenerateError(
        `this Decoder's state was taken over by a newer Decoder of batch ${this.B} on the same model (new Decoder(model, B, { shared: false }) keeps its own)`,
      );
    return s;
  }

  /** Runs B prompts of equal length L (flat [B*L]) in parallel; returns the logits after each prompt's last token [B, Vp]. prefillMany takes prompts of different lengths. */
  prefill(prompt: Int32Array, L: number): Float64Array {
    return this.#prefill(prompt, L).toFloat64();
  }

  #prefill(prompt: Int32Array, L: number): Tensor {
    if (L < 1) throw new GenerateError('the prompt must hold at least one token');
    if (prompt.length !== this.B * L)
      throw new GenerateError(`prompt holds ${prompt.length} tokens, expected B*L = ${this.B * L}`);
    const s = this.#own();
    const m = this.model;
    const V = m.config.vocab_size;
    for (let i = 0; i < prompt.length; i++)
      if (prompt[i]! < 0 || prompt[i]! >= V)
        throw new GenerateError(`prompt token ${prompt[i]} at ${i} is outside the vocabulary 0..${V - 1}`);
    const h = m.backbone.prefill(m.backbone.uploadIds(prompt, 'promptIds'), this.B, L, s.caches);
    const D = m.config.d_model;
    this.#started = true;
    // the last position of every sequence, read in place: the rows of h seen as [B, L * D], its last D columns
    return m.headLogits(columns(h.reshape([this.B, L * D]), (L - 1) * D, D), this.B, s.logits);
  }

  /**
   * Runs B prompts of any lengths (each at least one token); returns the logits after each prompt's last
   * token [B, Vp]. Every prompt goes through the parallel scan alone (B = 1) and its conv and SSM states
   * are copied into row b of the batch's caches, so the batched steps that follow start exactly where each
   * prompt ended: no padding ever enters a state.
   */
  prefillMany(prompts: ArrayLike<number>[]): Float64Array {
    return this.#prefillMany(prompts).toFloat64();
  }

  #prefillMany(prompts: ArrayLike<number>[]): Tensor {
    if (prompts.length !== this.B)
      throw new GenerateError(`prefillMany needs ${this.B} prompts, got ${prompts.length}`);
    const s = this.#own();
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
    const last = s.ws.get('lastH', [this.B, D]);
    try {
      for (let b = 0; b < this.B; b++) {
        const p = Int32Array.from(prompts[b]!);
        const h = m.backbone.prefill(m.backbone.uploadIds(p, 'promptIds'), 1, p.length, one);
        last.view(b * D, [D]).copyFrom(h.view((p.length - 1) * D, [D]));
        one.forEach((c, i) => {
          const dst = s.caches[i]!;
          const nc = c.conv.numel,
            ns = c.ssm.numel;
          dst.conv.view(b * nc, [nc]).copyFrom(c.conv.view(0, [nc]));
          dst.ssm.view(b * ns, [ns]).copyFrom(c.ssm.view(0, [ns]));
        });
      }
      this.#started = true;
      return m.headLogits(last, this.B, s.logits);
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
    const s = this.#own();
    const V = this.model.config.vocab_size;
    for (const t of tokens)
      if (t < 0 || t >= V) throw new GenerateError(`token ${t} is outside the vocabulary 0..${V - 1}`);
    s.ids.copyFrom(Tensor.from(Int32Array.from(tokens), [this.B]));
    this.#started = true;
    return s.logitsGraph.run(() => this.#logits(s)).toFloat64();
  }

  /** ids -> logits, on the session's buffers. */
  #logits(s: DecodeSession): Tensor {
    return this.model.headLogits(this.model.backbone.step(s.ids, s.caches, s.ws), this.B, s.logits);
  }

  /** Chooses each sequence's next token from the session's logits on the device, into ids. */
  #sample(s: DecodeSession): Tensor {
    sampleTokens(s.logits, this.model.config.vocab_size, s.params, s.seeds, s.draws, s.ids);
    return s.ids;
  }

  /**
   * Sampling settings for sampleFirst/sampleNext: sequence b draws with seed + b, its draws counted from 0
   * (draw i of a sequence is sampleToken(..., seed + b, i) on the host).
   */
  startSampling(o: SampleOptions, seed = 0): void {
    const s = this.#own();
    s.params.copyFrom(Tensor.from(sampleParams(checkSample(o))));
    s.seeds.copyFrom(Tensor.from(Int32Array.from({ length: this.B }, (_, b) => seedBits(seed + b))));
    s.draws.copyFrom(Tensor.zeros([this.B], 'i32'));
  }

  /**
   * Prefills the prompts (of equal or different lengths) and chooses each sequence's first new token on the
   * device; returns the B tokens (the only copy to the host).
   */
  sampleFirst(prompts: ArrayLike<number>[]): Int32Array {
    const s = this.#own();
    const L0 = prompts[0]?.length ?? 0;
    if (prompts.length === this.B && prompts.every((p) => p.length === L0) && L0 >= 1) {
      const flat = new Int32Array(this.B * L0);
      prompts.forEach((p, b) => flat.set(Int32Array.from(p), b * L0));
      this.#prefill(flat, L0);
    } else {
      this.#prefillMany(prompts);
    }
    return this.#sample(s).toArray() as Int32Array;
  }

  /** Feeds the tokens chosen last and chooses the next ones, all on the device (one graph launch on CUDA); returns them [B]. */
  sampleNext(): Int32Array {
    return this.#sampleNext().toArray() as Int32Array;
  }

  /**
   * sampleNext without waiting for the tokens: they are copied on the device into row `row` of `rows` [n, B]
   * (i32, on the model's device), so the host can queue the next steps at once and read every row at the end.
   */
  sampleNextInto(rows: Tensor, row: number): void {
    if (rows.dtype !== 'i32' || rows.numel % this.B !== 0 || !(row >= 0 && (row + 1) * this.B <= rows.numel))
      throw new GenerateError(`sampleNextInto: row ${row} is not a row of an i32 [n, ${this.B}] tensor`);
    rows.view(row * this.B, [this.B]).copyFrom(this.#sampleNext());
  }

  #sampleNext(): Tensor {
    const s = this.#own();
    if (!this.#started) throw new GenerateError('sampleNext before sampleFirst');
    return s.sampleGraph.run(() => {
      this.#logits(s);
      return this.#sample(s);
    });
  }

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
  const out: number[][] = prompts.map(() => []);
  if (o.maxNewTokens === 0) return out.map(() => new Int32Array(0));
  const dec = new Decoder(model, B);
  dec.startSampling(o, o.seed ?? 0);
  // tokens are chosen on the device; only the B chosen ones come back per step
  let next = dec.sampleFirst(prompts);
  if (!o.onToken && !o.onStep && o.stopToken === undefined) {
    // nobody looks at a token before the end: the steps queue up without a round trip each, their tokens
    // collected on the device and read once
    const n = o.maxNewTokens;
    const rows = Tensor.zeros([Math.max(n - 1, 1), B], 'i32', model.device);
    try {
      for (let i = 1; i < n; i++) dec.sampleNextInto(rows, i - 1);
      const all = rows.toArray();
      return prompts.map((_, b) =>
        Int32Array.from({ length: n }, (_, i) => (i === 0 ? next[b]! : all[(i - 1) * B + b]!)),
      );
    } finally {
      rows.dispose();
    }
  }
  const done = new Array<boolean>(B).fill(false);
  for (let i = 0; ;) {
    for (let b = 0; b < B; b++) {
      if (done[b]) continue;
      const tok = next[b]!;
      out[b]!.push(tok);
      o.onToken?.(tok, out[b]!.length - 1, b);
      if (tok === o.stopToken || out[b]!.length === o.maxNewTokens) done[b] = true;
    }
    o.onStep?.(++i);
    if (done.every(Boolean)) break;
    next = dec.sampleNext();
  }
  return out.map((t) => Int32Array.from(t));
}
