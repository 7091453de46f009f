// Shipped data and dataset recipes. The default run trains on one real genome shipped in the repository
// (H. pylori G27, bgzipped with .fai and .gzi); the species set is built on demand from the complete
// genomes in Debian's ragout-examples and kleborate-examples packages.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../../backend/native.js';
import { BgzfWriter } from './bgzf.js';
import { DnaDataError } from './errors.js';
import { FaiBuilder, formatFai, type FaiRecord } from './fai.js';
import { fileBytes } from './stream.js';

/** The genome the default `mamba-dna train` run uses: H. pylori G27 (NC_011333.1), 1,652,982 bases. */
export const DEFAULT_DNA_DATA = join(packageRoot, 'datasets', 'dna', 'h_pylori', 'G27.fa.gz');

export interface RecipeSource {
  /** class (species) name */
  label: string;
  strain: string;
  split: 'train' | 'valid' | 'test';
  /** file of the Debian example package, relative to one of RECIPE_ROOTS */
  file: string;
  /** public accession(s) of the records, as named in the FASTA headers (or, where the header lacks one, the sequence it is) */
  accession: string;
  description: string;
}

/** Folders where Debian installs the example genomes. */
export const RECIPE_ROOTS = [
  '/usr/share/doc/ragout/examples',
  '/usr/share/doc/ragout-examples/examples',
  '/usr/share/doc/kleborate/examples/data',
  '/usr/share/doc/kleborate-examples/examples/data',
];

const R = (
  label: string,
  strain: string,
  split: RecipeSource['split'],
  file: string,
  accession: string,
  description: string,
): RecipeSource => ({ label, strain, split, file, accession, description });

