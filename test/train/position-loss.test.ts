// Per-position held-out loss: octave bins cover every position once, their weighted mean is the overall
// loss, and the overall loss equals the Trainer's evaluation on the same windows.
import { describe, expect, it } from 'vitest';
import { createModel, makeConfig, type MambaLM } from '../../src/model/index.js';
import { MemoryWindowSource, heldOutWindows, positionBins, positionLoss } from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';

describe('positionBins', () => {
  it('octaves [1], [2,3], [4,7] ..., the last one ending at L and never a lone position', () => {
    expect(positionBins(1)).toEqual([{ from: 1, to: 1 }]);
    expect(positionBins(2)).toEqual([{ from: 1, to: 2 }]);
    expect(positionBins(8)).toEqual([
      { from: 1, to: 1 },
      { from: 2, to: 3 },
      { from: 4, to: 8 },
    ]);
    expect(positionBins(12)).toEqual([
      { from: 1, to: 1 },
      { from: 2, to: 3 },
      { from: 4, to: 7 },
      { from: 8, to: 12 },
    ]);
    const b20 = positionBins(2 ** 20);
    expect(b20).toHaveLength(20);
    expect(b20.at(-1)).toEqual({ from: 2 ** 19, to: 2 ** 20 });
    for (let i = 1; i < b20.length; i++) expect(b20[i]!.from).toBe(b20[i - 1]!.to + 1);
    expect(() => positionBins(0)).toThrow(/whole number >= 1/);
  });
});

describe('positionLoss', () => {
  const r = new Rng(3);
  const tokens = Uint8Array.from({ length: 3000 }, () => 4 + r.int(4));
  const src = new MemoryWindowSource([{ name: 'x', tokens }], 16);
  const model = createModel(makeConfig({ d_model: 16, n_layer: 2, d_state: 4, vocab_size: 16 }), {
    device: 'cpu',
    seed: 5,
  }) as MambaLM;

  it('spreads windows evenly over all records, overlapping when asked for more than fit', async () => {
    const two = new MemoryWindowSource(
      [
        { name: 'a', tokens: tokens.subarray(0, 100) },
        { name: 'b', tokens: tokens.subarray(100, 150) },
      ],
      16,
    );
    const ws = [];
    for await (const w of heldOutWindows(two, 41, 6)) ws.push([w.source, w.start]);
    // 60 positions in a, 10 in b: k = floor((i + 0.5) * 70 / 6)
    expect(ws).toEqual([
      ['a', 5],
      ['a', 17],
      ['a', 29],
      ['a', 40],
      ['a', 52],
      ['b', 4],
    ]);
  });

  it("bins every prediction once; the overall bits are the mean of the model's per-token losses on those windows", async () => {
    const L = 64;
    const c = await positionLoss(model, src, { seqLen: L, windows: 10, batch: 4 });
    expect(c.windows).toBe(10);
    expect(c.tokens).toBe(10 * L);
    expect(c.bins.map((b) => b.count)).toEqual(positionBins(L).map((b) => (b.to - b.from + 1) * 10));
    const mean = c.bins.reduce((a, b) => a + b.bits * b.count, 0) / c.tokens;
    expect(mean).toBeCloseTo(c.bitsPerToken, 10);
    // the same windows through the model's forward in one batch
    const ws: Uint8Array[] = [];
    for await (const w of heldOutWindows(src, L + 1, 10)) ws.push(w.tokens);
    const inputs = new Int32Array(10 * L),
      targets = new Int32Array(10 * L);
    ws.forEach((w, b) => {
      for (let t = 0; t < L; t++) {
        inputs[b * L + t] = w[t]!;
        targets[b * L + t] = w[t + 1]!;
      }
    });
    const r = model.forward({ B: 10, L, inputs, targets });
    expect(c.bitsPerToken).toBeCloseTo(r.loss / Math.LN2, 9);
    // position 1 (one token of context) in the first bin: the windows' first predictions only
    let first = 0;
    for (let b = 0; b < 10; b++) first += r.losses[b * L]!;
    expect(c.bins[0]!.bits).toBeCloseTo(first / 10 / Math.LN2, 9);
  });

  it('says when no window fits', async () => {
    await expect(positionLoss(model, src, { seqLen: 4000, windows: 2, batch: 1 })).rejects.toThrow(
      /no window of 4001 tokens/,
    );
  });
});
