// A synthetic four-ape MAF alignment for tests that must not depend on the installed package: per block a
// random ancestral sequence, each species a copy with its own substitutions and a few gap columns.
import { rng } from '../../helpers.js';

export const APES = ['Hsap', 'Ptro', 'Ggor', 'Ppyg'];

export function syntheticApesMaf(blocks: number, columns: number, seed = 1): string {
  const r = rng(seed);
  const base = () => 'ACGT'[Math.floor(r() * 4)]!;
  const out = ['##maf version=1 program=test', '#'];
  const starts = APES.map(() => 1000);
  for (let b = 0; b < blocks; b++) {
    const anc = Array.from({ length: columns }, base);
    out.push('a');
    APES.forEach((sp, k) => {
      // species k differs at 1% + k% of the columns and has a gap every ~50 columns
      const text = anc
        .map((c) => (r() < 0.01 + 0.01 * k ? base() : c))
        .map((c) => (r() < 0.02 ? '-' : c))
        .join('');
      const size = text.replace(/-/g, '').length;
      out.push(`s ${sp}.22 ${starts[k]} ${size} + 10000000 ${b % 3 === 0 ? text.toLowerCase() : text}`);
      starts[k]! += size + 17;
    });
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
