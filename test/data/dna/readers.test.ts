// The package reader (FastaReader: @gmod/indexedfasta + @gmod/bgzf-filehandle) and the hand-written
// synchronous reader (IndexedFasta, kept for training windows) return the same bases on every case:
// plain and bgzip (ours and bgzip's), multi-record with CR LF and several line widths, edges of records
// and lines. The package path checks BGZF CRCs through CrcCheckedBgzf.
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BgzfWriter,
  DnaDataError,
  FastaReader,
  IndexedFasta,
  MemoryFastaFile,
  indexFasta,
  scanBgzf,
} from '../../../src/data/dna/index.js';
import { rng } from '../../helpers.js';
import { hasBgzip, syntheticFasta, tempDir, writeText } from './helpers.js';

const G27 = join(__dirname, '../../../datasets/dna/h_pylori/G27.fa.gz');
let tmp: ReturnType<typeof tempDir>;
beforeAll(() => (tmp = tempDir('mamba-readers-')));
afterAll(() => tmp?.cleanup());

function bgzipOurs(name: string, text: string | Buffer): string {
  const w = new BgzfWriter();
  w.write(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  return writeText(join(tmp.dir, name), w.finish().data);
}

/** Ranges to compare for one record: edges of the record and of its lines, then seeded random ones. */
function ranges(len: number, lineBases: number, seed: number): [number, number][] {
  const out: [number, number][] = [
    [0, len],
    [0, 1],
    [len - 1, len],
    [0, 0],
    [len, len],
  ];
  for (const b of [lineBases - 1, lineBases, lineBases + 1, 2 * lineBases]) {
    if (b > 0 && b < len) out.push([b - 1, b], [b, Math.min(len, b + 1)], [0, b], [b, len]);
  }
  const r = rng(seed);
  for (let i = 0; i < 40; i++) {
    const a = Math.floor(r() * len),
      n = Math.floor(r() * Math.min(len - a, 3 * lineBases + 5));
    out.push([a, a + n]);
  }
  return out;
}

async function compareAll(path: string): Promise<number> {
  const sync = IndexedFasta.open(path);
  const pkg = await FastaReader.open(path);
  let n = 0;
  try {
    expect(pkg.records).toEqual(sync.records);
    for (const rec of sync.records) {
      for (const [a, b] of ranges(rec.length, rec.lineBases, rec.length)) {
        expect(await pkg.getSequence(rec.name, a, b)).toBe(sync.bases(rec, a, b).toString('latin1'));
        n++;
      }
    }
  } finally {
    sync.close();
    await pkg.close();
  }
  return n;
}

describe('the package reader and the hand-written reader agree', () => {
  it('plain and bgzip multi-record FASTA (CR LF, several line widths, a one-line record, a tiny record)', async () => {
    const { text } = syntheticFasta(11);
    const plain = writeText(join(tmp.dir, 'synth.fa'), text);
    expect(await compareAll(plain)).toBeGreaterThan(200);
    expect(await compareAll(bgzipOurs('synth.fa.gz', text))).toBeGreaterThan(200);
  });

  it.skipIf(!hasBgzip)('a file made by bgzip itself (skipped without bgzip)', async () => {
    const { text } = syntheticFasta(12);
    const f = writeText(join(tmp.dir, 'tool.fa'), text);
    execFileSync('bgzip', ['-f', '-k', '-i', f]);
    expect(await compareAll(`${f}.gz`)).toBeGreaterThan(200);
  });

  it('the real genome: bgzip with its shipped .fai and .gzi, and plain', async () => {
    const f = join(tmp.dir, 'G27.fa.gz');
    for (const ext of ['', '.fai', '.gzi']) copyFileSync(`${G27}${ext}`, `${f}${ext}`);
    expect(await compareAll(f)).toBeGreaterThan(50);
    const sync = IndexedFasta.open(f);
    const rec = sync.records[0]!;
    const plain = writeText(
      join(tmp.dir, 'G27.fa'),
      `>${rec.name}\n${sync
        .bases(rec, 0, rec.length)
        .toString('latin1')
        .replace(/(.{70})/g, '$1\n')}\n`,
    );
    sync.close();
    expect(await compareAll(plain)).toBeGreaterThan(50);
  });

  it('any file handle: the same bytes from memory', async () => {
    const { text } = syntheticFasta(13);
    const f = bgzipOurs('mem.fa.gz', text);
    const { records } = indexFasta(f);
    const r = await FastaReader.fromHandles(
      {
        fasta: new MemoryFastaFile(readFileSync(f)),
        fai: new MemoryFastaFile(readFileSync(`${f}.fai`)),
        gzi: new MemoryFastaFile(readFileSync(`${f}.gzi`)),
      },
      'mem.fa.gz',
    );
    const sync = IndexedFasta.open(f);
    for (const rec of records)
      expect(await r.getSequence(rec.name, 0, rec.length)).toBe(sync.bases(rec, 0, rec.length).toString('latin1'));
    sync.close();
    await expect(r.getSequence('chr1', 5, 1e9)).rejects.toThrow(/range 5\.\.1000000000 .* is outside record 'chr1'/);
    await expect(r.getSequence('nope', 0, 1)).rejects.toThrow(/mem\.fa\.gz: no record named 'nope'/);
  });

  it('an unwritable folder: the indexes are built in memory', async () => {
    const { text } = syntheticFasta(14);
    const f = bgzipOurs('ro.fa.gz', text);
    const r = await FastaReader.open(f, { writeIndex: false });
    expect(await r.getSequence('tiny', 0, 7)).toHaveLength(7);
    await r.close();
  });
});

describe('the package path checks BGZF CRCs (the package itself does not)', () => {
  const handles = (b: Buffer) => ({
    fasta: new MemoryFastaFile(b),
    fai: new MemoryFastaFile(readFileSync(`${G27}.fai`)),
    gzi: new MemoryFastaFile(readFileSync(`${G27}.gzi`)),
  });
  const name = () => readFileSync(`${G27}.fai`, 'latin1').split('\t')[0]!;

  it('a flipped CRC field', async () => {
    const b = Buffer.from(readFileSync(G27));
    const { coff } = scanBgzf(G27);
    const c = coff[2]!,
      bsize = b.readUInt16LE(c + 16) + 1;
    b[c + bsize - 7]! ^= 4;
    const r = await FastaReader.fromHandles(handles(b), 'crc.fa.gz');
    await expect(r.getSequence(name(), 0, 200000)).rejects.toThrow(
      new RegExp(`crc\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: CRC32 mismatch`),
    );
    // blocks before the damaged one still read
    expect(await r.getSequence(name(), 0, 100)).toHaveLength(100);
  });

  it('a flipped payload bit that still inflates', async () => {
    const orig = readFileSync(G27);
    const { coff } = scanBgzf(G27);
    const c = coff[4]!,
      bsize = orig.readUInt16LE(c + 16) + 1;
    const payload = orig.subarray(c + 18, c + bsize - 8);
    const want = inflateRawSync(payload);
    let bit = 8 * 100;
    for (; bit < payload.length * 8; bit += 5) {
      const p = Buffer.from(payload);
      p[bit >> 3]! ^= 1 << (bit & 7);
      try {
        const got = inflateRawSync(p);
        if (got.length === want.length && !got.equals(want)) break;
      } catch {
        /* next bit */
      }
    }
    expect(bit).toBeLessThan(payload.length * 8);
    const b = Buffer.from(orig);
    b[c + 18 + (bit >> 3)]! ^= 1 << (bit & 7);
    const r = await FastaReader.fromHandles(handles(b), 'flip.fa.gz');
    await expect(r.getSequence(name(), 0, 1652982)).rejects.toThrow(
      new RegExp(`flip\\.fa\\.gz: corrupt bgzip block at compressed offset ${c}: CRC32 mismatch`),
    );
  });

  it('a damaged .gzi given as a handle is refused before the package reads it', async () => {
    const gzi = Buffer.from(readFileSync(`${G27}.gzi`));
    gzi.writeBigUInt64LE(1n << 40n, 8 + 16 * 5);
    const h = { ...handles(Buffer.from(readFileSync(G27))), gzi: new MemoryFastaFile(gzi) };
    await expect(FastaReader.fromHandles(h, 'g.fa.gz')).rejects.toBeInstanceOf(DnaDataError);
  });
});
