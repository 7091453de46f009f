// Fused decoding step: one token per sequence through a Mamba block in three kernels instead of the unfused step's six
// (rmsnorm, in_proj, conv step, x_proj, decodeSsm on x_proj whole, out_proj; five in bf16, with the conv step and
// x_proj as one convXProj, below). At batch 1 the CUDA-graph step is bound by its chain of dependent kernels, not by
// bandwidth (bench/README.md), so fewer kernels, each a little fatter, is what makes it faster; past batch 4 the
// unfused step's cuBLAS products win. A block serves a group of up to kDecodeGroup (8) sequences, whose accumulators
// live in registers; a larger batch runs its groups side by side as grid dimension y (all full groups in one launch, a
// last partial group in a second), and the groups read the layer's weights (7.5 MB in bf16 at the 130m shape) from L2
// rather than HBM:
//   decodeIn:  r = h + r_in; n = rmsnorm(r) w; xz = n W_in^T; conv step + SiLU -> xc; z; x_proj partial sums
//   decodeSsm: sum the partials -> dt_in, B, C; dt = softplus(dt_in W_dt^T + b); h = exp(dt A) h + dt B x;
//              y = (C.h + D x) SiLU(z)
//   decodeOut: h_out = y W_out^T
// Weights come in the activation dtype (f32, or the model's bf16 copies), accumulation is fp32. Intermediates
// are rounded to the activation dtype where the unfused path stores them (normOut, xz, xc, x_proj, delta), so
// the two paths differ only in summation order.
#include "common.cuh"
#include "../src/decode_args.h"
#include <cooperative_groups.h>
#include <algorithm>
#include <type_traits>

