// Model folders in any of the three layouts (hf-config.ts): find and read the weights (model.safetensors,
// or shards listed by model.safetensors.index.json), map key names to ours (= transformers' names; mamba_ssm
// calls the embedding backbone.embedding), and write a folder back in any layout.
// pytorch_model.bin (a pickle, which runs code when loaded) is refused with the conversion to safetensors.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../backend/index.js';
import { ConfigError, defaultVocab, derived, type MambaConfig } from './config.js';
import type { Domain } from '../data/types.js';
import {
  CONFIG_FILE,
  CheckpointError,
  MODEL_FILE,
  readSafetensors,
  safeToFloat64,
  writeFileAtomic,
  writeSafetensors,
  type SafeTensor,
} from './checkpoint.js';
import { configToJSON, parseConfigJSON, type FolderLayout, type ParsedConfig } from './hf-config.js';
import type { MambaModel } from './model.js';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, tokenizerConfigJSON, tokenizerJSON } from './tokenizer-json.js';

export const INDEX_FILE = 'model.safetensors.index.json';
const PICKLES = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.bin', 'model.pt', 'model.ckpt'];
const MAMBA_SSM_EMBEDDING = 'backbone.embedding.weight';
const EMBEDDING = 'backbone.embeddings.weight';
const LM_HEAD = 'lm_head.weight';

/** The message for a pickled checkpoint: what to run in Python to get safetensors. */
export function pickleRefusal(dir: string, file: string): string {
  return (
    `${join(dir, file)}: PyTorch pickles are not read (loading one runs code); ` +
    'convert it to safetensors in Python: ' +
    'import torch; from safetensors.torch import save_file; ' +
    `sd = torch.load("${file.replace('.index.json', '')}", map_location="cpu", weights_only=True); ` +
    'save_file({k: v.contiguous().clone() for k, v in sd.items()}, "model.safetensors", metadata={"format": "pt"})' +
    (file.endsWith('.index.json') ? ' (load and merge every shard the index lists first)' : '')
  );
}

/** A parser's message on one line (JSON.parse quotes the input, line breaks and all). */
export const oneLine = (m: string): string => m.replace(/\s*[\r\n]+\s*/g, ' ');

