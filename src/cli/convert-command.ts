// `convert`: a model folder from one layout to another (ours, hf = transformers, mamba_ssm), optionally to
// another dtype, then read back and compared tensor by tensor, bit for bit, before it reports success.
import { Command } from 'commander';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  FOLDER_LAYOUTS,
  bytesOf,
  castValues,
  createModel,
  derived,
  loadTensorsInto,
  readFolderConfig,
  readFolderTensors,
  safeToFloat64,
  tokenizerFilesOf,
  writeFolder,
  type FolderLayout,
  type MambaConfig,
  type SafeDType,
  type SafeTensor,
} from '../model/index.js';
import { choiceOption, withExamples, type CliContext, type Registrar } from './common.js';
import { UserError, asUserErrors } from './errors.js';

interface ConvertFlags {
  layout: FolderLayout;
  dtype: 'keep' | 'f32' | 'bf16';
  force?: boolean;
}

const DTYPES: Record<'f32' | 'bf16', SafeDType> = { f32: 'F32', bf16: 'BF16' };

function cast(tensors: Map<string, SafeTensor>, dtype: SafeDType | undefined): Map<string, SafeTensor> {
  if (!dtype) return tensors;
  const out = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) {
    const same = t.dtype === dtype || t.dtype === 'I32';
    out.set(k, same ? t : { dtype, shape: t.shape, data: castValues(safeToFloat64(t), dtype) });
  }
  return out;
}

/** The config as the model sees it: resolved dt_rank and padded vocabulary (layouts spell them differently). */
function essence(c: MambaConfig): Record<string, unknown> {
  const d = derived(c);
  return {
    d_model: c.d_model,
    n_layer: c.n_layer,
    vocab_size: c.vocab_size,
    rows: d.paddedVocab,
    d_state: c.d_state,
    d_conv: c.d_conv,
    expand: c.expand,
    dt_rank: d.dtRank,
    norm_epsilon: c.norm_epsilon,
    tie_embeddings: c.tie_embeddings,
    domain: c.domain,
    task: c.task,
    ...(c.task === 'classify' ? { num_classes: c.num_classes, pooling: c.pooling } : {}),
  };
}

function sameBits(a: SafeTensor, b: SafeTensor): boolean {
  const sameShape = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  if (a.dtype !== b.dtype || !sameShape) return false;
  const x = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return x.equals(y);
}

/** Reads `out` back and compares config and every tensor with what was meant to be written. */
function verify(
  out: string,
  domain: CliContext['domain'],
  config: MambaConfig,
  written: Map<string, SafeTensor>,
): void {
  const back = readFolderConfig(out, { domain });
  const want = JSON.stringify(essence(config)),
    got = JSON.stringify(essence(back.config));
  if (want !== got) throw new UserError(`${out}: the config read back differs from the source (${got} vs ${want})`);
  const tensors = readFolderTensors(out, back);
  for (const [k, t] of written) {
    const b = tensors.get(k);
    if (!b) throw new UserError(`${out}: tensor ${k} is missing when read back`);
    if (!sameBits(t, b)) throw new UserError(`${out}: tensor ${k} does not read back bit for bit`);
  }
  for (const k of tensors.keys()) {
    if (!written.has(k)) throw new UserError(`${out}: unexpected tensor ${k} when read back`);
  }
}

async function convert(ctx: CliContext, input: string, output: string, f: ConvertFlags): Promise<void> {
  const src = resolve(input),
    out = resolve(output);
  if (!existsSync(src) || !statSync(src).isDirectory()) throw new UserError(`${src}: no such model folder`);
  if (src === out) throw new UserError(`${out}: the output folder must differ from the input`);
  if (existsSync(out) && (!statSync(out).isDirectory() || (readdirSync(out).length > 0 && !f.force))) {
    throw new UserError(`${out} already exists and is not an empty folder; use --force to write into it`);
  }
  const parsed = await asUserErrors(() => readFolderConfig(src, { domain: ctx.domain }));
  const config = parsed.config;
  if (config.domain !== ctx.domain) {
    throw new UserError(`${src} holds a ${config.domain} model; use mamba-${config.domain}, not ${ctx.name}`);
  }
  if (f.layout === 'mamba_ssm' && config.norm_epsilon !== 1e-5) {
    const eps = config.norm_epsilon;
    throw new UserError(`${src}: norm_epsilon is ${eps}; mamba_ssm has no such field (it uses 1e-5): use --layout hf`);
  }
  const tensors = await asUserErrors(() => readFolderTensors(src, parsed));
  // every tensor must be one the model has, in the shape it needs (a CPU model of the config checks it)
  await asUserErrors(() => {
    const model = createModel(config, { device: 'cpu' });
    try {
      loadTensorsInto(model, tensors, src);
    } finally {
      model.dispose();
    }
  });
  const written = cast(tensors, f.dtype === 'keep' ? undefined : DTYPES[f.dtype]);
  mkdirSync(out, { recursive: true });
  const opts = { layout: f.layout, tool: ctx.name, metadata: { converted_from: parsed.layout } };
  const files = await asUserErrors(() => writeFolder(out, config, written, opts));
  // a foreign folder's own tokenizer goes along when ours does not describe its vocabulary
  if (!files.includes('tokenizer.json') && f.layout !== 'mamba_ssm') {
    for (const t of tokenizerFilesOf(src)) copyFileSync(join(src, t), join(out, t));
  }
  await asUserErrors(() => verify(out, ctx.domain, config, written));
  const dtypes = [...new Set([...written.values()].map((t) => t.dtype))].join(', ');
  const mib = (bytesOf(written) / 2 ** 20).toFixed(2);
  console.log(
    `${src} (${parsed.layout}: ${parsed.source}) -> ${out} (${f.layout}, ${dtypes}): ` +
      `${written.size} tensors, ${mib} MiB, read back bit for bit`,
  );
}

export const registerConvert: Registrar = (program, ctx) => {
  const cmd = new Command('convert')
    .description(
      'copy a model folder into another layout: ours (a run folder), hf (transformers ' +
        'MambaForCausalLM), mamba_ssm; reads any of them, sharded and F32/BF16/F16 included',
    )
    .argument('<input>', 'model or run folder (config.json + model.safetensors, or shards + index)')
    .argument('<output>', 'folder to write')
    .addOption(choiceOption('--layout <layout>', 'layout to write', FOLDER_LAYOUTS, 'ours'))
    .addOption(
      choiceOption('--dtype <dtype>', 'tensor dtype to write (keep: as stored)', ['keep', 'f32', 'bf16'], 'keep'),
    )
    .option('--force', 'write into an existing non-empty output folder')
    .action((input: string, output: string, opts: ConvertFlags) => convert(ctx, input, output, opts));
  program.addCommand(
    withExamples(cmd, [
      `${ctx.name} convert runs/my-run exported --layout hf --dtype bf16`,
      `${ctx.name} convert mamba-130m-hf imported`,
    ]),
  );
};
