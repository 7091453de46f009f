// Builds (once) the species genome set the DNA pipelines use, and finds genomes in it by accession.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cli } from './lib.js';

export function speciesSet(dir) {
  const manifest = join(dir, 'manifest.json');
  if (!existsSync(manifest)) cli('mamba-dna', ['dataset', 'build', 'species', '--out', dir, '--force']);
  return manifest;
}

export function genomeByAccession(manifest, accession) {
  const m = JSON.parse(readFileSync(manifest, 'utf8'));
  const s = m.sources.find((x) => String(x.accession).includes(accession));
  if (!s) throw new Error(`${manifest}: no genome with accession ${accession}`);
  return resolve(join(manifest, '..'), s.path);
}
