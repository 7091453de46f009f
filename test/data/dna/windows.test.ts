// Window sources and labelled genome sets: reproducible, never crossing records, hold-out parts disjoint,
// padding for short records, class-balanced sampling with splits by source.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DNA_DATA,
  IndexedFasta,
  openHoldoutSplits,
  PAD,
  buildDataset,
  decodeTokens,
  encodeString,
  openDnaSource,
  openGenomeSet,
  reverseComplement,
  scanBgzf,
} from '../../../src/data/dna/index.js';
import { Rng } from '../../../src/util/rng.js';
import { needs } from '../../tools.js';
import { syntheticFasta, tempDir, writeText } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let synth: string;
const { records } = syntheticFasta(5);
const bySeq = new Map(records.map((r) => [r.name, r.seq.toUpperCase().replace(/[RYKM]/g, 'N')]));

beforeAll(() => {
  tmp = tempDir();
  synth = writeText(join(tmp.dir, 'synth.fa'), syntheticFasta(5).text);
});
afterAll(() => tmp?.cleanup());

describe('DNA window sources', () => {
  it('random windows of a bgzip FASTA inflate each block once (the window cache) and read what an uncached source reads', async () => {
    const cached = openDnaSource(DEFAULT_DNA_DATA);
    const uncached = openDnaSource(DEFAULT_DNA_DATA, { cacheBlocks: 0 });
    try {
      const r1 = new Rng(7),
        r2 = new Rng(7);
      for (let i = 0; i < 300; i++) {
        const a = await cached.randomWindow(1025, r1),
          b = await uncached.randomWindow(1025, r2);
        expect(a.start).toBe(b.start);
        expect(Buffer.from(a.tokens).equals(Buffer.from(b.tokens)), `window ${i}`).toBe(true);
      }
      const blocks = scanBgzf(DEFAULT_DNA_DATA).coff.length;
      expect(blocks).toBeGreaterThan(10);
      // the constructor inflates the last block once to learn the size; after that each block at most once
      expect(cached.files[0]!.blocksInflated).toBeLessThanOrEqual(blocks + 1);
      expect(uncached.files[0]!.blocksInflated).toBeGreaterThanOrEqual(300);
    } finally {
      cached.close();
      uncached.close();
    }
  });

  it('random windows are reproducible and lie inside one record', async () => {
    const src = openDnaSource(synth);
    const a = [],
      b = [];
    const r1 = new Rng(42),
      r2 = new Rng(42);
    for (let i = 0; i < 200; i++) a.push(await src.randomWindow(900, r1));
    for (let i = 0; i < 200; i++) b.push(await src.randomWindow(900, r2));
    expect(a.map((w) => [w.source, w.start])).toEqual(b.map((w) => [w.source, w.start]));
    const seen = new Set<string>();
    for (const w of a) {
      seen.add(w.source);
      const seq = bySeq.get(w.source)!;
      expect(w.start + 900).toBeLessThanOrEqual(seq.length);
      expect(decodeTokens(w.tokens)).toBe(seq.slice(w.start, w.start + 900));
    }
    // 'tiny' (7 bases) is never drawn in drop mode; the 999-base one-line record can be
    expect(seen.has('tiny')).toBe(false);
    expect(seen.has('chr1') && seen.has('chr2')).toBe(true);
    expect(src.maxWindowLength()).toBe(Math.max(...records.map((r) => r.seq.length)));
    expect(src.totalTokens()).toBe(records.reduce((s, r) => s + r.seq.length, 0));
    src.close();
  });

  it('windows are placed uniformly over all valid positions (records weighted by their positions)', async () => {
    const src = openDnaSource(synth);
    const r = new Rng(1);
    const L = 1000;
    const counts = new Map<string, number>();
    const N = 3000;
    for (let i = 0; i < N; i++) {
      const w = src.randomWindowSync(L, r);
      counts.set(w.source, (counts.get(w.source) ?? 0) + 1);
    }
    const positions = records.map((x) => Math.max(0, x.seq.length - L + 1));
    const total = positions.reduce((a, b) => a + b, 0);
    records.forEach((x, i) => {
      const expected = (N * positions[i]!) / total;
      expect(Math.abs((counts.get(x.name) ?? 0) - expected)).toBeLessThan(5 * Math.sqrt(expected + 1) + 1);
    });
    src.close();
  });

  it('pads short records with PAD tokens when asked, and says so', async () => {
    const src = openDnaSource(synth, { shortRecords: 'pad' });
    expect(src.describe()).toMatch(/padded with PAD tokens/);
    const wins = [...src.sequentialWindowsSync(2000)];
    const tiny = wins.find((w) => w.source === 'tiny')!;
    expect(decodeTokens(tiny.tokens.subarray(0, 7))).toBe(bySeq.get('tiny'));
    expect(tiny.tokens.subarray(7).every((t) => t === PAD)).toBe(true);
    const drop = openDnaSource(synth);
    expect(() => drop.randomWindowSync(100000, new Rng(1))).toThrow(/no record is at least 100,000 bases long/);
    expect(src.randomWindowSync(100000, new Rng(1)).tokens.length).toBe(100000);
    src.close();
    drop.close();
  });

  it('sequential windows tile each record in order, dropping tails', async () => {
    const src = openDnaSource(synth);
    const L = 512;
    const got = [];
    for await (const w of src.sequentialWindows(L)) got.push(w);
    const expected = records.flatMap((x) =>
      Array.from({ length: Math.floor(x.seq.length / L) }, (_, k) => `${x.name}@${k * L}`),
    );
    expect(got.map((w) => `${w.source}@${w.start}`)).toEqual(expected);
    for (const w of got) expect(decodeTokens(w.tokens)).toBe(bySeq.get(w.source)!.slice(w.start, w.start + L));
    src.close();
  });

  it('hold-out parts are disjoint: train windows in the first 95% of each record, valid windows in the last 5%', async () => {
    const train = openDnaSource(DEFAULT_DNA_DATA, { holdout: { part: 'train', fraction: 0.05 } });
    const valid = openDnaSource(DEFAULT_DNA_DATA, { holdout: { part: 'valid', fraction: 0.05 } });
    const len = 1652982,
      cut = Math.floor(len * 0.95);
    expect(train.totalTokens() + valid.totalTokens()).toBe(len);
    const r = new Rng(9);
    for (let i = 0; i < 20; i++) {
      const w = train.randomWindowSync(1 << 16, r);
      expect(w.start + (1 << 16)).toBeLessThanOrEqual(cut);
    }
    let n = 0;
    for await (const w of valid.sequentialWindows(4096)) {
      expect(w.start).toBeGreaterThanOrEqual(cut);
      expect(w.start + 4096).toBeLessThanOrEqual(len);
      n++;
    }
    expect(n).toBe(Math.floor((len - cut) / 4096));
    expect(valid.describe()).toMatch(/valid part: last 5% of each record/);
    const pair = openHoldoutSplits(DEFAULT_DNA_DATA, 0.05);
    expect([pair.train.totalTokens(), pair.valid.totalTokens()]).toEqual([train.totalTokens(), valid.totalTokens()]);
    pair.train.close();
    pair.valid.close();
    // a real million-base window exists in the train part
    const big = train.randomWindowSync(1 << 20, r);
    expect(big.tokens.length).toBe(1 << 20);
    const fa = IndexedFasta.open(DEFAULT_DNA_DATA);
    expect(Buffer.from(big.tokens).equals(fa.tokens(big.source, big.start, big.start + (1 << 20)))).toBe(true);
    fa.close();
    train.close();
    valid.close();
  });

  it('reverse-complement augmentation flips about half of the windows', () => {
    const src = openDnaSource(synth, { reverseComplement: true });
    const plain = openDnaSource(synth);
    let flipped = 0;
    const r = new Rng(5);
    for (let i = 0; i < 200; i++) {
      const w = src.randomWindowSync(300, r);
      const fwd = plain.files[0]!.tokens(w.source, w.start, w.start + 300);
      if (decodeTokens(w.tokens) !== decodeTokens(fwd)) {
        expect(w.tokens).toEqual(reverseComplement(fwd));
        flipped++;
      }
    }
    expect(flipped).toBeGreaterThan(70);
    expect(flipped).toBeLessThan(130);
    src.close();
    plain.close();
  });

  it('opens several files as one source and keeps case when asked', () => {
    const b = writeText(join(tmp.dir, 'b.fa'), '>lower\nacgtnACGTN\n');
    const src = openDnaSource([synth, b], { keepCase: true });
    expect(src.files.length).toBe(2);
    const buf = new Uint8Array(10);
    const names = new Set<string>();
    const r = new Rng(2);
    for (let i = 0; i < 20; i++) expect(src.randomWindowSync(10, r, buf).tokens).toBe(buf);
    for (const w of src.sequentialWindowsSync(10)) names.add(w.source.split(':')[0]!);
    expect([...names].sort()).toEqual(['b.fa', 'synth.fa']);
    expect(Array.from(src.files[1]!.tokens('lower', 0, 10, { keepCase: true }))).toEqual([
      9, 10, 11, 12, 13, 4, 5, 6, 7, 8,
    ]);
    expect(Array.from(encodeString('acgtn'))).toEqual([4, 5, 6, 7, 8]);
    src.close();
  });
});

