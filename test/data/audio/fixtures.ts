// Shared fixtures for the audio tests: a real espeak-ng utterance, sox conversions, sox as decoding reference.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `mamba-audio-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A real utterance: espeak-ng speaks at 22,050 Hz, 16-bit mono. */
export function espeakUtterance(path: string, text = 'Seven silver swans swam south, eight, nine, zero.', voice = 'en-us'): string {
  execFileSync('espeak-ng', ['-v', voice, '-w', path, text]);
  return path;
}

export function sox(args: string[]): void {
  execFileSync('sox', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** sox's decoding of a file: interleaved float32 samples, and the channel count. */
export function soxDecode(path: string): { samples: Float32Array; channels: number } {
  const raw = execFileSync('sox', [path, '-t', 'f32', '-'], { maxBuffer: 1 << 30 });
  const channels = Number(execFileSync('soxi', ['-c', path]).toString().trim());
  const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  return { samples: new Float32Array(ab), channels };
}

/** The average of the channels of interleaved samples (the downmix the decoder promises). */
export function downmix(x: Float32Array, channels: number): Float64Array {
  const n = x.length / channels;
  const out = new Float64Array(n);
  for (let f = 0; f < n; f++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += x[f * channels + c]!;
    out[f] = s / channels;
  }
  return out;
}

/** Signal-to-noise ratio in dB of `x` against the reference `ref` over their common length minus `skip` at each end. */
export function snrDb(x: ArrayLike<number>, ref: ArrayLike<number>, skip = 0): number {
  const n = Math.min(x.length, ref.length);
  let s = 0, e = 0;
  for (let i = skip; i < n - skip; i++) {
    s += ref[i]! * ref[i]!;
    e += (x[i]! - ref[i]!) ** 2;
  }
  return 10 * Math.log10(s / e);
}
