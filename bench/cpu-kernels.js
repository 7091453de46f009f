#!/usr/bin/env node
// CPU kernel throughput: gemm at the model's shapes (GFLOP/s vs the machine's AVX2 FMA peak) and the
// selective scan forward and forward+backward (tokens/s vs an instruction floor), medians of 5 runs.
// Writes its table into bench/README.md under "CPU kernels".
//   npm run build && node bench/cpu-kernels.js [--quick] [--no-write]
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Tensor, columns, cpuOp, gemm, selectiveScanBackward, selectiveScanForward } from '../dist/backend/index.js';
import { writeReadmeSection } from './readme.js';

const quick = process.argv.includes('--quick');
const RUNS = quick ? 3 : 5;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
// median (and best) seconds of `runs` timed calls after a warm-up (thread pool, page faults)
function time(fn, runs = RUNS) {
  fn();
  const ts = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { med: median(ts), best: Math.min(...ts) };
}
function rand(n, seed, scale = 1, shift = 0) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = shift + scale * (s / 4294967296 - 0.5) * 2;
  }
  return a;
}

// Peak at t threads: the larger of the nominal t x (2 FMA pipes x 8 floats x 2 flops) x the clock
// /proc/cpuinfo reports, and cpu.fmaPeak(t), an FMA-bound loop (best of 3), which reads above the
// nominal figure under turbo. Everything runs at 1 thread and at all threads: on a shared machine
// the 1-thread figures are the steadier ones.
function clockGHz() {
  try {
    const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return Number(m[1]) / 1000;
  } catch {
    /* not Linux */
  }
  return cpus()[0].speed / 1000;
}
const threads = cpuOp('numThreads')();
const ghz = clockGHz();
const counts = threads > 1 ? [1, threads] : [1];
const bestFma = (th) => Math.max(...[0, 1, 2].map(() => cpuOp('fmaPeak')(th, 0.3)));
const peaks = new Map(counts.map((t) => [t, { nominal: t * 32 * ghz, measured: bestFma(t) }]));
const peakOf = (t) => Math.max(peaks.get(t).nominal, peaks.get(t).measured);
const cpuName = cpus()[0].model.trim();
const load0 = loadavg()[0];
console.log(`CPU: ${cpuName}, ${threads} threads, ${ghz.toFixed(2)} GHz; load average ${load0.toFixed(2)}`);
for (const t of counts)
  console.log(
    `  ${t} thread(s): nominal AVX2 FMA peak ${peaks.get(t).nominal.toFixed(1)} GFLOP/s, FMA loop ${peaks.get(t).measured.toFixed(1)} -> peak ${peakOf(t).toFixed(1)}`,
  );

// ---- gemm ----------------------------------------------------------------------------------
const gemmRows = [];
const T = 4096,
  Dm = 128,
  Di = 512;
const gemmCases = [
  ['y = x Wᵀ (in_proj)', { transB: true }, [T, Dm], [Di, Dm], [T, Di]],
  ['dX = dY W', {}, [T, Di], [Di, Dm], [T, Dm]],
  ['dW += dYᵀ x', { transA: true, beta: 1 }, [T, Di], [T, Dm], [Di, Dm]],
  ['y = x Wᵀ (out_proj)', { transB: true }, [T, Di / 2], [Dm, Di / 2], [T, Dm]],
  ['square', {}, [1024, 1024], [1024, 1024], [1024, 1024]],
];
for (const [label, opts, as, bs, cs] of gemmCases) {
  const a = Tensor.from(rand(as[0] * as[1], 1), as),
    b = Tensor.from(rand(bs[0] * bs[1], 2), bs),
    c = Tensor.from(rand(cs[0] * cs[1], 3), cs);
  const K = opts.transA ? as[0] : as[1];
  const flops = 2 * cs[0] * cs[1] * K;
  const shape = `M=${cs[0]} N=${cs[1]} K=${K}${opts.transA ? ' (Aᵀ)' : ''}${opts.transB ? ' (Bᵀ)' : ''}`;
  const row = [label, shape];
  for (const t of counts) {
    cpuOp('setNumThreads')(t);
    const { med, best: bst } = time(() => gemm(a, b, c, opts));
    const gf = flops / med / 1e9,
      gfb = flops / bst / 1e9;
    row.push(`${gf.toFixed(1)} (${((100 * gf) / peakOf(t)).toFixed(0)}%)`, gfb.toFixed(1));
    console.log(
      `gemm ${label.padEnd(22)} ${shape.padEnd(28)} ${t} thr: ${(med * 1e3).toFixed(2).padStart(8)} ms ${gf.toFixed(1).padStart(7)} GFLOP/s (${((100 * gf) / peakOf(t)).toFixed(0)}% of peak; best run ${gfb.toFixed(1)})`,
    );
  }
  cpuOp('setNumThreads')(threads);
  gemmRows.push(row);
}

// ---- selective scan ------------------------------------------------------------------------
// Instruction floor: vector arithmetic instructions per 8 (channel, state) lanes per token, counted
// from the kernels: forward 23 (dt*A, exp 18: clamp 2, mul, round, 2 fnmadd, 7-term polynomial,
// exponent build 3, select; dt*u*B 2, state FMA, output FMA); backward adds the checkpoint pass (22),
// the chunk recompute keeping exp(dt A) (22) and the adjoint (11). Issued at 2 vector instructions per
// cycle per thread (the peak / 16 flops per FMA instruction) this is the best time this code shape
// can reach.
const D = 256,
  N = 16;
