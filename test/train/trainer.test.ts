// Optimizer, schedules and the Trainer on small in-memory data: learning, exact resume, stop requests,
// NaN handling, classification metrics and sequence-length warmup.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MambaClassifier, MambaLM, loadModel, makeConfig } from '../../src/model/index.js';
import { makeParam, type Param } from '../../src/nn/index.js';
import {
  AdamW,
  MemoryLabelledSource,
  type DataParallel,
  MemoryWindowSource,
  Trainer,
  TrainingError,
  gradClip,
  lrAt,
  seqLenAt,
  stepShapeAt,
  warmupDoublings,
  type StepInfo,
} from '../../src/train/index.js';
import { Rng } from '../../src/util/rng.js';

/** A noisy order-2 Markov chain over the 4 DNA tokens (4..7): learnable, not trivial. */
function markovTokens(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const out = new Uint8Array(n);
  out[0] = 4;
  out[1] = 5;
  for (let i = 2; i < n; i++) {
    const det = 4 + ((out[i - 1]! + 2 * out[i - 2]!) % 4);
    out[i] = r.next() < 0.85 ? det : 4 + r.int(4);
  }
  return out;
}

const cfg = makeConfig({ d_model: 16, n_layer: 2, d_state: 4 });
const tmp = () => mkdtempSync(join(tmpdir(), 'mamba-train-'));

describe('schedules and optimizer', () => {
  it('warmup + cosine, sequence-length doubling', () => {
    const s = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
    expect(lrAt(0, s)).toBeCloseTo(0.1);
    expect(lrAt(9, s)).toBeCloseTo(1);
    expect(lrAt(60, s)).toBeCloseTo(0.55);
    expect(lrAt(110, s)).toBeCloseTo(0.1);
    const ls = Array.from({ length: 10 }, (_, i) => seqLenAt(i, 64, { start: 16, steps: 8 }));
    expect(ls).toEqual([16, 16, 16, 16, 32, 32, 32, 32, 64, 64]);
    expect(seqLenAt(0, 64, null)).toBe(64);
  });

  it('sequence-length warmup: constant tokens per step, and its edges', () => {
    // 2^4 .. 2^10 over 12 steps: the batch grows as the length shrinks, tokens stay batch x target
    const w = { start: 16, steps: 12 };
    const shapes = Array.from({ length: 14 }, (_, i) => stepShapeAt(i, 1024, 2, w));
    expect(shapes.map((s) => s.seqLen)).toEqual([16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024]);
    expect(shapes.every((s) => s.batch * s.seqLen === 2 * 1024 && Number.isInteger(s.batch))).toBe(true);
    expect(stepShapeAt(0, 1024, 2, w).batch).toBe(128);
    // no warmup: a start at or above the target, zero steps, or none at all
    expect(stepShapeAt(0, 64, 3, { start: 64, steps: 10 })).toEqual({ seqLen: 64, batch: 3 });
    expect(stepShapeAt(0, 64, 3, { start: 128, steps: 10 })).toEqual({ seqLen: 64, batch: 3 });
    expect(stepShapeAt(0, 64, 3, { start: 8, steps: 0 })).toEqual({ seqLen: 64, batch: 3 });
    expect(stepShapeAt(5, 64, 3, null)).toEqual({ seqLen: 64, batch: 3 });
    // fewer warmup steps than doublings: lengths are skipped, never exceeded, and the target comes on time
    expect(Array.from({ length: 3 }, (_, i) => seqLenAt(i, 64, { start: 8, steps: 2 }))).toEqual([8, 16, 64]);
    // the target must be start x 2^k
    expect(warmupDoublings(96, { start: 16, steps: 4 })).toMatch(/power of two/);
    expect(() => seqLenAt(0, 96, { start: 16, steps: 4 })).toThrow(/power of two/);
    expect(warmupDoublings(2 ** 20, { start: 2 ** 10, steps: 4 })).toBe(10);
  });

  it('clips by the global norm; AdamW decays only parameters marked decay', () => {
    const ctx = { device: 'cpu' as const, dtype: 'f64' as const };
    const a = makeParam('w', [2], Float64Array.from([1, 2]), ctx, true);
    const b = makeParam('norm.weight', [2], Float64Array.from([1, 2]), ctx, false);
    a.grad.data.set([3, 0]);
    b.grad.data.set([0, 4]);
    const { norm, scale } = gradClip([a, b], 1);
    expect(norm).toBeCloseTo(5);
    expect(scale * norm).toBeCloseTo(1, 5);
    expect(gradClip([a, b], 10).scale).toBe(1);
    expect(gradClip([a, b], 0).scale).toBe(1);
    // the update reads each gradient times the scale: the same as updating on gradients scaled beforehand
    const a2 = makeParam('w', [2], Float64Array.from([1, 2]), ctx, true);
    const b2 = makeParam('norm.weight', [2], Float64Array.from([1, 2]), ctx, false);
    a2.grad.data.set(a.grad.data.map((g) => g * scale));
    b2.grad.data.set(b.grad.data.map((g) => g * scale));
    const o1 = new AdamW([a, b], { weightDecay: 0.5 }),
      o2 = new AdamW([a2, b2], { weightDecay: 0.5 });
    for (let i = 0; i < 3; i++) {
      o1.update(0.1, scale);
      o2.update(0.1);
    }
    expect(Array.from(a.value.data)).toEqual(Array.from(a2.value.data));
    expect(Array.from(b.value.data)).toEqual(Array.from(b2.value.data));
    expect(Array.from(a.grad.data)).toEqual([3, 0]);
    a.value.data.set([1, 2]);
    b.value.data.set([1, 2]);
    a.grad.data.fill(0);
    b.grad.data.fill(0);
    const opt = new AdamW([a, b], { weightDecay: 0.5 });
    opt.update(0.1);
    expect(Array.from(a.value.data)).toEqual([1 - 0.1 * 0.5 * 1, 2 - 0.1 * 0.5 * 2]);
    expect(Array.from(b.value.data)).toEqual([1, 2]);
  });
});