namespace mamba {
namespace {

namespace cg = cooperative_groups;
using bf16 = __nv_bfloat16;
constexpr int NWARP = 8, NT = NWARP * 32;
constexpr int IN_RPW = kDecodeChunk / NWARP;  // in_proj rows per warp: a block covers one x_proj chunk
constexpr int SSM_CH = NT / 16;               // channels per decodeSsm block (16 lanes each, one per state)
static_assert(NT == kDecodeThreads, "decode_ssm_smem (src/decode.h) sizes decodeSsm's partial sums by this block size");
static_assert(IN_RPW * NWARP == kDecodeChunk && IN_RPW * kDecodeGroup <= 32,
              "decodeIn: a lane per (row, sequence) of a warp");

template <class T>
__device__ __forceinline__ float rnd(float v);  // v as stored in T
template <>
__device__ __forceinline__ float rnd<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float rnd<bf16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// 16 bytes of f32 or bf16 (p 16-byte aligned), and the same as floats
__device__ __forceinline__ uint4 ld16(const void* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ void floats(const uint4& u, float (&f)[4]) {
  f[0] = __uint_as_float(u.x);
  f[1] = __uint_as_float(u.y);
  f[2] = __uint_as_float(u.z);
  f[3] = __uint_as_float(u.w);
}
__device__ __forceinline__ void floats(const uint4& u, float (&f)[8]) {
  const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {  // a bf16 is the top half of an f32; the lower address is the low half
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}
__device__ __forceinline__ float sum16(float v) {  // over each 16-lane half of a warp
#pragma unroll
  for (int m = 8; m >= 1; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

// acc[i][b] += this lane's share of sum_k W[row[i], k] x[b, k], k < n (rows of W and x have n elements).
// The step is latency-bound, so loads go out in batches of UNR guarded iterations that are all in flight
// together (a plain loop of 3 iterations, as at d_model 768, would wait for each). With `vec` (n a multiple
// of the vector width, W and x 16-byte aligned) a lane reads 16 bytes of each row at a time.
template <class T, int NB, int RPW>
__device__ __forceinline__ void rows_dot(const T* __restrict__ W, const int (&row)[RPW], const T* x, int n, bool vec,
                                         float (&acc)[RPW][NB]) {
  constexpr int V = 16 / sizeof(T);
  constexpr int UNR = RPW >= 4 ? (NB > 4 ? 2 : 4) : 8;  // loads in flight, bounded by the registers they take
  const int lane = threadIdx.x & 31;
  if (vec) {
    for (int k0 = lane * V; k0 < n; k0 += UNR * 32 * V) {
      uint4 w[UNR][RPW];
#pragma unroll
      for (int u = 0; u < UNR; u++)
#pragma unroll
        for (int i = 0; i < RPW; i++) {
          const int k = k0 + u * 32 * V;
          w[u][i] = k < n ? ld16(W + (int64_t)row[i] * n + k) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
      for (int u = 0; u < UNR; u++) {
        const int k = k0 + u * 32 * V;
        if (k >= n) break;
        float wf[RPW][V];
#pragma unroll
        for (int i = 0; i < RPW; i++) floats(w[u][i], wf[i]);
#pragma unroll
        for (int b = 0; b < NB; b++) {
          float xv[V];
          floats(ld16(x + (int64_t)b * n + k), xv);
#pragma unroll
          for (int i = 0; i < RPW; i++)
#pragma unroll
            for (int v = 0; v < V; v++) acc[i][b] = fmaf(wf[i][v], xv[v], acc[i][b]);
        }
      }
    }
  } else {
    for (int k0 = lane; k0 < n; k0 += UNR * 32) {
      float w[UNR][RPW];
#pragma unroll
      for (int u = 0; u < UNR; u++)
#pragma unroll
        for (int i = 0; i < RPW; i++) w[u][i] = k0 + u * 32 < n ? ldf(W, (int64_t)row[i] * n + k0 + u * 32) : 0.f;
#pragma unroll
      for (int u = 0; u < UNR; u++) {
        const int k = k0 + u * 32;
        if (k >= n) break;
#pragma unroll
        for (int b = 0; b < NB; b++) {
          const float xv = ldf(x, (int64_t)b * n + k);
#pragma unroll
          for (int i = 0; i < RPW; i++) acc[i][b] = fmaf(w[u][i], xv, acc[i][b]);
        }
      }
    }
  }
}

// rows_dot summed over the warp, and this lane's value of it: lane l gets row row[l / NB] of sequence l % NB
// (lanes l >= RPW * NB get 0). Registers need a static index, so the value is selected, not indexed.
template <class T, int NB, int RPW>
__device__ __forceinline__ float rows_dot_lane(const T* __restrict__ W, const int (&row)[RPW], const T* x, int n,
                                               bool vec) {
  static_assert(RPW * NB <= 32, "a lane per (row, sequence) of a warp");
  float acc[RPW][NB] = {};
  rows_dot<T, NB, RPW>(W, row, x, n, vec, acc);
#pragma unroll
  for (int i = 0; i < RPW; i++)
#pragma unroll
    for (int b = 0; b < NB; b++) acc[i][b] = warp_sum(acc[i][b]);
  const int lane = threadIdx.x & 31;
  float v = 0.f;
#pragma unroll
  for (int i = 0; i < RPW; i++)
#pragma unroll
    for (int b = 0; b < NB; b++)
      if (lane == i * NB + b) v = acc[i][b];
  return v;
}

// decodeIn. Grid: ceil(2E / 32) x groups blocks of 256 threads; warp w of block k owns in_proj rows 32k + 4w .. 32k +
// 4w + 3. Every block normalises the B input rows itself into shared memory (they are tiny, and a norm kernel of its
// own would cost a launch); block 0 alone writes rOut. Blocks k < ceil(E/32) produced channels 32k .. 32k+31 of xc and
// leave their share of x_proj = xc W_x^T in xPart[k] [B, J], so decodeSsm needs no x_proj launch (a sum of partials, no
// atomics).
template <class T, int NB>
__global__ void __launch_bounds__(NT, 1)
    decode_in(const T* __restrict__ hIn, const float* __restrict__ rIn, const float* __restrict__ normW,
              const T* __restrict__ Win, float* __restrict__ convState, const float* __restrict__ convW,
              const float* __restrict__ convB, const T* __restrict__ Wx, float* __restrict__ rOut, T* __restrict__ xc,
              T* __restrict__ z, float* __restrict__ xPart, int D, int E, int K, int J, float eps, bool vec, int Btot,
              int b0) {
  pdl_wait();
  pdl_trigger();
  // this block's group: sequences g0 .. g0 + NB - 1 of the batch of Btot (xPart is [P, Btot, J])
  const int g0 = b0 + blockIdx.y * NB;
  hIn += (int64_t)g0 * D;
  if (rIn) rIn += (int64_t)g0 * D;
  rOut += (int64_t)g0 * D;
  convState += (int64_t)g0 * E * K;
  xc += (int64_t)g0 * E;
  z += (int64_t)g0 * E;
  extern __shared__ __align__(16) unsigned char smem[];
  T* xn = reinterpret_cast<T*>(smem);  // [NB, D] normalised rows, in T as the unfused path's normOut
  __shared__ float red[NWARP][NB];
  __shared__ float sxc[NB][kDecodeChunk];  // this block's xc channels, for the x_proj partial sums
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const auto r_at = [&](int b, int d) { return ldf(hIn, (int64_t)b * D + d) + (rIn ? rIn[(int64_t)b * D + d] : 0.f); };
  if (threadIdx.x < NB * kDecodeChunk)
    sxc[threadIdx.x / kDecodeChunk][threadIdx.x % kDecodeChunk] = 0.f;  // channels past E

  // r = hIn + rIn and the sum of its squares per row, spread over the block: 4 guarded columns per thread and
  // row, loaded together (at D <= 1024 a single round trip)
  float ss[NB] = {};
  for (int d0 = threadIdx.x; d0 < D; d0 += 4 * NT) {
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int d = d0 + u * NT;
        if (d >= D) break;
        const float v = r_at(b, d);
        if (blockIdx.x == 0) rOut[(int64_t)b * D + d] = v;
        ss[b] = fmaf(v, v, ss[b]);
      }
  }
#pragma unroll
  for (int b = 0; b < NB; b++) {
    const float s = warp_sum(ss[b]);
    if (lane == 0) red[warp][b] = s;
  }
  __syncthreads();
  float rs[NB];
#pragma unroll
  for (int b = 0; b < NB; b++) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < NWARP; w++) s += red[w][b];
    rs[b] = rsqrtf(s / (float)D + eps);
  }
  for (int d = threadIdx.x; d < D; d += NT) {  // r again (L1 hits), as rmsnormForward: r * rstd * w
    const float wd = normW[d];
#pragma unroll
    for (int b = 0; b < NB; b++) stf(xn, (int64_t)b * D + d, r_at(b, d) * rs[b] * wd);
  }
  __syncthreads();

  const int o0 = blockIdx.x * kDecodeChunk, row0 = o0 + warp * IN_RPW;
  int row[IN_RPW];
#pragma unroll
  for (int i = 0; i < IN_RPW; i++) row[i] = min(row0 + i, 2 * E - 1);  // rows past the end: computed, not stored
  // lane l finishes row row0 + l / NB of sequence l % NB (IN_RPW * NB <= 32 lanes): the conv step for o < E,
  // z for o >= E
  const float v = rows_dot_lane<T, NB, IN_RPW>(Win, row, xn, D, vec);
  const int o = row0 + lane / NB, b = lane % NB;
  if (lane < IN_RPW * NB && o < 2 * E) {
    if (o >= E) {
      stf(z, (int64_t)b * E + (o - E), v);
    } else {
      // shift the new input into the state (oldest first), K taps, SiLU; the taps are unrolled to the
      // largest K (8) under guards so that their loads go out together
      float* st = convState + ((int64_t)b * E + o) * K;
      const float* w = convW + (int64_t)o * K;
      const float x = rnd<T>(v);  // the state holds xz as the unfused path stored it
      float s[8], wk[8];
#pragma unroll
      for (int k = 0; k < 8; k++) {
        s[k] = k + 1 < K ? st[k + 1] : x;
        wk[k] = k < K ? w[k] : 0.f;
      }
      float a = convB ? convB[o] : 0.f;
#pragma unroll
      for (int k = 0; k < 8; k++)
        if (k < K) {
          st[k] = s[k];
          a = fmaf(wk[k], s[k], a);
        }
      const float y = rnd<T>(a * sigmoidf_(a));
      stf(xc, (int64_t)b * E + o, y);
      sxc[b][o - o0] = y;
    }
  }
  if (o0 >= E) return;  // a z-only block (uniform: no thread waits at the barrier below)
  __syncthreads();
  // x_proj partial: J outputs of this block's nc channels; each thread's 32 weights are loaded together
  const int nc = min(kDecodeChunk, E - o0);
  for (int j = threadIdx.x; j < J; j += NT) {
    const T* wr = Wx + (int64_t)j * E + o0;
    float w[kDecodeChunk];
#pragma unroll
    for (int c = 0; c < kDecodeChunk; c++) w[c] = c < nc ? ldf(wr, c) : 0.f;
#pragma unroll 1  // one row at a time: unrolled, the shared-memory loads of all rows would crowd out the registers
    for (int q = 0; q < NB; q++) {
      float a = 0.f;
#pragma unroll
      for (int c = 0; c < kDecodeChunk; c++) a = fmaf(w[c], sxc[q][c], a);  // c >= nc: both 0
      xPart[((int64_t)blockIdx.x * Btot + g0 + q) * J + j] = a;
    }
  }
}

// ---- pulling the next block's weights and states into L2 ---------------------------------------------------------
// The batched step is a chain of small kernels, each waiting on its first reads from HBM (the whole step is about 100
// us slower than 24 times one block replayed with its weights in L2: bench/README.md). decodeSsm, which every step
// form runs, gets the buffers the next block reads and has the copy engine bring them into L2 (Hopper's bulk
// prefetch, one instruction per 16 KB piece, spread over the grid's blocks) while this block finishes.
constexpr int kPrefetchMax = 16;
constexpr uint32_t kPrefetchPiece = 16384;
struct L2Prefetch {
  const char* p[kPrefetchMax];
  uint32_t bytes[kPrefetchMax];  // multiples of 16
  uint32_t end[kPrefetchMax];    // pieces of buffers 0..i together
  int n;
};
__device__ __forceinline__ void prefetch_l2(const L2Prefetch& pf) {
  if (pf.n == 0) return;
  const uint32_t blocks = gridDim.x * gridDim.y, total = pf.end[pf.n - 1];
  // piece c goes to block c % blocks, so that thread 0 of each block issues about one
  for (uint32_t c = threadIdx.x * blocks + blockIdx.y * gridDim.x + blockIdx.x; c < total; c += blockDim.x * blocks) {
    int e = 0;
    while (c >= pf.end[e]) e++;
    const uint32_t off = (c - (e ? pf.end[e - 1] : 0)) * kPrefetchPiece;
    const uint32_t n = min(kPrefetchPiece, pf.bytes[e] - off);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(pf.p[e] + off), "r"(n) : "memory");
  }
}
// the buffers of a prefetch field (absent: none), each trimmed to whole 16-byte runs, as bulk prefetch needs
L2Prefetch read_prefetch(const ArgObject& a, const Napi::Value& v) {
  L2Prefetch pf{};
  if (ArgObject::absent(v)) return pf;
  const Napi::Array arr = v.As<Napi::Array>();
  a.require(arr.Length() <= (uint32_t)kPrefetchMax,
            "prefetch takes at most " + std::to_string(kPrefetchMax) + " buffers, got " + std::to_string(arr.Length()));
  const std::string what = std::string(a.op()) + " prefetch";
  uint32_t pieces = 0;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    const auto [ptr, bytes] = device_span(a.env(), arr.Get(i), what.c_str());
    const uintptr_t b0 = ((uintptr_t)ptr + 15) & ~(uintptr_t)15, b1 = ((uintptr_t)ptr + bytes) & ~(uintptr_t)15;
    if (b1 <= b0) continue;
    const uint32_t n = (uint32_t)std::min<uintptr_t>(b1 - b0, 0xfffffff0u);
    pf.p[pf.n] = reinterpret_cast<const char*>(b0);
    pf.bytes[pf.n] = n;
    pieces += (n + kPrefetchPiece - 1) / kPrefetchPiece;
    pf.end[pf.n++] = pieces;
  }
  return pf;
}

// decodeSsm. Grid: ceil(E / (16 tiles)) x groups blocks of 256 threads; 16 lanes own channel d = 16k + threadIdx.x /
// 16, lane n its state h[n] (N <= 16; lanes n >= N idle). Every block first sums the P x_proj partials of all B rows of
// its group ([NB, J = R + 2N] = dt_in, B, C: a few KB) into shared memory.
constexpr int RREG = 4;  // dt_proj weights of a lane kept in registers: dt_rank up to 64 (the 130m model: 48)
template <class T, int NB>
__global__ void __launch_bounds__(NT, 1)
    decode_ssm(const float* __restrict__ xPart, int P, const T* __restrict__ xc, const T* __restrict__ z, int zs,
               const T* __restrict__ Wdt, const float* __restrict__ dtBias, const float* __restrict__ A,
               const float* __restrict__ Dskip, float* __restrict__ state, T* __restrict__ y, int E, int R, int N,
               int Btot, int b0, int tiles, const __grid_constant__ L2Prefetch pf) {
  prefetch_l2(pf);  // before the wait: a prefetch into L2, where every write lands, reads nothing stale
  pdl_wait();
  pdl_trigger();
  extern __shared__ float sx[];  // [NB * J] the x_proj output, then [S, NB * J] partial sums of it
  const int J = R + 2 * N, NO = NB * J;
  // this block's group of NB sequences from g0; its rows of partial p are xPart[p, g0 .. g0 + NB) (contiguous)
  const int g0 = b0 + blockIdx.y * NB;
  xPart += (int64_t)g0 * J;
  const int64_t partStride = (int64_t)Btot * J;
  xc += (int64_t)g0 * E;
  z += (int64_t)g0 * zs;
  state += (int64_t)g0 * E * N;
  y += (int64_t)g0 * E;
  // output o = t % NO sums partials p = s, s + S, ... (s = t / NO): with S slices a thread has at most 16 loads,
  // all in flight together, at P = 48 and B = 1 (S = 3)
  const int S = max(1, min(NT / NO, P));
  float* part = sx + NO;
  for (int t = threadIdx.x; t < S * NO; t += NT) {
    const int o = t % NO, s0 = t / NO;
    float acc = 0.f;
    for (int p0 = s0; p0 < P; p0 += 16 * S) {
      float v[16];
#pragma unroll
      for (int u = 0; u < 16; u++) v[u] = p0 + u * S < P ? xPart[(int64_t)(p0 + u * S) * partStride + o] : 0.f;
#pragma unroll
      for (int u = 0; u < 16; u++) acc += v[u];
    }
    part[t] = acc;
  }
  __syncthreads();
  for (int o = threadIdx.x; o < NO; o += NT) {
    float s = 0.f;
    for (int k = 0; k < S; k++) s += part[k * NO + o];
    sx[o] = rnd<T>(s);  // dt_in, B, C as the unfused path stores them
  }
  __syncthreads();

  // `tiles` runs of SSM_CH channels per block: with several groups, fewer blocks each sum the group's partials
  for (int tile = 0; tile < tiles; tile++) {  // uniform over the block: the shuffles below need every lane
    const int n = threadIdx.x & 15, d0 = (blockIdx.x * tiles + tile) * SSM_CH + (threadIdx.x >> 4);
    const bool live = d0 < E, has_n = n < N;
    const int d = live ? d0 : E - 1;  // lanes past E redo channel E-1 and store nothing (the shuffles need them)
    // everything the channel needs from global memory, loaded up front (one round trip, not one per row)
    const float a = has_n ? A[(int64_t)d * N + n] : 0.f;
    const float bias = dtBias ? dtBias[d] : 0.f, dsk = Dskip ? Dskip[d] : 0.f;
    const T* wdt = Wdt + (int64_t)d * R;
    float wr[RREG];
#pragma unroll
    for (int i = 0; i < RREG; i++) wr[i] = n + 16 * i < R ? ldf(wdt, n + 16 * i) : 0.f;
    float h[NB], u[NB], zz[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) {
      h[b] = has_n ? state[((int64_t)b * E + d) * N + n] : 0.f;
      u[b] = ldf(xc, (int64_t)b * E + d);
      zz[b] = ldf(z, (int64_t)b * zs + d);
    }
#pragma unroll
    for (int b = 0; b < NB; b++) {
      const float* xb = sx + b * J;
      float p = 0.f;
#pragma unroll
      for (int i = 0; i < RREG; i++) p = fmaf(xb[min(n + 16 * i, J - 1)], wr[i], p);  // wr = 0 past R
      for (int r = n + 16 * RREG; r < R; r += 16) p = fmaf(xb[r], ldf(wdt, r), p);    // larger dt_rank
      const float dt = softplusf_(rnd<T>(sum16(p)) + bias);  // delta as stored by the unfused path, + bias
      if (has_n) {
        h[b] = fmaf(__expf(dt * a), h[b], dt * u[b] * xb[R + n]);
        if (live) state[((int64_t)b * E + d) * N + n] = h[b];
      }
      const float cy = sum16(has_n ? xb[R + N + n] * h[b] : 0.f);
      if (n == 0 && live) {
        float out = cy + dsk * u[b];
        out *= zz[b] * sigmoidf_(zz[b]);
        stf(y, (int64_t)b * E + d, out);
      }
    }
  }
}

// decodeSsm on x_proj given whole, Q lanes per channel: a thread per (run of S sequences, channel, run of 4 states),
// the Q = N / 4 lanes of a channel adjacent in the warp. Each lane takes a share of the dt_proj dot product and its 4
// states, and the lanes sum their partials (dt, then the C.h of y) by shuffles. dt_in, B and C are read straight from
// x_proj (the lanes of one sequence read the same addresses: broadcasts), so every load of a thread is in flight at
// once and the thread makes one round trip to memory; no shared memory, no barrier. The channel's A, D, bias and
// dt_proj share are loaded once for the S sequences, whose updates are independent chains side by side. (The thread per
// channel it replaced, with the 16 states in registers and x_proj staged in shared memory, took 8.46 us for the 130m
// step at B = 64, this at S = 1 6.75.)
constexpr int SSM_THREADS = 128;
template <class T, int Q, int S>
__global__ void __launch_bounds__(SSM_THREADS)
    ssm_step_lanes(const T* __restrict__ xProj, const T* __restrict__ xc, const T* __restrict__ z, int zs,
                   const T* __restrict__ Wdt, const float* __restrict__ dtBias, const float* __restrict__ A,
                   const float* __restrict__ Dskip, float* __restrict__ state, T* __restrict__ y, int E, int R, int N,
                   int Btot, bool vec, bool wvec, const __grid_constant__ L2Prefetch pf) {
  prefetch_l2(pf);  // before the wait, as in decode_ssm
  pdl_wait();
  pdl_trigger();
  const int t = blockIdx.x * SSM_THREADS + threadIdx.x;
  const int q = t & (Q - 1), d = t / Q, n0 = 4 * q, J = R + 2 * N;
  const bool live = d < E;
  const int dd = live ? d : E - 1;  // lanes past E compute channel E-1 and store nothing (the shuffles need them)
  int bs[S];                        // this thread's sequences; those past the batch redo the last and store nothing
#pragma unroll
  for (int s = 0; s < S; s++) bs[s] = min(blockIdx.y * S + s, Btot - 1);
  float a[4];
  if (vec) {  // N == 4 Q, state and A 16-byte aligned
    const float4 av = reinterpret_cast<const float4*>(A + (int64_t)dd * N)[q];
    a[0] = av.x, a[1] = av.y, a[2] = av.z, a[3] = av.w;
  } else {
#pragma unroll
    for (int k = 0; k < 4; k++) a[k] = A[(int64_t)dd * N + min(n0 + k, N - 1)];
  }
  float h[S][4], Bv[S][4], Cv[S][4], u[S], zz[S], p[S];
#pragma unroll
  for (int s = 0; s < S; s++) {
    const int64_t bd = (int64_t)bs[s] * E + dd;
    const T* row = xProj + (int64_t)bs[s] * J;
    if (vec) {
      const float4 hv = reinterpret_cast<const float4*>(state + bd * N)[q];
      h[s][0] = hv.x, h[s][1] = hv.y, h[s][2] = hv.z, h[s][3] = hv.w;
    } else {
#pragma unroll
      for (int k = 0; k < 4; k++) h[s][k] = state[bd * N + min(n0 + k, N - 1)];
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {  // states past N get B = C = 0: they stay 0 and add nothing to y
      const int n = min(n0 + k, N - 1);
      const float bn = ldf(row, R + n), cn = ldf(row, R + N + n);
      Bv[s][k] = n0 + k < N ? bn : 0.f;
      Cv[s][k] = n0 + k < N ? cn : 0.f;
    }
    u[s] = ldf(xc, bd);
    zz[s] = ldf(z, (int64_t)bs[s] * zs + dd);
    p[s] = 0.f;
  }
  const float bias = dtBias ? dtBias[dd] : 0.f, dsk = Dskip ? Dskip[dd] : 0.f;
  // this lane's share of dt_in . Wdt[d]: R / Q contiguous values, 8 bytes of Wdt per load, when the shares are whole
  // 8-byte runs; otherwise every Q-th value
  const T* wr = Wdt + (int64_t)dd * R;
  if (wvec) {
    constexpr int V = 8 / sizeof(T);
    const int c = R / Q, r0 = q * c;
#pragma unroll 4
    for (int r = r0; r < r0 + c; r += V) {
      const uint2 w = *reinterpret_cast<const uint2*>(wr + r);
      float f[V];
      if constexpr (V == 2) {
        f[0] = __uint_as_float(w.x), f[1] = __uint_as_float(w.y);
      } else {
        f[0] = __uint_as_float(w.x << 16), f[1] = __uint_as_float(w.x & 0xffff0000u);
        f[2] = __uint_as_float(w.y << 16), f[3] = __uint_as_float(w.y & 0xffff0000u);
      }
#pragma unroll
      for (int s = 0; s < S; s++) {
        const T* row = xProj + (int64_t)bs[s] * J;
#pragma unroll
        for (int v = 0; v < V; v++) p[s] = fmaf(f[v], ldf(row, r + v), p[s]);
      }
    }
  } else {
#pragma unroll 4
    for (int r = q; r < R; r += Q) {
      const float w = ldf(wr, r);
#pragma unroll
      for (int s = 0; s < S; s++) p[s] = fmaf(w, ldf(xProj + (int64_t)bs[s] * J, r), p[s]);
    }
  }
#pragma unroll
  for (int s = 0; s < S; s++) {
#pragma unroll
    for (int o = 1; o < Q; o <<= 1) p[s] += __shfl_xor_sync(0xffffffffu, p[s], o);
    const float dt = softplusf_(rnd<T>(p[s]) + bias);  // the product rounded to T as the unfused path stored delta
    const float x = dt * u[s];
    float c = 0.f;
#pragma unroll
    for (int k = 0; k < 4; k++) {
      h[s][k] = fmaf(__expf(dt * a[k]), h[s][k], x * Bv[s][k]);
      c = fmaf(Cv[s][k], h[s][k], c);
    }
#pragma unroll
    for (int o = 1; o < Q; o <<= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    const bool store = live && (int)blockIdx.y * S + s < Btot;
    const int64_t bd = (int64_t)bs[s] * E + dd;
    if (store && vec) {
      reinterpret_cast<float4*>(state + bd * N)[q] = make_float4(h[s][0], h[s][1], h[s][2], h[s][3]);
    } else if (store) {
#pragma unroll
      for (int k = 0; k < 4; k++)
        if (n0 + k < N) state[bd * N + n0 + k] = h[s][k];
    }
    if (store && q == 0) stf(y, bd, fmaf(dsk, u[s], c) * zz[s] * sigmoidf_(zz[s]));
  }
}

// decodeOut. Grid: ceil(D / (8 RPW)) x groups blocks of 256 threads, a warp per RPW output rows; y (NB x E values of
// the group) is read straight from global memory, where the block's 8 warps share it through L1. One row per warp
// for a single group (latency-bound: the most warps); 4 when a batch has several groups, so that each load and
// conversion of y serves 4 rows (at batch 64 y's loads, not the weights, would bound the kernel).
template <class T, int NB, int RPW>
__global__ void __launch_bounds__(NT, 1)
    decode_out(const T* __restrict__ y, const T* __restrict__ W, T* __restrict__ out, int D, int E, bool vec, int b0) {
  pdl_wait();
  pdl_trigger();
  const int g0 = b0 + blockIdx.y * NB;
  y += (int64_t)g0 * E;
  out += (int64_t)g0 * D;
  const int lane = threadIdx.x & 31, o0 = (blockIdx.x * NWARP + (threadIdx.x >> 5)) * RPW;
  if (o0 >= D) return;  // whole warps only
  int row[RPW];
#pragma unroll
  for (int i = 0; i < RPW; i++) row[i] = min(o0 + i, D - 1);  // rows past the end: computed, not stored
  // lane l stores row o0 + l / NB of sequence l % NB
  const float v = rows_dot_lane<T, NB, RPW>(W, row, y, E, vec);
  const int o = o0 + lane / NB, b = lane % NB;
  if (lane < RPW * NB && o < D) stf(out, (int64_t)b * D + o, v);
}

// ---- host side ----------------------------------------------------------------------------------------------

// Runs launch(nb, groups, b0) for a batch of B: the full groups of kDecodeGroup sequences in one launch (grid
// dimension y), then the partial last group (if any) in another
template <class F>
void by_groups(int64_t B, F&& launch) {
  const int64_t full = B / kDecodeGroup, rest = B % kDecodeGroup;
  if (full > 0) launch(std::integral_constant<int, kDecodeGroup>{}, (unsigned)full, 0);
  if (rest > 0) with_1_to_8((int)rest, [&](auto nb) { launch(nb, 1u, (int)(full * kDecodeGroup)); });
}
int64_t batch_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const int64_t B = arg_int(info, i, op);
  if (B < 1 || B > kDecodeMaxB)
    throw Napi::RangeError::New(
        info.Env(), std::string(op) + ": B must be 1.." + std::to_string(kDecodeMaxB) + ", got " + std::to_string(B));
  return B;
}

template <class T>
void run_decode_in(const ArgObject& a) {
  const DecodeInArgs<T, float> r = read_decode_in<T, float>(a, DeviceFetch{});
  a.finish();
  a.require(r.K <= kDecodeMaxConv, "K must be 1.." + std::to_string(kDecodeMaxConv) + ", got " + std::to_string(r.K));
  const int64_t smem = decode_in_smem(r.B, r.D, sizeof(T));
  a.require(smem <= kDecodeSharedBytes, "B * D = " + std::to_string(r.B * r.D) + " normalised values do not fit in " +
                                            std::to_string(kDecodeSharedBytes / 1024) + " KiB of shared memory");
  const bool vec = r.D % (int64_t)(16 / sizeof(T)) == 0 && aligned16(r.Win);
  const unsigned grid = (unsigned)((2 * r.E + kDecodeChunk - 1) / kDecodeChunk);
  by_groups(r.B, [&](auto nb, unsigned groups, int b0) {
    launch_pdl(decode_in<T, decltype(nb)::value>, dim3(grid, groups), NT, (size_t)smem, r.hIn, r.rIn, r.normW, r.Win,
               r.convState, r.convW, r.convBias, r.Wx, r.rOut, r.xc, r.z, r.xPart, (int)r.D, (int)r.E, (int)r.K,
               (int)r.J, (float)r.eps, vec, (int)r.B, b0);
  });
  check_launch(a.env(), "decodeIn");
}

// Sequences per thread of decodeSsm on x_proj: two past 16 (bench/results/stop17-h200/decode-ops-ssm-seqs.txt, us per
// call at B = 64 / 32 / 16: one 7.06 / 4.33 / 2.79, two 6.12 / 3.79 / 2.75, four 6.53 / 3.75 / 3.31).
int ssm_seqs_per_thread(int64_t B) { return B > 16 ? 2 : 1; }

template <class T>
void run_decode_ssm(const ArgObject& a) {
  const DecodeSsmArgs<T, float> r = read_decode_ssm<T, float>(a, DeviceFetch{});
  a.finish();
  a.require(r.N <= kDecodeMaxState,
            "decodeSsm supports d_state N of 1.." + std::to_string(kDecodeMaxState) + ", got " + std::to_string(r.N));
  const L2Prefetch pf = read_prefetch(a, r.prefetch);
  const int64_t J = r.R + 2 * r.N, smem = decode_ssm_smem(r.B, J, r.E);
  a.require(smem <= kDecodeSharedBytes, "B * (R + 2N) = " + std::to_string(r.B * J) + " x_proj values do not fit in " +
                                            std::to_string(kDecodeSharedBytes / 1024) + " KiB of shared memory");
  if (r.xProj) {
    const auto launch = [&](auto qs) {
      constexpr int Q = decltype(qs)::value;
      const bool vec = r.N == 4 * Q && aligned16(r.ssmState) && aligned16(r.A);
      const int64_t V = 8 / (int64_t)sizeof(T);
      const bool wvec = r.R % (Q * V) == 0 && reinterpret_cast<uintptr_t>(r.Wdt) % 8 == 0;
      const auto go = [&](auto ss) {
        constexpr int S = decltype(ss)::value;
        const dim3 grid((unsigned)((r.E * Q + SSM_THREADS - 1) / SSM_THREADS), (unsigned)((r.B + S - 1) / S));
        launch_pdl(ssm_step_lanes<T, Q, S>, grid, SSM_THREADS, 0, r.xProj, r.xc, r.z, (int)r.zStride, r.Wdt, r.dtBias,
                   r.A, r.Dskip, r.ssmState, r.y, (int)r.E, (int)r.R, (int)r.N, (int)r.B, vec, wvec, pf);
      };
      if (ssm_seqs_per_thread(r.B) == 2)
        go(std::integral_constant<int, 2>{});
      else
        go(std::integral_constant<int, 1>{});
    };
    if (r.N <= 4)
      launch(std::integral_constant<int, 1>{});
    else if (r.N <= 8)
      launch(std::integral_constant<int, 2>{});
    else
      launch(std::integral_constant<int, 4>{});
  } else {
    // one group: a block per SSM_CH channels (latency-bound); several: 4 runs of channels per block, so that the
    // x_proj partials of a group (P x 8 x J floats) are summed by a quarter as many blocks
    const int tiles = r.B > kDecodeGroup ? 4 : 1;
    const unsigned grid = (unsigned)((r.E + SSM_CH * tiles - 1) / (SSM_CH * tiles));
    by_groups(r.B, [&](auto nb, unsigned groups, int b0) {
      launch_pdl(decode_ssm<T, decltype(nb)::value>, dim3(grid, groups), NT, (size_t)smem, r.xPart, decode_parts(r.E),
                 r.xc, r.z, (int)r.zStride, r.Wdt, r.dtBias, r.A, r.Dskip, r.ssmState, r.y, (int)r.E, (int)r.R,
                 (int)r.N, (int)r.B, b0, tiles, b0 == 0 ? pf : L2Prefetch{});  // prefetched once
    });
  }
  check_launch(a.env(), "decodeSsm");
}

// ---- decodeInProj: RMSNorm + in_proj on tensor cores + conv step, for the batched step ---------------------------
// The batched step ran RMSNorm, in_proj (cuBLAS) and the conv step as three kernels. Here the residual add is the
// previous out_proj's (cuBLAS, accumulating into r), and one kernel does the rest: in_proj(rmsnorm(r) w) = rstd *
// ((r w) Win^T) row by row, so a block stages its rows as bf16(r w) and its 32 rows of Win in shared memory, runs
// mma.sync m16n8k16 over them (fp32 accumulation), scales by rstd (from the f32 r) and finishes the conv step or z on
// the accumulators. Tiles: see decode_in_proj_rows (native/src/decode.h).

// One bf16 m16n8k16 product-accumulate. Fragments as PTX defines them, with g = lane / 4, c = lane % 4: a = rows g
// and g + 8, k slots {2c, 2c + 1} and {2c + 8, 2c + 9}; b = column g, the same slots. The caller maps slot pairs to
// k so that each thread reads 8 consecutive k (16 bytes) per row: slots {2c, 2c + 1} -> k 8c, 8c + 1 and slots
// {2c + 8, 2c + 9} -> k 8c + 2, 8c + 3 (a second product takes 8c + 4 .. 8c + 7); a sum over k does not care.
__device__ __forceinline__ void mma_bf16(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                         unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&v);
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool ok) {
  const unsigned sa = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sa), "l"(src), "r"(ok ? 16 : 0));
}

