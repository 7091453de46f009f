// `mamba-dna embed`: one d_model vector per FASTA record, region or BED interval (or per base with
// --pool none) from a trained backbone, as .npy (streamed) or .safetensors, with a TSV of names and
// shapes beside it. Shared with `mamba-audio embed` through writeEmbeddings.
import { Command } from 'commander';
import { resolve } from 'node:path';
import { IndexedFasta, reverseComplement } from '../data/dna/index.js';
import { encodeSafetensors, writeFileAtomic, type SafeTensor } from '../model/checkpoint.js';
import type { MambaModel } from '../model/model.js';
import { NpyWriter } from '../util/npy.js';
import { AtomicOutput } from '../util/text-output.js';
import { defaultBatchTokens } from '../workflows/likelihood.js';
import { embedItems, type EmbedItem, type EmbedOptions, type Pool } from '../workflows/embed.js';
import { choiceOption, parseIntArg, withExamples, type Registrar } from './common.js';
import { UsageError, asUserErrors } from './errors.js';
import { checkOutput, loadForInference, precisionOption, regionsOf, trainedSeqLen } from './inference.js';

interface EmbedFlags {
  checkpoint: string;
  bed?: string;
  pool: Pool;
  strand: 'forward' | 'both';
  window?: number;
  batchTokens?: number;
  out: string;
  force?: boolean;
  device: 'auto' | 'cpu' | 'cuda';
  precision?: 'f32' | 'bf16';
}

/** The TSV that goes beside an embeddings file: out.npy -> out.tsv. */
export function embeddingsTsvPath(out: string): string {
  return out.replace(/\.(npy|safetensors)$/i, '') + '.tsv';
}

export function embeddingsFormat(out: string): 'npy' | 'safetensors' {
  if (/\.npy$/i.test(out)) return 'npy';
  if (/\.safetensors$/i.test(out)) return 'safetensors';
  throw new UsageError(`-o ${out}: the output must end in .npy or .safetensors`);
}

/**
 * Embeds the items and writes them: pooled as one [items, D] array; with pool none as one [sum of lengths, D]
 * array in .npy (the TSV gives each item's first row) or one [length, D] tensor per item in safetensors.
 */
export function writeEmbeddings(
  model: MambaModel,
  items: EmbedItem[],
  o: EmbedOptions,
  out: string,
  meta: Record<string, string>,
): { rows: number; seconds: number } {
  const D = model.config.d_model;
  const format = embeddingsFormat(out);
  const rows = o.pool === 'none' ? items.reduce((a, it) => a + it.length, 0) : items.length;
  const tsv = new AtomicOutput(embeddingsTsvPath(out));
  const npy = format === 'npy' ? new NpyWriter(out, [rows, D]) : undefined;
  const tensors = new Map<string, SafeTensor>();
  const pooled = o.pool === 'none' ? undefined : new Float32Array(items.length * D);
  const t0 = Date.now();
  try {
    tsv.write(o.pool === 'none' ? 'index\tname\tlength\tshape\tfirst_row\n' : 'index\tname\tlength\tshape\trow\n');
    let i = 0,
      row = 0;
    const used = new Set<string>();
    for (const v of embedItems(model, items, o)) {
      const it = items[i]!;
      const shape = o.pool === 'none' ? [it.length, D] : [D];
      tsv.write(`${i}\t${it.name}\t${it.length}\t${shape.join('x')}\t${row}\n`);
      if (npy) npy.append(v);
      else if (pooled) pooled.set(v, i * D);
      else {
        let key = it.name;
        for (let k = 2; used.has(key); k++) key = `${it.name}#${k}`;
        used.add(key);
        tensors.set(key, { dtype: 'F32', shape, data: v });
      }
      row += o.pool === 'none' ? it.length : 1;
      i++;
    }
    const metadata = {
      ...meta,
      pool: o.pool,
      strand: o.strand,
      window: String(o.window),
      names: JSON.stringify(items.map((it) => it.name)),
    };
    if (npy) npy.close();
    else {
      if (pooled) tensors.set('embeddings', { dtype: 'F32', shape: [items.length, D], data: pooled });
      writeFileAtomic(out, encodeSafetensors(tensors, metadata));
    }
    tsv.close();
  } catch (e) {
    npy?.abort();
    tsv.abort();
    throw e;
  }
  return { rows, seconds: (Date.now() - t0) / 1000 };
}

