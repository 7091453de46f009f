// Per-position held-out loss: octave bins cover every position once, their weighted mean is the overall
// loss, and the overall loss equals the Trainer's evaluation on the same windows.
import { describe, expect, it } from 'vitest';
import { createModel, makeConfig, type MambaLM } from '../../src/model/index.js';
import { MemoryWindowSource, Trainer, positionBins, positionLoss } from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';

describe('positionBins', () => {
  it('octaves [1], [2,3], [4,7] ... ending at L', () => {
    expect(positionBins(1)).toEqual([{ from: 1, to: 1 }]);
    expect(positionBins(8)).toEqual([{ from: 1, to: 1 }, { from: 2, to: 3 }, { from: 4, to: 7 }, { from: 8, to: 8 }]);
    expect(positionBins(12).at(-1)).toEqual({ from: 8, to: 12 });
    expect(positionBins(2 ** 20)).toHaveLength(21);
    expect(() => positionBins(0)).toThrow(/whole number >= 1/);
  });
});

describe('positionLoss', () => {
  const r = new Rng(3);
  const tokens = Uint8Array.from({ length: 3000 }, () => 4 + r.int(4));
  const src = new MemoryWindowSource([{ name: 'x', tokens }], 16);
  const model = createModel(makeConfig({ d_model: 16, n_layer: 2, d_state: 4, vocab_size: 16 }), { device: 'cpu', seed: 5 }) as MambaLM;

  it('bins every prediction once; their mean is the overall bits, the same as Trainer.evaluate', async () => {
    const L = 64;
    const c = await positionLoss(model, src, { seqLen: L, windows: 10, batch: 4 });
    expect(c.windows).toBe(10);
    expect(c.tokens).toBe(10 * L);
    expect(c.bins.map((b) => b.count)).toEqual(positionBins(L).map((b) => (b.to - b.from + 1) * 10));
    const mean = c.bins.reduce((a, b) => a + b.bits * b.count, 0) / c.tokens;
    expect(mean).toBeCloseTo(c.bitsPerToken, 10);
    for (const b of c.bins) expect(b.bits).toBeGreaterThan(0);
    const t = new Trainer(model, { train: src, valid: src }, { seqLen: L, batchSize: 3, evalWindows: 10, steps: 1 });
    const e = await t.evaluate();
    expect(c.bitsPerToken).toBeCloseTo(e.bitsPerToken, 9);
  });

  it('says when no window fits', async () => {
    await expect(positionLoss(model, src, { seqLen: 4000, windows: 2, batch: 1 })).rejects.toThrow(/no window of 4001 tokens/);
  });
});
