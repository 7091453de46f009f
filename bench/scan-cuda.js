#!/usr/bin/env node
// CUDA selective scan: forward and forward+backward time at D = 1536, N = 16, bf16 activations (fp32 state),
// B = 1..16, L = 2^10..2^20 (B*L <= 2^20 tokens), medians of several runs, against two floors:
//  - HBM: bytes of u, delta, z, B, C read and y written once (backward: + dy read, du, ddelta, dz, dB, dC
//    written) over the device-to-device copy bandwidth measured here;
//  - instructions: one exp (MUFU ex2, 16/clk/SM on sm_90) per (t, d, n) and 3 FMAs (128/clk/SM) per
//    (t, d, n) in the forward (backward: 2 exps and ~8 FMAs), at the reported SM clock.
// Then PyTorch reference points (bench/scan_reference.py): a plain-PyTorch chunked scan and causal
// scaled_dot_product_attention at the same width. Writes its table into bench/README.md, "CUDA scan".
// Usage: node bench/scan-cuda.js [--quick] [--no-torch]
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { native } from '../dist/backend/native.js';
import { cudaAvailable, cudaDeviceInfo } from '../dist/backend/device.js';
import { Tensor, f32ToBf16Bits } from '../dist/backend/tensor.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const noTorch = process.argv.includes('--no-torch');

if (!cudaAvailable()) {
  console.log('scan-cuda: no CUDA device here; nothing to measure');
  process.exit(0);
}
const cu = native().cuda;
const dev = cudaDeviceInfo(0);
const clockKHz = cu.deviceClockKHz ? cu.deviceClockKHz(0) : 0;
const clockHz = (clockKHz || 1980000) * 1e3;
const D = 1536, N = 16;
const MAX_TOKENS = 1 << 20;

