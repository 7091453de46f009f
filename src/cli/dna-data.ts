// The data commands of mamba-dna: index, region, tokenize, dataset. Errors from the data layer become
// one-line user errors (exit 1); nothing is left half-written (outputs go through src/cli/output.ts).
import type { Command } from 'commander';
import { basename } from 'node:path';
import { FastaReader } from '../data/dna/fasta-reader.js';
import { IndexedFasta, indexFasta } from '../data/dna/indexed.js';
import { formatFastaRecord, parseRegion, readBed, type Region } from '../data/dna/regions.js';
import { buildDataset, GREAT_APES_DESCRIPTION, RECIPES } from '../data/dna/datasets.js';
import { parseIntArg, withExamples, type Registrar } from './common.js';
import { UserError, asUserErrors } from './errors.js';
import { inputName, localInput, refuseStreamInput } from './input.js';
import { STDIO, checkOutput, checkOutputFolder, outputName, writeOutput } from './output.js';

/** Regions of a FASTA; past a record's end they are cut and warned about on stderr, as samtools faidx does. */
function regionsOf(fa: IndexedFasta | FastaReader, regions: string[], bed?: string): Region[] {
  const out = regions.map((r) => parseRegion(r, fa, { clip: true }));
  if (bed) out.push(...readBed(bed, fa));
  return out;
}