async function embed(input: string, regionArgs: string[], f: EmbedFlags): Promise<void> {
  const ctx = { domain: 'dna' as const, name: 'mamba-dna' };
  const out = resolve(f.out);
  embeddingsFormat(out);
  checkOutput(out, f.force);
  checkOutput(embeddingsTsvPath(out), f.force);
  const loaded = await loadForInference(ctx, resolve(f.checkpoint), f.device, 'any', f.precision);
  const fasta = await asUserErrors(() => IndexedFasta.open(resolve(input), {}));
  try {
    const regions = await asUserErrors(() => regionsOf(fasta, regionArgs, f.bed));
    const items: EmbedItem[] = regions.map((r) => {
      const rec = fasta.record(r.name);
      return { name: r.label, length: r.end - r.start, read: (s, e) => fasta.tokens(rec, r.start + s, r.start + e) };
    });
    const window = f.window ?? trainedSeqLen(loaded.dir) ?? 1024;
    const o: EmbedOptions = {
      pool: f.pool,
      strand: f.strand,
      window,
      batchTokens: f.batchTokens ?? defaultBatchTokens(loaded.model),
      reverseComplement: (t) => reverseComplement(t),
    };
    const r = await asUserErrors(() =>
      writeEmbeddings(loaded.model, items, o, out, { checkpoint: loaded.dir, input: resolve(input) }),
    );
    const bases = items.reduce((a, it) => a + it.length, 0);
    process.stderr.write(
      `${items.length} items, ${bases} bases in ${r.seconds.toFixed(1)} s ` +
        `(${(items.length / Math.max(r.seconds, 1e-3)).toFixed(1)} items/s, ${Math.round(bases / Math.max(r.seconds, 1e-3))} bases/s on ${loaded.device})\n`,
    );
    console.log(`wrote ${out} [${r.rows}, ${loaded.model.config.d_model}] and ${embeddingsTsvPath(out)}`);
  } finally {
    fasta.close();
  }
}

export const registerEmbed: Registrar = (program) => {
  const cmd = new Command('embed')
    .description(
      'embeddings from a trained backbone (its final normed hidden states): one d_model vector per FASTA ' +
        'record, region or BED interval, or per base with --pool none; .npy or .safetensors plus a TSV of names and shapes',
    )
    .argument('<input>', 'FASTA file (plain or bgzip): its records, or the regions / BED intervals given')
    .argument('[regions...]', 'regions in samtools syntax (chr:start-end, 1-based inclusive)')
    .requiredOption('--checkpoint <dir>', 'run folder (lm or classifier)')
    .option('--bed <file>', 'embed the intervals of this BED file (0-based, half-open)')
    .addOption(
      choiceOption(
        '--pool <p>',
        'mean over positions, last position, or none (a vector per base)',
        ['mean', 'last', 'none'],
        'mean',
      ),
    )
    .addOption(
      choiceOption(
        '--strand <s>',
        'forward, or both: average with the reverse complement, so that ' +
          'embed(x) == embed(RC(x)) (with --pool none: position p of RC(x) gets the vector of base length-1-p of x)',
        ['forward', 'both'],
        'forward',
      ),
    )
    .option(
      '--window <n>',
      'longest forward pass; longer items are cut into windows of n (default: the training length)',
      parseIntArg(1, 2 ** 24),
    )
    .option(
      '--batch-tokens <n>',
      'tokens per forward pass (default on a GPU: as many as half its free memory holds, 2^16 to 2^23; 2^15 on the CPU)',
      parseIntArg(1, 2 ** 28),
    )
    .requiredOption('-o, --out <file>', 'output .npy (float32, numpy.load) or .safetensors (names in the metadata)')
    .option('--force', 'overwrite the output file')
    .addOption(choiceOption('--device <device>', 'where to compute', ['auto', 'cpu', 'cuda'], 'auto'))
    .addOption(precisionOption())
    .action((input: string, regions: string[], opts: EmbedFlags) => embed(input, regions, opts));
  program.addCommand(
    withExamples(cmd, [
      'mamba-dna embed --checkpoint runs/my-run contigs.fa -o contigs.npy',
      'mamba-dna embed --checkpoint runs/my-run genome.fa.gz --bed peaks.bed --strand both -o peaks.safetensors',
    ]),
  );
};
