// A crash in the middle of a checkpoint save must not lose the run: checkpoint.json names the last
// complete step folder, and resume continues step for step from it whatever the top-level files hold.
// (test/train/sigkill-resume.test.ts kills real runs at random moments; these are the cases by hand.)
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MambaLM, makeConfig } from '../../src/model/index.js';
import {
  CHECKPOINT_MANIFEST,
  MemoryWindowSource,
  Trainer,
  committedCheckpoint,
  hasCheckpoint,
} from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';

const cfg = makeConfig({ d_model: 16, n_layer: 2, d_state: 4 });

function tokens(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n }, (_, i) => 4 + ((i * 7 + (r.next() < 0.8 ? 0 : r.int(4))) % 4));
}

const train = new MemoryWindowSource([{ name: 'a', tokens: tokens(4000, 1) }], 16);
const opts = { steps: 8, batchSize: 2, seqLen: 32, lr: 3e-3, warmupSteps: 2, checkpointEvery: 2, seed: 9 };

async function uninterrupted(): Promise<number[]> {
  const full: number[] = [];
  await new Trainer(MambaLM.create(cfg, { seed: 3 }), { train }, opts, {
    hooks: {
      onStep: (s) => {
        full.push(s.loss);
      },
    },
  }).run();
  return full;
}

/** A run folder checkpointed at steps 2 and 4, stopped after step 4. */
async function stoppedAt4(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mamba-crash-'));
  const t = new Trainer(MambaLM.create(cfg, { seed: 3 }), { train }, opts, {
    runDir: dir,
    hooks: {
      onStep: (s) => {
        if (s.step === 4) t.requestStop();
      },
    },
  });
  await t.run();
  return dir;
}

async function resumedLosses(dir: string): Promise<{ step: number; losses: number[] }> {
  const part: number[] = [];
  const r = Trainer.resume(
    dir,
    { train },
    {
      hooks: {
        onStep: (s) => {
          part.push(s.loss);
        },
      },
    },
  );
  const step = r.step;
  await r.run();
  return { step, losses: part };
}

describe('interrupted checkpoint save', () => {
  it('resumes from the committed step whatever a save cut short left at the top of the folder', async () => {
    const full = await uninterrupted();
    const dir = await stoppedAt4();
    expect(committedCheckpoint(dir)!.step).toBe(4);
    // a save of step 6 cut short: its folder half written, the top-level files half replaced
    mkdirSync(join(dir, 'checkpoints', 'step-00000006.partial-1'), { recursive: true });
    writeFileSync(join(dir, 'checkpoints', 'step-00000006.partial-1', 'model.safetensors'), 'torn');
    // (saves replace files by rename, never in place: the top-level files are hard links of the step's)
    writeFileSync(join(dir, 'x'), 'torn');
    renameSync(join(dir, 'x'), join(dir, 'training_state.safetensors'));
    writeFileSync(join(dir, 'trainer_state.json.tmp-1-2'), '{"st');
    const r = await resumedLosses(dir);
    expect(r.step).toBe(4);
    expect(r.losses).toEqual(full.slice(4));
    expect(existsSync(join(dir, 'checkpoints', 'step-00000006.partial-1'))).toBe(false);
    expect(existsSync(join(dir, 'trainer_state.json.tmp-1-2'))).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')).step).toBe(8);
  });

  it('a committed step folder that lost a file is an error naming it, not a silent restart', async () => {
    const dir = await stoppedAt4();
    rmSync(join(committedCheckpoint(dir)!.dir, 'training_state.safetensors'));
    expect(() => Trainer.resume(dir, { train })).toThrow(
      /names step 4, but .*step-00000004.training_state\.safetensors is missing/,
    );
  });

  it('reads run folders of the older layout (top-level files and their *.prev links) in place', async () => {
    const full = await uninterrupted();
    const dir = await stoppedAt4();
    // the older layout: no manifest, no step folders; *.prev holds step 4, the top level a save cut short
    rmSync(join(dir, CHECKPOINT_MANIFEST));
    rmSync(join(dir, 'checkpoints'), { recursive: true });
    for (const f of ['model.safetensors', 'training_state.safetensors', 'trainer_state.json'])
      copyFileSync(join(dir, f), join(dir, `${f}.prev`));
    const st = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8'));
    writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify({ ...st, step: 6 }));
    expect(hasCheckpoint(dir)).toBe(true);
    const r = await resumedLosses(dir);
    expect(r.step).toBe(4);
    expect(r.losses).toEqual(full.slice(4));
  });
});
