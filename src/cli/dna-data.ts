// The data commands of mamba-dna: index, region, tokenize, dataset. Errors from the data layer become
// one-line user errors (exit 1); nothing is left half-written (outputs go through a temp file + rename).
import type { Command } from 'commander';
import { basename } from 'node:path';
import { FastaReader } from '../data/dna/fasta-reader.js';
import { IndexedFasta, indexFasta, writeFileAtomic } from '../data/dna/indexed.js';
import { formatFastaRecord, parseRegion, readBed, type Region } from '../data/dna/regions.js';
import { buildDataset, RECIPES } from '../data/dna/datasets.js';
import { parseIntArg, withExamples, type Registrar } from './common.js';
import { UserError, asUserErrors } from './errors.js';


async function write(s: string): Promise<void> {
  if (!process.stdout.write(s)) await new Promise<void>((r) => process.stdout.once('drain', () => r()));
}

function regionsOf(fa: IndexedFasta | FastaReader, regions: string[], bed?: string): Region[] {
  const out = regions.map((r) => parseRegion(r, fa));
  if (bed) out.push(...readBed(bed, fa));
  return out;
}

export const registerDnaData: Registrar = (program: Command) => {
  withExamples(
    program
      .command('index')
      .description('write FILE.fai (as samtools faidx does) and, for bgzip FASTA, FILE.gzi (as bgzip -r does)')
      .argument('<file...>', 'FASTA files, plain or bgzip-compressed')
      .action((files: string[]) =>
        asUserErrors(() => {
          for (const f of files) {
            const r = indexFasta(f);
            const bases = r.records.reduce((a, x) => a + x.length, 0);
            process.stderr.write(`${f}: ${r.records.length} record${r.records.length === 1 ? '' : 's'}, ${bases.toLocaleString('en-US')} bases -> ${basename(r.faiPath)}${r.gziPath ? `, ${basename(r.gziPath)}` : ''}\n`);
          }
        }),
      ),
    ['mamba-dna index genome.fa', 'mamba-dna index genome.fa.gz    # bgzip: writes genome.fa.gz.fai and genome.fa.gz.gzi'],
  );

  withExamples(
    program
      .command('region')
      .description('print regions as FASTA, exactly as `samtools faidx FILE REGION...` does (header >REGION, 60 bases per line)')
      .argument('<file>', 'FASTA file, plain or bgzip (indexed on the fly if the .fai is missing)')
      .argument('[region...]', 'chr, chr:start-end or chr:start (1-based, inclusive; commas allowed)')
      .option('--bed <file>', 'also print the intervals of a BED file (0-based, half-open)')
      .option('-n, --width <n>', 'bases per output line', parseIntArg(1), 60)
      .action((file: string, regions: string[], o: { bed?: string; width: number }) =>
        asUserErrors(async () => {
          if (regions.length === 0 && !o.bed) throw new UserError('give at least one region or --bed FILE');
          // the general random-access reader (@gmod/indexedfasta, CRC-checked bgzip blocks)
          const fa = await FastaReader.open(file);
          try {
            for (const r of regionsOf(fa, regions, o.bed)) {
              const bases = Buffer.from(await fa.getSequence(r.name, r.start, r.end), 'latin1');
              await write(formatFastaRecord(r.label, bases, o.width));
            }
          } finally {
            await fa.close();
          }
        }),
      ),
    ["mamba-dna region genome.fa chr1:1,000-2,000 chr2", 'mamba-dna region genome.fa.gz --bed peaks.bed > peaks.fa'],
  );

  withExamples(
    program
      .command('tokenize')
      .description('write the raw token bytes of a region (0 PAD 1 BOS 2 EOS 3 MASK 4 A 5 C 6 G 7 T 8 N; 9-13 a c g t n with --keep-case)')
      .argument('<file>', 'FASTA file, plain or bgzip')
      .argument('<region>', 'chr, chr:start-end or chr:start (1-based, inclusive)')
      .requiredOption('-o, --out <path>', 'output file (one byte per base)')
      .option('--keep-case', 'keep soft-masked lowercase bases as tokens 9-13')
      .action((file: string, region: string, o: { out: string; keepCase?: boolean }) =>
        asUserErrors(() => {
          const fa = IndexedFasta.open(file);
          try {
            const r = parseRegion(region, fa);
            const t = fa.tokens(r.name, r.start, r.end, { keepCase: !!o.keepCase });
            writeFileAtomic(o.out, t);
            process.stderr.write(`${r.label}: ${t.length.toLocaleString('en-US')} tokens -> ${o.out}\n`);
          } finally {
            fa.close();
          }
        }),
      ),
    ['mamba-dna tokenize genome.fa chr1:1-1,048,576 -o chr1.tok'],
  );

  const dataset = withExamples(program.command('dataset').description('build the DNA datasets from their recipes (list, build)'), [
    'mamba-dna dataset list',
    'mamba-dna dataset build species --out data/species',
  ]);
  withExamples(
    dataset
      .command('build')
      .description('build a dataset recipe (see `mamba-dna dataset list`) into --out: bgzip FASTA + .fai + .gzi per genome, and manifest.json for labelled sets')
      .argument('<name>', `recipe: ${Object.keys(RECIPES).join(' or ')}`)
      .requiredOption('--out <dir>', 'output folder (must be empty or new unless --force)')
      .option('--force', 'replace a non-empty output folder')
      .action((name: string, o: { out: string; force?: boolean }) =>
        asUserErrors(async () => {
          await buildDataset(name, o.out, { force: !!o.force, log: (l) => process.stderr.write(`${l}\n`) });
        }),
      ),
    ['mamba-dna dataset build species --out data/species', 'mamba-dna dataset build h_pylori --out data/h_pylori --force'],
  );
  withExamples(
    dataset
      .command('list')
      .description('list the dataset recipes')
      .action(() => {
        for (const [k, v] of Object.entries(RECIPES)) process.stdout.write(`${k}\t${v.description}\n`);
      }),
    ['mamba-dna dataset list'],
  );
};
