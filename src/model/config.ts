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
export function makeConfig(
  preset: PresetName | Partial<MambaConfig> = 'tiny',
  overrides: Partial<MambaConfig> = {},
): MambaConfig {
  let base: Partial<MambaConfig>;
  if (typeof preset === 'string') {
    if (!(preset in PRESETS))
      throw new ConfigError(`unknown model preset "${preset}": use ${Object.keys(PRESETS).join(', ')}`);
    base = { ...PRESETS[preset] };
  } else base = preset;
  const domain = overrides.domain ?? base.domain ?? BASE.domain;
  const cfg = { ...BASE, vocab_size: defaultVocab(domain), ...base, ...overrides } as MambaConfig;
  validateConfig(cfg);
  return cfg;
}

/**
 * Upper bounds of every numeric field: generous (far past any model these kernels train) but finite, so a
 * hostile or mistyped config.json (n_layer 1e308, d_model 2^53) fails here with one line, before allocating.
 */
export const CONFIG_LIMITS = {
  d_model: 65536,
  n_layer: 1024,
  vocab_size: 1 << 20,
  d_state: 1024,
  d_conv: 64,
  expand: 16,
  dt_rank: 65536,
  pad_vocab_size_multiple: 4096,
  num_classes: 1 << 16,
} as const;

/** At most 2^35 (34 billion) parameters: 128 GiB of f32 weights, beyond one GPU, so surely a typo. */
export const MAX_PARAMETERS = 2 ** 35;

export type LimitedField = keyof typeof CONFIG_LIMITS;

/** Checks one integer field against 1..its limit; `key` is the name the message shows (e.g. an HF key). */
export function checkIntField(value: unknown, field: LimitedField, key: string = field): void {
  const max = CONFIG_LIMITS[field];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${key} must be a positive integer, got ${JSON.stringify(value)} (allowed: 1..${max})`);
  }
  if (value > max) throw new ConfigError(`${key} is too large: got ${value}, allowed: 1..${max}`);
}

/** Parameters the config describes, computed from the dimensions alone (nothing allocated). */
export function countParameters(c: MambaConfig): number {
  const { dInner: E, dtRank: R, paddedVocab: V } = derived(c);
  const D = c.d_model,
    N = c.d_state,
    K = c.d_conv;
  const perLayer = 2 * E * D + E * K + E + (R + 2 * N) * E + E * R + E + E * N + E + D * E + D;
  const head = c.task === 'classify' ? D * c.num_classes + c.num_classes : c.tie_embeddings ? 0 : V * D;
  return V * D + c.n_layer * perLayer + D + head;
}

/** Throws ConfigError naming the first bad field, its value and the allowed range. */
export function validateConfig(c: MambaConfig): void {
  if (typeof c !== 'object' || c === null) throw new ConfigError('config must be an object');
  const r = c as unknown as Record<string, unknown>;
  const fields = [
    'd_model',
    'n_layer',
    'vocab_size',
    'd_state',
    'd_conv',
    'expand',
    'pad_vocab_size_multiple',
  ] as const;
  for (const k of fields) checkIntField(r[k], k);
  if (c.dt_rank !== 'auto') checkIntField(r.dt_rank, 'dt_rank');
  if (typeof c.norm_epsilon !== 'number' || !(c.norm_epsilon > 0 && c.norm_epsilon < 1)) {
    throw new ConfigError(`norm_epsilon is ${JSON.stringify(c.norm_epsilon)}, allowed: a number in (0, 1)`);
  }
  if (typeof c.tie_embeddings !== 'boolean')
    throw new ConfigError(`tie_embeddings must be true or false, got ${JSON.stringify(c.tie_embeddings)}`);
  if (c.domain !== 'dna' && c.domain !== 'audio')
    throw new ConfigError(`domain must be 'dna' or 'audio', got ${JSON.stringify(c.domain)}`);
  if (c.task !== 'lm' && c.task !== 'classify')
    throw new ConfigError(`task must be 'lm' or 'classify', got ${JSON.stringify(c.task)}`);
  if (c.pooling !== 'mean' && c.pooling !== 'last')
    throw new ConfigError(`pooling must be 'mean' or 'last', got ${JSON.stringify(c.pooling)}`);
  if (c.task === 'classify') {
    checkIntField(r.num_classes, 'num_classes');
    if (c.num_classes < 2) {
      const max = CONFIG_LIMITS.num_classes;
      throw new ConfigError(
        `num_classes must be at least 2 for classification, got ${c.num_classes} (allowed: 2..${max})`,
      );
    }
  }
  const n = countParameters(c);
  if (n > MAX_PARAMETERS) {
    throw new ConfigError(
      `the config describes ${n.toExponential(3)} parameters, allowed: at most 2^35 ` +
        `(${MAX_PARAMETERS.toExponential(3)}); check d_model, n_layer, expand, vocab_size`,
    );
  }
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
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new ConfigError('config.json must hold a JSON object');
  const o = obj as Record<string, unknown>;
  const picked: Partial<MambaConfig> = {};
  const keys: (keyof MambaConfig)[] = [
    'd_model',
    'n_layer',
    'vocab_size',
    'd_state',
    'd_conv',
    'expand',
    'dt_rank',
    'norm_epsilon',
    'pad_vocab_size_multiple',
    'tie_embeddings',
    'domain',
    'task',
    'num_classes',
    'pooling',
  ];
  for (const k of keys) if (o[k] !== undefined) (picked as Record<string, unknown>)[k] = o[k];
  // the reference puts SSM settings in ssm_cfg
  const ssm = o.ssm_cfg as Record<string, unknown> | undefined;
  if (ssm && typeof ssm === 'object') {
    for (const k of ['d_state', 'd_conv', 'expand', 'dt_rank'] as const)
      if (ssm[k] !== undefined && picked[k] === undefined) (picked as Record<string, unknown>)[k] = ssm[k];
  }
  if (picked.d_model === undefined) throw new ConfigError('config.json: d_model is missing');
  if (picked.n_layer === undefined) throw new ConfigError('config.json: n_layer is missing');
  return makeConfig(picked, {});
}