// Grid: ceil(2E / 32) column tiles x ceil(B / (16 MT)) row tiles, 256 threads. D % 8 == 0, r, normW and Win 16-byte
// aligned (the binding checks).
template <int MT>
__global__ void __launch_bounds__(NT, 1)
    decode_in_proj(const float* __restrict__ r, const float* __restrict__ normW, const bf16* __restrict__ Win,
                   float* __restrict__ convState, const float* __restrict__ convW, const float* __restrict__ convB,
                   bf16* __restrict__ xc, bf16* __restrict__ z, int B, int D, int E, int K, int SA, float eps) {
  pdl_wait();
  pdl_trigger();
  constexpr int ROWS = 16 * MT, COLS = kDecodeChunk, TPR = NT / ROWS;
  static_assert(COLS == 32, "a warp's four n8 tiles are the block's 32 columns");
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float ssr[ROWS];
  const int D8 = D / 8;                      // SA: the padded row stride of As and Ws, in_proj_stride(D)
  bf16* As = reinterpret_cast<bf16*>(smem);  // [ROWS][SA]: bf16(r * normW)
  bf16* Ws = As + ROWS * SA;                 // [COLS][SA]: this block's rows of Win
  const int tid = threadIdx.x, n0 = blockIdx.x * COLS, b0 = blockIdx.y * ROWS;

  // the Win tile travels while the rows are converted (columns past 2E are zero-filled)
  for (int i = tid; i < COLS * D8; i += NT) {
    const int col = i / D8, ch = i - col * D8, n = n0 + col;
    const bool ok = n < 2 * E;
    cp_async16(Ws + col * SA + ch * 8, Win + (ok ? (int64_t)n * D + ch * 8 : 0), ok);
  }
  asm volatile("cp.async.commit_group;\n" ::);
  // rows: TPR threads per row (adjacent lanes), 8 values each per chunk, 8 chunks in flight per thread (unrolled so
  // that their loads go out together); the sum of squares of r for rstd
  {
    const int row = tid / TPR, sub = tid - row * TPR, b = b0 + row;
    float ss = 0.f;
#pragma unroll 8
    for (int ch = sub; ch < D8; ch += TPR) {
      uint4 o = make_uint4(0, 0, 0, 0);
      if (b < B) {
        const float4 v0 = *reinterpret_cast<const float4*>(r + (int64_t)b * D + ch * 8);
        const float4 v1 = *reinterpret_cast<const float4*>(r + (int64_t)b * D + ch * 8 + 4);
        const float4 w0 = *reinterpret_cast<const float4*>(normW + ch * 8);
        const float4 w1 = *reinterpret_cast<const float4*>(normW + ch * 8 + 4);
        ss = fmaf(v0.x, v0.x, fmaf(v0.y, v0.y, fmaf(v0.z, v0.z, fmaf(v0.w, v0.w, ss))));
        ss = fmaf(v1.x, v1.x, fmaf(v1.y, v1.y, fmaf(v1.z, v1.z, fmaf(v1.w, v1.w, ss))));
        o = make_uint4(pack_bf16(v0.x * w0.x, v0.y * w0.y), pack_bf16(v0.z * w0.z, v0.w * w0.w),
                       pack_bf16(v1.x * w1.x, v1.y * w1.y), pack_bf16(v1.z * w1.z, v1.w * w1.w));
      }
      *reinterpret_cast<uint4*>(As + row * SA + ch * 8) = o;
    }
#pragma unroll
    for (int m = TPR / 2; m >= 1; m /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, m);
    if (sub == 0) ssr[row] = ss;
  }
  asm volatile("cp.async.wait_group 0;\n" ::);
  __syncthreads();

  // warp wk: the block's 32 columns (4 n8 tiles) over supersteps of 32 k: wk, wk + 8, ...
  const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, c = lane & 3, wk = warp;
  float acc[MT][4][4] = {};
  for (int s = wk; s * 4 < D8; s += NWARP) {
    const int ch = s * 4 + c;  // this thread's chunk of 8 k
    const bool ok = ch < D8;
    uint4 q[4];
#pragma unroll
    for (int t = 0; t < 4; t++)
      q[t] = ok ? *reinterpret_cast<const uint4*>(Ws + (t * 8 + g) * SA + ch * 8) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
      const uint4 pa = ok ? *reinterpret_cast<const uint4*>(As + (mt * 16 + g) * SA + ch * 8) : make_uint4(0, 0, 0, 0);
      const uint4 pb =
          ok ? *reinterpret_cast<const uint4*>(As + (mt * 16 + g + 8) * SA + ch * 8) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int t = 0; t < 4; t++) {
        mma_bf16(acc[mt][t], pa.x, pb.x, pa.y, pb.y, q[t].x, q[t].y);
        mma_bf16(acc[mt][t], pa.z, pb.z, pa.w, pb.w, q[t].z, q[t].w);
      }
    }
  }
  __syncthreads();  // every warp is done with As and Ws: their memory takes the partial sums
  float* red = reinterpret_cast<float*>(smem);  // [NWARP][ROWS][COLS]
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int t = 0; t < 4; t++) {
      const int row = mt * 16 + g, col = t * 8 + 2 * c;
      float* p = red + ((int64_t)wk * ROWS + row) * COLS + col;
      p[0] = acc[mt][t][0];
      p[1] = acc[mt][t][1];
      p[8 * COLS] = acc[mt][t][2];
      p[8 * COLS + 1] = acc[mt][t][3];
    }
  __syncthreads();

  // the epilogue: a thread per column (its conv taps loaded once) and every RG-th row of the tile, all its state
  // loads in flight together (one load after another cost a round trip per output)
  constexpr int RG = NT / COLS, RPT = ROWS / RG;
  const int col = tid % COLS, rg = tid / COLS, o = n0 + col;
  if (o >= 2 * E) return;
  const bool gate = o >= E;
  float wv[8], cb = 0.f;