/** Species classification: every species has at least one strain held out for test (and most one for valid). */
export const SPECIES_RECIPE: readonly RecipeSource[] = [
  R(
    'Escherichia coli',
    'DH1',
    'train',
    'E.Coli/references/DH1.fasta.gz',
    'NC_017625.1',
    'Escherichia coli DH1 chromosome, complete genome',
  ),
  R(
    'Escherichia coli',
    'MG1655-K12',
    'test',
    'E.Coli/references/MG1655-K12.fasta.gz',
    'NC_000913.2',
    'Escherichia coli K-12 MG1655 chromosome (header has no accession; 4,639,675 bp = NC_000913.2 / U00096.2)',
  ),
  R(
    'Helicobacter pylori',
    'ELS37',
    'train',
    'H.Pylori/references/ELS37.fasta.gz',
    'NC_017063.1',
    'Helicobacter pylori ELS37 chromosome, complete genome',
  ),
  R(
    'Helicobacter pylori',
    'Gambia94_24',
    'train',
    'H.Pylori/references/Gambia94_24.fasta.gz',
    'NC_017371.1',
    'Helicobacter pylori Gambia94/24 chromosome, complete genome',
  ),
  R(
    'Helicobacter pylori',
    'Puno120',
    'train',
    'H.Pylori/references/Puno120.fasta.gz',
    'NC_017378.1',
    'Helicobacter pylori Puno120 chromosome, complete genome',
  ),
  R(
    'Helicobacter pylori',
    'SJM180',
    'valid',
    'H.Pylori/references/SJM180.fasta.gz',
    'NC_014560.1',
    'Helicobacter pylori SJM180 chromosome, complete genome',
  ),
  R(
    'Helicobacter pylori',
    'G27',
    'test',
    'H.Pylori/references/G27.fasta.gz',
    'NC_011333.1',
    'Helicobacter pylori G27 chromosome, complete genome',
  ),
  R(
    'Staphylococcus aureus',
    'COL',
    'train',
    'S.Aureus/references/COL.fasta.gz',
    'NC_002951.2',
    'Staphylococcus aureus subsp. aureus COL chromosome, complete genome',
  ),
  R(
    'Staphylococcus aureus',
    'N315',
    'train',
    'S.Aureus/references/N315.fasta.gz',
    'NC_002745.2',
    'Staphylococcus aureus subsp. aureus N315 chromosome, complete genome',
  ),
  R(
    'Staphylococcus aureus',
    'USA300_FPR3757',
    'train',
    'S.Aureus/references/USA300_FPR3757.fasta.gz',
    'NC_007793.1',
    'Staphylococcus aureus subsp. aureus USA300_FPR3757 chromosome, complete genome',
  ),
  R(
    'Staphylococcus aureus',
    'RF122',
    'valid',
    'S.Aureus/references/RF122.fasta.gz',
    'NC_007622.1',
    'Staphylococcus aureus RF122, complete genome',
  ),
  R(
    'Staphylococcus aureus',
    'JKD6008',
    'test',
    'S.Aureus/references/JKD6008.fasta.gz',
    'NC_017341.1',
    'Staphylococcus aureus subsp. aureus str. JKD6008 chromosome, complete genome',
  ),
  R(
    'Vibrio cholerae',
    'O1_biovar_N16961',
    'train',
    'V.Cholerae/references/O1_biovar.fasta.gz',
    'AE003852.1,AE003853.1',
    'Vibrio cholerae O1 biovar eltor str. N16961 chromosomes I and II',
  ),
  R(
    'Vibrio cholerae',
    'O395',
    'train',
    'V.Cholerae/references/O395.fasta.gz',
    'CP001235.1,CP001236.1',
    'Vibrio cholerae O395 chromosomes I and II',
  ),
  R(
    'Vibrio cholerae',
    'H1',
    'valid',
    'V.Cholerae/references/H1.fasta.gz',
    'AKGH01000001.1,AKGH01000002.1',
    'Vibrio cholerae H1 chromosomes 1 and 2 (whole genome shotgun)',
  ),
  R(
    'Vibrio cholerae',
    'O1_Inaba_G4222',
    'test',
    'V.Cholerae/references/O1_Inaba.fasta.gz',
    'CM001785.1,CM001786.1',
    'Vibrio cholerae O1 str. Inaba G4222 chromosomes I and II',
  ),
  R(
    'Klebsiella pneumoniae',
    'HS11286',
    'train',
    'Klebs_HS11286.fna.xz',
    'GCA_000240185.2 (CP003200.1, plasmids CP003223.1-CP003228.1)',
    'Klebsiella pneumoniae subsp. pneumoniae HS11286, complete genome and 6 plasmids',
  ),
  R(
    'Klebsiella pneumoniae',
    'MGH78578',
    'train',
    'MGH78578.fna.xz',
    'GCA_000016305.1 (CP000647.1, plasmids CP000648.1-CP000652.1)',
    'Klebsiella pneumoniae subsp. pneumoniae MGH 78578, complete genome and 5 plasmids',
  ),
  R(
    'Klebsiella pneumoniae',
    'Kp1084',
    'valid',
    'Klebs_Kp1084.fna.xz',
    'GCA_000294365.1 (CP003785.1)',
    'Klebsiella pneumoniae subsp. pneumoniae 1084, complete genome',
  ),
  R(
    'Klebsiella pneumoniae',
    'NTUH-K2044',
    'test',
    'NTUH-K2044.fna.xz',
    'GCA_000009885.1 (AP006725.1, plasmid AP006726.1)',
    'Klebsiella pneumoniae subsp. pneumoniae NTUH-K2044, complete genome and plasmid pK2044',
  ),
];

/** The single genome shipped for the default run (also a recipe, so the shipped files can be rebuilt). */
export const H_PYLORI_RECIPE: readonly RecipeSource[] = [SPECIES_RECIPE.find((r) => r.strain === 'G27')!];

export const RECIPES: Record<string, { sources: readonly RecipeSource[]; description: string; labelled: boolean }> = {
  species: {
    labelled: true,
    sources: SPECIES_RECIPE,
    description:
      '5 bacterial species, 20 complete genomes, train/valid/test split by strain (needs Debian ragout-examples and kleborate-examples)',
  },
  h_pylori: {
    labelled: false,
    sources: H_PYLORI_RECIPE,
    description: 'the shipped default genome, H. pylori G27 (needs Debian ragout-examples)',
  },
};

export function findRecipeFile(file: string): string {
  for (const root of RECIPE_ROOTS) {
    const p = join(root, file);
    if (existsSync(p)) return p;
  }
  throw new DnaDataError(
    `cannot find ${file} under ${RECIPE_ROOTS.join(', ')}; install the Debian packages ragout-examples and kleborate-examples (apt-get install ragout-examples kleborate-examples)`,
  );
}

export function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
}

