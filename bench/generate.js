#!/usr/bin/env node
// Generation throughput as issue 17 measures it: the mamba-130m shape with its 50,280-token vocabulary
// (padded to 50,288), bf16 activations, greedy (the token chosen on the device), a NEW Decoder per run, time =
// prefill + every step; medians of the timed runs after one warm-up run. Rows: batch 1 and 64 with a 16-token
// prompt and 256 new tokens, batch 16 with an 8,192-token prompt and 128 new (through generateMany, which reads the
// tokens once at the end; the prefill is timed alone too, to split prefill and steps); then a small-vocabulary DNA
// row. Each row also prints its floor: the HBM
// bytes a step must move (weights once, conv and SSM states read and written, logits written and read) at
// 4.8 TB/s, and the kernels a step launches.
// usage: node bench/generate.js [--device cuda|cpu] [--runs N] [--no-write]
import { cudaDeviceInfo, resolveDevice } from '../dist/backend/index.js';
import { Decoder, generateMany } from '../dist/generate/index.js';
import { MambaLM, derived, makeConfig } from '../dist/model/index.js';
import { FUSED_STEP_MAX_BATCH, RESIDUAL_STEP_MAX_BATCH } from '../dist/nn/mixer.js';
import { writeReadmeSection } from './readme.js';

const argv = process.argv.slice(2);
if (argv.includes('--help')) {
  console.log(`usage: node bench/generate.js [--device cuda|cpu] [--runs N] [--no-write]

  --device   where to run (default: auto; the issue's rows need cuda)
  --runs N   timed runs per row after one warm-up (default 5; the 8,192-token row runs 3)
  --no-write print only (by default the results replace this benchmark's section of bench/README.md)

example: node bench/generate.js --device cuda --no-write`);
  process.exit(0);
}
const flag = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const device = resolveDevice(flag('--device', 'auto'));
const runs = Number(flag('--runs', '5'));
if (!(Number.isInteger(runs) && runs >= 1)) {
  console.error(`--runs must be an integer >= 1, got ${flag('--runs')}`);
  process.exit(2);
}

const HBM = 4.8e12; // H200 bytes/s
const VOCAB_130M = { vocab_size: 50280, pad_vocab_size_multiple: 16 }; // padded 50,288 as the reference's

const cases =
  device === 'cuda'
    ? [
        { name: '130m', preset: '130m', vocab: VOCAB_130M, B: 1, prompt: 16, gen: 256 },
        { name: '130m', preset: '130m', vocab: VOCAB_130M, B: 64, prompt: 16, gen: 256 },
        { name: '130m', preset: '130m', vocab: VOCAB_130M, B: 16, prompt: 8192, gen: 128, runs: 3 },
        { name: 'small, DNA vocab 16', preset: 'small', vocab: { vocab_size: 16 }, B: 64, prompt: 16, gen: 256 },
      ]
    : [
        { name: 'tiny, DNA vocab 16', preset: 'tiny', vocab: { vocab_size: 16 }, B: 1, prompt: 16, gen: 64 },
        { name: 'tiny, DNA vocab 16', preset: 'tiny', vocab: { vocab_size: 16 }, B: 64, prompt: 16, gen: 64 },
      ];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * What one step must move through HBM and launch: bf16 copies of the matmul weights (the tied head included)
 * once, the f32 norm, conv, A, D and dt-bias vectors, B embedding rows, each layer's conv and SSM states read
 * and written (f32), and the logits written by the head and read by the sampler. Kernels: embedding, per layer
 * the three fused ops (form 'fused'; six when B > 8 leaves a partial group of 8), the residual form's four
 * (decodeInProj, x_proj, decodeSsm, out_proj into r) or the unfused step's six (norm, in_proj, conv step, x_proj,
 * decodeSsm, out_proj; cuBLAS may add a split-K reduction), five where convXProj is the conv step and x_proj (form
 * 'unfused-convx'), then final norm, head, sampler.
 */
function floor(cfg, B, actBytes, form) {
  const D = cfg.d_model,
    { dInner: E, dtRank: R, paddedVocab: Vp } = derived(cfg),
    N = cfg.d_state,
    K = cfg.d_conv;
  const matmul = 2 * E * D + (R + 2 * N) * E + E * R + D * E;
  const vectors = E * K + E + E * N + E + E + D;
  const weights = cfg.n_layer * (matmul * actBytes + vectors * 4) + Vp * D * actBytes + B * D * 4 + D * 4;
  const states = cfg.n_layer * B * E * (K + N) * 4 * 2;
  const logits = B * Vp * actBytes * 2;
  const perLayer =
    form === 'fused' ? (B > 8 && B % 8 !== 0 ? 6 : 3) : form === 'residual' ? 4 : form === 'unfused-convx' ? 5 : 6;
  return { bytes: weights + states + logits, weights, states, kernels: 1 + cfg.n_layer * perLayer + 3 };
}

