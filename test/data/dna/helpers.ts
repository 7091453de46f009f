// Shared fixtures for the DNA data tests: temp dirs, samtools and bgzip (live or replayed, test/tools.ts), seeded
// synthetic FASTA.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DEFAULT_DNA_DATA } from '../../../src/data/dna/index.js';
import { rng } from '../../helpers.js';
import { available, runTool, type ToolRun } from '../../tools.js';

export const hasTool = available;
export const hasSamtools = available('samtools');
export const hasBgzip = available('bgzip');

/** G27 as Debian's ragout-examples installs it (the shipped datasets/dna/h_pylori genome is made from it). */
export const G27_SRC = '/usr/share/doc/ragout/examples/H.Pylori/references/G27.fasta.gz';

export function tempDir(prefix = 'mamba-dna-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** samtools' standard output (latin1); replayed from test/fixtures/tools where samtools is missing. */
export function samtools(args: string[], opts: ToolRun = {}): string {
  return runTool('samtools', args, opts).toString('latin1');
}

/** bgzip, live or replayed; `bgzip -c f > out` is bgzip(['-c', f], { stdoutTo: out }). */
export function bgzip(args: string[], opts: ToolRun = {}): void {
  runTool('bgzip', args, opts);
}

/** Decompressed G27 genome bytes: from ragout-examples where installed, else from the shipped copy. */
export function g27Bytes(): Buffer {
  return gunzipSync(readFileSync(available('ragout-examples') ? G27_SRC : DEFAULT_DNA_DATA));
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
