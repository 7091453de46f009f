// `mamba-dna variants`: zero-shot log-likelihood ratios of the SNVs and short indels of a VCF against a
// reference FASTA (src/workflows/variants.ts), written as an INFO field (Number=A) of an otherwise
// unchanged VCF, or as a TSV. Records are read, scored and written in blocks, so memory stays bounded.
import { Command } from 'commander';
import { resolve } from 'node:path';
import { IndexedFasta } from '../data/dna/index.js';
import { DnaDataError } from '../data/dna/errors.js';
import { formatVcfRecord, isSequenceAllele, parseVcfRecord, readVcfLines, type VcfRecord } from '../data/dna/vcf.js';
import type { MambaLM } from '../model/model.js';
import { AtomicOutput } from '../util/text-output.js';
import { STDIO, outputPath } from './output.js';
import { defaultBatchTokens } from '../workflows/likelihood.js';
import { alleleLLRs, trimAlleles, type AlleleChange } from '../workflows/variants.js';
import { choiceOption, parseIntArg, withExamples, type Registrar } from './common.js';
import { asUserErrors } from './errors.js';
import { asLm, checkOutput, loadForInference, precisionOption, trainedSeqLen } from './inference.js';

interface VariantsFlags {
  checkpoint: string;
  fasta: string;
  vcf: string;
  context?: number;
  span?: number;
  strand: 'forward' | 'both';
  format: 'vcf' | 'tsv';
  maxAllele: number;
  batchTokens?: number;
  out: string;
  force?: boolean;
  device: 'auto' | 'cpu' | 'cuda';
  precision?: 'f32' | 'bf16';
}

export const LLR_KEY = 'MAMBA_LLR';
export const MISMATCH_FILTER = 'MAMBA_REF_MISMATCH';

/** Why an ALT got no value. */
type Status = 'scored' | 'ref_mismatch' | 'not_sequence' | 'too_long' | 'no_contig';

interface Pending {
  record: VcfRecord;
  status: Status[];
  values: (number | undefined)[];
  mismatch: boolean;
}

function formatLlr(v: number | undefined): string {
  return v === undefined ? '.' : Number(v.toFixed(4)).toString();
}

async function variants(f: VariantsFlags): Promise<void> {
  const ctx = { domain: 'dna' as const, name: 'mamba-dna' };
  // `-o -` is standard output (text), as in samtools and bcftools
  const out = outputPath(f.out);
  checkOutput(out, f.force);
  const vcfPath = resolve(f.vcf);
  const loaded = await loadForInference(ctx, resolve(f.checkpoint), f.device, 'lm', f.precision);
  const model = asLm(loaded);
  const N = f.context ?? trainedSeqLen(loaded.dir) ?? 1024;
  const fasta = await asUserErrors(() => IndexedFasta.open(resolve(f.fasta), {}));
  const writer = new AtomicOutput(out);
  const opts = {
    context: N,
    span: f.span,
    strand: f.strand,
    batchTokens: f.batchTokens ?? defaultBatchTokens(loaded.model),
  };
  const counts = { records: 0, alleles: 0, scored: 0, mismatch: 0, noContig: 0, notSequence: 0, tooLong: 0 };
  const t0 = Date.now();
  try {
    await asUserErrors(async () => {
      let sawChrom = false;
      let block: Pending[] = [];
      const flush = () => {
        scoreBlock(model, fasta, block, opts);
        for (const p of block) writeRecord(writer, p, f.format);
        block = [];
      };
      if (f.format === 'tsv') writer.write('#chrom\tpos\tid\tref\talt\tllr_bits\tstatus\n');
      for await (const line of readVcfLines(vcfPath)) {
        if (line.text.startsWith('##')) {
          // an earlier run's header lines for our keys are replaced by this run's
          if (
            line.text.startsWith(`##INFO=<ID=${LLR_KEY},`) ||
            line.text.startsWith(`##FILTER=<ID=${MISMATCH_FILTER},`)
          )
            continue;
          if (sawChrom)
            throw new DnaDataError(`${vcfPath}: line ${line.lineNo}: a ## header line after the #CHROM line`);
          if (f.format === 'vcf') writer.write(`${line.text}\n`);
          continue;
        }
        if (line.text.startsWith('#')) {
          if (!line.text.startsWith('#CHROM'))
            throw new DnaDataError(
              `${vcfPath}: line ${line.lineNo}: a header line starting '#' that is not '##...' or '#CHROM...'`,
            );
          if (f.format === 'vcf') writer.write(headerLines(N, f, loaded.dir) + `${line.text}\n`);
          sawChrom = true;
          continue;
        }
        if (!sawChrom)
          throw new DnaDataError(
            `${vcfPath}: line ${line.lineNo}: a record before the #CHROM header line (is this a VCF?)`,
          );
        const record = parseVcfRecord(line, vcfPath);
        block.push(classify(record, fasta, f.maxAllele, counts));
        // blocks of about 2^25 window tokens (the windows' tokens are held until the block is scored)
        if (block.length >= Math.max(16, Math.min(4096, 2 ** 25 / (N + 1)))) flush();
      }
      if (!sawChrom) throw new DnaDataError(`${vcfPath}: no #CHROM header line (is this a VCF?)`);
      flush();
    });
    writer.close();
  } catch (e) {
    writer.abort();
    throw e;
  } finally {
    fasta.close();
  }
  const secs = (Date.now() - t0) / 1000;
  const rate = counts.scored / Math.max(secs, 1e-3);
  process.stderr.write(
    `${counts.records} records, ${counts.alleles} ALT alleles: ${counts.scored} scored in ${secs.toFixed(1)} s ` +
      `(${rate >= 100 ? Math.round(rate).toLocaleString('en-US') : rate.toPrecision(3)} per s on ${loaded.device}, N=${N}); ` +
      `${counts.mismatch} records with a REF that does not match ${f.fasta} (FILTER ${MISMATCH_FILTER}); ` +
      `${counts.noContig} on contigs not in the FASTA; ${counts.notSequence} symbolic or non-base ALTs; ` +
      `${counts.tooLong} longer than --max-allele ${f.maxAllele}\n`,
  );
  if (out !== STDIO) console.log(`wrote ${out}`);
}