/** Recompresses any FASTA (plain, gzip, xz, bgzip) as bgzip, with its .gzi and .fai, into memory. */
export async function bgzipFasta(src: string): Promise<{
  data: Buffer;
  gzi: Buffer;
  fai: string;
  records: FaiRecord[];
  headers: { name: string; description: string }[];
}> {
  const w = new BgzfWriter();
  const b = new FaiBuilder(src);
  for await (const chunk of fileBytes(src)) {
    b.push(chunk);
    w.write(chunk);
  }
  const records = b.finish();
  const { data, gzi } = w.finish();
  return { data, gzi, fai: formatFai(records), records, headers: b.headers };
}

export interface BuildOptions {
  force?: boolean;
  log?: (line: string) => void;
}

/** Makes `outDir` all or nothing: `fill` writes into a temporary sibling folder renamed into place at the end. */
export async function writeDatasetAtomically<T>(
  outDir: string,
  force: boolean | undefined,
  fill: (tmp: string) => Promise<T>,
): Promise<T> {
  const out = resolve(outDir);
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new DnaDataError(`${outDir}: exists and is not a folder`);
    if (readdirSync(out).length > 0 && !force)
      throw new DnaDataError(`${outDir}: exists and is not empty; choose another folder or pass --force to replace it`);
  }
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const r = await fill(tmp);
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return r;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Builds a recipe into `outDir`: bgzip FASTA + .fai + .gzi per genome and a manifest.json. All or nothing. */
export async function buildDataset(
  name: string,
  outDir: string,
  opts: GreatApesOptions = {},
): Promise<{ manifestPath?: string; genomes: number; bases: number }> {
  if (name === 'great-apes') return buildGreatApes(outDir, opts);
  const recipe = RECIPES[name];
  if (!recipe)
    throw new DnaDataError(`unknown dataset '${name}' (known: ${[...Object.keys(RECIPES), 'great-apes'].join(', ')})`);
  const log = opts.log ?? (() => undefined);
  const files = recipe.sources.map((s) => findRecipeFile(s.file)); // fail before writing anything
  const out = resolve(outDir);
  return writeDatasetAtomically(outDir, opts.force, async (tmp) => {
    const classes = [...new Set(recipe.sources.map((s) => s.label))];
    const sources = [];
    let bases = 0;
    for (let i = 0; i < recipe.sources.length; i++) {
      const s = recipe.sources[i]!;
      const t0 = Date.now();
      const r = await bgzipFasta(files[i]!);
      const sub = name === 'h_pylori' ? '' : slug(s.label);
      const rel = sub ? `${sub}/${s.strain}.fa.gz` : `${s.strain}.fa.gz`;
      const dest = join(tmp, rel);
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, r.data);
      writeFileSync(`${dest}.gzi`, r.gzi);
      writeFileSync(`${dest}.fai`, r.fai);
      const n = r.records.reduce((a, x) => a + x.length, 0);
      bases += n;
      sources.push({
        path: rel,
        label: s.label,
        split: s.split,
        accession: s.accession,
        description: s.description,
        records: r.records.length,
        bases: n,
      });
      log(
        `[${i + 1}/${recipe.sources.length}] ${s.label} ${s.strain} (${s.split}): ${r.records.length} record${r.records.length === 1 ? '' : 's'}, ${n.toLocaleString('en-US')} bases -> ${rel} (${(r.data.length / 1e6).toFixed(1)} MB, ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
      );
    }
    // a manifest only for labelled sets (openGenomeSet); a single genome is opened by its FASTA path
    if (recipe.labelled) {
      const manifest = { name, description: recipe.description, classes, sources };
      writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    }
    log(
      `wrote ${recipe.labelled ? join(outDir, 'manifest.json') : outDir}: ${sources.length} genome${sources.length === 1 ? '' : 's'}, ${classes.length} classes, ${bases.toLocaleString('en-US')} bases`,
    );
    return { manifestPath: recipe.labelled ? join(out, 'manifest.json') : undefined, genomes: sources.length, bases };
  });
}

// ---- great apes: one EPO multiple alignment, cut into species x split FASTA --------------------------

/** The great-apes alignment shipped by Debian's maffilter-examples (Ensembl Compara EPO, human chr22 subset). */
export const GREAT_APES_MAF = 'Gorilla/Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz';
export const MAFFILTER_ROOTS = ['/usr/share/doc/maffilter/examples', '/usr/share/doc/maffilter-examples/examples'];
export const GREAT_APES_SPECIES: readonly { code: string; name: string }[] = [
  { code: 'Hsap', name: 'Homo sapiens' },
  { code: 'Ptro', name: 'Pan troglodytes' },
  { code: 'Ggor', name: 'Gorilla gorilla' },
  { code: 'Ppyg', name: 'Pongo pygmaeus' },
];
/** Fractions of the alignment blocks, in human-coordinate order: train first, then valid, then test. */
export const GREAT_APES_SPLIT = { train: 0.73, valid: 0.07, test: 0.2 } as const;
export const GREAT_APES_DESCRIPTION =
  '4 great apes (Hsap, Ptro, Ggor, Ppyg) from an Ensembl Compara EPO alignment of human chr22, split into contiguous' +
  ' human-order regions (needs Debian maffilter-examples)';

export interface GreatApesOptions extends BuildOptions {
  /** the MAF file to read (default: the one maffilter-examples installs) */
  maf?: string;
}

export function findGreatApesMaf(): string {
  for (const root of MAFFILTER_ROOTS) {
    const p = join(root, GREAT_APES_MAF);
    if (existsSync(p)) return p;
  }
  throw new DnaDataError(
    `cannot find ${GREAT_APES_MAF} under ${MAFFILTER_ROOTS.join(', ')}; install the Debian package maffilter-examples` +
      ' (apt-get install maffilter-examples) or pass --maf PATH',
  );
}

/** bgzip FASTA (+ .gzi, .fai) of whole in-memory records, 60 bases per line. */
function bgzipRecords(
  records: { name: string; description: string; seq: Buffer }[],
  where: string,
): { data: Buffer; gzi: Buffer; fai: string; records: FaiRecord[] } {
  const w = new BgzfWriter();
  const b = new FaiBuilder(where);
  const put = (buf: Buffer) => {
    b.push(buf);
    w.write(buf);
  };
  for (const r of records) {
    put(Buffer.from(`>${r.name} ${r.description}\n`, 'latin1'));
    const lines: Buffer[] = [];
    for (let i = 0; i < r.seq.length; i += 60) {
      lines.push(r.seq.subarray(i, Math.min(r.seq.length, i + 60)), NEWLINE);
      if (lines.length >= 4096) {
        put(Buffer.concat(lines));
        lines.length = 0;
      }
    }
    if (lines.length) put(Buffer.concat(lines));
  }
  const fai = b.finish();
  const { data, gzi } = w.finish();
  return { data, gzi, fai: formatFai(fai), records: fai };
}
const NEWLINE = Buffer.from('\n');

/**
 * `mamba-dna dataset build great-apes`: reads the alignment, orders its blocks by human position, cuts
 * them into contiguous train | valid | test runs of blocks, and writes per species and split one FASTA
 * record: the species' bases of those blocks (gaps removed), concatenated in human order.
 */
export async function buildGreatApes(
  outDir: string,
  opts: GreatApesOptions = {},
): Promise<{ manifestPath: string; genomes: number; bases: number }> {
  const { readMafBlocks } = await import('./maf.js');
  const log = opts.log ?? (() => undefined);
  const maf = opts.maf ?? findGreatApesMaf();
  if (!existsSync(maf)) throw new DnaDataError(`${maf}: no such file`);
  const codes = GREAT_APES_SPECIES.map((s) => s.code);
  const t0 = Date.now();
  // per block: its human position and each species' ungapped bases
  const blocks: { chrom: string; start: number; end: number; seqs: (Buffer | null)[] }[] = [];
  for await (const b of readMafBlocks(maf)) {
    const h = b.rows.find((r) => r.species === 'Hsap');
    if (!h)
      throw new DnaDataError(`${maf}: line ${b.line}: the block has no Hsap row (the split follows human coordinates)`);
    if (h.strand !== '+') {
      throw new DnaDataError(
        `${maf}: line ${b.line}: the Hsap row is on the - strand; the recipe expects a human-projected alignment`,
      );
    }
    const seqs = codes.map((c) => {
      const r = b.rows.find((x) => x.species === c);
      return r ? Buffer.from(r.text.replace(/-/g, ''), 'latin1') : null;
    });
    blocks.push({ chrom: h.chrom, start: h.start, end: h.start + h.size, seqs });
  }
  if (blocks.length < 3) {
    throw new DnaDataError(`${maf}: ${blocks.length} alignment block(s); the train/valid/test split needs at least 3`);
  }
  blocks.sort((x, y) => (x.chrom < y.chrom ? -1 : x.chrom > y.chrom ? 1 : x.start - y.start));
  const n = blocks.length;
  const nValid = Math.max(1, Math.round(n * GREAT_APES_SPLIT.valid));
  const nTest = Math.max(1, Math.round(n * GREAT_APES_SPLIT.test));
  const nTrain = n - nValid - nTest;
  const ranges = { train: [0, nTrain], valid: [nTrain, nTrain + nValid], test: [nTrain + nValid, n] } as const;
  const secs = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  log(
    `${maf}: ${n.toLocaleString('en-US')} alignment blocks read in ${secs()}; split ${nTrain} / ${nValid} / ${nTest} blocks`,
  );
  const region = (a: number, b: number) => {
    const first = blocks[a]!,
      last = blocks[b - 1]!;
    const end = first.chrom === last.chrom ? `${last.end}` : `${last.chrom}:${last.end}`;
    return `${first.chrom}:${first.start + 1}-${end}`;
  };
  return writeDatasetAtomically(outDir, opts.force, async (tmp) => {
    const sources = [];
    let bases = 0;
    for (const [split, [a, b]] of Object.entries(ranges) as ['train' | 'valid' | 'test', readonly [number, number]][]) {
      for (let k = 0; k < codes.length; k++) {
        const sp = GREAT_APES_SPECIES[k]!;
        const parts = blocks
          .slice(a, b)
          .map((x) => x.seqs[k])
          .filter((x): x is Buffer => x !== null);
        const seq = Buffer.concat(parts);
        if (seq.length === 0) throw new DnaDataError(`${maf}: species ${sp.code} has no bases in the ${split} blocks`);
        const rel = `${sp.code.toLowerCase()}/${split}.fa.gz`;
        const name = `${sp.code}_${split}`;
        const desc =
          `${sp.name}, bases aligned to human ${region(a, b)}` +
          ` (${parts.length} blocks, gaps removed, concatenated in human order)`;
        const r = bgzipRecords([{ name, description: desc, seq }], rel);
        const dest = join(tmp, rel);
        mkdirSync(dirname(dest), { recursive: true });
        writeFileSync(dest, r.data);
        writeFileSync(`${dest}.gzi`, r.gzi);
        writeFileSync(`${dest}.fai`, r.fai);
        bases += seq.length;
        sources.push({
          path: rel,
          label: sp.name,
          split,
          species: sp.code,
          description: desc,
          records: 1,
          bases: seq.length,
          blocks: parts.length,
        });
        log(`${sp.code} ${split}: ${seq.length.toLocaleString('en-US')} bases from ${parts.length} blocks -> ${rel}`);
      }
    }
    const manifest = {
      name: 'great-apes',
      description: GREAT_APES_DESCRIPTION,
      classes: GREAT_APES_SPECIES.map((s) => s.name),
      species: Object.fromEntries(GREAT_APES_SPECIES.map((s) => [s.code, s.name])),
      source: {
        file: maf,
        package: 'maffilter-examples',
        origin: 'Ensembl Compara EPO multiple alignment (5 catarrhini, human-projected), subset of human chromosome 22',
      },
      split: {
        by:
          'alignment blocks sorted by human position, cut into contiguous runs: train, then valid, then test;' +
          ' no human base is in two splits',
        fractions: GREAT_APES_SPLIT,
        blocks: { train: nTrain, valid: nValid, test: nTest },
        human_regions: {
          train: region(0, nTrain),
          valid: region(nTrain, nTrain + nValid),
          test: region(nTrain + nValid, n),
        },
      },
      sources,
    };
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    log(
      `wrote ${join(outDir, 'manifest.json')}: ${sources.length} FASTA (4 species x 3 splits), ${bases.toLocaleString('en-US')} bases in ${secs()}`,
    );
    return { manifestPath: join(resolve(outDir), 'manifest.json'), genomes: sources.length, bases };
  });
}
