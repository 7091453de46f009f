// evaluateModel scores a model without a Trainer (no optimizer state) and says what it scored; the
// trainer's evaluations are the same numbers. Tasks come from the model's config, not its class.
import { describe, expect, it } from 'vitest';
import { MambaClassifier, MambaLM, makeConfig } from '../../src/model/index.js';
import {
  EvalDataError,
  MemoryLabelledSource,
  MemoryWindowSource,
  Trainer,
  describeResult,
  describeScored,
  evaluateModel,
  taskRunner,
} from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';

const r = new Rng(4);
const dna = (n: number) => Uint8Array.from({ length: n }, () => 4 + r.int(4));

describe('evaluateModel', () => {
  it("lm: windows, tokens and data of what it scored; equal to the trainer's evaluation", async () => {
    const model = MambaLM.create(makeConfig({ d_model: 16, n_layer: 1, d_state: 4 }), { seed: 2 });
    const src = new MemoryWindowSource([{ name: 'x', tokens: dna(1000) }], 16);
    const s = await evaluateModel(model, src, { seqLen: 32, batchSize: 4, windows: 10 });
    expect(s).toMatchObject({ task: 'lm', windows: 10, tokens: 320, count: 320, seqLen: 32, data: src.describe() });
    expect(s.bitsPerToken).toBeCloseTo(s.loss / Math.LN2, 12);
    expect(s.perplexity).toBeCloseTo(Math.exp(s.loss), 12);
    // untrained on uniform ACGT: about 4 bits (16-token vocabulary)
    expect(s.bitsPerToken).toBeGreaterThan(3);
    expect(describeScored(s)).toBe(`10 windows of 32 tokens (320 tokens) of ${src.describe()}`);
    const t = new Trainer(model, { train: src, valid: src }, { seqLen: 32, batchSize: 4, evalWindows: 10 });
    expect((await t.evaluate()).loss).toBe(s.loss);
    // all windows when fewer than asked: 1000 tokens hold 30 windows of 33
    expect((await evaluateModel(model, src, { seqLen: 32, batchSize: 8, windows: 1000 })).windows).toBe(30);
    await expect(evaluateModel(model, src, { seqLen: 2000, batchSize: 1, windows: 1 })).rejects.toThrow(EvalDataError);
  });

  it('classify: cross-entropy and accuracy, no bits per token; a confusion matrix over every example', async () => {
    const cfg = makeConfig({ d_model: 16, n_layer: 1, d_state: 4, task: 'classify', num_classes: 3 });
    const model = MambaClassifier.create(cfg, { seed: 2 });
    const items = [0, 1, 2].flatMap((label) => [0, 1].map((i) => ({ name: `${label}-${i}`, label, tokens: dna(64) })));
    const src = new MemoryLabelledSource(items, ['a', 'b', 'c'], 16);
    const s = await evaluateModel(model, src, { seqLen: 16, batchSize: 4, windows: 2 });
    expect(s.task).toBe('classify');
    expect(s.bitsPerToken).toBeUndefined();
    expect(s.perplexity).toBeUndefined();
    expect(s.confusion!.flat().reduce((a, b) => a + b, 0)).toBe(s.count);
    expect(s.tokens).toBe(s.count * 16);
    expect(describeResult(s)).toMatch(/^cross-entropy [\d.]+ nats, accuracy [\d.]+ \(\d+ of \d+\)$/);
    expect(taskRunner(model).accepts(src)).toBe(true);
    expect(taskRunner(model).accepts(new MemoryWindowSource([{ name: 'x', tokens: dna(10) }], 16))).toBe(false);
  });
});