/** Reads config.json in any layout. */
export function readFolderConfig(dir: string, opts: { domain?: Domain } = {}): ParsedConfig {
  const p = join(dir, CONFIG_FILE);
  if (!existsSync(p)) {
    const pickle = existsSync(dir) ? PICKLES.find((f) => existsSync(join(dir, f))) : undefined;
    const holds = pickle ? ` it holds ${pickle}` : '';
    throw new CheckpointError(`${p}: no such file (is ${dir} a model or run folder?${holds})`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${p}: not valid JSON (${oneLine((e as Error).message)})`);
  }
  try {
    return parseConfigJSON(obj, opts);
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError(`${p}: ${e.message}`);
    throw e;
  }
}

/** The weight files of a folder: one model.safetensors, or the shards its index names. */
export function weightFiles(dir: string): { files: string[]; index?: Record<string, string> } {
  if (existsSync(join(dir, MODEL_FILE))) return { files: [MODEL_FILE] };
  const ip = join(dir, INDEX_FILE);
  if (existsSync(ip)) {
    let idx: { weight_map?: unknown };
    try {
      idx = JSON.parse(readFileSync(ip, 'utf8')) as { weight_map?: unknown };
    } catch (e) {
      throw new CheckpointError(`${ip}: not valid JSON (${(e as Error).message})`);
    }
    const map = idx.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      throw new CheckpointError(`${ip}: weight_map is missing or not an object`);
    }
    const index = map as Record<string, string>;
    const files = [...new Set(Object.values(index))];
    for (const f of files) {
      if (typeof f !== 'string' || f.includes('/') || f.includes('\\') || !f.endsWith('.safetensors')) {
        const v = JSON.stringify(f);
        throw new CheckpointError(`${ip}: weight_map names ${v}, allowed: a .safetensors file in the folder`);
      }
      if (!existsSync(join(dir, f))) throw new CheckpointError(`${ip}: shard ${f} is missing from ${dir}`);
    }
    return { files: files.sort(), index };
  }
  const pickle = PICKLES.find((f) => existsSync(join(dir, f)));
  if (pickle) throw new CheckpointError(pickleRefusal(dir, pickle));
  throw new CheckpointError(`${dir}: no ${MODEL_FILE} (nor ${INDEX_FILE} with shards) in it`);
}

/** All tensors of a folder under our names, as stored (dtype kept). Shards are checked against their index. */
export function readFolderTensors(dir: string, parsed?: ParsedConfig): Map<string, SafeTensor> {
  const { files, index } = weightFiles(dir);
  const out = new Map<string, SafeTensor>();
  for (const f of files) {
    const path = join(dir, f);
    for (const [name, t] of readSafetensors(path).tensors) {
      if (out.has(name)) throw new CheckpointError(`${path}: tensor ${name} is also in another shard`);
      if (index && index[name] !== f) {
        throw new CheckpointError(`${path}: holds ${name}, which ${INDEX_FILE} places in ${index[name] ?? 'no shard'}`);
      }
      out.set(name, t);
    }
  }
  if (index) {
    for (const [name, f] of Object.entries(index)) {
      if (!out.has(name)) {
        throw new CheckpointError(`${join(dir, f)}: tensor ${name} listed in ${INDEX_FILE} is not in it`);
      }
    }
  }
  return toOurNames(out, parsed);
}

/** mamba_ssm names -> ours; a conv1d without bias gets zeros (the same function); a tied head's copy is dropped. */
function toOurNames(tensors: Map<string, SafeTensor>, parsed?: ParsedConfig): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) out.set(k === MAMBA_SSM_EMBEDDING ? EMBEDDING : k, t);
  if (parsed?.noConvBias) {
    for (const [k, t] of [...out]) {
      const bias = k.replace(/conv1d\.weight$/, 'conv1d.bias');
      const E = t.shape[0]!;
      if (bias !== k && !out.has(bias)) out.set(bias, { dtype: t.dtype, shape: [E], data: zerosLike(t, E) });
    }
  }
  // mamba_ssm's state_dict (and some HF exports) keep the tied head as its own entry: it is the embedding
  if (parsed?.config.tie_embeddings && out.has(LM_HEAD)) out.delete(LM_HEAD);
  return out;
}

function zerosLike(t: SafeTensor, n: number): SafeTensor['data'] {
  const C = t.data.constructor as new (n: number) => SafeTensor['data'];
  return new C(n);
}

/** Bytes of tensor data. */
export function bytesOf(tensors: Map<string, SafeTensor>): number {
  let n = 0;
  for (const t of tensors.values()) n += t.data.byteLength;
  return n;
}

export interface FolderDescription {
  layout: FolderLayout;
  source: string;
  files: string[];
  dtypes: string[];
  bytes: number;
}

/** Where a folder came from and what it holds on disk (for `info`). */
export function describeFolder(dir: string, opts: { domain?: Domain } = {}): FolderDescription {
  const parsed = readFolderConfig(dir, opts);
  const { files } = weightFiles(dir);
  const dtypes = new Set<string>();
  for (const f of files) for (const dt of headerDtypes(join(dir, f))) dtypes.add(dt);
  return {
    layout: parsed.layout,
    source: parsed.source,
    files,
    dtypes: [...dtypes].sort(),
    bytes: files.reduce((s, f) => s + statSync(join(dir, f)).size, 0),
  };
}

/** The dtypes a safetensors file declares, from its header alone (info need not read gigabytes of weights). */
function headerDtypes(path: string): string[] {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) throw new CheckpointError(`${path}: too short for a safetensors header`);
    const n = len.readBigUInt64LE(0);
    if (n > BigInt(Math.min(fstatSync(fd).size - 8, 100 * 2 ** 20))) {
      throw new CheckpointError(`${path}: header length ${n} runs past the end of the file`);
    }
    const head = Buffer.alloc(Number(n));
    readSync(fd, head, 0, head.length, 8);
    let h: Record<string, { dtype?: unknown }>;
    try {
      h = JSON.parse(head.toString('utf8')) as Record<string, { dtype?: unknown }>;
    } catch (e) {
      throw new CheckpointError(`${path}: the JSON header does not parse (${(e as Error).message})`);
    }
    return Object.entries(h)
      .filter(([k]) => k !== '__metadata__')
      .map(([, v]) => String(v?.dtype));
  } finally {
    closeSync(fd);
  }
}

/** Tensor names of a layout: mamba_ssm calls the embedding backbone.embedding and stores a tied head too. */
function layoutTensors(
  tensors: Map<string, SafeTensor>,
  config: MambaConfig,
  layout: FolderLayout,
): Map<string, SafeTensor> {
  if (layout !== 'mamba_ssm') return tensors;
  const out = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) out.set(k === EMBEDDING ? MAMBA_SSM_EMBEDDING : k, t);
  const emb = tensors.get(EMBEDDING);
  if (config.task === 'lm' && config.tie_embeddings && emb && !out.has(LM_HEAD)) out.set(LM_HEAD, emb);
  return out;
}

/** Our tokenizer files fit a folder whose vocabulary is its domain's own. */
function hasOurVocabulary(c: MambaConfig): boolean {
  return c.vocab_size === defaultVocab(c.domain) && derived(c).paddedVocab === c.vocab_size;
}

export interface WriteFolderOptions {
  layout?: FolderLayout;
  metadata?: Record<string, string>;
  /** the tool named in config.json's mamba_seq block */
  tool?: string;
}

/**
 * Writes config.json, model.safetensors and (for our vocabularies) tokenizer.json + tokenizer_config.json,
 * each atomically. Tensors are under our names and written in the given order and dtypes.
 */
export function writeFolder(
  dir: string,
  config: MambaConfig,
  tensors: Map<string, SafeTensor>,
  opts: WriteFolderOptions = {},
): string[] {
  const layout = opts.layout ?? 'ours';
  const dtype = tensors.get(EMBEDDING)?.dtype ?? 'F32';
  writeSafetensors(join(dir, MODEL_FILE), layoutTensors(tensors, config, layout), { format: 'pt', ...opts.metadata });
  const json = configToJSON(config, layout, { dtype, ...(opts.tool ? { tool: opts.tool } : {}) });
  writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(json, null, 2)}\n`);
  const files = [MODEL_FILE, CONFIG_FILE];
  if (layout !== 'mamba_ssm' && hasOurVocabulary(config)) {
    const pretty = (o: unknown) => `${JSON.stringify(o, null, 2)}\n`;
    writeFileAtomic(join(dir, TOKENIZER_FILE), pretty(tokenizerJSON(config.domain)));
    writeFileAtomic(join(dir, TOKENIZER_CONFIG_FILE), pretty(tokenizerConfigJSON(config.domain)));
    files.push(TOKENIZER_FILE, TOKENIZER_CONFIG_FILE);
  }
  return files;
}

/** Tokenizer and generation files of a foreign folder that a converted copy should keep. */
export function tokenizerFilesOf(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const kept = /^(tokenizer.*|special_tokens_map|vocab|merges|generation_config)\.(json|txt|model)$/;
  return readdirSync(dir)
    .filter((f) => kept.test(f))
    .sort();
}

/**
 * A model config file given to `train --config`: our fields, or a config.json of any layout. Every field is
 * checked against its bounds (config.ts) and errors name the file.
 */
export function readModelConfigFile(path: string): Partial<MambaConfig> {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such file`);
  let obj: unknown;
  try {
    obj = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${oneLine((e as Error).message)})`);
  }
  try {
    // our fields (d_model, n_layer, ...: a hand-written config reads as the mamba_ssm layout), HF's, or a run's
    return parseConfigJSON(obj).config;
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError(`${path}: ${e.message}`);
    throw e;
  }
}