function headerLines(N: number, f: VariantsFlags, dir: string): string {
  const H = Math.floor(N / 2),
    S = Math.min(H, f.span ?? H);
  const strand = f.strand === 'both' ? '; mean of the forward and reverse-complement LLRs' : '';
  return (
    `##INFO=<ID=${LLR_KEY},Number=A,Type=Float,Description="Log-likelihood ratio log2 P(alt window) - log2 P(ref window) ` +
    `in bits (mamba-dna variants, N=${N}${strand}): alleles trimmed of shared leading then trailing bases; window = ${H} reference ` +
    `bases before the change, the allele, ${S} reference bases after REF; summed over the allele and the ${S} bases after it ` +
    `(${S === H ? 'the bases whose context the variant changes' : `--span ${S}`}${f.strand === 'both' ? '; on the reverse strand the same with the flanks swapped' : ''}). Positive = the model finds ALT more likely. '.' = not scored: ` +
    `symbolic or non-base ALT, REF not matching the FASTA, contig not in the FASTA, or an allele over ${f.maxAllele} bases">\n` +
    `##FILTER=<ID=${MISMATCH_FILTER},Description="REF does not match the reference FASTA given to mamba-dna variants">\n` +
    `##mamba_variants=<checkpoint="${dir}",fasta="${resolve(f.fasta)}",context=${N},span=${S},strand=${f.strand}>\n`
  );
}

/** Decides per ALT whether it can be scored: REF checked against the FASTA, ALT a short base sequence. */
function classify(record: VcfRecord, fasta: IndexedFasta, maxAllele: number, counts: Record<string, number>): Pending {
  counts.records!++;
  counts.alleles! += record.alts.length;
  const p: Pending = { record, status: [], values: record.alts.map(() => undefined), mismatch: false };
  if (!fasta.has(record.chrom)) {
    counts.noContig!++;
    p.status = record.alts.map(() => 'no_contig');
    return p;
  }
  const rec = fasta.record(record.chrom);
  const start = record.pos - 1,
    end = start + record.ref.length;
  if (end > rec.length) p.mismatch = true;
  else {
    const bases = fasta.bases(rec, start, end).toString('latin1').toUpperCase();
    const ref = record.ref.toUpperCase();
    for (let i = 0; i < ref.length && !p.mismatch; i++) if (ref[i] !== 'N' && ref[i] !== bases[i]) p.mismatch = true;
  }
  if (p.mismatch) counts.mismatch!++;
  p.status = record.alts.map((a) => {
    if (p.mismatch) return 'ref_mismatch';
    if (!isSequenceAllele(a)) return (counts.notSequence!++, 'not_sequence');
    if (a.length > maxAllele || record.ref.length > maxAllele) return (counts.tooLong!++, 'too_long');
    return (counts.scored!++, 'scored');
  });
  return p;
}