#pragma unroll
  for (int k = 0; k < 8; k++) wv[k] = !gate && k < K ? convW[(int64_t)o * K + k] : 0.f;
  if (!gate && convB) cb = convB[o];
  float v[RPT], sv[RPT][7];
#pragma unroll
  for (int i = 0; i < RPT; i++) {
    const int row = rg + RG * i, b = b0 + row;
    float a = 0.f;
#pragma unroll
    for (int w = 0; w < NWARP; w++) a += red[(w * ROWS + row) * COLS + col];
    v[i] = a * rsqrtf(ssr[row] / (float)D + eps);
    const float* st = convState + ((int64_t)b * E + o) * K;
#pragma unroll
    for (int k = 0; k < 7; k++) sv[i][k] = !gate && b < B && k + 1 < K ? st[k + 1] : 0.f;
  }
#pragma unroll
  for (int i = 0; i < RPT; i++) {
    const int b = b0 + rg + RG * i;
    if (b >= B) continue;
    if (gate) {
      z[(int64_t)b * E + (o - E)] = __float2bfloat16_rn(v[i]);
      continue;
    }
    // the conv step as decodeIn's: shift the new input into the state (oldest first), K taps, SiLU
    float* st = convState + ((int64_t)b * E + o) * K;
    const float x = rnd<bf16>(v[i]);  // the state holds xz as the unfused path stored it
    float a = cb;
#pragma unroll
    for (int k = 0; k < 8; k++)
      if (k < K) {
        const float sk = k + 1 < K ? sv[i][k] : x;
        st[k] = sk;
        a = fmaf(wv[k], sk, a);
      }
    xc[(int64_t)b * E + o] = __float2bfloat16_rn(a * sigmoidf_(a));
  }
}

