// config.json in the three layouts of a Mamba folder, read and written:
// - ours: a run folder. Our MambaConfig fields, plus Hugging Face's keys (model_type "mamba", hidden_size, ...)
//   so MambaForCausalLM.from_pretrained(run_folder) works, plus mamba_ssm's (ssm_cfg, rms_norm, ...), plus a
//   "mamba_seq" block with what neither knows (domain, task, the data's vocabulary, the classifier head).
// - hf: transformers' MambaConfig (configuration_mamba.py): vocab_size counts the embedding rows.
// - mamba_ssm: its MambaConfig dataclass (config_mamba.py): vocab_size is the tokenizer's and the embedding is
//   padded up to pad_vocab_size_multiple; SSM settings in ssm_cfg; norm epsilon fixed at 1e-5.
// The key vocab_size is shared and means the embedding rows in what we write (both readers then agree);
// our own data vocabulary travels in mamba_seq.vocab_size.
import {
  CONFIG_LIMITS,
  ConfigError,
  checkIntField,
  configFromJSON,
  derived,
  makeConfig,
  type LimitedField,
  type MambaConfig,
} from './config.js';
import type { Domain } from '../data/types.js';

export type FolderLayout = 'ours' | 'hf' | 'mamba_ssm';
export const FOLDER_LAYOUTS: readonly FolderLayout[] = ['ours', 'hf', 'mamba_ssm'];

export interface ParsedConfig {
  config: MambaConfig;
  layout: FolderLayout;
  /** where the folder came from, in words (e.g. "transformers 4.46.0 MambaForCausalLM") */
  source: string;
  /** the file says the conv1d has no bias (HF use_conv_bias false, mamba_ssm ssm_cfg.conv_bias false) */
  noConvBias: boolean;
}

/** What only we know, kept in config.json under this key. */
export const OURS_KEY = 'mamba_seq';
const FORMAT_VERSION = 1;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Which layout a parsed config.json is in (ours: our own fields are there, whatever else is). */
export function detectLayout(o: Json): FolderLayout {
  if (o.d_model !== undefined && (o.domain !== undefined || o.task !== undefined)) return 'ours';
  if (o.model_type !== undefined) {
    if (o.model_type !== 'mamba') {
      const v = JSON.stringify(o.model_type);
      throw new ConfigError(`model_type is ${v}, allowed: "mamba" (Mamba 1; Mamba 2, Jamba, ... are not supported)`);
    }
    return 'hf';
  }
  if (o.hidden_size !== undefined || o.num_hidden_layers !== undefined) return 'hf';
  return 'mamba_ssm';
}

function intField(o: Json, key: string, field: LimitedField, fallback?: number): number {
  const v = o[key] ?? fallback;
  if (v === undefined) throw new ConfigError(`${key} is missing`);
  checkIntField(v, field, key);
  return v as number;
}

function boolField(o: Json, key: string, fallback: boolean): boolean {
  const v = o[key] ?? fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`${key} is ${JSON.stringify(v)}, allowed: true or false`);
  return v;
}

/** The padding multiple that keeps an HF embedding of `rows` rows exactly that size. */
function padFor(rows: number): number {
  return rows % 8 === 0 ? 8 : 1;
}

function fromHF(o: Json, domain: Domain): ParsedConfig {
  const d_model = intField(o, 'hidden_size', 'd_model');
  const n_layer = intField(o, 'num_hidden_layers', 'n_layer');
  const vocab = intField(o, 'vocab_size', 'vocab_size', 50280);
  let expand = intField(o, 'expand', 'expand', 2);
  if (o.intermediate_size !== undefined) {
    const e = o.intermediate_size;
    // transformers sizes the mixer by intermediate_size when the file has it
    const max = CONFIG_LIMITS.expand;
    if (typeof e !== 'number' || !Number.isInteger(e) || e < 1 || e % d_model !== 0 || e / d_model > max) {
      const v = JSON.stringify(e);
      throw new ConfigError(`intermediate_size is ${v}, allowed: hidden_size (${d_model}) times 1..${max}`);
    }
    expand = e / d_model;
  }
  const rank = o.time_step_rank ?? 'auto';
  if (rank !== 'auto') checkIntField(rank, 'dt_rank', 'time_step_rank');
  if (o.use_bias === true) {
    throw new ConfigError(
      'use_bias is true (biases on in_proj and out_proj), allowed: false ' +
        '(the Mamba block here has none, as state-spaces/mamba-*-hf)',
    );
  }
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu') {
    throw new ConfigError(`hidden_act is ${JSON.stringify(o.hidden_act)}, allowed: "silu"`);
  }
  const eps = o.layer_norm_epsilon ?? 1e-5;
  const config = makeConfig({
    d_model,
    n_layer,
    vocab_size: vocab,
    pad_vocab_size_multiple: padFor(vocab),
    d_state: intField(o, 'state_size', 'd_state', 16),
    d_conv: intField(o, 'conv_kernel', 'd_conv', 4),
    expand,
    dt_rank: rank as number | 'auto',
    norm_epsilon: eps as number,
    tie_embeddings: boolField(o, 'tie_word_embeddings', true),
    domain,
    task: 'lm',
  });
  const arch = Array.isArray(o.architectures) ? o.architectures.join(', ') : 'MambaForCausalLM';
  const tv = o.transformers_version;
  const version = typeof tv === 'string' ? `transformers ${tv}` : 'transformers';
  return { config, layout: 'hf', source: `${version} ${arch}`, noConvBias: !boolField(o, 'use_conv_bias', true) };
}