describe('Trainer (lm)', () => {
  const train = new MemoryWindowSource([{ name: 'a', tokens: markovTokens(6000, 1) }], 16);
  const valid = new MemoryWindowSource([{ name: 'b', tokens: markovTokens(1500, 2) }], 16);
  const opts = { steps: 12, batchSize: 4, seqLen: 32, lr: 1e-2, warmupSteps: 3, evalWindows: 16, seed: 3 };

  it('learns a Markov chain well below the 2-bit order-0 entropy', async () => {
    const model = MambaLM.create(cfg, { seed: 1 });
    const t = new Trainer(model, { train, valid }, { ...opts, steps: 60, evalEvery: 60 });
    const before = await t.evaluate();
    const steps: StepInfo[] = [];
    t.hooks = {
      onStep: (s) => {
        steps.push(s);
      },
    };
    const sum = await t.run();
    expect(steps).toHaveLength(60);
    expect(sum.lastEval!.bitsPerToken).toBeLessThan(1.6);
    expect(sum.lastEval!.bitsPerToken).toBeLessThan(before.bitsPerToken - 1);
    expect(sum.lastEval!.accuracy).toBeGreaterThan(0.6);
    expect(steps.every((s) => s.gradNorm > 0 && Number.isFinite(s.tokensPerS))).toBe(true);
  });

  it('a resumed run gives the same losses step for step as an uninterrupted one', async () => {
    const full: number[] = [];
    const a = new Trainer(
      MambaLM.create(cfg, { seed: 2 }),
      { train },
      { ...opts, accumSteps: 2, seqLenWarmup: { start: 8, steps: 6 } },
      {
        hooks: {
          onStep: (s) => {
            full.push(s.loss);
          },
        },
      },
    );
    await a.run();
    const dir = tmp();
    const part: number[] = [];
    const b = new Trainer(
      MambaLM.create(cfg, { seed: 2 }),
      { train },
      { ...opts, accumSteps: 2, seqLenWarmup: { start: 8, steps: 6 } },
      {
        runDir: dir,
        hooks: {
          onStep: (s) => {
            part.push(s.loss);
            if (s.step === 5) b.requestStop();
          },
        },
      },
    );
    const sb = await b.run();
    expect(sb).toMatchObject({ step: 5, stopped: true });
    const st = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8'));
    expect(st.step).toBe(5);
    const c = Trainer.resume(
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
    expect(c.step).toBe(5);
    const sc = await c.run();
    expect(sc).toMatchObject({ step: 12, stopped: false });
    expect(part).toEqual(full);
    // sequence-length warmup 8 -> 16 over the first 6 steps, then the target 32; 128 tokens every step
    const lens: number[] = [];
    const tokens: number[] = [];
    const d = new Trainer(
      MambaLM.create(cfg, { seed: 2 }),
      { train },
      { ...opts, seqLenWarmup: { start: 8, steps: 6 } },
      {
        hooks: {
          onStep: (s) => {
            lens.push(s.seqLen);
            tokens.push(s.tokens);
            expect(s.batch * s.seqLen).toBe(4 * 32);
          },
        },
      },
    );
    await d.run();
    expect(lens).toEqual([8, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 32]);
    expect(tokens).toEqual(Array(12).fill(4 * 32));
    expect(d.tokens).toBe(12 * 4 * 32);
  });

  it('a NaN loss stops with the step named and leaves the last checkpoint alone', async () => {
    const dir = tmp();
    const model = MambaLM.create(cfg, { seed: 4 });
    const t = new Trainer(model, { train }, { ...opts, checkpointEvery: 2 }, { runDir: dir });
    t.hooks = {
      onStep: (s) => {
        if (s.step === 3) (model.backbone.normF.weight.value.data as Float32Array)[0] = NaN;
      },
    };
    await expect(t.run()).rejects.toThrow(
      /loss became NaN at step 4; stopped without updating; the last good checkpoint is in/,
    );
    await expect(t.run()).rejects.toThrow(TrainingError);
    expect(JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')).step).toBe(2);
    expect(Trainer.resume(dir, { train }).step).toBe(2);
  });

  it('keeps the model with the best evaluation loss in runDir/best', async () => {
    const dir = tmp();
    const t = new Trainer(
      MambaLM.create(cfg, { seed: 5 }),
      { train, valid },
      { ...opts, steps: 10, evalEvery: 2, evalWindows: 8 },
      { runDir: dir },
    );
    const evals: number[] = [];
    t.hooks = {
      onEval: (e) => {
        evals.push(e.loss);
      },
    };
    const sum = await t.run();
    expect(evals).toHaveLength(5);
    expect(sum.bestEval!.loss).toBe(Math.min(...evals));
    const best = loadModel(join(dir, 'best')) as MambaLM;
    const check = new Trainer(best, { train, valid }, { ...opts, evalWindows: 8 });
    expect((await check.evaluate()).loss).toBe(sum.bestEval!.loss);
    expect(Trainer.resume(dir, { train, valid }).bestEval!.loss).toBe(sum.bestEval!.loss);
  });

  it('rejects bad options and mismatched data with clear messages', () => {
    const m = MambaLM.create(cfg);
    expect(() => new Trainer(m, { train }, { batchSize: 0 })).toThrow('batchSize must be a positive integer, got 0');
    const lab = new MemoryLabelledSource([{ name: 'x', label: 0, tokens: new Uint8Array(10) }], ['a', 'b'], 16);
    expect(() => new Trainer(m, { train: lab })).toThrow(/task 'lm' needs a window/);
    expect(() => Trainer.resume(tmp(), { train })).toThrow(/holds no trainer checkpoint/);
    expect(() => new Trainer(m, { train }, { seqLen: 48, seqLenWarmup: { start: 32, steps: 2 } })).toThrow(
      /doubles 32 up to the target 48, so target \/ start must be a power of two/,
    );
  });
});

/** An in-process stand-in for an NCCL all-reduce: waits for every rank, then averages the gradients. */
function inProcessGroup(world: number): DataParallel[] {
  let pending: { params: Param[]; resolve: () => void }[] = [];
  return Array.from({ length: world }, (_, rank) => ({
    rank,
    worldSize: world,
    allReduceMean: (params: Param[]) =>
      new Promise<void>((resolve) => {
        pending.push({ params, resolve });
        if (pending.length < world) return;
        const group = pending;
        pending = [];
        for (let i = 0; i < params.length; i++) {
          const mean = new Float64Array(params[i]!.grad.numel);
          for (const g of group)
            g.params[i]!.grad.data.forEach((v, j) => {
              mean[j] = mean[j]! + v / world;
            });
          for (const g of group) g.params[i]!.grad.data.set(mean);
        }
        group.forEach((g) => g.resolve());
      }),
  }));
}

describe('Trainer (data parallel)', () => {
  it('ranks sample different batches, apply the same averaged update and only rank 0 writes', async () => {
    const train = new MemoryWindowSource([{ name: 'a', tokens: markovTokens(4000, 1) }], 16);
    const [p0, p1] = inProcessGroup(2);
    const dirs = [tmp(), tmp()];
    const losses: number[][] = [[], []];
    const trainers = [p0!, p1!].map(
      (parallel, r) =>
        new Trainer(
          MambaLM.create(cfg, { seed: 8 }),
          { train },
          { steps: 4, batchSize: 2, seqLen: 16, lr: 1e-2, warmupSteps: 1, seed: 2 },
          {
            runDir: dirs[r]!,
            parallel,
            hooks: {
              onStep: (s) => {
                losses[r]!.push(s.loss);
              },
            },
          },
        ),
    );
    await Promise.all(trainers.map((t) => t.run()));
    expect(losses[0]![0]).not.toBe(losses[1]![0]);
    const [a, b] = trainers.map((t) => t.model.parameters());
    for (let i = 0; i < a!.length; i++) expect(Array.from(b![i]!.value.data)).toEqual(Array.from(a![i]!.value.data));
    expect(readdirSync(dirs[0]!)).toContain('trainer_state.json');
    expect(readdirSync(dirs[1]!)).toHaveLength(0);
    expect(
      () =>
        new Trainer(
          MambaLM.create(cfg),
          { train },
          {},
          { parallel: { rank: 2, worldSize: 2, allReduceMean: () => {} } },
        ),
    ).toThrow(/rank must be in 0..worldSize-1/);
  });
});

describe('Trainer (classify)', () => {
  it('separates two classes by composition and reports accuracy and a confusion matrix', async () => {
    const r = new Rng(9);
    const gen = (label: number, n: number) =>
      Uint8Array.from({ length: n }, () =>
        r.next() < 0.7 ? (label === 0 ? 4 + r.int(2) : 6 + r.int(2)) : 4 + r.int(4),
      );
    const items = (k: number) =>
      [0, 1].flatMap((label) =>
        Array.from({ length: 2 }, (_, i) => ({ name: `${label}-${k}-${i}`, label, tokens: gen(label, 400) })),
      );
    const train = new MemoryLabelledSource(items(0), ['AC', 'GT'], 16);
    const valid = new MemoryLabelledSource(items(1), ['AC', 'GT'], 16);
    const model = MambaClassifier.create(
      makeConfig({ d_model: 16, n_layer: 1, d_state: 4, task: 'classify', num_classes: 2, pooling: 'mean' }),
      { seed: 1 },
    );
    const t = new Trainer(
      model,
      { train, valid },
      { steps: 25, batchSize: 8, seqLen: 32, lr: 1e-2, warmupSteps: 2, evalWindows: 8, seed: 1 },
    );
    const sum = await t.run();
    const e = sum.lastEval!;
    expect(e.count).toBe(32);
    expect(e.confusion!.flat().reduce((a, b) => a + b, 0)).toBe(32);
    expect(e.accuracy).toBeGreaterThan(0.9);
  });
});