// One launch of decode_in_proj<MT>, raising its opt-in to more than 48 KiB of shared memory as larger tiles come
// (once per kernel: a static of its own).
template <int MT>
void launch_in_proj(const DecodeInProjArgs<bf16, float>& r, int64_t smem, Napi::Env env) {
  static int64_t smem_set = 0;
  if (smem > smem_set) {
    cuda_check(env, cudaFuncSetAttribute(decode_in_proj<MT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
               "decodeInProj smem");
    smem_set = smem;
  }
  constexpr int rows = 16 * MT;
  const dim3 grid((unsigned)((2 * r.E + kDecodeChunk - 1) / kDecodeChunk), (unsigned)((r.B + rows - 1) / rows));
  launch_pdl(decode_in_proj<MT>, grid, NT, (size_t)smem, r.r, r.normW, r.Win, r.convState, r.convW, r.convBias, r.xc,
             r.z, (int)r.B, (int)r.D, (int)r.E, (int)r.K, (int)in_proj_stride(r.D), (float)r.eps);
}

void run_decode_in_proj(const ArgObject& a) {
  a.require(field_dtype(a) == DT::BF16, "decodeInProj runs on bf16 activations on CUDA (dtype 'bf16')");
  const DecodeInProjArgs<bf16, float> r = read_decode_in_proj<bf16, float>(a, DeviceFetch{});
  a.finish();
  a.require(decode_in_proj_fits(r.B, r.D, r.E, r.K),
            "sizes outside decodeInProj's (D a multiple of 8, K <= " + std::to_string(kDecodeMaxConv) +
                ", a tile within shared memory): B " + std::to_string(r.B) + ", D " + std::to_string(r.D) + ", K " +
                std::to_string(r.K));
  a.require(aligned16(r.Win) && aligned16(r.r) && aligned16(r.normW), "r, normW and Win must be 16-byte aligned");
  const int mt = decode_in_proj_rows(r.B) / 16;
  const int64_t smem = in_proj_smem(mt, r.D);
  if (mt == 1)
    launch_in_proj<1>(r, smem, a.env());
  else
    launch_in_proj<2>(r, smem, a.env());
  check_launch(a.env(), "decodeInProj");
}

// ---- convXProj: the conv step and x_proj on tensor cores, a cluster per 8 sequences -------------------------------
// Grid: CL x ceil(B / 8) blocks of 256 threads, one cluster of CL = kConvXProjCluster along x (native/src/decode.h;
// clusters of 8 blocks, each a run of 192 channels, measured slower: 5.4 against 5.1 us at B = 64, bench/README.md,
// stop 36). Block r of a cluster: the conv step of channels [r run, (r + 1) run) of its 8 sequences (all loads of a
// thread issued before its stores) into the global xc and a bf16 tile in shared memory, then that tile times its
// columns of Wx (staged by cp.async while the conv step runs) on mma.sync m16n8k16 with rows 8..15 zero; warp w takes
// n8 tiles w, w + 8. Each partial sum goes straight into the shared memory of the block that owns its output (block o /
// share of output o = sequence * J + j), slot [r][o % share]; after one cluster barrier every block adds up the CL
// partials of its outputs and writes them rounded to bf16, as the cuBLAS product stored x_proj. (Blocks must have
// started before their shared memory is written: the arrive at entry and the wait before the first remote store.)
template <int K>
__global__ void __launch_bounds__(NT, 1) __cluster_dims__(kConvXProjCluster, 1, 1)
    conv_x_proj(const bf16* __restrict__ x, int64_t xs, float* __restrict__ convState, const float* __restrict__ convW,
                const float* __restrict__ convB, const bf16* __restrict__ Wx, bf16* __restrict__ xc,
                bf16* __restrict__ xProj, int B, int E, int J, int run, int SA, int share) {
  pdl_wait();
  pdl_trigger();
  constexpr int CL = kConvXProjCluster, ROWS = kConvXProjRows, PAIRS = 4;  // PAIRS: (sequence, channel) pairs per
                                                                           // thread with their loads in flight
  extern __shared__ __align__(16) unsigned char smem[];
  const int JT = (J + 7) / 8, JP = JT * 8;
  bf16* As = reinterpret_cast<bf16*>(smem);               // [ROWS][SA]: this block's xc
  bf16* Ws = As + ROWS * SA;                              // [JP][SA]: its columns of Wx (rows past J zero)
  float* inbox = reinterpret_cast<float*>(Ws + JP * SA);  // [CL][share]: the cluster's partials of its outputs
  cg::cluster_group cluster = cg::this_cluster();
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::);
  const int rank = (int)cluster.block_rank(), tid = threadIdx.x;
  const int c0 = rank * run, b0 = blockIdx.y * ROWS, R8 = run / 8;

  for (int i = tid; i < JP * R8; i += NT) {
    const int j = i / R8, ch = i - j * R8, k = c0 + ch * 8;
    const bool ok = j < J && k < E;  // E % 8 == 0: a chunk is all in or all out
    cp_async16(Ws + j * SA + ch * 8, Wx + (ok ? (int64_t)j * E + k : 0), ok);
  }
  asm volatile("cp.async.commit_group;\n" ::);

  for (int base = 0; base < ROWS * run; base += PAIRS * NT) {
    float sv[PAIRS][K], wv[PAIRS][K], cb[PAIRS];
    bool live[PAIRS];
#pragma unroll
    for (int p = 0; p < PAIRS; p++) {
      const int i = base + p * NT + tid, s = i / run, ch = i - s * run, b = b0 + s, d = c0 + ch;
      live[p] = i < ROWS * run && b < B && d < E;
      const int bb = live[p] ? b : 0, dd = live[p] ? d : 0;  // dead pairs load pair (0, 0) and store nothing
      const float* st = convState + ((int64_t)bb * E + dd) * K;
      const float xv = ldf(x, (int64_t)bb * xs + dd);
      if constexpr (K == 4) {  // 16-byte rows of the state and of the taps
        const float4 v = *reinterpret_cast<const float4*>(st), w = *reinterpret_cast<const float4*>(convW + dd * 4);
        sv[p][0] = v.y, sv[p][1] = v.z, sv[p][2] = v.w, sv[p][3] = xv;
        wv[p][0] = w.x, wv[p][1] = w.y, wv[p][2] = w.z, wv[p][3] = w.w;
      } else {
#pragma unroll
        for (int k = 0; k < K; k++) {
          sv[p][k] = k + 1 < K ? st[k + 1] : xv;
          wv[p][k] = convW[(int64_t)dd * K + k];
        }
      }
      cb[p] = convB ? convB[dd] : 0.f;
    }
#pragma unroll
    for (int p = 0; p < PAIRS; p++) {
      const int i = base + p * NT + tid, s = i / run, ch = i - s * run;
      if (i >= ROWS * run) break;
      float a = cb[p];
#pragma unroll
      for (int k = 0; k < K; k++) a = fmaf(wv[p][k], sv[p][k], a);
      const bf16 v = __float2bfloat16_rn(live[p] ? a * sigmoidf_(a) : 0.f);
      As[s * SA + ch] = v;
      if (!live[p]) continue;
      const int64_t bd = (int64_t)(b0 + s) * E + c0 + ch;
      float* st = convState + bd * K;
      if constexpr (K == 4) {
        *reinterpret_cast<float4*>(st) = make_float4(sv[p][0], sv[p][1], sv[p][2], sv[p][3]);
      } else {
#pragma unroll
        for (int k = 0; k < K; k++) st[k] = sv[p][k];
      }
      xc[bd] = v;
    }
  }
  asm volatile("cp.async.wait_group 0;\n" ::);
  __syncthreads();

  const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, c = lane & 3;
  float acc[2][4] = {};  // n8 tiles warp and warp + 8 (J <= 128: 16 tiles)
#pragma unroll
  for (int u = 0; u < 2; u++) {
    const int t = warp + u * NWARP;
    if (t >= JT) break;
    for (int ch = c; ch < R8; ch += 4) {  // this thread's chunks of 8 k, 32 k per pair of products
      const uint4 pa = *reinterpret_cast<const uint4*>(As + g * SA + ch * 8);
      const uint4 q = *reinterpret_cast<const uint4*>(Ws + (t * 8 + g) * SA + ch * 8);
      mma_bf16(acc[u], pa.x, 0u, pa.y, 0u, q.x, q.y);
      mma_bf16(acc[u], pa.z, 0u, pa.w, 0u, q.z, q.w);
    }
  }
  asm volatile("barrier.cluster.wait.aligned;\n" ::);  // every block of the cluster has started
#pragma unroll
  for (int u = 0; u < 2; u++) {
    const int t = warp + u * NWARP;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int j = t * 8 + 2 * c + h;
      if (t >= JT || j >= J) continue;
      const int o = g * J + j, owner = o / share;
      cluster.map_shared_rank(inbox, owner)[rank * share + (o - owner * share)] = acc[u][h];
    }
  }
  cluster.sync();
  const int o = rank * share + tid;
  if (tid < share && o < ROWS * J) {
    float v[CL];
#pragma unroll
    for (int q = 0; q < CL; q++) v[q] = inbox[q * share + tid];
    float sum = 0.f;
#pragma unroll
    for (int q = 0; q < CL; q++) sum += v[q];
    const int s = o / J, j = o - s * J;
    if (b0 + s < B) xProj[(int64_t)(b0 + s) * J + j] = __float2bfloat16_rn(sum);
  }
}

