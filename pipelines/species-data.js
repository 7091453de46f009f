// Builds (once) the species genome set the dna-species pipeline uses.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './lib.js';

export function speciesSet(dir) {
  const manifest = join(dir, 'manifest.json');
  if (!existsSync(manifest)) cli('mamba-dna', ['dataset', 'build', 'species', '--out', dir, '--force']);
  return manifest;
}
