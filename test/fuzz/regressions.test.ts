// Cases the fuzzer found, kept as regression tests (inputs generated here; the fuzz run's seed and index
// that first showed each are in the comments).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgzfWriter, DnaDataError, IndexedFasta, scanBgzf } from '../../src/data/dna/index.js';
import { CheckpointError, decodeSafetensors, encodeSafetensors, readConfig } from '../../src/model/checkpoint.js';
import { tempDir } from '../data/dna/helpers.js';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => (tmp = tempDir('mamba-fuzz-regress-')));
afterAll(() => tmp?.cleanup());

function threeBlocks(): Buffer {
  let s = '>r\n';
  for (let i = 0; i < 2000; i++) s += 'ACGTTGCAAGGCTTAACGTAGCTAGCTAGGATCGATCGATCGTAGCTAGCTAGCTAGCTAGCTAGCTAGCATCG\n';
  const w = new BgzfWriter({ level: 1 });
  w.write(Buffer.from(s));
  return w.finish().data;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('nothing was thrown');
}

describe('fuzz findings', () => {
  it('BGZF: a data block whose ISIZE reads 0 is not skipped as an empty block (fuzz seed 2, bgzf #150)', () => {
    // scanBgzf left blocks with ISIZE 0 out of the index without inflating them: 65,280 bases vanished, exit 0
    const b = threeBlocks();
    const bsize = b.readUInt16LE(16) + 1;
    b.writeUInt32LE(0, bsize - 4);
    const f = join(tmp.dir, 'isize0.fa.gz');
    writeFileSync(f, b);
    const e = thrown(() => scanBgzf(f));
    expect(e).toBeInstanceOf(DnaDataError);
    expect(e.message).toMatch(
      /isize0\.fa\.gz: corrupt bgzip block at compressed offset 0: it inflates to 65280 bytes but its ISIZE field says 0/,
    );
    expect(() => IndexedFasta.open(f, { writeIndex: false })).toThrow(DnaDataError);
  });

  it('BGZF: bytes lost inside the last data block, whose tail then reads like the EOF block (fuzz seed 2, bgzf #214)', () => {
    const b = threeBlocks();
    const cut = b.length - 28 - 500; // inside the last data block
    const f = join(tmp.dir, 'shifted.fa.gz');
    writeFileSync(f, Buffer.concat([b.subarray(0, cut), b.subarray(cut + 28)]));
    const e = thrown(() => {
      const fa = IndexedFasta.open(f, { writeIndex: false });
      for (const r of fa.records) fa.tokens(r, 0, r.length);
    });
    expect(e).toBeInstanceOf(DnaDataError);
    expect(e.message).toMatch(/shifted\.fa\.gz: (corrupt|truncated) bgzip/);
  });

  it('.gzi: an index that stops before the last data block is refused, not read as a shorter file (fuzz seed 7, gzi #2661)', () => {
    // a .gzi of 0 entries (8 zero bytes) made the reader see only the first block: a FASTA cut short, exit 0
    const f = join(tmp.dir, 'short-gzi.fa.gz');
    writeFileSync(f, threeBlocks());
    writeFileSync(`${f}.gzi`, Buffer.alloc(8));
    const e = thrown(() => IndexedFasta.open(f, { writeIndex: false }));
    expect(e).toBeInstanceOf(DnaDataError);
    expect(e.message).toMatch(
      /short-gzi\.fa\.gz: its \.gzi index does not list the block at compressed offset \d+ .*rebuild it/,
    );
  });

  it('safetensors and config.json: a JSON error quoting line breaks of the input stays one line (fuzz seed 2, safetensors #50)', () => {
    const good = encodeSafetensors(
      new Map([['w', { dtype: 'F32', shape: [2], data: Float32Array.from([0.25, -1.5]) }]]),
    );
    const hlen = Number(good.readBigUInt64LE(0));
    const bad = Buffer.from(good);
    bad.write('\n\n}', 8 + Math.floor(hlen / 2), 'latin1'); // breaks the JSON with line breaks inside
    const e = thrown(() => decodeSafetensors(bad, 'model.safetensors'));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/^model\.safetensors: the JSON header does not parse/);
    expect(e.message).not.toMatch(/[\r\n]/);
    writeFileSync(join(tmp.dir, 'config.json'), '{\n "d_model": 32,\n "n_layer": ,\n "x": 1\n}\n');
    const c = thrown(() => readConfig(tmp.dir));
    expect(c).toBeInstanceOf(CheckpointError);
    expect(c.message).toMatch(/config\.json: not valid JSON/);
    expect(c.message).not.toMatch(/[\r\n]/);
  });
});
