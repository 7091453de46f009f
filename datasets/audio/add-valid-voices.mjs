#!/usr/bin/env node
// Adds the valid split of datasets/audio/digits: voices 13 and 14 of the recipe's seeded voice order
// (variants adam and Alicia, heard in neither train nor test), spoken as `buildDigits` would have spoken
// them (the same speed and pitch stream), so the train and test clips stay exactly as they were.
// Needs espeak-ng and the compiled JS (npx tsc):  node datasets/audio/add-valid-voices.mjs
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..', 'dist');
const recipes = await import(join(dist, 'data', 'audio', 'datasets.js'));
const { DIGIT_WORDS, pickVoices, speak, trimSilence, voiceId } = recipes;
const { writeWav } = await import(join(dist, 'data', 'audio', 'wav.js'));
const { Rng } = await import(join(dist, 'util', 'rng.js'));

const out = join(here, 'digits');
const manifestPath = join(out, 'manifest.json');
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const shipped = 12,
  added = 2,
  rate = 16000;
const voices = pickVoices(shipped + added, 1);
const known = new Set(manifest.items.map((i) => i.speaker));
// buildDigits draws a base speed and pitch per voice from Rng(seed + 1000), in voice order
const rng = new Rng(1001);
const tmp = mkdtempSync(join(tmpdir(), 'mamba-digits-'));
try {
  voices.forEach((v, n) => {
    const baseSpeed = 130 + rng.int(60),
      basePitch = 30 + rng.int(40);
    if (n < shipped) return;
    const speaker = voiceId(v).replace(/[^A-Za-z0-9-]+/g, '-');
    if (known.has(speaker)) throw new Error(`${speaker} is already in ${manifestPath}`);
    for (const word of DIGIT_WORDS) {
      const x = trimSilence(speak(v, { text: word, speed: baseSpeed, pitch: basePitch, tmp }));
      // as buildDigits does: clips longer than a second keep their middle second
      const from = Math.floor((x.length - rate) / 2);
      const clip = x.length > rate ? x.subarray(from, from + rate) : x;
      const rel = join('valid', word, `${speaker}_${word}_0.wav`);
      mkdirSync(join(out, 'valid', word), { recursive: true });
      writeWav(join(out, rel), clip, rate, 16);
      manifest.items.push({ path: rel, label: word, speaker, split: 'valid' });
    }
  });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
manifest.name = `espeak-ng spoken digits (${shipped + added} voices x 1)`;
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 1)}\n`);
console.log(`${manifestPath}: ${manifest.items.length} clips`);
