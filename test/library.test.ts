// The package entry point exposes the library: a model trained through it on real DNA lowers its loss.
import { describe, expect, it } from 'vitest';
import * as lib from '../src/index.js';

describe('library entry point', () => {
  it('trains a tiny model on the shipped genome through the public API', async () => {
    const { train, valid } = lib.dna.openHoldoutSplits(lib.dna.DEFAULT_DNA_DATA, 0.05);
    const config = lib.makeConfig('tiny', { domain: 'dna', task: 'lm', vocab_size: 16 });
    const model = lib.createModel(config, { device: 'cpu', seed: 3 });
    const trainer = new lib.Trainer(
      model,
      { train, valid },
      { steps: 12, batchSize: 4, seqLen: 128, lr: 5e-3, warmupSteps: 2, evalWindows: 8, seed: 3 },
    );
    const before = await trainer.evaluate();
    await trainer.run();
    const after = await trainer.evaluate();
    expect(before.bitsPerToken).toBeGreaterThan(3); // 16-token vocabulary, untrained: about log2(16)
    expect(after.bitsPerToken).toBeLessThan(before.bitsPerToken - 0.5);
    expect(typeof lib.audio.openAudioWindows).toBe('function');
  });
});