describe('labelled genome sets', () => {
  let manifest: string;
  beforeAll(() => {
    const dir = join(tmp.dir, 'set');
    mkdirSync(dir);
    const mk = (name: string, letters: string, n: number) => {
      let s = `>${name}\n`;
      for (let i = 0; i < n; i++) s += letters[i % letters.length];
      writeFileSync(join(dir, `${name}.fa`), s + '\n');
    };
    // class A genomes are all A/C, class B all G/T: a window tells its class
    mk('a1', 'AC', 5000);
    mk('a2', 'CA', 3000);
    mk('a3', 'AAC', 4000);
    mk('b1', 'GT', 9000);
    mk('b2', 'TG', 2000);
    manifest = join(dir, 'manifest.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        name: 'toy',
        classes: ['A', 'B'],
        sources: [
          { path: 'a1.fa', label: 'A', split: 'train', accession: 'X1' },
          { path: 'a2.fa', label: 'A', split: 'train' },
          { path: 'b1.fa', label: 'B', split: 'train' },
          { path: 'a3.fa', label: 'A', split: 'test' },
          { path: 'b2.fa', label: 'B', split: 'test' },
        ],
      }),
    );
  });

  it('samples classes uniformly, and only from the sources of the split', async () => {
    const set = openGenomeSet(manifest, 'train');
    expect(set.classes).toEqual(['A', 'B']);
    const r = new Rng(3);
    const count = [0, 0];
    const sources = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const e = await set.randomExample(256, r);
      count[e.label]!++;
      sources.add(e.source.split(':')[0]!);
      const letters = new Set(decodeTokens(e.tokens));
      expect([...letters].every((c) => (e.label === 0 ? 'AC' : 'GT').includes(c))).toBe(true);
    }
    // B has one source with 3x the bases of A's: balanced by class anyway
    expect(Math.abs(count[0]! - 1000)).toBeLessThan(120);
    expect([...sources].sort()).toEqual(['a1.fa', 'a2.fa', 'b1.fa']);
    expect(set.describe()).toMatch(/toy \(train\): 3 genomes/);
    set.close();
  });

  it('eval examples are a fixed set of perSource windows per held-out source', async () => {
    const set = openGenomeSet(manifest, 'test');
    const a = [],
      b = [];
    for await (const e of set.evalExamples(500, 3)) a.push(`${e.source}@${e.start}:${e.label}`);
    for await (const e of set.evalExamples(500, 3)) b.push(`${e.source}@${e.start}:${e.label}`);
    expect(a).toEqual(b);
    expect(a.length).toBe(6);
    expect(a.filter((s) => s.startsWith('a3.fa')).every((s) => s.endsWith(':0'))).toBe(true);
    expect(a.filter((s) => s.startsWith('b2.fa')).every((s) => s.endsWith(':1'))).toBe(true);
    set.close();
  });

  it('rejects bad manifests clearly', () => {
    const bad = join(tmp.dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ name: 'x', classes: ['A', 'B'], sources: [{ path: 'a.fa', label: 'C', split: 'train' }] }),
    );
    expect(() => openGenomeSet(bad, 'train')).toThrow(
      /bad\.json: sources\[0\] \(a\.fa\): label 'C' is not one of the classes/,
    );
    writeFileSync(bad, '{ nope');
    expect(() => openGenomeSet(bad, 'train')).toThrow(/bad\.json: cannot read the manifest/);
    expect(() => openGenomeSet(manifest, 'valid')).toThrow(/no sources in split 'valid'/);
  });
});

const ragout = needs('ragout-examples');
describe.skipIf(ragout.skip)(ragout.title('dataset recipes'), () => {
  it('builds the shipped genome recipe all-or-nothing and refuses a non-empty folder without force', async () => {
    const out = join(tmp.dir, 'hp');
    const lines: string[] = [];
    const r = await buildDataset('h_pylori', out, { log: (l) => lines.push(l) });
    expect(r.bases).toBe(1652982);
    expect(lines[0]).toMatch(/\[1\/1\] Helicobacter pylori G27/);
    expect(readdirSync(out).sort()).toEqual(['G27.fa.gz', 'G27.fa.gz.fai', 'G27.fa.gz.gzi']);
    await expect(buildDataset('h_pylori', out)).rejects.toThrow(/exists and is not empty.*--force/);
    await buildDataset('h_pylori', out, { force: true });
    await expect(buildDataset('nope', join(tmp.dir, 'x'))).rejects.toThrow(/unknown dataset 'nope'/);
    expect(readdirSync(tmp.dir).filter((n) => n.includes('.partial-'))).toEqual([]);
  });
});