function rand(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
// A device tensor of n values drawn from mean + std * N(0,1): a random block uploaded once and tiled.
const BLOCK = 1 << 20;
function randomTensor(n, dtype, seed, mean = 0, std = 1) {
  const r = rand(seed);
  const blk = Math.min(n, BLOCK);
  const host = dtype === 'bf16' ? new Uint16Array(blk) : new Float32Array(blk);
  for (let i = 0; i < blk; i++) {
    const v = mean + std * Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
    host[i] = dtype === 'bf16' ? f32ToBf16Bits(v) : v;
  }
  const t = Tensor.empty([n], dtype, 'cuda');
  const src = Tensor.from(host, [blk], dtype, 'cuda');
  const eb = dtype === 'bf16' ? 2 : 4;
  // odd offsets into the block so tiles are not identical row for row
  for (let off = 0, k = 0; off < n; off += blk, k++) {
    const len = Math.min(blk, n - off);
    const s = (k * 7919) % Math.max(1, blk - len + 1);
    cu.copy(cu.view(t.buffer, off * eb, len * eb), cu.view(src.buffer, s * eb, len * eb), len * eb);
  }
  cu.synchronize();
  src.dispose();
  return t;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
function timeIt(fn, runs) {
  fn();
  cu.synchronize();
  const ts = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    cu.synchronize();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

// copy bandwidth: read + write of a 2 GiB buffer pair
function copyBandwidth() {
  const bytes = 1 << 30;
  const a = Tensor.zeros([bytes / 4], 'f32', 'cuda'), b = Tensor.zeros([bytes / 4], 'f32', 'cuda');
  const ms = timeIt(() => cu.copy(b.buffer, a.buffer, bytes), 10);
  a.dispose(); b.dispose();
  return (2 * bytes) / (ms / 1e3);
}

const bw = copyBandwidth();
const sms = dev.multiprocessors;
const mufuRate = sms * 16 * clockHz, fmaRate = sms * 128 * clockHz;
console.log(`device: ${dev.name}, ${sms} SMs, SM clock ${clockKHz ? (clockKHz / 1e3).toFixed(0) + ' MHz' : 'unknown (1980 MHz assumed)'}, copy bandwidth ${(bw / 1e9).toFixed(0)} GB/s`);
console.log(`rates: exp (MUFU) ${(mufuRate / 1e12).toFixed(2)} T/s, FP32 FMA ${(fmaRate / 1e12).toFixed(1)} T/s`);

const Ls = quick ? [10, 14, 17, 20] : [10, 12, 14, 16, 18, 20];
const Bs = quick ? [1, 16] : [1, 2, 4, 8, 16];
const rows = [];
for (const B of Bs) {
  for (const lg of Ls) {
    const L = 2 ** lg, T = B * L;
    if (T > MAX_TOKENS) continue;
    const TD = T * D;
    const u = randomTensor(TD, 'bf16', 1), delta = randomTensor(TD, 'bf16', 2, -1.2, 0.7), z = randomTensor(TD, 'bf16', 3);
    const bc = randomTensor(T * 2 * N, 'bf16', 4); // B and C: columns 0..N and N..2N of one [T, 2N] buffer
    const y = Tensor.empty([TD], 'bf16', 'cuda');
    // the standard initialisation A = -exp(A_log), A_log = log(1..N) per channel
    const Af = Tensor.from(Float32Array.from({ length: D * N }, (_, i) => -((i % N) + 1)), [D * N], 'f32', 'cuda');
    const bias = randomTensor(D, 'f32', 6, 0, 0.3), Dk = randomTensor(D, 'f32', 7);
    const last = Tensor.empty([B * D * N], 'f32', 'cuda');
    const Bv = cu.view(bc.buffer, 0, (T * 2 * N - N) * 2), Cv = cu.view(bc.buffer, N * 2, (T * 2 * N - N) * 2);
    const fwd = () => cu.selectiveScanForward(u.buffer, delta.buffer, bias.buffer, Af.buffer, Bv, Cv, 2 * N, Dk.buffer, z.buffer, D,
      y.buffer, last.buffer, B, L, D, N, true, 'bf16');
    const runs = lg >= 18 ? 3 : 5;
    const fwdMs = timeIt(fwd, runs);
    const dy = randomTensor(TD, 'bf16', 8);
    const du = Tensor.empty([TD], 'bf16', 'cuda'), ddelta = Tensor.empty([TD], 'bf16', 'cuda'), dz = Tensor.empty([TD], 'bf16', 'cuda');
    const dbc = Tensor.empty([T * 2 * N], 'bf16', 'cuda');
    const dA = Tensor.zeros([D * N], 'f32', 'cuda'), dD = Tensor.zeros([D], 'f32', 'cuda'), dBias = Tensor.zeros([D], 'f32', 'cuda');
    const dBv = cu.view(dbc.buffer, 0, (T * 2 * N - N) * 2), dCv = cu.view(dbc.buffer, N * 2, (T * 2 * N - N) * 2);
    const bwd = () => cu.selectiveScanBackward(u.buffer, delta.buffer, bias.buffer, Af.buffer, Bv, Cv, 2 * N, Dk.buffer, z.buffer, D,
      dy.buffer, du.buffer, ddelta.buffer, dA.buffer, dBv, dCv, dD.buffer, dBias.buffer, dz.buffer, B, L, D, N, true, 'bf16');
    const fbMs = timeIt(() => { fwd(); bwd(); }, runs);
    if (B === 1 && (lg === 14 || lg === 20)) {
      // one profiled call of each: per-pass times on stderr (events inside the addon)
      process.env.MAMBA_SCAN_PROFILE = '1';
      fwd(); bwd(); cu.synchronize();
      process.env.MAMBA_SCAN_PROFILE = '0';
    }
    // floors
    const elems = TD * N;
    const fwdBytes = TD * 2 * 4 + T * 2 * N * 2;           // u, delta, z read, y written; B, C read
    const bwdBytes = TD * 2 * 7 + T * 2 * N * 2 * 2;       // + u, delta, z, dy read, du, ddelta, dz written; dB, dC
    const fwdHbm = fwdBytes / bw * 1e3, fbHbm = (fwdBytes + bwdBytes) / bw * 1e3;
    const fwdExp = elems / mufuRate * 1e3, fwdFma = 3 * elems / fmaRate * 1e3;
    const fbExp = 3 * elems / mufuRate * 1e3, fbFma = 11 * elems / fmaRate * 1e3;
    const row = {
      B, L, fwdMs, fbMs, tokPerS: T / (fwdMs / 1e3), fbTokPerS: T / (fbMs / 1e3),
      fwdFloor: Math.max(fwdHbm, fwdExp, fwdFma), fbFloor: Math.max(fbHbm, fbExp, fbFma),
      fwdBind: fwdExp >= Math.max(fwdHbm, fwdFma) ? 'exp' : fwdHbm >= fwdFma ? 'HBM' : 'FMA',
      fbBind: fbExp >= Math.max(fbHbm, fbFma) ? 'exp' : fbHbm >= fbFma ? 'HBM' : 'FMA',
      fwdHbm, fbHbm,
    };
    rows.push(row);
    console.log(`B=${B} L=2^${lg}: forward ${fwdMs.toFixed(3)} ms (${(row.tokPerS / 1e6).toFixed(1)} Mtok/s; floor ${row.fwdFloor.toFixed(3)} ms ${row.fwdBind}-bound, HBM ${fwdHbm.toFixed(3)} ms)` +
      `, fwd+bwd ${fbMs.toFixed(3)} ms (floor ${row.fbFloor.toFixed(3)} ms ${row.fbBind}, HBM ${fbHbm.toFixed(3)} ms)`);
    for (const t of [u, delta, z, bc, y, Af, bias, Dk, last, dy, du, ddelta, dz, dbc, dA, dD, dBias]) t.dispose();
  }
}
cu.emptyCache();

// PyTorch reference points
let torchRows = [], torchEnv = null, torchNote = '';
if (!noTorch) {
  const cfg = {
    D, N, max_seconds: quick ? 8 : 20,
    scan: quick ? [[1, 1 << 10], [1, 1 << 14]] : [[1, 1 << 10], [1, 1 << 14], [1, 1 << 17], [16, 1 << 14]],
    attn: quick ? [[1, 1 << 10], [1, 1 << 14], [1, 1 << 16]] : [[1, 1 << 10], [1, 1 << 12], [1, 1 << 14], [1, 1 << 16], [1, 1 << 17], [1, 1 << 18], [1, 1 << 19]],
  };
  const r = spawnSync('python3', [join(here, 'scan_reference.py'), JSON.stringify(cfg)], { encoding: 'utf8', timeout: 300000 });
  if (r.error || r.status !== 0) {
    torchNote = `PyTorch reference not run: ${r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop()}`;
    console.log(torchNote);
  } else {
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const o = JSON.parse(line);
      if (o.kind === 'env') torchEnv = o;
      else { torchRows.push(o); console.log(`torch ${o.kind} B=${o.B} L=${o.L}: ${o.error ?? o.ms.toFixed(2) + ' ms'}`); }
    }
  }
}

// ---- bench/README.md, section "CUDA scan" ----
const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(3));
const lines = [];
lines.push('## CUDA scan', '');
lines.push(`Command: \`node bench/scan-cuda.js${quick ? ' --quick' : ''}\` on ${dev.name} (${sms} SMs, SM clock ${clockKHz ? (clockKHz / 1e3).toFixed(0) + ' MHz' : 'unknown'}; measured copy bandwidth ${(bw / 1e9).toFixed(0)} GB/s).`);
lines.push(`Selective scan, D = ${D}, N = ${N}, bf16 u/delta/z/B/C/y (fp32 state), softplus(delta + bias), D skip and SiLU(z) gate fused; medians of 3-5 runs, wall time around a stream synchronize.`);
lines.push('Floors: HBM = bytes read/written once over the copy bandwidth; exp = one MUFU ex2 per (t, d, n) (forward; the backward needs at least 2) at 16/clk/SM; FMA = 3 (forward) / 11 (fwd+bwd) FP32 FMAs per (t, d, n) at 128/clk/SM. "binds" names the largest floor.', '');
lines.push('| B | L | forward ms | Mtok/s | floor ms (binds) | % of floor | fwd+bwd ms | Mtok/s | floor ms (binds) | % of floor |');
lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  lines.push(`| ${r.B} | 2^${Math.log2(r.L)} | ${fmt(r.fwdMs)} | ${(r.tokPerS / 1e6).toFixed(1)} | ${fmt(r.fwdFloor)} (${r.fwdBind}) | ${(100 * r.fwdFloor / r.fwdMs).toFixed(0)}% | ${fmt(r.fbMs)} | ${(r.fbTokPerS / 1e6).toFixed(1)} | ${fmt(r.fbFloor)} (${r.fbBind}) | ${(100 * r.fbFloor / r.fbMs).toFixed(0)}% |`);
}
if (torchRows.length) {
  lines.push('', `PyTorch reference points (\`bench/scan_reference.py\`, torch ${torchEnv?.torch ?? '?'}, same GPU, bf16): a plain-PyTorch blocked associative scan (forward only), and causal \`scaled_dot_product_attention\` (12 heads x 128 = ${D}) against this scan's forward at the same B and L.`, '');
  lines.push('| op | B | L | PyTorch ms | this scan forward ms | ratio |');
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const o of torchRows) {
    const mine = rows.find((r) => r.B === o.B && r.L === o.L);
    const name = o.kind === 'sdpa' ? 'causal SDPA' : 'PyTorch scan';
    lines.push(`| ${name} | ${o.B} | 2^${Math.log2(o.L)} | ${o.error ?? fmt(o.ms)} | ${mine ? fmt(mine.fwdMs) : '-'} | ${mine && !o.error ? (o.ms / mine.fwdMs).toFixed(1) + 'x' : '-'} |`);
  }
} else if (torchNote) {
  lines.push('', torchNote);
}
lines.push('');
const readme = join(here, 'README.md');
let text = existsSync(readme) ? readFileSync(readme, 'utf8') : '# Benchmarks\n\n';
const start = text.indexOf('## CUDA scan');
if (start >= 0) {
  const next = text.indexOf('\n## ', start + 5);
  text = text.slice(0, start) + lines.join('\n') + (next >= 0 ? text.slice(next + 1) : '');
} else {
  text = text.replace(/\n*$/, '\n\n') + lines.join('\n');
}
writeFileSync(readme + '.tmp', text);
renameSync(readme + '.tmp', readme);
console.log(`wrote bench/README.md section "CUDA scan" (${rows.length} rows)`);
