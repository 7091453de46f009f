// Shared fixtures for the DNA data tests: temp dirs, samtools detection, seeded synthetic FASTA.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { rng } from '../../helpers.js';

export const hasTool = (t: string): boolean => spawnSync(t, ['--version'], { stdio: 'ignore' }).status === 0 || spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status === 0;
export const hasSamtools = hasTool('samtools');
export const hasBgzip = spawnSync('sh', ['-c', 'command -v bgzip'], { stdio: 'ignore' }).status === 0;

export const G27_SRC = '/usr/share/doc/ragout/examples/H.Pylori/references/G27.fasta.gz';

export function tempDir(prefix = 'mamba-dna-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function samtools(args: string[], input?: string): string {
  return execFileSync('samtools', args, { encoding: 'latin1', maxBuffer: 1 << 30, input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Decompressed G27 genome bytes. */
export function g27Bytes(): Buffer {
  return gunzipSync(readFileSync(G27_SRC));
}

/**
 * A seeded multi-record FASTA exercising the layout rules: several line widths, a CR LF record, a one-line
 * record, soft-masked lowercase, IUPAC codes, a record shorter than one line.
 */
export function syntheticFasta(seed: number): { text: string; records: { name: string; seq: string }[] } {
  const r = rng(seed);
  const alphabet = 'ACGTACGTACGTACGTacgtNnRYKM';
  const recs: { name: string; seq: string; width: number; crlf: boolean }[] = [
    { name: 'chr1', seq: '', width: 60, crlf: false },
    { name: 'chr2', seq: '', width: 80, crlf: true },
    { name: 'contig:3', seq: '', width: 17, crlf: false },
    { name: 'one_line', seq: '', width: 100000, crlf: false },
    { name: 'tiny', seq: '', width: 60, crlf: false },
  ];
  const lens = [5000 + Math.floor(r() * 3000), 4000 + Math.floor(r() * 2000), 1234, 999, 7];
  let text = '';
  recs.forEach((rec, i) => {
    let s = '';
    for (let k = 0; k < lens[i]!; k++) s += alphabet[Math.floor(r() * alphabet.length)]!;
    rec.seq = s;
    const nl = rec.crlf ? '\r\n' : '\n';
    text += `>${rec.name} synthetic record ${i}${nl}`;
    for (let p = 0; p < s.length; p += rec.width) text += s.slice(p, p + rec.width) + nl;
  });
  return { text, records: recs.map(({ name, seq }) => ({ name, seq })) };
}

export function writeText(path: string, text: string | Uint8Array): string {
  writeFileSync(path, text);
  return path;
}
