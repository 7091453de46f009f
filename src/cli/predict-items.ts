// The items `predict` scores: each FASTA record (windows spread evenly along it, short records padded)
// or each WAV file (one clip, padded or cropped as in training).
import { statSync } from 'node:fs';
import type { Domain } from './common.js';
import { asUserErrors } from './errors.js';

export interface PredictionItem {
  name: string;
  windows: Uint8Array[];
}

export async function* predictionItems(domain: Domain, input: string, seqLen: number, perRecord: number): AsyncGenerator<PredictionItem> {
  if (domain === 'dna') {
    const { IndexedFasta, PAD } = await import('../data/dna/index.js');
    const fasta = await asUserErrors(() => IndexedFasta.open(input, {}));
    try {
      for (const rec of fasta.records) {
        const windows: Uint8Array[] = [];
        if (rec.length <= seqLen) {
          const w = new Uint8Array(seqLen).fill(PAD);
          w.set(await asUserErrors(() => fasta.tokens(rec.name, 0, rec.length, {})));
          windows.push(w);
        } else {
          const n = Math.min(perRecord, rec.length - seqLen + 1);
          for (let i = 0; i < n; i++) {
            const start = n === 1 ? 0 : Math.floor(((rec.length - seqLen) * i) / (n - 1));
            windows.push(Uint8Array.from(await asUserErrors(() => fasta.tokens(rec.name, start, start + seqLen, {}))));
          }
        }
        yield { name: `${input}:${rec.name}`, windows };
      }
    } finally {
      fasta.close();
    }
    return;
  }
  const { tokenizeWav, fitClip, silenceToken, listAudioFiles } = await import('../data/audio/index.js');
  const files = statSync(input).isDirectory() ? await asUserErrors(() => listAudioFiles(input)) : [input];
  for (const f of files) {
    const t = await asUserErrors(() => tokenizeWav(f, {}));
    yield { name: f, windows: [fitClip(t.tokens, seqLen, silenceToken()).tokens] };
  }
}