/** samtools faidx's own words for a cut region, so scripts that look for them keep working. */
function warnClipped(r: Region): void {
  if (r.clipped === 'truncated') process.stderr.write(`[faidx] Truncated sequence: ${r.label}\n`);
  if (r.clipped === 'empty') process.stderr.write(`[faidx] Zero length sequence: ${r.label}\n`);
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
            refuseStreamInput(f, 'index writes FILE.fai next to a FASTA file');
            const r = indexFasta(f);
            const bases = r.records.reduce((a, x) => a + x.length, 0);
            process.stderr.write(
              `${f}: ${r.records.length} record${r.records.length === 1 ? '' : 's'}, ${bases.toLocaleString('en-US')} bases -> ${basename(r.faiPath)}${r.gziPath ? `, ${basename(r.gziPath)}` : ''}\n`,
            );
          }
        }),
      ),
    [
      'mamba-dna index genome.fa',
      'mamba-dna index genome.fa.gz    # bgzip: writes genome.fa.gz.fai and genome.fa.gz.gzi',
    ],
  );

  withExamples(
    program
      .command('region')
      .description(
        'print regions as FASTA, exactly as `samtools faidx FILE REGION...` does (header >REGION, 60 bases per line)',
      )
      .argument('<file>', 'FASTA file, plain or bgzip (indexed on the fly if the .fai is missing)')
      .argument('[region...]', 'chr, chr:start-end or chr:start (1-based, inclusive; commas allowed)')
      .option('--bed <file>', 'also print the intervals of a BED file (0-based, half-open)')
      .option('-n, --width <n>', 'bases per output line', parseIntArg(1), 60)
      .option('-o, --out <file>', 'write the FASTA to a file instead of stdout (- is stdout)', STDIO)
      .option('-f, --force', 'overwrite an existing output file')
      .action((file: string, regions: string[], o: { bed?: string; width: number; out: string; force?: boolean }) =>
        asUserErrors(async () => {
          if (regions.length === 0 && !o.bed) throw new UserError('give at least one region or --bed FILE');
          refuseStreamInput(file, 'region needs an indexed FASTA (it reads parts of it through its .fai)');
          checkOutput(o.out, { force: o.force });
          // the general random-access reader (@gmod/indexedfasta, CRC-checked bgzip blocks)
          const fa = await FastaReader.open(file);
          try {
            const texts: string[] = [];
            for (const r of regionsOf(fa, regions, o.bed)) {
              warnClipped(r);
              const bases = Buffer.from(await fa.getSequence(r.name, r.start, r.end), 'latin1');
              const text = formatFastaRecord(r.label, bases, o.width);
              // stdout streams record by record; a file is written once, whole
              if (o.out === STDIO) await writeOutput(STDIO, text);
              else texts.push(text);
            }
            if (o.out !== STDIO) await writeOutput(o.out, texts.join(''));
          } finally {
            await fa.close();
          }
        }),
      ),
    [
      'mamba-dna region genome.fa chr1:1,000-2,000 chr2',
      'mamba-dna region genome.fa.gz --bed peaks.bed > peaks.fa',
      'mamba-dna region genome.fa.gz chr1:1-5,000 | mamba-dna predict --checkpoint runs/cls -',
    ],
  );

  withExamples(
    program
      .command('tokenize')
      .description(
        'write the raw token bytes of a region (0 PAD 1 BOS 2 EOS 3 MASK 4 A 5 C 6 G 7 T 8 N; 9-13 a c g t n with --keep-case)',
      )
      .argument('<file>', 'FASTA file, plain, gzip or bgzip; - reads stdin')
      .argument('<region>', 'chr, chr:start-end or chr:start (1-based, inclusive)')
      .option('-o, --out <path>', 'output file (one byte per base); - or no -o: stdout', STDIO)
      .option('--keep-case', 'keep soft-masked lowercase bases as tokens 9-13')
      .option('-f, --force', 'overwrite an existing output file')
      .action((file: string, region: string, o: { out: string; keepCase?: boolean; force?: boolean }) =>
        asUserErrors(async () => {
          checkOutput(o.out, { force: o.force, binary: true });
          const fa = IndexedFasta.open(await localInput(file, { gunzip: true, name: 'stdin.fa' }));
          try {
            const r = parseRegion(region, fa);
            const t = fa.tokens(r.name, r.start, r.end, { keepCase: !!o.keepCase });
            await writeOutput(o.out, t);
            process.stderr.write(
              `${inputName(file)} ${r.label}: ${t.length.toLocaleString('en-US')} tokens -> ${outputName(o.out)}\n`,
            );
          } finally {
            fa.close();
          }
        }),
      ),
    [
      'mamba-dna tokenize genome.fa chr1:1-1,048,576 -o chr1.tok',
      'zcat genome.fa.gz | mamba-dna tokenize - chr1 > chr1.tok',
    ],
  );

  const dataset = withExamples(
    program.command('dataset').description('build the DNA datasets from their recipes (list, build)'),
    ['mamba-dna dataset list', 'mamba-dna dataset build species --out data/species'],
  );
  withExamples(
    dataset
      .command('build')
      .description(
        'build a dataset recipe (see `mamba-dna dataset list`) into --out: bgzip FASTA + .fai + .gzi per genome, and manifest.json for labelled sets',
      )
      .argument('<name>', `recipe: ${[...Object.keys(RECIPES), 'great-apes'].join(', ')}`)
      .requiredOption('--out <dir>', 'output folder (must be empty or new unless --force)')
      .option('-f, --force', 'replace a non-empty output folder')
      .option('--maf <path>', 'great-apes: the MAF alignment to read (default: the file maffilter-examples installs)')
      .action((name: string, o: { out: string; force?: boolean; maf?: string }) =>
        asUserErrors(async () => {
          if (o.maf && name !== 'great-apes') throw new UserError(`--maf is for the great-apes recipe, not ${name}`);
          checkOutputFolder(o.out);
          await buildDataset(name, o.out, {
            force: !!o.force,
            log: (l) => process.stderr.write(`${l}\n`),
            ...(o.maf ? { maf: o.maf } : {}),
          });
        }),
      ),
    [
      'mamba-dna dataset build species --out data/species',
      'mamba-dna dataset build h_pylori --out data/h_pylori --force',
      'mamba-dna dataset build great-apes --out data/great-apes',
      'mamba-dna dataset build great-apes --out data/great-apes --maf chr22.maf.gz',
    ],
  );
  withExamples(
    dataset
      .command('list')
      .description('list the dataset recipes')
      .action(() => {
        for (const [k, v] of Object.entries(RECIPES)) process.stdout.write(`${k}\t${v.description}\n`);
        process.stdout.write(`great-apes\t${GREAT_APES_DESCRIPTION}\n`);
      }),
    ['mamba-dna dataset list'],
  );
};
