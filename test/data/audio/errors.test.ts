import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AudioDataError } from '../../../src/data/audio/errors.js';
import { openAudioSet } from '../../../src/data/audio/labelled.js';
import { readWavInfo, readWavMono } from '../../../src/data/audio/wav.js';
import { openAudioWindows } from '../../../src/data/audio/windows.js';
import { espeakUtterance, sox, tempDir } from './fixtures.js';

// Each bad input gives an AudioDataError whose one-line message names the file and the problem.
describe('bad audio input', () => {
  const t = tempDir('bad');
  let good = '';
  beforeAll(() => {
    good = espeakUtterance(join(t.dir, 'good.wav'), 'one two');
  });
  afterAll(t.cleanup);

  const expectError = (fn: () => unknown, ...parts: (string | RegExp)[]) => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AudioDataError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    for (const p of parts) expect(msg).toMatch(p);
  };
  const patched = (name: string, edit: (b: Buffer) => Buffer) => {
    const f = join(t.dir, name);
    writeFileSync(f, edit(Buffer.from(readFileSync(good))));
    return f;
  };

  it('not a RIFF/WAVE file', () => {
    const f = join(t.dir, 'notes.wav');
    writeFileSync(f, 'these are not samples\n');
    expectError(() => readWavInfo(f), f, /not a RIFF\/WAVE file/);
  });

  it('truncated data chunk', () => {
    const f = patched('truncated.wav', (b) => b.subarray(0, b.length - 1000));
    expectError(() => readWavMono(f), f, /truncated data chunk \(header says \d+ bytes, the file has \d+\)/);
  });

  it('unsupported codecs are named', () => {
    const adpcm = join(t.dir, 'adpcm.wav');
    sox([good, '-e', 'ima-adpcm', adpcm]);
    expectError(() => readWavInfo(adpcm), adpcm, /unsupported codec IMA ADPCM \(format 0x11\)/);
    const alaw = join(t.dir, 'alaw.wav');
    sox([good, '-e', 'a-law', alaw]);
    expectError(() => readWavInfo(alaw), /A-law \(format 0x06\)/);
  });

  it('zero channels and zero rate', () => {
    const zc = patched('zero-ch.wav', (b) => {
      b.writeUInt16LE(0, 22);
      return b;
    });
    expectError(() => readWavInfo(zc), zc, /channels 0 is outside the allowed range/);
    const zr = patched('zero-rate.wav', (b) => {
      b.writeUInt32LE(0, 24);
      return b;
    });
    expectError(() => readWavInfo(zr), zr, /sample rate 0 Hz is outside the allowed range/);
  });

  it('missing file', () => {
    expectError(() => readWavInfo(join(t.dir, 'nope.wav')), /nope\.wav: cannot open \(ENOENT\)/);
  });

  it('a folder with no audio', async () => {
    const empty = join(t.dir, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'readme.txt'), 'no audio here');
    await expect(openAudioSet(empty, 'train')).rejects.toThrow(/empty: no audio in this folder/);
    await expect(openAudioWindows(empty)).rejects.toThrow(/empty: no audio files/);
  });

  it('an empty class folder', async () => {
    const set = join(t.dir, 'set');
    mkdirSync(join(set, 'one'), { recursive: true });
    mkdirSync(join(set, 'two'), { recursive: true });
    writeFileSync(join(set, 'one', 'a_one.wav'), readFileSync(good));
    await expect(openAudioSet(set, 'train')).rejects.toThrow(/two: class folder is empty \(no \.wav files\)/);
  });

  it('a speaker in two splits, and an unknown label', async () => {
    const dir = join(t.dir, 'man');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.wav'), readFileSync(good));
    const base = {
      classes: ['one', 'two'],
      items: [
        { path: 'a.wav', label: 'one', speaker: 's1', split: 'train' },
        { path: 'a.wav', label: 'two', speaker: 's1', split: 'test' },
      ],
    };
    await expect(openAudioSet(base as never, 'train', { baseDir: dir })).rejects.toThrow(
      /speaker "s1" appears in both train and test/,
    );
    const badLabel = {
      classes: ['one', 'two'],
      items: [{ path: 'a.wav', label: 'three', speaker: 's1', split: 'train' }],
    };
    await expect(openAudioSet(badLabel as never, 'train', { baseDir: dir })).rejects.toThrow(/unknown label "three"/);
  });
});