void run_conv_x_proj(const ArgObject& a) {
  a.require(field_dtype(a) == DT::BF16, "convXProj runs on bf16 activations on CUDA (dtype 'bf16')");
  const ConvXProjArgs<bf16, float> r = read_conv_x_proj<bf16, float>(a, DeviceFetch{});
  a.finish();
  a.require(conv_x_proj_fits(r.B, r.E, r.K, r.J),
            "sizes outside convXProj's (E a multiple of 8, K <= " + std::to_string(kDecodeMaxConv) +
                ", J <= " + std::to_string(kConvXProjMaxJ) + ", tiles within shared memory): B " + std::to_string(r.B) +
                ", E " + std::to_string(r.E) + ", K " + std::to_string(r.K) + ", J " + std::to_string(r.J));
  a.require(aligned16(r.Wx) && aligned16(r.convState) && aligned16(r.convW),
            "Wx, convState and convW must be 16-byte aligned");
  const int64_t run = conv_x_proj_run(r.E), SA = in_proj_stride(run), smem = conv_x_proj_smem(r.E, r.J);
  const int64_t share = conv_x_proj_share(r.J);
  const dim3 grid((unsigned)kConvXProjCluster, (unsigned)((r.B + kConvXProjRows - 1) / kConvXProjRows));
  with_1_to_8((int)r.K, [&](auto kc) {
    const auto kernel = conv_x_proj<decltype(kc)::value>;
    static int64_t smem_set = -1;  // per kernel: its opt-ins (a cluster past the portable 8 blocks; shared memory)
    if (smem > smem_set) {
      cuda_check(a.env(), cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1),
                 "convXProj cluster size");
      cuda_check(a.env(), cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                 "convXProj smem");
      smem_set = smem;
    }
    launch_pdl(kernel, grid, NT, (size_t)smem, r.x, r.xStride, r.convState, r.convW, r.convBias, r.Wx, r.xc, r.xProj,
               (int)r.B, (int)r.E, (int)r.J, (int)run, (int)SA, (int)share);
  });
  check_launch(a.env(), "convXProj");
}

}  // namespace
}  // namespace mamba

