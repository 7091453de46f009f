#!/usr/bin/env node
// Audio tokens per second: (1) WAV -> tokens for a long file (block-streamed decode, downmix, resample to
// 16 kHz, mu-law), (2) 2^20-sample windows drawn from the token cache. Medians of several runs. References:
// sox doing the same decode+resample+mu-law (its G.711 mu-law, default-quality `rate`), and a plain memory
// copy of 2^20 bytes (the floor for a window, which is one copy out of the cached tokens).
// Writes its table into bench/README.md under "## Audio tokens".
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_AUDIO_SPEECH } from '../dist/data/audio/datasets.js';
import { tokenizeWav, clearTokenCache } from '../dist/data/audio/tokens.js';
import { readWavBlocks, readWavInfo, readWavMono } from '../dist/data/audio/wav.js';
import { Resampler } from '../dist/data/audio/resample.js';
import { openAudioWindows } from '../dist/data/audio/windows.js';
import { Rng } from '../dist/util/rng.js';
import { writeReadmeSection } from './readme.js';

const RUNS = 5;
const WINDOW = 2 ** 20;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
function time(fn, runs = RUNS) {
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}
const fmt = (n) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;

const tmp = mkdtempSync(join(tmpdir(), 'bench-audio-'));
try {
  // inputs made from the shipped 82 s of speech: 44.1 kHz stereo 16-bit (resampled) and 16 kHz mono (not)
  const long44 = join(tmp, 'speech-44k-stereo.wav');
  execFileSync('sox', [DEFAULT_AUDIO_SPEECH, '-r', '44100', '-c', '2', '-b', '16', long44]);
  const rows = [];
  for (const [label, file] of [
    ['44.1 kHz stereo s16 -> 16 kHz', long44],
    ['16 kHz mono s16 (no resampling)', DEFAULT_AUDIO_SPEECH],
  ]) {
    const info = readWavInfo(file);
    let n = 0;
    const msAll = time(() => {
      n = tokenizeWav(file, { memoryCache: false }).tokens.length;
    });
    const msDecode = time(() => {
      for (const b of readWavBlocks(info)) void b;
    });
    // the same decode (to mono float32) through wavefile, which needs the whole file and a float64 copy
    const msWavefile = time(() => readWavMono(file));
    const msResample =
      info.sampleRate === 16000
        ? 0
        : time(() => {
            const r = new Resampler(info.sampleRate, 16000);
            for (const b of readWavBlocks(info)) r.process(b);
            r.flush();
          }) - msDecode;
    const msRead = time(() => readFileSync(file));
    const soxOut = join(tmp, 'sox.raw');
    const msSox = time(
      () => execFileSync('sox', [file, '-r', '16000', '-c', '1', '-t', 'raw', '-e', 'mu-law', '-b', '8', soxOut]),
      3,
    );
    rows.push({
      label,
      frames: info.frames,
      bytes: statSync(file).size,
      n,
      msAll,
      msDecode,
      msWavefile,
      msResample,
      msRead,
      msSox,
    });
    console.log(
      `${label}: ${info.frames} frames (${(statSync(file).size / 2 ** 20).toFixed(1)} MiB) -> ${n} tokens: ` +
        `tokenize ${msAll.toFixed(0)} ms (${fmt((n / msAll) * 1000)} tokens/s; decode ${msDecode.toFixed(0)} ms (wavefile ${msWavefile.toFixed(0)} ms), resample ${msResample.toFixed(0)} ms); ` +
        `file read ${msRead.toFixed(1)} ms; sox ${msSox.toFixed(0)} ms`,
    );
  }

  clearTokenCache();
  const src = await openAudioWindows(long44);
  const rng = new Rng(1);
  const msWindow = time(() => src.randomWindowSync(WINDOW, rng), 21);
  const big = src.records[0].tokens;
  const msCopy = time(() => big.slice(1000, 1000 + WINDOW), 21);
  console.log(
    `window of ${WINDOW} from the token cache: ${(msWindow * 1000).toFixed(0)} us (${fmt((WINDOW / msWindow) * 1000)} tokens/s); memcpy of ${WINDOW} bytes: ${(msCopy * 1000).toFixed(0)} us`,
  );

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const table = [
    '## Audio tokens',
    '',
    `\`node bench/audio-tokens.js\` (after \`npm run build\`), on ${cpu}, Node ${process.version}, one thread; medians of ${RUNS} runs (sox: 3, windows: 21).`,
    'Input: the shipped 81.7 s of speech (datasets/audio/speech), as made by sox at 44.1 kHz stereo 16-bit and as shipped (16 kHz mono).',
    'Tokenize = block-streamed read + decode + downmix + Kaiser polyphase resample (278 taps per output at 44.1k -> 16k) + mu-law.',
    'Decode = the hand-written streaming decoder (readWavBlocks, 64K-frame blocks, to mono float32), which tokenization uses; "decode, wavefile" = the same file to the same mono float32 through wavefile (readWavMono), side by side in this run. wavefile needs the whole file in memory plus a float64 copy of every sample (an hour of 44.1 kHz stereo 16-bit: 635 MB of file, 2.5 GB of float64), the streaming decoder one block (about 0.5 MB); that and the time are why tokenization keeps it.',
    '',
    '| input | frames | tokens out | tokenize (ms) | tokens/s | decode (ms) | decode, wavefile (ms) | resample (ms) | read file, floor (ms) | sox same job (ms) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.frames.toLocaleString('en-US')} | ${r.n.toLocaleString('en-US')} | ${r.msAll.toFixed(0)} | ${fmt((r.n / r.msAll) * 1000)} | ${r.msDecode.toFixed(0)} | ${r.msWavefile.toFixed(0)} | ${r.msResample.toFixed(0)} | ${r.msRead.toFixed(1)} | ${r.msSox.toFixed(0)} |`,
    ),
    '',
    '| window from the token cache | time (us) | tokens/s | floor: memcpy of the same bytes (us) |',
    '|---|---:|---:|---:|',
    `| random 2^20-sample window (seeded, copied out) | ${(msWindow * 1000).toFixed(0)} | ${fmt((WINDOW / msWindow) * 1000)} | ${(msCopy * 1000).toFixed(0)} |`,
    '',
    'An hour of 16 kHz audio is 57.6 M tokens, 55 MiB in the cache (1 byte per sample); it is tokenized once.',
    '',
  ].join('\n');
  writeReadmeSection(table);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