/**
 * Data commands feed a model its domain's token ids (DNA 0..15, audio 0..255): a checkpoint with a smaller
 * vocabulary (an imported one, e.g.) would meet ids it has no embedding for, so it is refused up front.
 * `generate` also writes the ids the model samples, so there (`exact`) a larger vocabulary is refused too.
 */
export function checkVocabularyFits(config: MambaConfig, domain: Domain, dir: string, exact = false): void {
  const need = defaultVocab(domain);
  const what = domain === 'dna' ? 'DNA' : 'audio';
  const advice = 'train one on this data, or fine-tune from it with train --init';
  if (config.vocab_size < need) {
    throw new CheckpointError(
      `${dir}: its vocabulary has ${config.vocab_size} tokens, ${what} data uses ids ` +
        `0..${need - 1} (vocab_size ${need}); ${advice}`,
    );
  }
  if (exact && config.vocab_size !== need) {
    throw new CheckpointError(
      `${dir}: its vocabulary has ${config.vocab_size} tokens, not the ${need} of ${what}: ` +
        `ids it samples past ${need - 1} could not be written as ${what}; ${advice}`,
    );
  }
}

/**
 * Fine-tuning: copies a folder's backbone (any layout) into `model`. The dimensions must match; an embedding
 * of another vocabulary (an imported checkpoint) is left freshly initialised and reported in `skipped`.
 */