using namespace mamba;

// cuda.decodeIn({ hIn, rIn?, normW, Win, convState, convW, convBias?, Wx, rOut, xc, z, xPart, B, D, E, K, J, eps,
// dtype? }) and cuda.decodeSsm({ xPart | xProj, xc, z, zStride?, Wdt, dtBias?, A, Dskip?, ssmState, y, B, E, R, N,
// dtype? }): fields in
// native/KERNELS.md, read by native/src/decode_args.h as the CPU twins do. dtype ('f32' | 'bf16') is that of hIn,
// Win, Wx, xc, z (decodeIn) and xc, z, Wdt, y (decodeSsm); the other buffers are f32.
MAMBA_OP(cuda, decodeIn) {
  return dtype_op(info, "decodeIn", [](auto t, const ArgObject& a) { run_decode_in<typename decltype(t)::type>(a); });
}
MAMBA_OP(cuda, decodeSsm) {
  return dtype_op(info, "decodeSsm", [](auto t, const ArgObject& a) { run_decode_ssm<typename decltype(t)::type>(a); });
}

// cuda.decodeInProj({ r, normW, Win, convState, convW, convBias?, xc, z, B, D, E, K, eps, dtype: 'bf16' }): fields in
// native/KERNELS.md; r, normW and the conv buffers are f32, Win, xc and z bf16.
MAMBA_OP(cuda, decodeInProj) {
  const ArgObject a(info, 0, "decodeInProj");
  run_decode_in_proj(a);
  return info.Env().Undefined();
}