const rows = [];
for (const c of cases) {
  const precision = device === 'cuda' ? 'bf16' : 'f32';
  const cfg = makeConfig(c.preset, c.vocab);
  const model = MambaLM.create(cfg, { device, seed: 1, ...(device === 'cuda' ? { precision } : {}) });
  const V = cfg.vocab_size;
  const prompts = Array.from({ length: c.B }, (_, b) =>
    Array.from({ length: c.prompt }, (_, i) => (i * 7 + b * 13 + 4) % V),
  );
  const saved = process.env.MAMBA_DECODE_FUSED;
  if (c.fused === false) process.env.MAMBA_DECODE_FUSED = '0';
  const prefill = [],
    total = [];
  const n = c.runs ?? runs;
  for (let run = 0; run <= n; run++) {
    // the whole generation as a caller runs it (the warm-up run also captures the step's CUDA graph)
    const t0 = performance.now();
    generateMany(model, prompts, { maxNewTokens: c.gen, temperature: 0 });
    const t1 = performance.now();
    // the prefill alone (prompt through the parallel scan, first token chosen), to split the total
    const dec = new Decoder(model, c.B);
    dec.startSampling({ temperature: 0 });
    dec.sampleFirst(prompts);
    const t2 = performance.now();
    if (run === 0) continue;
    total.push(t1 - t0);
    prefill.push(t2 - t1);
  }
  const step = [median(total) - median(prefill)].map((ms) => ms / (c.gen - 1));
  // the step form the model took (asked while MAMBA_DECODE_FUSED is still as the runs had it)
  const mixer = model.backbone.layers[0].mixer;
  const form = mixer.fusedStep(c.B)
    ? 'fused'
    : mixer.residualStep(c.B)
      ? 'residual'
      : mixer.takesConvXProj(c.B)
        ? 'unfused-convx'
        : 'unfused';
  if (saved === undefined) delete process.env.MAMBA_DECODE_FUSED;
  else process.env.MAMBA_DECODE_FUSED = saved;
  const f = floor(cfg, c.B, precision === 'bf16' ? 2 : 4, form);
  const ms = median(total);
  const row = {
    ...c,
    precision,
    prefillMs: median(prefill),
    stepMs: step[0],
    totalMs: ms,
    tps: (c.B * c.gen * 1000) / ms,
    floorUs: (f.bytes / HBM) * 1e6,
    floorMB: f.bytes / 1e6,
    kernels: f.kernels,
  };
  rows.push(row);
  console.log(
    `${c.name} ${precision} B=${c.B} prompt ${c.prompt} + ${c.gen} new: prefill ${row.prefillMs.toFixed(1)} ms, ` +
      `${row.stepMs.toFixed(3)} ms/step, total ${ms.toFixed(1)} ms, ${Math.round(row.tps).toLocaleString('en-US')} tokens/s; ` +
      `floor ${row.floorMB.toFixed(0)} MB/step = ${row.floorUs.toFixed(0)} us at 4.8 TB/s, ${f.kernels} kernels/step`,
  );
  model.dispose();
}

if (!argv.includes('--no-write')) {
  const name = device === 'cuda' ? cudaDeviceInfo(0).name : 'CPU';
  const table = [
    device === 'cuda' ? `## Generation (cuda, ${name})` : `## Generation (${device})`,
    '',
    `Command: \`node bench/generate.js --device ${device}\` on ${name}. As issue 17 times it: \`generateMany\` (a new Decoder per run), time = prefill (the prompt through the parallel scan, then the first token) + every step, greedy with the token chosen on the device (no callback asks for tokens, so the steps queue without a round trip and the tokens are read once at the end); prefill timed alone in a second pass of each run, ms/step = (total - prefill) / (new - 1); median of ${runs} runs (3 for the 8,192-token prompt) after a warm-up run; tokens/s = batch x new tokens / total time. The step is one CUDA graph launch per token, captured once per (model, batch) and reused by every later Decoder. Floor: the HBM bytes of one step (bf16 matmul weights with the tied head once, f32 vectors, conv and SSM states read and written, logits written and read) at 4.8 TB/s, and the kernels it launches (embedding; per layer 3 fused ops at batches up to ${FUSED_STEP_MAX_BATCH}, the residual form's 4 up to ${RESIDUAL_STEP_MAX_BATCH} (decodeInProj, x_proj, decodeSsm, out_proj into the residual), the unfused step's 6 above (norm, three cuBLAS products, conv step, decodeSsm), 5 with bf16 activations (the conv step and x_proj one convXProj); final norm, head, sampler).`,
    '',
    '| model | activations | batch | prompt + new | prefill (ms) | ms/step | total (ms) | tokens/s | floor MB/step | floor us/step | kernels/step |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.precision} | ${r.B} | ${r.prompt} + ${r.gen} | ${r.prefillMs.toFixed(1)} | ${r.stepMs.toFixed(3)} | ${r.totalMs.toFixed(1)} | ${Math.round(r.tps).toLocaleString('en-US')} | ${r.floorMB.toFixed(0)} | ${r.floorUs.toFixed(0)} | ${r.kernels} |`,
    ),
    '',
  ].join('\n');
  writeReadmeSection(table);
}
