#!/usr/bin/env node
// Where a training step (or a decoding step) spends its GPU time, op by op: run with MAMBA_OP_PROFILE=1,
// which makes every cuda.* binding record CUDA events around itself (native/cuda/opprofile.cc). Prints the
// GPU time per step of each op (gemm split by shape), the sum over ops, and the wall time per step; the
// difference is GPU idle time (host work, synchronisations, launch gaps).
// usage: MAMBA_OP_PROFILE=1 node bench/profile-ops.js [--preset 130m] [--batch 8] [--seq-len 2048]
//          [--precision bf16|f32] [--recompute] [--steps 3] [--decode | --eval] [--top 40] [--untuned]
// --untuned: the training step's products keep cuBLAS's fixed choice (by default tuned, as the trainer's are).
// --eval times the no-gradient forward with per-token losses that score and eval run (launchTokenLosses).
import { native } from '../dist/backend/native.js';
import { resolveDevice, setGemmTuning, synchronize } from '../dist/backend/index.js';
import { MambaLM, makeConfig } from '../dist/model/index.js';
import { AdamW, gradClip } from '../dist/train/index.js';
import { Decoder } from '../dist/generate/index.js';
import { Rng } from '../dist/util/rng.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const preset = opt('--preset', '130m');
const B = Number(opt('--batch', '8')),
  L = Number(opt('--seq-len', '2048'));
const precision = opt('--precision', 'bf16');
const recompute = argv.includes('--recompute');
const steps = Number(opt('--steps', '3'));
const top = Number(opt('--top', '40'));
const decode = argv.includes('--decode');
const evalOnly = argv.includes('--eval');
const tuned = !argv.includes('--untuned');
if (process.env.MAMBA_OP_PROFILE !== '1') {
  console.error('profile-ops: set MAMBA_OP_PROFILE=1 (the addon decides at load time whether to time ops)');
  process.exit(2);
}
const device = resolveDevice('cuda');
const cu = native().cuda;
const cfg = makeConfig(preset, { vocab_size: 16 });
const model = MambaLM.create(cfg, { device, seed: 1, recompute, precision });
const r = new Rng(1);

let run;
if (decode) {
  const dec = new Decoder(model, B);
  dec.prefill(
    Int32Array.from({ length: B * 16 }, () => 4 + r.int(4)),
    16,
  );
  const next = Int32Array.from({ length: B }, () => 4 + r.int(4));
  run = () => {
    dec.step(next);
  };
} else if (evalOnly) {
  const batch = {
    B,
    L,
    inputs: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
    targets: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
  };
  run = () => {
    model.launchTokenLosses(batch)();
  };
} else {
  const adam = new AdamW(model.parameters());
  const batch = {
    B,
    L,
    inputs: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
    targets: Int32Array.from({ length: B * L }, () => 4 + r.int(4)),
  };
  run = () => {
    model.zeroGrad();
    setGemmTuning(tuned);
    try {
      model.forwardBackward(batch);
    } finally {
      setGemmTuning(false);
    }
    adam.update(1e-3, gradClip(adam.params, 1).scale);
  };
}
run();
synchronize(device);
cu.opProfile(); // drop the warm-up
cu.resetPeakMemory();
const t0 = performance.now();
for (let i = 0; i < steps; i++) run();
synchronize(device);
const wall = (performance.now() - t0) / steps;
const rows = cu.opProfile();
const total = rows.reduce((s, x) => s + x[2], 0) / steps;
const mem = cu.memoryStats();
console.log(
  `${preset} ${precision} B=${B} L=${L}${recompute ? ' recompute' : ''}${decode ? ' decode step' : evalOnly ? ' no-gradient forward' : ''}: wall ${wall.toFixed(3)} ms/step, GPU time in ops ${total.toFixed(3)} ms/step (${((100 * total) / wall).toFixed(0)}%)`,
);
console.log(
  `memory: peak ${(mem.peak / 2 ** 30).toFixed(2)} GiB allocated by mamba (workspaces ${(model.backbone.workspaceBytes() / 2 ** 30).toFixed(2)} GiB), ${((mem.total - mem.free) / 2 ** 30).toFixed(2)} GiB used on the device`,
);
console.log('| op | calls/step | ms/step | % of ops |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, calls, ms] of rows.slice(0, top)) {
  console.log(
    `| ${name} | ${(calls / steps).toFixed(0)} | ${(ms / steps).toFixed(3)} | ${((100 * ms) / steps / total).toFixed(1)} |`,
  );
}