export function copyBackbone(model: MambaModel, dir: string): { copied: number; skipped: string[] } {
  const parsed = readFolderConfig(dir, { domain: model.config.domain });
  const src = parsed.config,
    c = model.config;
  for (const k of ['d_model', 'n_layer', 'd_state', 'd_conv', 'expand'] as const) {
    if (src[k] !== c[k]) {
      const msg = `its ${k} is ${src[k]}, the new model's is ${c[k]}; use the same --preset/--config`;
      throw new CheckpointError(`${dir}: ${msg}`);
    }
  }
  if (derived(src).dtRank !== derived(c).dtRank) {
    const [a, b] = [derived(src).dtRank, derived(c).dtRank];
    throw new CheckpointError(`${dir}: its dt_rank is ${a}, the new model's is ${b}; use the same --config`);
  }
  const tensors = readFolderTensors(dir, parsed);
  const skipped: string[] = [];
  let copied = 0;
  for (const p of model.parameters()) {
    if (!p.name.startsWith('backbone.')) continue;
    const t = tensors.get(p.name);
    if (!t) throw new CheckpointError(`${dir}: tensor ${p.name} is missing`);
    if (t.data.length !== p.value.numel) {
      if (p.name === EMBEDDING) {
        const [have, need] = [t.shape.join(', '), p.value.shape.join(', ')];
        skipped.push(`${p.name} (shape [${have}], the new model's vocabulary needs [${need}])`);
        continue;
      }
      const n = t.data.length;
      throw new CheckpointError(`${dir}: tensor ${p.name} has ${n} values, the model needs ${p.value.numel}`);
    }
    const v = safeToFloat64(t);
    p.value.copyFrom(Tensor.from(p.value.dtype === 'f64' ? v : Float32Array.from(v), p.value.shape));
    copied++;
  }
  model.invalidate();
  return { copied, skipped };
}

/** Whether a folder has weights in some form (safetensors, shards, or a pickle that loading will explain). */
export function hasWeightFiles(dir: string): boolean {
  return [MODEL_FILE, INDEX_FILE, ...PICKLES].some((f) => existsSync(join(dir, f)));
}
