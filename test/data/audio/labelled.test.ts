import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDigits, buildLongSpeech, DEFAULT_AUDIO_DIGITS } from '../../../src/data/audio/datasets.js';
import { fitClip, openAudioSet, splitForSpeaker, type AudioManifest } from '../../../src/data/audio/labelled.js';
import { tokenizeWav } from '../../../src/data/audio/tokens.js';
import { readWavInfo } from '../../../src/data/audio/wav.js';
import { openAudioWindows } from '../../../src/data/audio/windows.js';
import { Rng } from '../../../src/util/rng.js';
import { needs } from '../../tools.js';
import { espeakUtterance, tempDir } from './fixtures.js';

const espeak = needs('espeak-ng'); // the recipes run espeak-ng themselves

describe('the shipped spoken digits', () => {
  it('splits by voice: no speaker in both train and test, every class in both', async () => {
    const train = await openAudioSet(DEFAULT_AUDIO_DIGITS, 'train');
    const test = await openAudioSet(DEFAULT_AUDIO_DIGITS, 'test');
    expect(train.classes).toEqual(['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']);
    expect(train.vocabSize).toBe(256);
    expect(train.clipSamples).toBe(16000);
    expect(train.clips.length).toBe(90);
    expect(test.clips.length).toBe(30);
    expect(train.speakers().filter((s) => test.speakers().includes(s))).toEqual([]);
    for (const s of [train, test]) expect(new Set(s.clips.map((c) => c.label)).size).toBe(10);
    for (const c of train.clips)
      expect(readWavInfo(c.path)).toMatchObject({ sampleRate: 16000, channels: 1, bytesPerSample: 2 });
    expect(train.describe()).toMatch(/padded at the end with the silence token 128 or cropped centrally/);
  });

  it('gives fixed-length clips padded with silence at the end, in a fixed order, class-balanced at random', async () => {
    const test = await openAudioSet(DEFAULT_AUDIO_DIGITS, 'test');
    const ex = [];
    for await (const e of test.evalExamples(16000)) ex.push(e);
    expect(ex.length).toBe(30);
    for (let i = 0; i < ex.length; i++) {
      const raw = tokenizeWav(test.clips[i]!.path).tokens;
      expect(raw.length).toBeLessThan(16000);
      expect(ex[i]!.tokens.length).toBe(16000);
      expect(ex[i]!.label).toBe(test.clips[i]!.label);
      expect(Buffer.compare(Buffer.from(ex[i]!.tokens.subarray(0, raw.length)), Buffer.from(raw))).toBe(0);
      expect(ex[i]!.tokens.subarray(raw.length).every((v) => v === 128)).toBe(true);
    }
    const rng = new Rng(7);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 2000; i++) counts[(await test.randomExample(4000, rng)).label]++;
    for (const c of counts) expect(c).toBeGreaterThan(140); // 200 expected per class
    const a = await test.randomExample(4000, new Rng(1)),
      b = await test.randomExample(4000, new Rng(1));
    expect(a.source).toBe(b.source);
    expect(a.tokens.length).toBe(4000); // longer clips are cropped centrally
  });

  it('fitClip crops centrally and pads at the end', () => {
    const x = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    expect(Array.from(fitClip(x, 4, 128).tokens)).toEqual([2, 3, 4, 5]);
    expect(fitClip(x, 4, 128).start).toBe(1);
    expect(Array.from(fitClip(x, 8, 128).tokens)).toEqual([1, 2, 3, 4, 5, 6, 128, 128]);
  });
});