function fromMambaSsm(o: Json, domain: Domain): ParsedConfig {
  const ssm = o.ssm_cfg === undefined ? {} : o.ssm_cfg;
  if (!isObject(ssm)) throw new ConfigError(`ssm_cfg is ${JSON.stringify(ssm)}, allowed: an object`);
  if (ssm.layer !== undefined && ssm.layer !== 'Mamba1') {
    const v = JSON.stringify(ssm.layer);
    throw new ConfigError(`ssm_cfg.layer is ${v}, allowed: "Mamba1" (Mamba 2 is not supported)`);
  }
  if (o.d_intermediate !== undefined && o.d_intermediate !== 0) {
    const v = JSON.stringify(o.d_intermediate);
    throw new ConfigError(`d_intermediate is ${v}, allowed: 0 (MLP blocks are not supported)`);
  }
  if (Array.isArray(o.attn_layer_idx) && o.attn_layer_idx.length > 0) {
    const v = JSON.stringify(o.attn_layer_idx);
    throw new ConfigError(`attn_layer_idx is ${v}, allowed: [] (attention layers are not supported)`);
  }
  if (o.rms_norm === false) throw new ConfigError('rms_norm is false (LayerNorm), allowed: true (RMSNorm)');
  if (ssm.bias === true) throw new ConfigError('ssm_cfg.bias is true (biases on in_proj and out_proj), allowed: false');
  // a hand-written config (train --config) may give the SSM fields at the top level, as our own do
  const ssmOr = (k: string): unknown => ssm[k] ?? o[k];
  const rank = ssmOr('dt_rank') ?? 'auto';
  if (rank !== 'auto') checkIntField(rank, 'dt_rank', ssm.dt_rank !== undefined ? 'ssm_cfg.dt_rank' : 'dt_rank');
  const inner = { d_state: ssmOr('d_state'), d_conv: ssmOr('d_conv'), expand: ssmOr('expand') };
  const config = makeConfig({
    d_model: intField(o, 'd_model', 'd_model'),
    n_layer: intField(o, 'n_layer', 'n_layer'),
    vocab_size: intField(o, 'vocab_size', 'vocab_size', 50277),
    pad_vocab_size_multiple: intField(o, 'pad_vocab_size_multiple', 'pad_vocab_size_multiple', 8),
    d_state: intField(inner, 'd_state', 'd_state', 16),
    d_conv: intField(inner, 'd_conv', 'd_conv', 4),
    expand: intField(inner, 'expand', 'expand', 2),
    dt_rank: rank as number | 'auto',
    // mamba_ssm's blocks always use 1e-5 (its config has no such field)
    norm_epsilon: (o.norm_epsilon ?? 1e-5) as number,
    tie_embeddings: boolField(o, 'tie_embeddings', true),
    domain,
    task: 'lm',
  });
  return { config, layout: 'mamba_ssm', source: 'mamba_ssm MambaLMHeadModel', noConvBias: ssm.conv_bias === false };
}

/** A folder we wrote in the hf or mamba_ssm layout: the mamba_seq block restores domain, task and vocabulary. */
function withOursBlock(p: ParsedConfig, block: Json): ParsedConfig {
  const rows = derived(p.config).paddedVocab;
  const vocab = typeof block.vocab_size === 'number' ? block.vocab_size : p.config.vocab_size;
  const head = isObject(block.head) ? block.head : {};
  const task = block.task === 'classify' ? 'classify' : 'lm';
  const config = makeConfig(p.config, {
    vocab_size: vocab,
    // the embedding keeps its rows: padding `vocab` up to a multiple of `rows` gives `rows`
    pad_vocab_size_multiple: vocab === rows ? p.config.pad_vocab_size_multiple : rows,
    domain: block.domain === 'audio' ? 'audio' : 'dna',
    task,
    ...(task === 'classify'
      ? { num_classes: head.num_classes as number, pooling: head.pooling as 'mean' | 'last' }
      : {}),
  });
  const tool = typeof block.tool === 'string' ? block.tool : 'mamba-seq';
  return { ...p, config, source: `${tool} (written as ${p.layout})` };
}