/** Fills the values of the scorable ALTs of a block, one batched computation per contig. */
function scoreBlock(
  model: MambaLM,
  fasta: IndexedFasta,
  block: Pending[],
  opts: Parameters<typeof alleleLLRs>[3],
): void {
  const byChrom = new Map<string, { p: Pending; k: number; change: AlleleChange }[]>();
  for (const p of block) {
    p.status.forEach((s, k) => {
      if (s !== 'scored') return;
      const r = p.record;
      const list = byChrom.get(r.chrom) ?? [];
      list.push({ p, k, change: trimAlleles(r.pos, r.ref, r.alts[k]!) });
      byChrom.set(r.chrom, list);
    });
  }
  for (const [chrom, list] of byChrom) {
    const rec = fasta.record(chrom);
    const seq = { length: rec.length, read: (s: number, e: number) => fasta.tokens(rec, s, e) };
    const llrs = alleleLLRs(
      model,
      seq,
      list.map((x) => x.change),
      opts,
    );
    list.forEach((x, i) => (x.p.values[x.k] = llrs[i]));
  }
}

function writeRecord(w: AtomicOutput, p: Pending, format: 'vcf' | 'tsv'): void {
  const r = p.record;
  if (format === 'vcf') {
    w.write(
      `${formatVcfRecord(r, LLR_KEY, p.values.map(formatLlr).join(','), p.mismatch ? MISMATCH_FILTER : undefined)}\n`,
    );
    return;
  }
  r.alts.forEach((a, k) =>
    w.write(`${r.chrom}\t${r.pos}\t${r.id}\t${r.ref}\t${a}\t${formatLlr(p.values[k])}\t${p.status[k]}\n`),
  );
}

export const registerVariants: Registrar = (program) => {
  const cmd = new Command('variants')
    .description(
      'zero-shot variant effect scores: log2 P(alt window) - log2 P(ref window) of every SNV and short indel ' +
        `of a VCF, written as INFO/${LLR_KEY} (Number=A) with all else unchanged, or as TSV`,
    )
    .requiredOption('--checkpoint <dir>', 'run folder of a next-token (lm) model')
    .requiredOption('--fasta <file>', "reference FASTA (plain or bgzip) in the VCF's coordinates")
    .requiredOption('--vcf <file>', 'input VCF (plain, gzip or bgzip; 1-based POS)')
    .option(
      '--context <n>',
      'N: the window is N/2 bases before the variant, the allele, N/2 after (default: the ' +
        'training sequence length)',
      parseIntArg(2, 2 ** 24),
    )
    .option(
      '--span <n>',
      'bases after the change (before it, on the reverse strand) whose log-probabilities the LLR sums ' +
        '(default: N/2, every base the change can reach in the window)',
      parseIntArg(0, 2 ** 23),
    )
    .addOption(
      choiceOption(
        '--strand <s>',
        'forward, or both: mean of the forward and reverse-complement LLRs',
        ['forward', 'both'],
        'forward',
      ),
    )
    .addOption(
      choiceOption(
        '--format <f>',
        'vcf (the input with an INFO field) or tsv (one line per ALT)',
        ['vcf', 'tsv'],
        'vcf',
      ),
    )
    .option(
      '--max-allele <n>',
      "longest REF or ALT scored, in bases (longer ones get '.')",
      parseIntArg(1, 1 << 20),
      100,
    )
    .option(
      '--batch-tokens <n>',
      'tokens per forward pass (default on a GPU: as many as half its free memory holds, 2^16 to 2^23; 2^15 on the CPU)',
      parseIntArg(2, 2 ** 28),
    )
    .requiredOption('-o, --out <file>', 'output VCF (or TSV; - for standard output)')
    .option('--force', 'overwrite the output file')
    .addOption(choiceOption('--device <device>', 'where to compute', ['auto', 'cpu', 'cuda'], 'auto'))
    .addOption(precisionOption())
    .action((opts: VariantsFlags) => variants(opts));
  program.addCommand(
    withExamples(cmd, [
      'mamba-dna variants --checkpoint runs/my-run --fasta genome.fa.gz --vcf calls.vcf.gz --context 2^12 -o scored.vcf',
      'mamba-dna variants --checkpoint runs/my-run --fasta genome.fa.gz --vcf calls.vcf --strand both --format tsv -o llr.tsv',
      'mamba-dna variants --checkpoint runs/my-run --fasta genome.fa.gz --vcf snvs.vcf --span 64 --precision f32 -o scored.vcf',
    ]),
  );
};