describe('folder layouts, manifests and the recipes', () => {
  const t = tempDir('sets');
  let utt = '';
  beforeAll(() => {
    utt = espeakUtterance(join(t.dir, 'utt.wav'), 'yes');
  });
  afterAll(t.cleanup);

  it('DIR/<split>/<class>/*.wav', async () => {
    const root = join(t.dir, 'splitdirs');
    for (const [split, spk] of [
      ['train', 'amy'],
      ['train', 'bob'],
      ['test', 'cat'],
    ] as const) {
      for (const cls of ['no', 'yes']) {
        mkdirSync(join(root, split, cls), { recursive: true });
        copyFileSync(utt, join(root, split, cls, `${spk}_${cls}.wav`));
      }
    }
    const train = await openAudioSet(root, 'train');
    expect(train.classes).toEqual(['no', 'yes']);
    expect(train.speakers()).toEqual(['amy', 'bob']);
    expect((await openAudioSet(root, 'test')).speakers()).toEqual(['cat']);
    await expect(openAudioSet(root, 'valid')).rejects.toThrow(
      /no clips in split "valid" \(splits present: train, test\)/,
    );
  });

  it('DIR/<class>/*.wav splits by a hash of the speaker prefix', async () => {
    const root = join(t.dir, 'flat');
    const speakers = Array.from({ length: 30 }, (_, i) => `spk${i}`);
    for (const cls of ['down', 'up']) {
      mkdirSync(join(root, cls), { recursive: true });
      for (const s of speakers) copyFileSync(utt, join(root, cls, `${s}_nohash_0.wav`));
    }
    for (const split of ['train', 'test'] as const) {
      const set = await openAudioSet(root, split);
      expect(set.speakers().every((s) => splitForSpeaker(s) === split)).toBe(true);
      expect(set.clips.length).toBe(2 * speakers.filter((s) => splitForSpeaker(s) === split).length);
    }
  });

  it('an in-memory manifest with labels by name or index', async () => {
    const m: AudioManifest = {
      name: 'tiny',
      classes: ['a', 'b'],
      clipSamples: 8000,
      items: [
        { path: 'utt.wav', label: 'a', speaker: 'x', split: 'train' },
        { path: 'utt.wav', label: 1, speaker: 'y', split: 'train' },
      ],
    };
    const s = await openAudioSet(m, 'train', { baseDir: t.dir, encoding: 'linear' });
    expect(s.clipSamples).toBe(8000);
    expect(s.clips.map((c) => c.label)).toEqual([0, 1]);
    expect(s.describe()).toMatch(/^tiny \[train\]: 2 clips of 2 classes/);
  });

  it('a TSV manifest', async () => {
    const tsv = join(t.dir, 'set.tsv');
    writeFileSync(
      tsv,
      'path\tlabel\tspeaker\tsplit\nutt.wav\tyes\tann\ttrain\nutt.wav\tno\tann\ttrain\nutt.wav\tno\tben\ttest\n',
    );
    const s = await openAudioSet(tsv, 'train');
    expect(s.classes).toEqual(['no', 'yes']);
    expect(s.clips.map((c) => c.label)).toEqual([1, 0]);
    expect((await openAudioSet(tsv, 'test')).speakers()).toEqual(['ben']);
    writeFileSync(tsv, 'file\tclass\nutt.wav\tyes\n');
    await expect(openAudioSet(tsv, 'train')).rejects.toThrow(/the TSV header must name the columns path and label/);
  });

  it.skipIf(espeak.skip)(
    espeak.title('the digits recipe writes a manifest split by voice variant that openAudioSet reads'),
    async () => {
      const out = join(t.dir, 'digits');
      mkdirSync(out);
      const m = buildDigits(out, { voices: 5, renditions: 1, seed: 4 });
      expect(m.items.length).toBe(50);
      const bySplit = new Map<string, Set<string>>();
      for (const it of m.items) bySplit.set(it.split!, (bySplit.get(it.split!) ?? new Set()).add(it.speaker!));
      expect(bySplit.get('test')?.size).toBeGreaterThanOrEqual(1);
      const train = await openAudioSet(out, 'train');
      const test = await openAudioSet(out, 'test');
      expect(train.speakers().filter((s) => test.speakers().includes(s))).toEqual([]);
      expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).classes).toHaveLength(10);
    },
  );

  it.skipIf(espeak.skip)(espeak.title('the long-speech recipe reads the texts in several voices'), async () => {
    const texts = join(t.dir, 'texts');
    mkdirSync(texts);
    copyFileSync(join(DEFAULT_AUDIO_DIGITS, '..', 'texts', '03-constitution-preamble.txt'), join(texts, 'a.txt'));
    const out = join(t.dir, 'speech');
    const files = buildLongSpeech(out, { voices: 2, textsDir: texts });
    expect(files).toHaveLength(2);
    const src = await openAudioWindows(out);
    expect(src.records).toHaveLength(2);
    for (const r of src.records) expect(r.tokens.length).toBeGreaterThan(10 * 16000); // the preamble takes > 10 s
  });
});