const FWD_OPS = 23,
  BWD_OPS = FWD_OPS + 22 + 22 + 11;
const floorOf = (t, ops) => (peakOf(t) * 1e9) / 16 / ((D * N) / 8) / ops;
const scanRows = [];
const Ls = quick ? [4096, 16384] : [4096, 8192, 16384, 32768, 65536];
for (const L of Ls) {
  const Tn = L,
    R = 8; // x_proj output [T, R + 2N] holds B and C as columns
  const u = Tensor.from(rand(Tn * D, 4), [Tn, D]);
  const delta = Tensor.from(rand(Tn * D, 5, 1, -2), [Tn, D]);
  const A = Tensor.from(rand(D * N, 6, 0.5, -1.5), [D, N]);
  const xp = Tensor.from(rand(Tn * (R + 2 * N), 7), [Tn, R + 2 * N]);
  const zin = Tensor.from(rand(Tn * 2 * D, 8), [Tn, 2 * D]);
  const args = {
    u,
    delta,
    deltaBias: Tensor.from(rand(D, 9, 0.5), [D]),
    A,
    Bm: columns(xp, R, N),
    Cm: columns(xp, R + N, N),
    Dskip: Tensor.from(rand(D, 10), [D]),
    z: columns(zin, D, D),
    B: 1,
    L,
    deltaSoftplus: true,
  };
  const y = Tensor.empty([Tn, D]);
  const dxp = Tensor.empty([Tn, R + 2 * N]),
    dzin = Tensor.empty([Tn, 2 * D]);
  const g = {
    du: Tensor.empty([Tn, D]),
    ddelta: Tensor.empty([Tn, D]),
    dA: Tensor.empty([D, N]),
    dB: columns(dxp, R, N),
    dC: columns(dxp, R + N, N),
    dDskip: Tensor.empty([D]),
    dDeltaBias: Tensor.empty([D]),
    dz: columns(dzin, D, D),
  };
  const dy = Tensor.from(rand(Tn * D, 11), [Tn, D]);
  for (const t of counts) {
    cpuOp('setNumThreads')(t);
    const tf = time(() => selectiveScanForward(args, y, null));
    const tb = time(() => {
      selectiveScanForward(args, y, null);
      selectiveScanBackward(args, dy, g);
    });
    const row = [
      String(L),
      String(t),
      (L / tf.med / 1e6).toFixed(3),
      (L / tf.best / 1e6).toFixed(3),
      (floorOf(t, FWD_OPS) / 1e6).toFixed(3),
      (L / tb.med / 1e6).toFixed(3),
      (L / tb.best / 1e6).toFixed(3),
      (floorOf(t, BWD_OPS) / 1e6).toFixed(3),
    ];
    scanRows.push(row);
    console.log(
      `scan L=${String(L).padStart(6)} D=${D} N=${N} B=1, ${t} thr: forward ${row[2]} M tok/s (best ${row[3]}, floor ${row[4]}), forward+backward ${row[5]} M tok/s (best ${row[6]}, floor ${row[7]})`,
    );
  }
  cpuOp('setNumThreads')(threads);
}

// ---- README --------------------------------------------------------------------------------
const table = [
  '## CPU kernels',
  '',
  `${cpuName}, ${threads} threads, ${ghz.toFixed(2)} GHz, node ${process.version}, f32, build -O3 -march=x86-64-v3 (AVX2 + FMA). Median and best of ${RUNS} timed runs after a warm-up, at 1 thread and at ${threads}. Load average ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end: the machine was shared with other work, which shows most in the ${threads}-thread medians; the 1-thread figures are the steadier ones.`,
  `Peak ("% of peak") = the larger of the nominal threads x 2 FMA pipes x 8 lanes x 2 flops x ${ghz.toFixed(2)} GHz and an FMA-bound loop (\`cpu.fmaPeak\`, best of 3; turbo runs above the nominal clock): ${counts.map((t) => `${peakOf(t).toFixed(1)} GFLOP/s at ${t} thread${t > 1 ? 's' : ''} (nominal ${peaks.get(t).nominal.toFixed(1)}, loop ${peaks.get(t).measured.toFixed(1)})`).join(', ')}.`,
  '',
  `| gemm | shape | ${counts.map((t) => `GFLOP/s ${t} thr (median, % of peak) | best run`).join(' | ')} |`,
  `|---|---|${counts.map(() => '---:|---:').join('|')}|`,
  ...gemmRows.map((r) => `| ${r.join(' | ')} |`),
  '',
  `Selective scan, D=${D}, N=${N}, B=1, deltaSoftplus, z and Dskip on, B/C/z strided (columns of wider tensors), in M tokens/s. Floor: ${FWD_OPS} (forward) and ${BWD_OPS} (forward+backward) vector instructions per 8 (channel, state) lanes per token, issued at 2 per cycle per thread (peak / 16).`,
  '',
  '| L | threads | forward (median) | forward (best) | forward floor | fwd+bwd (median) | fwd+bwd (best) | fwd+bwd floor |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...scanRows.map((r) => `| ${r.join(' | ')} |`),
  '',
  'Command: `npm run build && node bench/cpu-kernels.js`',
  '',
].join('\n');

if (!quick && !process.argv.includes('--no-write')) {
  writeReadmeSection(table);
}