function fromOurs(o: Json): ParsedConfig {
  const block = o[OURS_KEY];
  if (!isObject(block)) {
    // a run folder from before the HF keys: our fields alone
    return { config: configFromJSON(o), layout: 'ours', source: 'mamba-seq run folder', noConvBias: false };
  }
  // vocab_size holds the embedding rows (HF's meaning); the data's vocabulary is in the block
  const config = configFromJSON({ ...o, vocab_size: block.vocab_size ?? o.vocab_size });
  const tool = typeof block.tool === 'string' ? block.tool : 'mamba-seq';
  return { config, layout: 'ours', source: `${tool} run folder`, noConvBias: false };
}

/** Parses config.json in any layout; foreign folders name no domain, so they get `domain`. */
export function parseConfigJSON(obj: unknown, opts: { domain?: Domain } = {}): ParsedConfig {
  if (!isObject(obj)) throw new ConfigError('config.json must hold a JSON object');
  const domain = opts.domain ?? 'dna';
  const layout = detectLayout(obj);
  if (layout === 'ours') return fromOurs(obj);
  const parsed = layout === 'hf' ? fromHF(obj, domain) : fromMambaSsm(obj, domain);
  return isObject(obj[OURS_KEY]) ? withOursBlock(parsed, obj[OURS_KEY]) : parsed;
}

/** transformers' name of a safetensors dtype, for config.json's dtype key. */
const TORCH_DTYPE: Record<string, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16', F64: 'float64' };

/** transformers' MambaConfig keys with the values of our config. */
export function hfConfigKeys(c: MambaConfig, dtype = 'F32'): Json {
  const d = derived(c);
  const dna = c.domain === 'dna';
  return {
    model_type: 'mamba',
    architectures: [c.task === 'lm' ? 'MambaForCausalLM' : 'MambaModel'],
    hidden_size: c.d_model,
    num_hidden_layers: c.n_layer,
    state_size: c.d_state,
    conv_kernel: c.d_conv,
    expand: c.expand,
    intermediate_size: d.dInner,
    time_step_rank: d.dtRank,
    layer_norm_epsilon: c.norm_epsilon,
    use_bias: false,
    use_conv_bias: true,
    hidden_act: 'silu',
    vocab_size: d.paddedVocab,
    tie_word_embeddings: c.tie_embeddings,
    residual_in_fp32: true,
    // the DNA tokenizer's specials (tokenizer.ts); audio tokens have none
    pad_token_id: dna ? 0 : null,
    bos_token_id: dna ? 1 : null,
    eos_token_id: dna ? 2 : null,
    use_cache: true,
    dtype: TORCH_DTYPE[dtype] ?? 'float32',
  };
}

/** mamba_ssm's MambaConfig keys with the values of our config. */
export function mambaSsmConfigKeys(c: MambaConfig): Json {
  return {
    d_model: c.d_model,
    d_intermediate: 0,
    n_layer: c.n_layer,
    vocab_size: c.vocab_size,
    ssm_cfg: { layer: 'Mamba1', d_state: c.d_state, d_conv: c.d_conv, expand: c.expand, dt_rank: c.dt_rank },
    attn_layer_idx: [],
    attn_cfg: {},
    rms_norm: true,
    residual_in_fp32: true,
    fused_add_norm: true,
    pad_vocab_size_multiple: c.pad_vocab_size_multiple,
    tie_embeddings: c.tie_embeddings,
  };
}

/** The head a classifier adds on the backbone, described for Python users (MambaModel loads the rest). */
function headOf(c: MambaConfig): Json {
  if (c.task === 'lm') {
    const tied = c.tie_embeddings;
    return { type: 'lm', tensors: tied ? [] : ['lm_head.weight'], tied_to: tied ? 'backbone.embeddings.weight' : null };
  }
  return {
    type: 'classifier',
    pooling: c.pooling,
    num_classes: c.num_classes,
    tensors: ['classifier.weight', 'classifier.bias'],
    math:
      `logits = classifier.weight @ ${c.pooling === 'mean' ? 'mean over positions' : 'last position'}` +
      " of MambaModel's last_hidden_state + classifier.bias",
  };
}

/** What only we know: enough to read the folder back as exactly this config. */
function oursBlock(c: MambaConfig, tool: string): Json {
  return {
    format_version: FORMAT_VERSION,
    tool,
    domain: c.domain,
    task: c.task,
    vocab_size: c.vocab_size,
    head: headOf(c),
  };
}

/**
 * config.json of a layout. ours: every key set at once (HF's vocab_size = the embedding rows wins over ours,
 * which moves to mamba_seq.vocab_size). hf / mamba_ssm: that tool's keys plus the mamba_seq block.
 */
export function configToJSON(
  c: MambaConfig,
  layout: FolderLayout = 'ours',
  opts: { dtype?: string; tool?: string } = {},
): Json {
  const block = { [OURS_KEY]: oursBlock(c, opts.tool ?? 'mamba-seq') };
  if (layout === 'hf') return { ...hfConfigKeys(c, opts.dtype), ...block };
  if (layout === 'mamba_ssm') return { ...mambaSsmConfigKeys(c), ...block };
  return { ...c, ...mambaSsmConfigKeys(c), ...hfConfigKeys(c, opts.dtype), ...block };
}
