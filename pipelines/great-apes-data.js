// Builds (once) the great-apes set the long-context DNA pipelines share, and names its FASTA files.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cli } from './lib.js';

/** The manifest of the great-apes set in `dir`, building it from `maf` (or the installed file) if missing. */
export function greatApesSet(dir, maf) {
  const manifest = join(dir, 'manifest.json');
  if (!existsSync(manifest))
    cli('mamba-dna', ['dataset', 'build', 'great-apes', '--out', dir, '--force', ...(maf ? ['--maf', maf] : [])]);
  return manifest;
}

/** The FASTA of one species (code, e.g. Hsap) and split. */
export function greatApesFasta(manifest, species, split) {
  const m = JSON.parse(readFileSync(manifest, 'utf8'));
  const s = m.sources.find((x) => x.species === species && x.split === split);
  if (!s) throw new Error(`${manifest}: no ${species} ${split} source`);
  return { path: resolve(join(manifest, '..'), s.path), bases: s.bases };
}

export function greatApesSplit(manifest) {
  return JSON.parse(readFileSync(manifest, 'utf8')).split;
}
