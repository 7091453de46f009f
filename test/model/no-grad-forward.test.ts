// The forward with no backward to follow (grad: false: one workspace shared by every block, two residual
// buffers) against the training forward of the same model: the same hidden states bit for bit, far less
// activation memory, no backward allowed after it; and the pipelined token losses score, variants and the
// audio twins use (launchTokenLosses) equal eval's. CPU here; the CUDA twin runs where a GPU is.
import { describe, expect, it } from 'vitest';
import { cudaAvailable, type Device } from '../../src/backend/index.js';
import { MambaLM, makeConfig } from '../../src/model/index.js';
import { LogProbPipeline, windowLogProbs } from '../../src/workflows/likelihood.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from '../helpers.js';

const cfg = makeConfig({ d_model: 32, n_layer: 3, d_state: 8, vocab_size: 16 });

function tokens(n: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => 4 + r.int(4));
}

function check(device: Device, precision: 'f32' | 'bf16') {
  const model = MambaLM.create(cfg, { seed: 3, device, precision });
  const B = 3,
    L = 200;
  const ids = tokens(B * L, 5);
  const bb = model.backbone;
  model.refreshHalf();
  const lean = bb.forward(bb.uploadIds(ids), B, L, { grad: false }).toFloat64();
  const leanBytes = bb.workspaceBytes();
  const kept = bb.forward(bb.uploadIds(ids), B, L).toFloat64();
  // the same kernels on the same inputs: identical values on the CPU (a GPU library may pick another algorithm)
  if (device === 'cpu') expect(Array.from(lean)).toEqual(Array.from(kept));
  else expect(relErr(lean, kept)).toBeLessThan(1e-6);
  // the training forward keeps every layer's activations on top of the shared one
  expect(bb.workspaceBytes()).toBeGreaterThan(1.8 * leanBytes);
  // a backward needs a grad forward
  bb.forward(bb.uploadIds(ids), B, L, { grad: false });
  expect(() => bb.backward(bb.ws.get('final', [B * L, cfg.d_model]))).toThrow(/backward before forward/);
}

describe('no-gradient forward', () => {
  it("gives the training forward's hidden states in a fraction of its memory (CPU, f32)", () => check('cpu', 'f32'));

  it('pipelined token losses equal eval per window, whatever the pass size and order', () => {
    const model = MambaLM.create(cfg, { seed: 4 });
    const r = new Rng(9);
    const windows = Array.from({ length: 9 }, (_, i) => ({
      tokens: Uint8Array.from(tokens(20 + r.int(60), 10 + i)),
      from: 1 + r.int(10),
    }));
    const want = windows.map((w) => {
      const L = w.tokens.length - 1;
      const res = model.forward({
        B: 1,
        L,
        inputs: Int32Array.from(w.tokens.subarray(0, L)),
        targets: Int32Array.from(w.tokens.subarray(1)),
      });
      return Array.from(res.losses.subarray(w.from - 1), (l) => -l / Math.LN2);
    });
    for (const batchTokens of [64, 200, 1 << 15]) {
      const got = windowLogProbs(model, windows, { batchTokens });
      got.forEach((g, i) => {
        expect(g.length).toBe(want[i]!.length);
        g.forEach((v, k) => expect(Math.abs(v - want[i]![k]!)).toBeLessThan(1e-9));
      });
    }
    // in add order, with explicit launches: every window handed out once, in order, by finish()
    const seen: number[] = [];
    const pipe = new LogProbPipeline(model, { batchTokens: 150 });
    windows.forEach((w, i) => {
      pipe.add(w, (lp) => {
        seen.push(i);
        expect(lp.length).toBe(want[i]!.length);
        lp.forEach((v, k) => expect(Math.abs(v - want[i]![k]!)).toBeLessThan(1e-9));
      });
      if (i % 4 === 3) pipe.launch();
    });
    pipe.finish();
    expect(seen).toEqual(windows.map((_, i) => i));
  });
});

describe.skipIf(!cudaAvailable())('no-gradient forward on CUDA', () => {
  it("gives the training forward's hidden states (bf16)", () => check('cuda', 'bf16'));
});
