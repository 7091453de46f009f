// Shared fixtures for the audio tests: a real espeak-ng utterance, sox conversions, sox as decoding reference.
// Each runs the tool where it is installed and replays its recorded output where it is not (test/tools.ts).
// espeak-ng runs live only where sox is there too, so that sox's recordings always meet the bytes they were
// made from.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from '../../tools.js';

const SPEECH = { liveOnlyWith: ['sox', 'soxi'] };

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `mamba-audio-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A real utterance: espeak-ng speaks at 22,050 Hz, 16-bit mono. */
export function espeakUtterance(path: string, text = 'Seven silver swans.', voice = 'en-us'): string {
  runTool('espeak-ng', ['-v', voice, '-w', path, text], SPEECH);
  return path;
}

/** espeak-ng's WAV written to a pipe (its header then holds placeholder sizes). */
export function espeakStdout(text: string, voice = 'en-us'): Buffer {
  return runTool('espeak-ng', ['-v', voice, '--stdout', text], SPEECH);
}

/** sox in its repeatable mode (-R: dither seeded the same every run), so that its outputs can be recorded. */
export function sox(args: string[]): void {
  runTool('sox', ['-R', ...args]);
}

/** sox's decoding of a file: interleaved float32 samples, and the channel count. */
export function soxDecode(path: string): { samples: Float32Array; channels: number } {
  const raw = runTool('sox', [path, '-t', 'f32', '-']);
  const channels = Number(runTool('soxi', ['-c', path]).toString().trim());
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
  let s = 0,
    e = 0;
  for (let i = skip; i < n - skip; i++) {
    s += ref[i]! * ref[i]!;
    e += (x[i]! - ref[i]!) ** 2;
  }
  return 10 * Math.log10(s / e);
}
