// The items `predict` scores: each FASTA record or each WAV file. An item longer than the window gets
// `perItem` windows spread evenly along it; a shorter one one window, padded (DNA) or fitted as in training
// (audio). Inputs are files, folders of them, or `-` (stdin, read once into a temp file).
import { statSync } from 'node:fs';
import type { Domain } from './common.js';
import { UserError, asUserErrors } from './errors.js';
import { inputName, isStreamInput, localInput } from './input.js';

export interface PredictionItem {
  name: string;
  windows: Uint8Array[];
}

/** Starts of n windows of `seqLen` spread evenly over `length` (first at 0, last at the end). */
function spreadStarts(length: number, seqLen: number, perItem: number): number[] {
  const n = Math.min(perItem, length - seqLen + 1);
  return Array.from({ length: n }, (_, i) => (n === 1 ? 0 : Math.floor(((length - seqLen) * i) / (n - 1))));
}

const FASTA_NAME = /\.(fa|fasta|fna|fas)(\.gz|\.bgz)?$/i;

async function fastaFiles(input: string): Promise<string[]> {
  if (isStreamInput(input) || !statSync(input).isDirectory()) return [input];
  const { readdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const files = readdirSync(input)
    .filter((n) => FASTA_NAME.test(n))
    .sort()
    .map((n) => join(input, n));
  if (files.length === 0)
    throw new UserError(`${input}: no FASTA files in this folder (.fa, .fasta, .fna, optionally .gz)`);
  return files;
}

export async function* predictionItems(
  domain: Domain,
  input: string,
  seqLen: number,
  perItem: number,
  rate?: number,
): AsyncGenerator<PredictionItem> {
  if (domain === 'dna') {
    const { IndexedFasta, PAD } = await import('../data/dna/index.js');
    for (const file of await fastaFiles(input)) {
      const local = await localInput(file, { gunzip: true, name: 'stdin.fa' });
      const fasta = await asUserErrors(() => IndexedFasta.open(local, {}));
      try {
        for (const rec of fasta.records) {
          const windows: Uint8Array[] = [];
          if (rec.length <= seqLen) {
            const w = new Uint8Array(seqLen).fill(PAD);
            w.set(await asUserErrors(() => fasta.tokens(rec.name, 0, rec.length, {})));
            windows.push(w);
          } else {
            for (const start of spreadStarts(rec.length, seqLen, perItem)) {
              windows.push(
                Uint8Array.from(await asUserErrors(() => fasta.tokens(rec.name, start, start + seqLen, {}))),
              );
            }
          }
          yield { name: `${inputName(file)}:${rec.name}`, windows };
        }
      } finally {
        fasta.close();
      }
    }
    return;
  }
  const { tokenizeWav, fitClip, silenceToken, listAudioFiles } = await import('../data/audio/index.js');
  const files =
    !isStreamInput(input) && statSync(input).isDirectory() ? await asUserErrors(() => listAudioFiles(input)) : [input];
  for (const f of files) {
    const t = await asUserErrors(async () => tokenizeWav(await localInput(f, { name: 'stdin.wav' }), { rate }));
    // a long recording: windows spread along it, as for a long FASTA record; a clip: fitted as in training
    const windows =
      t.tokens.length > seqLen
        ? spreadStarts(t.tokens.length, seqLen, perItem).map((s) => t.tokens.slice(s, s + seqLen))
        : [fitClip(t.tokens, seqLen, silenceToken()).tokens];
    yield { name: inputName(f), windows };
  }
}