// cuda.decodeOut(y[B,E], Wout[D,E], hOut[B,D] out, B, D, E [, dtype of all three])
MAMBA_OP(cuda, decodeOut) {
  Napi::Env env = info.Env();
  const int64_t B = batch_arg(info, 3, "decodeOut B");
  const int64_t D = arg_int(info, 4, "decodeOut D"), E = arg_int(info, 5, "decodeOut E");
  const DT dt = arg_dtype(info, 6, "decodeOut");
  if (D < 1 || E < 1) throw Napi::RangeError::New(env, "decodeOut: D and E must be >= 1");
  const void* y = arg_dev_dt(info, 0, "decodeOut y", dt, B * E);
  const void* W = arg_dev_dt(info, 1, "decodeOut Wout", dt, D * E);
  void* out = arg_dev_dt(info, 2, "decodeOut hOut", dt, B * D);
  const bool vec = E % (int64_t)(16 / dt_bytes(dt)) == 0 && aligned16(W) && aligned16(y);
  const bool many = B > kDecodeGroup;  // several groups: 4 rows per warp
  const int rows = many ? 4 : 1;
  const unsigned grid = (unsigned)((D + NWARP * rows - 1) / (NWARP * rows));
  by_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    by_groups(B, [&](auto nb, unsigned groups, int b0) {
      constexpr int NB = decltype(nb)::value;
      const dim3 g(grid, groups);
      if (many)
        launch_pdl(decode_out<T, NB, 4>, g, NT, 0, (const T*)y, (const T*)W, (T*)out, (int)D, (int)E, vec, b0);
      else
        launch_pdl(decode_out<T, NB, 1>, g, NT, 0, (const T*)y, (const T*)W, (T*)out, (int)D, (int)E, vec, b0);
    });
  });
  check_launch(env, "decodeOut");
  return env.Undefined();
}

// cuda.convXProj({ x, xStride, convState, convW, convBias?, Wx, xc, xProj, B, E, K, J, dtype: 'bf16' }): fields in
// native/KERNELS.md; x, Wx, xc and xProj bf16, the conv buffers f32.
MAMBA_OP(cuda, convXProj) {
  const ArgObject a(info, 0, "convXProj");
  run_conv_x_proj(a);
  return info.Env().Undefined();
}
