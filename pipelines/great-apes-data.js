// Builds (once) the great-apes set the long-context DNA pipelines share, and names its FASTA files.
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
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

/** A species' split as base codes 0..3 (either case), 255 for anything else (N, IUPAC). */
export function greatApesBases(manifest, code, split) {
  const { path, bases: n } = greatApesFasta(manifest, code, split);
  const text = gunzipSync(readFileSync(path)); // bgzip is gzip members one after another
  const out = new Uint8Array(n);
  const map = new Uint8Array(256).fill(255);
  for (const [i, c] of ['A', 'C', 'G', 'T'].entries()) map[c.charCodeAt(0)] = map[c.toLowerCase().charCodeAt(0)] = i;
  let j = 0,
    header = text[0] === 0x3e;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === 0x0a) header = false;
    else if (!header && c !== 0x0d) out[j++] = map[c];
  }
  if (j !== n) throw new Error(`${path}: read ${j} bases, the manifest says ${n}`);
  return out;
}
