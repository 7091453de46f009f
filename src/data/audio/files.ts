// Finding audio files: folders are walked recursively in sorted order, so every run sees the same list.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AudioDataError } from './errors.js';

export const isWav = (name: string): boolean => /\.wav$/i.test(name);
export const isTokenFile = (name: string): boolean => /\.tokens$/i.test(name);

/** All .wav (and, if asked, raw .tokens) files under `dir`, sorted by path. */
export function listAudioFiles(dir: string, withTokens = false): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch (e) {
      throw new AudioDataError(
        `${d}: cannot read folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    for (const n of names) {
      if (n.startsWith('.')) continue;
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (isWav(n) || (withTokens && isTokenFile(n))) out.push(p);
    }
  };
  walk(dir);
  return out;
}

export function statOrThrow(path: string): import('node:fs').Stats {
  try {
    return statSync(path);
  } catch (e) {
    throw new AudioDataError(
      `${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : (e as Error).message}`,
    );
  }
}
