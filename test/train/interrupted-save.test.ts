// A crash in the middle of a checkpoint save (files of two different steps on disk) must not lose the
// run: resume falls back to the previous complete checkpoint and continues step for step from there.
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MambaLM, makeConfig } from '../../src/model/index.js';
import { MemoryWindowSource, Trainer } from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';

const cfg = makeConfig({ d_model: 16, n_layer: 2, d_state: 4 });

function tokens(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n }, (_, i) => 4 + ((i * 7 + (r.next() < 0.8 ? 0 : r.int(4))) % 4));
}

describe('interrupted checkpoint save', () => {
  it('resumes from the previous complete checkpoint and reproduces the uninterrupted losses', async () => {
    const train = new MemoryWindowSource([{ name: 'a', tokens: tokens(4000, 1) }], 16);
    const opts = { steps: 8, batchSize: 2, seqLen: 32, lr: 3e-3, warmupSteps: 2, checkpointEvery: 2, seed: 9 };
    const full: number[] = [];
    await new Trainer(MambaLM.create(cfg, { seed: 3 }), { train }, opts, { hooks: { onStep: (s) => { full.push(s.loss); } } }).run();

    const dir = mkdtempSync(join(tmpdir(), 'mamba-crash-'));
    const t = new Trainer(MambaLM.create(cfg, { seed: 3 }), { train }, opts, { runDir: dir, hooks: { onStep: (s) => { if (s.step === 6) t.requestStop(); } } });
    await t.run(); // checkpoints at steps 2, 4 and 6; *.prev holds step 4
    expect(JSON.parse(readFileSync(join(dir, 'trainer_state.json.prev'), 'utf8')).step).toBe(4);
    // a save of step 6 cut short after the model file: optimizer and trainer state still from step 4
    copyFileSync(join(dir, 'training_state.safetensors.prev'), join(dir, 'training_state.safetensors'));
    copyFileSync(join(dir, 'trainer_state.json.prev'), join(dir, 'trainer_state.json'));
    const part: number[] = [];
    const r = Trainer.resume(dir, { train }, { hooks: { onStep: (s) => { part.push(s.loss); } } });
    expect(r.step).toBe(4);
    await r.run();
    expect(part).toEqual(full.slice(4));
  });
});
