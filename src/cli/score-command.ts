// `mamba-dna score`: a per-base log-likelihood track (bedGraph) of genome regions under a next-token
// model, streamed chunk by chunk (memory does not grow with the region), with a summary per region on
// stderr. The window layout is in src/workflows/track.ts.
import { Command } from 'commander';
import { resolve } from 'node:path';
import { BedGraphWriter } from '../data/dna/bedgraph.js';
import { BedGraphThread } from '../data/dna/bedgraph-thread.js';
import { IndexedFasta, reverseComplement } from '../data/dna/index.js';
import { AtomicOutput } from '../util/text-output.js';
import { STDIO, outputPath } from './output.js';
import { defaultBatchTokens } from '../workflows/likelihood.js';
import { scoreTrack } from '../workflows/track.js';
import { choiceOption, parseIntArg, withExamples, type Registrar } from './common.js';
import { asUserErrors } from './errors.js';
import {
  asLm,
  checkOutput,
  loadForInference,
  precisionOption,
  regionsOf,
  sortAndMergeRegions,
  trainedSeqLen,
} from './inference.js';

interface ScoreFlags {
  checkpoint: string;
  bed?: string;
  context?: number;
  strand: 'forward' | 'both';
  perBase?: boolean;
  decimals: number;
  batchTokens?: number;
  out: string;
  force?: boolean;
  device: 'auto' | 'cpu' | 'cuda';
  precision?: 'f32' | 'bf16';
}

export const SCORE_CONVENTION =
  'value = log2 P(base | up to N bases of left context) in bits: <= 0, higher = more expected by the model';

async function score(genome: string, regionArgs: string[], f: ScoreFlags): Promise<void> {
  const ctx = { domain: 'dna' as const, name: 'mamba-dna' };
  // `-o -` is standard output (text), as in samtools and bcftools
  const out = outputPath(f.out);
  checkOutput(out, f.force);
  const loaded = await loadForInference(ctx, resolve(f.checkpoint), f.device, 'lm', f.precision);
  const model = asLm(loaded);
  const N = f.context ?? trainedSeqLen(loaded.dir) ?? 1024;
  const fasta = await asUserErrors(() => IndexedFasta.open(resolve(genome), {}));
  const writer = new AtomicOutput(out);
  let bedGraph: BedGraphThread | undefined;
  try {
    const regions = await asUserErrors(() => sortAndMergeRegions(regionsOf(fasta, regionArgs, f.bed), fasta));
    const strandText = f.strand === 'both' ? '; mean of both strands' : '';
    // the formatting and writing run on a worker thread, so this one only keeps the forward passes coming
    bedGraph = await BedGraphThread.start(writer.fd, {
      decimals: f.decimals,
      perBase: !!f.perBase,
      header: BedGraphWriter.trackLine('mamba score', `${SCORE_CONVENTION}; N=${N}${strandText}`),
    });
    const bg = bedGraph;
    await asUserErrors(() => scoreRegions(regions, bg));
  } catch (e) {
    // the worker stops before the output is closed, so it cannot write into a closed descriptor
    await bedGraph?.stop();
    writer.abort();
    throw e;
  } finally {
    fasta.close();
    await bedGraph?.stop();
  }

  async function scoreRegions(regions: ReturnType<typeof sortAndMergeRegions>, bg: BedGraphThread): Promise<void> {
    const batchTokens = f.batchTokens ?? defaultBatchTokens(loaded.model);
    const t0 = Date.now();
    let total = 0,
      totalBits = 0;
    for (const region of regions) {
      const rec = fasta.record(region.name);
      const seq = {
        length: rec.length,
        read: (s: number, e: number) => fasta.tokens(rec, s, e),
        reverseComplement: (t: Uint8Array) => reverseComplement(t),
      };
      let n = 0,
        sum = 0;
      const chunks = scoreTrack(model, seq, region.start, region.end, { context: N, strand: f.strand, batchTokens });
      for (const chunk of chunks) {
        // summed before the values are handed (transferred) to the writer thread
        for (const v of chunk.values)
          if (!Number.isNaN(v)) {
            n++;
            sum -= v;
          }
        await bg.add(region.name, chunk.start, chunk.values);
      }
      total += n;
      totalBits += sum;
      process.stderr.write(
        `${region.label}\t${n} bases scored\tmean ${(n ? sum / n : NaN).toFixed(4)} bits per base (-log2 P)\n`,
      );
    }
    await bg.finish();
    writer.close();
    const secs = (Date.now() - t0) / 1000;
    process.stderr.write(
      `all regions\t${total} bases scored\tmean ${(total ? totalBits / total : NaN).toFixed(4)} bits per base (-log2 P)\t` +
        `${secs.toFixed(1)} s, ${Math.round(total / Math.max(secs, 1e-3)).toLocaleString('en-US')} bases/s on ${loaded.device}\n`,
    );
    if (out !== STDIO) console.log(`wrote ${out}`);
  }
}

export const registerScore: Registrar = (program) => {
  const cmd = new Command('score')
    .description(
      'per-base log-likelihood track (bedGraph) of genome regions under a next-token model; ' +
        'a summary line (mean bits per base) per region on stderr',
    )
    .argument('<genome>', 'FASTA file (plain or bgzip; indexed on first use)')
    .argument(
      '[regions...]',
      'regions in samtools syntax (chr, chr:start-end, 1-based inclusive); default: every record',
    )
    .requiredOption('--checkpoint <dir>', 'run folder of a next-token (lm) model')
    .option('--bed <file>', 'also score the intervals of this BED file (0-based, half-open)')
    .option(
      '--context <n>',
      'N: each base is scored given at most N bases of left context and at least N/2 (but the first N ' +
        'of a record, which see all before them), from windows of N + 1 bases overlapping by half; ' +
        'default: the training sequence length',
      parseIntArg(2, 2 ** 24),
    )
    .addOption(
      choiceOption(
        '--strand <s>',
        'forward, or both: also score the reverse complement and average per base',
        ['forward', 'both'],
        'forward',
      ),
    )
    .option('--per-base', 'one bedGraph line per base (default: one line per run of equal rounded values)')
    .option('--decimals <n>', 'decimals of the values', parseIntArg(0, 12), 4)
    .option(
      '--batch-tokens <n>',
      'tokens per forward pass (default on a GPU: as many as half its free memory holds, 2^16 to 2^23; 2^15 on the CPU)',
      parseIntArg(2, 2 ** 28),
    )
    .requiredOption('-o, --out <file>', 'output bedGraph (- for standard output)')
    .option('--force', 'overwrite the output file')
    .addOption(choiceOption('--device <device>', 'where to compute', ['auto', 'cpu', 'cuda'], 'auto'))
    .addOption(precisionOption())
    .addHelpText(
      'after',
      `\nOutput: bedGraph, 0-based half-open, sorted by record order then position; ${SCORE_CONVENTION}. ` +
        "Position 0 of a record has no context and no value (with --strand both it takes the reverse strand's).\n",
    )
    .action((genome: string, regions: string[], opts: ScoreFlags) => score(genome, regions, opts));
  program.addCommand(
    withExamples(cmd, [
      'mamba-dna score --checkpoint runs/my-run genome.fa.gz "chr1:1,000,001-2,000,000" --context 2^16 -o chr1.bedGraph',
      'mamba-dna score --checkpoint runs/my-run genome.fa.gz --bed promoters.bed --strand both --per-base -o promoters.bedGraph',
    ]),
  );
};
