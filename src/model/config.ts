// MambaConfig: the model's hyper-parameters, named presets, and validation with one clear message per field.
// Field names follow the reference MambaConfig (d_model, n_layer, vocab_size, ...) so config.json maps across.

import type { Domain, Task } from '../data/types.js';
import { PRESETS, type PresetName } from './presets.js';

export { PRESETS, type PresetName } from './presets.js';

export interface MambaConfig {
  d_model: number;
  n_layer: number;
  /** the data's vocabulary (the embedding is padded up to pad_vocab_size_multiple) */
  vocab_size: number;
  d_state: number;
  d_conv: number;
  expand: number;
  dt_rank: 'auto' | number;
  norm_epsilon: number;
  pad_vocab_size_multiple: number;
  tie_embeddings: boolean;
  domain: Domain;
  task: Task;
  /** classify only */
  num_classes: number;
  /** classify only: pool the final hidden states over the sequence */
  pooling: 'mean' | 'last';
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const BASE: Omit<MambaConfig, 'd_model' | 'n_layer'> = {
  vocab_size: 16,
  d_state: 16,
  d_conv: 4,
  expand: 2,
  dt_rank: 'auto',
  norm_epsilon: 1e-5,
  pad_vocab_size_multiple: 8,
  tie_embeddings: true,
  domain: 'dna',
  task: 'lm',
  num_classes: 2,
  pooling: 'mean',
};

/** Vocabulary by domain: the DNA tokenizer's 16 ids or the 256 mu-law audio levels. */
export function defaultVocab(domain: Domain): number {
  return domain === 'audio' ? 256 : 16;
}

/** A full config from a preset (or a base config) and overrides, validated. */
export function makeConfig(preset: PresetName | Partial<MambaConfig> = 'tiny', overrides: Partial<MambaConfig> = {}): MambaConfig {
  let base: Partial<MambaConfig>;
  if (typeof preset === 'string') {
    if (!(preset in PRESETS)) throw new ConfigError(`unknown model preset "${preset}": use ${Object.keys(PRESETS).join(', ')}`);
    base = { ...PRESETS[preset] };
  } else base = preset;
  const domain = overrides.domain ?? base.domain ?? BASE.domain;
  const cfg = { ...BASE, vocab_size: defaultVocab(domain), ...base, ...overrides } as MambaConfig;
  validateConfig(cfg);
  return cfg;
}

function posInt(c: Record<string, unknown>, k: string): void {
  const v = c[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ConfigError(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
}

/** Throws ConfigError naming the first bad field. */
export function validateConfig(c: MambaConfig): void {
  if (typeof c !== 'object' || c === null) throw new ConfigError('config must be an object');
  const r = c as unknown as Record<string, unknown>;
  for (const k of ['d_model', 'n_layer', 'vocab_size', 'd_state', 'd_conv', 'expand', 'pad_vocab_size_multiple']) posInt(r, k);
  if (c.dt_rank !== 'auto') posInt(r, 'dt_rank');
  if (typeof c.norm_epsilon !== 'number' || !(c.norm_epsilon > 0 && c.norm_epsilon < 1)) throw new ConfigError(`norm_epsilon must be a number in (0, 1), got ${JSON.stringify(c.norm_epsilon)}`);
  if (typeof c.tie_embeddings !== 'boolean') throw new ConfigError(`tie_embeddings must be true or false, got ${JSON.stringify(c.tie_embeddings)}`);
  if (c.domain !== 'dna' && c.domain !== 'audio') throw new ConfigError(`domain must be 'dna' or 'audio', got ${JSON.stringify(c.domain)}`);
  if (c.task !== 'lm' && c.task !== 'classify') throw new ConfigError(`task must be 'lm' or 'classify', got ${JSON.stringify(c.task)}`);
  if (c.pooling !== 'mean' && c.pooling !== 'last') throw new ConfigError(`pooling must be 'mean' or 'last', got ${JSON.stringify(c.pooling)}`);
  if (c.task === 'classify') {
    posInt(r, 'num_classes');
    if (c.num_classes < 2) throw new ConfigError(`num_classes must be at least 2 for classification, got ${c.num_classes}`);
  }
  if (c.vocab_size > 1 << 20) throw new ConfigError(`vocab_size ${c.vocab_size} is too large (at most 2^20)`);
}

export interface DerivedDims {
  dInner: number;
  dtRank: number;
  paddedVocab: number;
}

export function derived(c: MambaConfig): DerivedDims {
  const m = c.pad_vocab_size_multiple;
  return {
    dInner: c.expand * c.d_model,
    dtRank: c.dt_rank === 'auto' ? Math.ceil(c.d_model / 16) : c.dt_rank,
    paddedVocab: Math.ceil(c.vocab_size / m) * m,
  };
}

/** A config parsed from JSON (config.json), unknown keys ignored, missing keys defaulted, then validated. */
export function configFromJSON(obj: unknown): MambaConfig {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ConfigError('config.json must hold a JSON object');
  const o = obj as Record<string, unknown>;
  const picked: Partial<MambaConfig> = {};
  const keys: (keyof MambaConfig)[] = ['d_model', 'n_layer', 'vocab_size', 'd_state', 'd_conv', 'expand', 'dt_rank', 'norm_epsilon',
    'pad_vocab_size_multiple', 'tie_embeddings', 'domain', 'task', 'num_classes', 'pooling'];
  for (const k of keys) if (o[k] !== undefined) (picked as Record<string, unknown>)[k] = o[k];
  // the reference puts SSM settings in ssm_cfg
  const ssm = o.ssm_cfg as Record<string, unknown> | undefined;
  if (ssm && typeof ssm === 'object') {
    for (const k of ['d_state', 'd_conv', 'expand', 'dt_rank'] as const) if (ssm[k] !== undefined && picked[k] === undefined) (picked as Record<string, unknown>)[k] = ssm[k];
  }
  if (picked.d_model === undefined) throw new ConfigError('config.json: d_model is missing');
  if (picked.n_layer === undefined) throw new ConfigError('config.json: n_layer is missing');
  return makeConfig(picked, {});
}

/** config.json contents: our fields plus the reference's keys (ssm_cfg, rms_norm, ...) for interoperability. */
export function configToJSON(c: MambaConfig): Record<string, unknown> {
  return {
    ...c,
    ssm_cfg: { d_state: c.d_state, d_conv: c.d_conv, expand: c.expand, dt_rank: c.dt_rank },
    rms_norm: true,
    residual_in_fp32: true,
    fused_add_norm: true,
  };
}
