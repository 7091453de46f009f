// Selective scan (Mamba-1) on the GPU, [T, D] layout (T = B*L rows, channel d contiguous), N <= 16.
//
// One thread owns one channel d of one time chunk and keeps the N states of that channel in registers;
// a block is 128 consecutive channels of one chunk, so u/delta/z/y rows are read coalesced and the
// B/C rows (shared by all channels) are staged once per block in shared memory. Parallelism along L
// (B=1, D=1536 is only 1536 channels) comes from splitting L into chunks:
//   1. chunk_state: each chunk scans from a zero state -> its local end state S_c and sum(dt) P_c
//      (the chunk's decay is exp(A * P_c), so no product needs storing);
//   2. combine: per (b, d, n) a short sequential pass over chunks turns S into the state entering
//      each chunk (and the final state for generation);
//   3. output: each chunk rescans from its true entering state and writes y.
// Backward (its adjoint equations: native/KERNELS.md, "The scan backward"): one forward sweep per chunk gives both its
// local end state and its local adjoint carry (chunk_state_adj; with 4 threads per channel, as the one-pass forward,
// where the rows allow: chunk_state_adj_lanes), a forward combine gives the state entering each chunk and a reverse
// combine (the same kernel) the carry entering from the future, then a main pass per chunk walks the
// chunk backwards one SUB-step piece at a time, recomputing that piece's states into shared memory from its starting
// state: stored by the first pass when that scratch is small enough (B * L * D * 4.5 bytes in bf16 at N = 16), else
// from a forward sweep of its own that keeps them in local memory. Nothing of size (B, D, L, N) is ever stored. The exp
// per (t, d, n) (one MUFU ex2) and 2-4 FMAs per (t, d, n) bound these kernels. Every tuning constant below is the one
// configuration measured fastest on the H200; the measurements, and the variants tried and dropped (a
// four-threads-per-channel main pass, unrolled or not time loops, other chunk counts and register budgets), are in
// bench/README.md.
#include "common.cuh"
#include "../src/limits.h"
#include "../src/scan_args.h"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace mamba {
namespace {

constexpr int NT = 128;     // threads (channels) per block
constexpr int TILE = 32;    // time steps of B/C staged per block in the forward passes
constexpr int SUB = 8;      // backward piece length (states of a piece live in shared memory)
constexpr int MAXCK = 128;  // checkpoints per thread in backward -> backward chunks of <= SUB*MAXCK steps
constexpr int G8 = 8;       // time steps whose loads are issued together
constexpr int BC = NT / 2;  // channels per block in the passes with two threads per channel
constexpr float LOG2E = 1.4426950408889634f;

template <class T>
struct ScanP {
  const T* u;
  const T* delta;
  const float* dbias;
  const float* A;
  const T* Bm;
  const T* Cm;
  int64_t bcs;
  const float* Dskip;
  const T* z;
  int64_t zs;
  const T* dy;
  int B, L, D, N, Lc, nchunk;
  int lanes;  // the one-pass forward's threads per channel (4 or 8); 0: the chunked passes
  bool softplus;
  float* S;  // [B, nchunk, D, N]: chunk-local end states, after combine the state entering each chunk
  float* P;  // [B, nchunk, D]: sum of dt over the chunk
  float* Q;  // [B, nchunk, D, N]: backward: chunk-local adjoint carry, after combine the carry entering from the future
  // backward, stored checkpoints (null: the main pass sweeps each chunk forward itself): the chunk-local state at
  // the start of every piece after a chunk's first, [B, nchunk, ppc - 1, N, D] (channel fastest: coalesced), in the
  // storage dtype (bf16 for bf16 inputs: half the bytes and scratch, a rounding of the size of the bf16 gradients'
  // own), and the chunk's sum of dt before it in f32, [B, nchunk, ppc - 1, D]; ppc = Lc / SUB pieces per chunk
  T* CK;
  float* CP;
  int ppc;
};

__device__ __forceinline__ float dt_of(float v, bool sp) { return sp ? softplusf_(v) : v; }

// The group of W consecutive floats of shared memory at s (W = 4, 2 or 1; s aligned to W floats) in one vector
// load: the B and C values of a step are read by all threads of a warp at once, and the compiler does not merge
// their scalar loads itself (one broadcast LDS.128 per 4 states instead of four LDS).
template <int W>
__device__ __forceinline__ void lds_group(float (&v)[4], const float* s) {
  static_assert(W == 4 || W == 2 || W == 1, "vector width");
  if constexpr (W == 4) {
    const float4 t = *reinterpret_cast<const float4*>(s);
    v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
  } else if constexpr (W == 2) {
    const float2 t = *reinterpret_cast<const float2*>(s);
    v[0] = t.x, v[1] = t.y;
  } else {
    v[0] = s[0];
  }
}
template <int N>
constexpr int group_width() {
  return N % 4 == 0 ? 4 : N % 2 == 0 ? 2 : 1;
}

// Stage rows [t0, t0+nt) of a strided [T, N] operand into s[nt][NS] as float (zero padded to NS).
template <class T, int NS>
__device__ __forceinline__ void stage(float* s, const T* m, int64_t stride, int64_t row0, int nt, int N) {
  for (int i = threadIdx.x; i < nt * NS; i += NT) {
    int tt = i / NS, n = i - tt * NS;
    s[i] = n < N ? ldf(m, (row0 + tt) * stride + n) : 0.f;
  }
}

// ---- pass 1: chunk-local end states ----------------------------------------------------------------
template <class T, int NS>
__global__ void __launch_bounds__(NT) chunk_state(ScanP<T> p) {
  __shared__ __align__(16) float sB[TILE * NS];
  const int c = blockIdx.y, d = blockIdx.x * NT + threadIdx.x, b = blockIdx.z;
  const bool act = d < p.D;
  const int s = c * p.Lc, e = min(p.L, s + p.Lc);
  float A2[NS], h[NS];
#pragma unroll
  for (int n = 0; n < NS; n++) {
    A2[n] = (act && n < p.N) ? p.A[(int64_t)d * p.N + n] * LOG2E : 0.f;
    h[n] = 0.f;
  }
  const float bias = (act && p.dbias) ? p.dbias[d] : 0.f;
  float sumdt = 0.f;
  const int64_t rb = (int64_t)b * p.L;
  for (int ts = s; ts < e; ts += TILE) {
    const int nt = min(TILE, e - ts);
    __syncthreads();
    stage<T, NS>(sB, p.Bm, p.bcs, rb + ts, nt, p.N);
    __syncthreads();
    if (!act) continue;
    for (int j0 = 0; j0 < nt; j0 += G8) {
      float uu[G8], dd[G8];  // loads of a group issued together, ahead of the dependent arithmetic
#pragma unroll
      for (int q = 0; q < G8; q++) {
        const bool ok = j0 + q < nt;
        const int64_t i = (rb + ts + j0 + q) * p.D + d;
        uu[q] = ok ? ldf(p.u, i) : 0.f;
        dd[q] = ok ? ldf(p.delta, i) : 0.f;
      }
#pragma unroll
      for (int q = 0; q < G8; q++) {
        if (j0 + q < nt) {
          const float dt = dt_of(dd[q] + bias, p.softplus);
          const float x = dt * uu[q];
          sumdt += dt;
          const float* b = sB + (j0 + q) * NS;
          float bg[4];
#pragma unroll
          for (int n = 0; n < NS; n++) {
            if (n % 4 == 0) lds_group<4>(bg, b + n);
            h[n] = fmaf(exp2f(dt * A2[n]), h[n], x * bg[n % 4]);
          }
        }
      }
    }
  }
  if (!act) return;
  const int64_t o = ((int64_t)b * p.nchunk + c) * p.D + d;
  for (int n = 0; n < p.N; n++) p.S[o * p.N + n] = h[n];
  p.P[o] = sumdt;
}

// ---- backward pass 1: chunk-local end states and adjoint carries in one forward sweep -----------------
// The adjoint carry a chunk [s, e) hands to the chunk before it, from a zero carry at its end, is
//   Q_c = sum_t (prod_{j=s..t} a_j) C_t gy_t   (a_j = exp(dt_j A), gy = dy * z sigmoid(z)),
// a sum over t of forward running products: it needs no reverse walk, so it is accumulated in the same
// sweep that computes the chunk's local end state S_c (one exp per (t, d, n) for both, where separate forward
// and reverse passes took two). Loads of GA steps are issued together: 4 rather than the forward passes' 8,
// which needed more than the 128 registers and spilled (timings of 2, 4 and 8: bench/README.md, stop 10).
constexpr int GA = 4;
static_assert(TILE % SUB == 0 && SUB % GA == 0, "piece starts fall on load-group starts");
template <class T, int NS>
__global__ void __launch_bounds__(NT, 4) chunk_state_adj(ScanP<T> p) {
  __shared__ __align__(16) float sB[TILE * NS], sC[TILE * NS];
  const int c = blockIdx.y, d = blockIdx.x * NT + threadIdx.x, b = blockIdx.z;
  const bool act = d < p.D;
  const int s = c * p.Lc, e = min(p.L, s + p.Lc);
  float A2[NS], h[NS], pa[NS], q[NS];
#pragma unroll
  for (int n = 0; n < NS; n++) {
    A2[n] = (act && n < p.N) ? p.A[(int64_t)d * p.N + n] * LOG2E : 0.f;
    h[n] = 0.f;
    pa[n] = 1.f;
    q[n] = 0.f;
  }
  const float bias = (act && p.dbias) ? p.dbias[d] : 0.f;
  float sumdt = 0.f;
  const int64_t rb = (int64_t)b * p.L;
  for (int ts = s; ts < e; ts += TILE) {
    const int nt = min(TILE, e - ts);
    __syncthreads();
    stage<T, NS>(sB, p.Bm, p.bcs, rb + ts, nt, p.N);
    stage<T, NS>(sC, p.Cm, p.bcs, rb + ts, nt, p.N);
    __syncthreads();
    if (!act) continue;
    for (int j0 = 0; j0 < nt; j0 += GA) {
      // a piece starts here (ts - s is a multiple of TILE, itself of SUB): its chunk-local starting state
      if (p.CK && j0 % SUB == 0 && ts + j0 > s) {
        const int64_t slot = ((int64_t)b * p.nchunk + c) * (p.ppc - 1) + (ts + j0 - s) / SUB - 1;
#pragma unroll
        for (int n = 0; n < NS; n++)
          if (n < p.N) stf(p.CK, (slot * p.N + n) * p.D + d, h[n]);
        p.CP[slot * p.D + d] = sumdt;
      }
      float uu[GA], dd[GA], gg[GA], zv[GA];
#pragma unroll
      for (int k = 0; k < GA; k++) {
        const bool ok = j0 + k < nt;
        const int64_t r = rb + ts + j0 + k;
        uu[k] = ok ? ldf(p.u, r * p.D + d) : 0.f;
        dd[k] = ok ? ldf(p.delta, r * p.D + d) : 0.f;
        gg[k] = ok ? ldf(p.dy, r * p.D + d) : 0.f;
        zv[k] = (ok && p.z) ? ldf(p.z, r * p.zs + d) : 0.f;
      }
#pragma unroll
      for (int k = 0; k < GA; k++) {
        if (j0 + k < nt) {
          const float dt = dt_of(dd[k] + bias, p.softplus);
          const float x = dt * uu[k];
          const float gy = p.z ? gg[k] * zv[k] * sigmoidf_(zv[k]) : gg[k];
          sumdt += dt;
          const float* bb = sB + (j0 + k) * NS;
          const float* cc = sC + (j0 + k) * NS;
          float bg[4], cg[4];
#pragma unroll
          for (int n = 0; n < NS; n++) {
            if (n % 4 == 0) {
              lds_group<4>(bg, bb + n);
              lds_group<4>(cg, cc + n);
            }
            const float a = exp2f(dt * A2[n]);
            h[n] = fmaf(a, h[n], x * bg[n % 4]);
            pa[n] *= a;
            q[n] = fmaf(pa[n], cg[n % 4] * gy, q[n]);
          }
        }
      }
    }
  }
  if (!act) return;
  const int64_t o = ((int64_t)b * p.nchunk + c) * p.D + d;
#pragma unroll
  for (int n = 0; n < NS; n++)
    if (n < p.N) {
      p.S[o * p.N + n] = h[n];
      p.Q[o * p.N + n] = q[n];
    }
  p.P[o] = sumdt;
}

// ---- pass 2: sequential combine over chunks (forward: S -> entering states) ------------------------
__global__ void combine_fwd(float* S, const float* P, const float* A, float* last, int B, int nchunk, int D, int N) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)B * D * N) return;
  const int n = (int)(i % N), d = (int)((i / N) % D), b = (int)(i / ((int64_t)N * D));
  const float a2 = A[(int64_t)d * N + n] * LOG2E;
  float H = 0.f;
  // groups of 8 chunks: their loads are issued before the dependent chain (S is rewritten in place)
  for (int c0 = 0; c0 < nchunk; c0 += 8) {
    float sc[8], dc[8];
#pragma unroll
    for (int q = 0; q < 8; q++) {
      const int64_t o = ((int64_t)b * nchunk + c0 + q) * D + d;
      const bool ok = c0 + q < nchunk;
      sc[q] = ok ? S[o * N + n] : 0.f;
      dc[q] = ok ? exp2f(a2 * P[o]) : 0.f;
    }
#pragma unroll
    for (int q = 0; q < 8; q++) {
      if (c0 + q < nchunk) {
        S[(((int64_t)b * nchunk + c0 + q) * D + d) * N + n] = H;
        H = fmaf(dc[q], H, sc[q]);
      }
    }
  }
  if (last) last[((int64_t)b * D + d) * N + n] = H;
}

// The backward's two combines in one kernel: the forward chain over chunks (S -> entering states) and the reverse one
// (Q, the chunk-local adjoint carries -> the carry entering each chunk from the future) of one (b, d, n) are
// independent, so each group of 8 chunks of both has its loads issued together and the two chains interleave (as two
// kernels they took 0.029 + 0.036 ms at 8 x 2048 x 1536, as one 0.045).
__global__ void combine_fwd_bwd(float* S, float* Q, const float* P, const float* A, int B, int nchunk, int D, int N) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)B * D * N) return;
  const int n = (int)(i % N), d = (int)((i / N) % D), b = (int)(i / ((int64_t)N * D));
  const float a2 = A[(int64_t)d * N + n] * LOG2E;
  const auto at = [&](int c) { return ((int64_t)b * nchunk + c) * D + d; };
  float H = 0.f, R = 0.f;
  for (int g = 0; g < nchunk; g += 8) {  // forward chunks g .. g + 7, reverse chunks nchunk - 1 - g down to - 8
    float sc[8], df[8], qc[8], db[8];
#pragma unroll
    for (int q = 0; q < 8; q++) {
      const int cf = g + q, cb = nchunk - 1 - g - q;
      sc[q] = cf < nchunk ? S[at(cf) * N + n] : 0.f;
      df[q] = cf < nchunk ? exp2f(a2 * P[at(cf)]) : 0.f;
      qc[q] = cb >= 0 ? Q[at(cb) * N + n] : 0.f;
      db[q] = cb >= 0 ? exp2f(a2 * P[at(cb)]) : 0.f;
    }
#pragma unroll
    for (int q = 0; q < 8; q++) {
      const int cf = g + q, cb = nchunk - 1 - g - q;
      if (cf < nchunk) {
        S[at(cf) * N + n] = H;
        H = fmaf(df[q], H, sc[q]);
      }
      if (cb >= 0) {
        Q[at(cb) * N + n] = R;
        R = fmaf(db[q], R, qc[q]);
      }
    }
  }
}

// ---- pass 3: output -------------------------------------------------------------------------------
// One thread per channel (two threads per channel, each with half of the states, measured slower: the extra
// softplus/sigmoid work and shuffles cost more than the added warps gained), and the compute loop over a load
// group's time steps is not unrolled (a smaller code footprint measured faster: bench/README.md).
template <class T, int NS>
__global__ void __launch_bounds__(NT) scan_out(ScanP<T> p, T* __restrict__ y, float* last) {
  __shared__ __align__(16) float sB[TILE * NS], sC[TILE * NS];
  const int c = blockIdx.y, d = blockIdx.x * NT + threadIdx.x, b = blockIdx.z;
  const bool act = d < p.D;
  const int s = c * p.Lc, e = min(p.L, s + p.Lc);
  float A2[NS], h[NS];
  const int64_t o = ((int64_t)b * p.nchunk + c) * p.D + d;
#pragma unroll
  for (int n = 0; n < NS; n++) {
    A2[n] = (act && n < p.N) ? p.A[(int64_t)d * p.N + n] * LOG2E : 0.f;
    h[n] = (act && n < p.N && p.nchunk > 1) ? p.S[o * p.N + n] : 0.f;
  }
  const float bias = (act && p.dbias) ? p.dbias[d] : 0.f;
  const float Dsk = (act && p.Dskip) ? p.Dskip[d] : 0.f;
  const int64_t rb = (int64_t)b * p.L;
  for (int ts = s; ts < e; ts += TILE) {
    const int nt = min(TILE, e - ts);
    __syncthreads();
    stage<T, NS>(sB, p.Bm, p.bcs, rb + ts, nt, p.N);
    stage<T, NS>(sC, p.Cm, p.bcs, rb + ts, nt, p.N);
    __syncthreads();
    if (!act) continue;
    for (int j0 = 0; j0 < nt; j0 += G8) {
      float uu[G8], dd[G8], zv[G8];
#pragma unroll
      for (int q = 0; q < G8; q++) {
        const bool ok = j0 + q < nt;
        const int64_t r = rb + ts + j0 + q;
        uu[q] = ok ? ldf(p.u, r * p.D + d) : 0.f;
        dd[q] = ok ? ldf(p.delta, r * p.D + d) : 0.f;
        zv[q] = (ok && p.z) ? ldf(p.z, r * p.zs + d) : 0.f;
      }
#pragma unroll 1
      for (int q = 0; q < G8; q++) {
        if (j0 + q < nt) {
          const int64_t r = rb + ts + j0 + q;
          const float dt = dt_of(dd[q] + bias, p.softplus);
          const float x = dt * uu[q];
          const float* bb = sB + (j0 + q) * NS;
          const float* cc = sC + (j0 + q) * NS;
          float acc0 = 0.f, acc1 = 0.f;  // two partial sums: shorter dependent chains
          float bg[4], cg[4];
#pragma unroll
          for (int n = 0; n < NS; n++) {
            if (n % 4 == 0) {
              lds_group<4>(bg, bb + n);
              lds_group<4>(cg, cc + n);
            }
            h[n] = fmaf(exp2f(dt * A2[n]), h[n], x * bg[n % 4]);
            if (n & 1)
              acc1 = fmaf(cg[n % 4], h[n], acc1);
            else
              acc0 = fmaf(cg[n % 4], h[n], acc0);
          }
          float out = fmaf(Dsk, uu[q], acc0 + acc1);
          if (p.z) out *= zv[q] * sigmoidf_(zv[q]);
          stf(y, r * p.D + d, out);
        }
      }
    }
  }
  if (last && act && p.nchunk == 1)
    for (int n = 0; n < p.N; n++) last[((int64_t)b * p.D + d) * p.N + n] = h[n];
}

// ---- forward in one pass, when the channels alone fill the GPU ---------------------------------------------
// B * D large (a prefill of 16 x 8192 at d_inner 1536, scoring 128 windows, a training batch of 8 x 2048): no chunks,
// so one exp per (t, d, n) instead of chunk_state's and scan_out's two. LANES threads share a channel (warp q of a
// block holds states q NS/LANES .. (q+1) NS/LANES - 1 of the block's 32 channels); softplus, the gate and the output
// are computed once per (t, d) by the whole block on a staged tile rather than by each of the LANES.
// Per tile of SP_TILE steps: the tile's inputs (loaded into registers while the last tile was scanned) go to shared
// memory as (dt, u) pairs and SiLU(z); each warp scans its states and leaves C.h partial sums; the block adds them
// to D u.
// LANES = 4 when B x ceil(D/32) blocks fill 4 per SM; with fewer channels, LANES = 8 (twice the warps per channel,
// half the states per thread) while they fill 2 per SM; below that, or with an odd D or a misaligned row (the tile
// moves channel pairs: channel_pairs_ok), the chunked passes serve.
constexpr int SP_CH = 32, SP_TILE = 32;
constexpr int SP_MIN_BLOCKS_PER_SM = 4;  // of the 4-lane kernel; the 8-lane one needs half as many channels

// Blocks per SM the register budget is set for. 4 lanes: 6 (80 registers, no spills; 32 KB of shared memory,
// 6 x 33 KB with the driver's share fit the 201 KB carveout): ncu at 5 blocks (94 registers, 36 KB) saw issue slots
// 56% busy, 1.05 eligible warps per scheduler, and 1.55 waves at B = 64, D = 512 (a prefill of 16 x d_inner 1536 is
// 1.16 waves at 5 blocks, 0.97 at 6). u rather than dt u is staged, and D u is added with the partial sums, to make
// the room. 8 lanes: 3 (its grids are under 4 blocks per SM, all resident at once; 48 KB each).
template <int LANES>
constexpr int sp_min_blocks() {
  return LANES == 4 ? 6 : 3;
}
template <class T, int NS, int LANES>
__global__ void __launch_bounds__(SP_CH* LANES, sp_min_blocks<LANES>())
    scan_fwd_single(ScanP<T> p, T* __restrict__ y, float* __restrict__ last) {
  constexpr int NTH = SP_CH * LANES;       // threads per block
  constexpr int NL = NS / LANES;           // states per thread
  constexpr int CP = SP_CH / 2;            // channel pairs of a block
  constexpr int PROWS = NTH / CP;          // tile rows the block covers at once in the staging and output phases
  constexpr int PER = SP_TILE / PROWS;     // (t, channel pair) elements of a tile per thread
  constexpr int BCE = SP_TILE * NS / NTH;  // B (and C) elements of a tile per thread
  static_assert(NS % LANES == 0 && (SP_TILE * NS) % NTH == 0 && SP_TILE % PROWS == 0, "tile shapes");
  // B and C of a (step, state) side by side, and a step's dt and u side by side: a step reads both with one
  // vector load instead of two
  __shared__ __align__(16) float sBC[SP_TILE][NS][2];
  __shared__ __align__(16) float2 sdu[SP_TILE][SP_CH];
  __shared__ __align__(16) float sg[SP_TILE][SP_CH];
  __shared__ __align__(16) float spart[LANES][SP_TILE][SP_CH];
  const int tid = threadIdx.x, c = tid % SP_CH, q = tid / SP_CH;
  // In the staging and output phases a thread takes channels 2 pc and 2 pc + 1 of rows pr + k PROWS: every global
  // access there moves a pair (D is even and the rows aligned: channel_pairs_ok), half the loads, stores and index
  // arithmetic of a channel per thread (ncu: those phases were about 45% of the 4-lane kernel's instructions)
  const int pc = tid % CP, pr = tid / CP;
  const int d0 = blockIdx.x * SP_CH, b = blockIdx.y;
  const int dc = min(d0 + c, p.D - 1);       // this thread's channel in the scan phase (clamped)
  const int dp = min(d0 + 2 * pc, p.D - 2);  // its pair's first channel in the others (clamped)
  const bool cvalid = d0 + c < p.D, pvalid = d0 + 2 * pc < p.D;
  const int64_t rb = (int64_t)b * p.L;
  float A2[NL], h[NL];
#pragma unroll
  for (int i = 0; i < NL; i++) {
    const int n = q * NL + i;
    A2[i] = n < p.N ? p.A[(int64_t)dc * p.N + n] * LOG2E : 0.f;
    h[i] = 0.f;
  }
  const float2 bias = p.dbias ? make_float2(p.dbias[dp], p.dbias[dp + 1]) : make_float2(0.f, 0.f);
  const float2 Dsk = p.Dskip ? make_float2(p.Dskip[dp], p.Dskip[dp + 1]) : make_float2(0.f, 0.f);
  constexpr int BC_ROWS = NTH / NS;  // B/C rows of a tile one load group of the block covers
  // the registers a tile's inputs travel in: element k of this thread is step pr + k PROWS of its channel pair;
  // B/C element k is (step tid / NS + k BC_ROWS, state tid % NS)
  using Raw = decltype(ld_raw(p.u, 0));
  using Raw2 = decltype(ld_raw2(p.u, 0));
  Raw2 rd[PER], ru[PER], rz[PER];
  Raw rB[BCE], rC[BCE];
  // Each thread's elements of a tile are one row offset plus multiples of a constant stride (the index arithmetic of
  // a 64-bit row product per load is gone); rows past L are not read (zeros: the last tile scans and stores only
  // its rows before L).
  const auto load = [&](int ts) {
    const int64_t r = rb + ts;
    const int bt = tid / NS, bn = tid % NS;
    const bool bvalid = bn < p.N;
    const int64_t od = (r + pr) * p.D + dp, oz = (r + pr) * p.zs + dp, ob = (r + bt) * p.bcs + (bvalid ? bn : 0);
    const int64_t sd = (int64_t)PROWS * p.D, sz = (int64_t)PROWS * p.zs, sb = (int64_t)BC_ROWS * p.bcs;
#pragma unroll
    for (int k = 0; k < PER; k++) {
      const bool in = ts + pr + k * PROWS < p.L;
      rd[k] = in ? ld_raw2(p.delta, od + k * sd) : Raw2{};
      ru[k] = in ? ld_raw2(p.u, od + k * sd) : Raw2{};
      rz[k] = in && p.z ? ld_raw2(p.z, oz + k * sz) : Raw2{};
    }
#pragma unroll
    for (int k = 0; k < BCE; k++) {
      const bool in = bvalid && ts + bt + k * BC_ROWS < p.L;
      rB[k] = in ? ld_raw(p.Bm, ob + k * sb) : Raw(0);
      rC[k] = in ? ld_raw(p.Cm, ob + k * sb) : Raw(0);
    }
  };
  load(0);
  for (int ts = 0; ts < p.L; ts += SP_TILE) {
    const int nt = min(SP_TILE, p.L - ts);
#pragma unroll
    for (int k = 0; k < PER; k++) {
      const int t = pr + k * PROWS;
      const float2 x = from_raw2(rd[k]), u = from_raw2(ru[k]), zk = from_raw2(rz[k]);
      *reinterpret_cast<float4*>(&sdu[t][2 * pc]) =
          make_float4(dt_of(x.x + bias.x, p.softplus), u.x, dt_of(x.y + bias.y, p.softplus), u.y);
      *reinterpret_cast<float2*>(&sg[t][2 * pc]) =
          p.z ? make_float2(zk.x * sigmoidf_(zk.x), zk.y * sigmoidf_(zk.y)) : make_float2(1.f, 1.f);
    }
#pragma unroll
    for (int k = 0; k < BCE; k++) {
      *reinterpret_cast<float2*>(sBC[tid / NS + k * BC_ROWS][tid % NS]) = make_float2(from_raw(rB[k]), from_raw(rC[k]));
    }
    __syncthreads();
    if (ts + SP_TILE < p.L) load(ts + SP_TILE);  // in flight while this tile is scanned
    const auto step = [&](int t) {
      const float2 du = sdu[t][c];
      const float dt = du.x, xu = dt * du.y;
      float acc = 0.f;
      constexpr int W = group_width<2 * NL>();  // floats per load of sBC: a (B, C) pair per state
      float bc[4];
#pragma unroll
      for (int i = 0; i < NL; i++) {
        const int j = 2 * i % W;
        if (j == 0) lds_group<W>(bc, sBC[t][q * NL + i]);
        h[i] = fmaf(exp2f(dt * A2[i]), h[i], xu * bc[j]);
        acc = fmaf(bc[j + 1], h[i], acc);
      }
      spart[q][t][c] = acc;
    };
    if (nt == SP_TILE) {  // a whole tile, unrolled: later steps' loads and exps are issued beside this one's
#pragma unroll 8
      for (int t = 0; t < SP_TILE; t++) step(t);
    } else {
      for (int t = 0; t < nt; t++) step(t);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < PER; k++) {
      const int t = pr + k * PROWS;
      if (t < nt && pvalid) {
        const float4 du = *reinterpret_cast<const float4*>(&sdu[t][2 * pc]);
        float a0 = Dsk.x * du.y, a1 = Dsk.y * du.w;
#pragma unroll
        for (int l = 0; l < LANES; l++) {
          const float2 part = *reinterpret_cast<const float2*>(&spart[l][t][2 * pc]);
          a0 += part.x;
          a1 += part.y;
        }
        const float2 g = *reinterpret_cast<const float2*>(&sg[t][2 * pc]);
        stf2(y, (rb + ts + t) * p.D + d0 + 2 * pc, a0 * g.x, a1 * g.y);
      }
    }
    __syncthreads();  // the next tile rewrites the shared arrays
  }
  if (last && cvalid) {
#pragma unroll
    for (int i = 0; i < NL; i++) {
      const int n = q * NL + i;
      if (n < p.N) last[((int64_t)b * p.D + d0 + c) * p.N + n] = h[i];
    }
  }
}

// ---- backward pass 1 on lanes -----------------------------------------------------------------------------
// chunk_state_adj with LANES = 4 threads per channel, as the one-pass forward lays out its block (32 channels, warp q
// holding states q NS/4 .. (q+1) NS/4 - 1; channel pairs in the staging phase, so D even and the rows paired): dt,
// dt u and gy are computed once per (t, d) on a staged tile of SP_TILE steps, whose inputs travel in registers while
// the last tile is scanned. Four times the threads of the thread-per-channel pass for the same exps, each with a
// quarter of the states. Its arithmetic is that pass's, in the same order: the same bits (du, ddelta and dz of the
// whole backward compared equal on 7 shapes; bench/results/stop36-h200/call3-log.txt).
constexpr int ADJ_LANES = 4;
// Blocks per SM the register budget is set for: 5 (93 registers, no spills; 16 KB of shared memory). At 6 (80) the f32
// N = 16 kernel spilled, and the bf16 130m step ran no faster (bench/README.md, stop 36).
constexpr int ADJ_MIN_BLOCKS = 5;
template <class T, int NS>
__global__ void __launch_bounds__(SP_CH* ADJ_LANES, ADJ_MIN_BLOCKS) chunk_state_adj_lanes(ScanP<T> p) {
  constexpr int LANES = ADJ_LANES, NTH = SP_CH * LANES, NL = NS / LANES;
  constexpr int CP = SP_CH / 2, PROWS = NTH / CP, PER = SP_TILE / PROWS, BCE = SP_TILE * NS / NTH;
  constexpr int BC_ROWS = NTH / NS;
  static_assert(NS % LANES == 0 && (SP_TILE * NS) % NTH == 0 && SP_TILE % PROWS == 0 && SP_TILE % SUB == 0,
                "tile shapes");
  __shared__ __align__(16) float sBC[SP_TILE][NS][2];
  __shared__ __align__(16) float2 sdx[SP_TILE][SP_CH];  // (dt, dt u) of a step and channel
  __shared__ __align__(16) float sgy[SP_TILE][SP_CH];   // gy = dy z sigmoid(z) (dy without a gate)
  const int tid = threadIdx.x, c = tid % SP_CH, q = tid / SP_CH, pc = tid % CP, pr = tid / CP;
  const int d0 = blockIdx.x * SP_CH, ck = blockIdx.y, b = blockIdx.z;
  const int dc = min(d0 + c, p.D - 1), dp = min(d0 + 2 * pc, p.D - 2);
  const bool cvalid = d0 + c < p.D;
  const int s = ck * p.Lc, e = min(p.L, s + p.Lc);
  const int64_t rb = (int64_t)b * p.L;
  float A2[NL], h[NL], pa[NL], qa[NL];
#pragma unroll
  for (int i = 0; i < NL; i++) {
    const int n = q * NL + i;
    A2[i] = n < p.N ? p.A[(int64_t)dc * p.N + n] * LOG2E : 0.f;
    h[i] = 0.f;
    pa[i] = 1.f;
    qa[i] = 0.f;
  }
  const float2 bias = p.dbias ? make_float2(p.dbias[dp], p.dbias[dp + 1]) : make_float2(0.f, 0.f);
  float sumdt = 0.f;
  using Raw = decltype(ld_raw(p.u, 0));
  using Raw2 = decltype(ld_raw2(p.u, 0));
  Raw2 rd[PER], ru[PER], rg[PER], rz[PER];
  Raw rB[BCE], rC[BCE];
  // the forward's tile loads plus dy, up to the chunk's end: one device function for both kernels measured slower here
  // (chunk_state_adj 0.278 against 0.261 ms at 8 x 2048 x 1536; bench/README.md, stop 36)
  const auto load = [&](int ts) {  // rows ts .. ts + SP_TILE - 1 before the chunk's end (zeros past it)
    const int64_t r = rb + ts;
    const int bt = tid / NS, bn = tid % NS;
    const bool bvalid = bn < p.N;
    const int64_t od = (r + pr) * p.D + dp, oz = (r + pr) * p.zs + dp, ob = (r + bt) * p.bcs + (bvalid ? bn : 0);
    const int64_t sd = (int64_t)PROWS * p.D, sz = (int64_t)PROWS * p.zs, sb = (int64_t)BC_ROWS * p.bcs;
#pragma unroll
    for (int k = 0; k < PER; k++) {
      const bool in = ts + pr + k * PROWS < e;
      rd[k] = in ? ld_raw2(p.delta, od + k * sd) : Raw2{};
      ru[k] = in ? ld_raw2(p.u, od + k * sd) : Raw2{};
      rg[k] = in ? ld_raw2(p.dy, od + k * sd) : Raw2{};
      rz[k] = in && p.z ? ld_raw2(p.z, oz + k * sz) : Raw2{};
    }
#pragma unroll
    for (int k = 0; k < BCE; k++) {
      const bool in = bvalid && ts + bt + k * BC_ROWS < e;
      rB[k] = in ? ld_raw(p.Bm, ob + k * sb) : Raw(0);
      rC[k] = in ? ld_raw(p.Cm, ob + k * sb) : Raw(0);
    }
  };
  load(s);
  for (int ts = s; ts < e; ts += SP_TILE) {
    const int nt = min(SP_TILE, e - ts);
#pragma unroll
    for (int k = 0; k < PER; k++) {
      const int t = pr + k * PROWS;
      const float2 x = from_raw2(rd[k]), u = from_raw2(ru[k]), g = from_raw2(rg[k]), zk = from_raw2(rz[k]);
      const float dt0 = dt_of(x.x + bias.x, p.softplus), dt1 = dt_of(x.y + bias.y, p.softplus);
      *reinterpret_cast<float4*>(&sdx[t][2 * pc]) = make_float4(dt0, dt0 * u.x, dt1, dt1 * u.y);
      *reinterpret_cast<float2*>(&sgy[t][2 * pc]) =
          p.z ? make_float2(g.x * zk.x * sigmoidf_(zk.x), g.y * zk.y * sigmoidf_(zk.y)) : g;
    }
#pragma unroll
    for (int k = 0; k < BCE; k++)
      *reinterpret_cast<float2*>(sBC[tid / NS + k * BC_ROWS][tid % NS]) = make_float2(from_raw(rB[k]), from_raw(rC[k]));
    __syncthreads();
    if (ts + SP_TILE < e) load(ts + SP_TILE);  // in flight while this tile is scanned
    // a piece starts at step t of the tile (t % SUB == 0; the chunk's first piece starts from zero): its
    // chunk-local starting state and the chunk's sum of dt before it
    const auto checkpoint = [&](int t) {
      if (!p.CK || ts + t == s || !cvalid) return;
      const int64_t slot = ((int64_t)b * p.nchunk + ck) * (p.ppc - 1) + (ts + t - s) / SUB - 1;
#pragma unroll
      for (int i = 0; i < NL; i++)
        if (q * NL + i < p.N) stf(p.CK, (slot * p.N + q * NL + i) * p.D + dc, h[i]);
      if (q == 0) p.CP[slot * p.D + dc] = sumdt;
    };
    const auto step = [&](int t) {
      const float2 dx = sdx[t][c];
      const float gy = sgy[t][c];
      constexpr int W = group_width<2 * NL>();
      float bc[4];
#pragma unroll
      for (int i = 0; i < NL; i++) {
        const int j = 2 * i % W;
        if (j == 0) lds_group<W>(bc, sBC[t][q * NL + i]);
        const float a = exp2f(dx.x * A2[i]);
        h[i] = fmaf(a, h[i], dx.y * bc[j]);
        pa[i] *= a;
        qa[i] = fmaf(pa[i], bc[j + 1] * gy, qa[i]);
      }
      sumdt += dx.x;
    };
    if (nt == SP_TILE) {
      for (int t0 = 0; t0 < SP_TILE; t0 += SUB) {
        checkpoint(t0);
#pragma unroll
        for (int k = 0; k < SUB; k++) step(t0 + k);
      }
    } else {
      for (int t = 0; t < nt; t++) {
        if (t % SUB == 0) checkpoint(t);
        step(t);
      }
    }
    __syncthreads();  // the next tile rewrites the shared arrays
  }
  if (!cvalid) return;
  const int64_t o = ((int64_t)b * p.nchunk + ck) * p.D + dc;
#pragma unroll
  for (int i = 0; i < NL; i++) {
    const int n = q * NL + i;
    if (n < p.N) {
      p.S[o * p.N + n] = h[i];
      p.Q[o * p.N + n] = qa[i];
    }
  }
  if (q == 0) p.P[o] = sumdt;
}

// ---- backward main pass ----------------------------------------------------------------------------
template <class T>
struct ScanG {
  T* du;
  T* ddelta;
  float* dA;
  float* dBC /* [T, 2N] f32, zeroed */;
  float* dDskip;
  float* dDeltaBias;
  T* dz;  // may be z itself
  T* y;   // optional: the forward's output rebuilt from the recomputed states (may be dy itself)
};

// Two threads per channel, each owning NS/2 of the states (lanes 0-15 of a warp: 16 channels, states
// 0..NS/2-1; lanes 16-31: the same channels, the other half): twice the warps per SM of a thread-per-channel
// layout for the same shared memory, which this latency-bound pass needs.

// dB and dC sums over the 16 channels of a half-warp, through shared memory: each lane stores its V values as a
// row of `rows` (this warp's [32][V + 4] floats, 16-byte aligned; store_row4 puts 4 of them at a column), then
// half_column_sum gives lane l of a half (l < V) that half's sum of column l. A shuffle reduce-scatter took 4
// instructions per value and level, 60 per step at V = 16; this takes V / 4 vector stores, 16 loads and 15 adds.
// The 4 floats of padding make both the row stores and the column loads bank-conflict free: the two halves read
// their rows in orders 20 (or 4) rows apart, 16 banks apart.
template <int V>
__device__ __forceinline__ void store_row4(float* rows, int lane, int col, float a, float b, float c, float d) {
  *reinterpret_cast<float4*>(rows + lane * (V + 4) + col) = make_float4(a, b, c, d);
}
template <int V>
__device__ __forceinline__ float half_column_sum(const float* rows, int lane) {
  constexpr int RS = V + 4;
  static_assert(V % 4 == 0 && V <= 16, "row shape");
  __syncwarp();  // the rows are written
  const int h = lane >> 4, col = min(lane & 15, V - 1);
  const float* early = rows + h * 20 * RS + col;  // row h 16 + ((k + 4 h) mod 16) = k + 20 h for k < 12
  const float* late = rows + h * 4 * RS + col;    // ... = k + 4 h for k >= 12
  float r[4];                                     // four partial sums: shorter dependent chains
#pragma unroll
  for (int k = 0; k < 4; k++) r[k] = early[k * RS];
#pragma unroll
  for (int k = 4; k < 16; k++) r[k & 3] += k < 12 ? early[k * RS] : late[k * RS];
  __syncwarp();  // the rows are rewritten by the next step
  return (r[0] + r[1]) + (r[2] + r[3]);
}

// 4-byte asynchronous copies global -> shared (cp.async, sm_80+): the next piece's inputs travel while the
// current one is computed, without holding registers. ok = false zero-fills the destination (no read).
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool ok) {
  const unsigned sa = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(sa), "l"(src), "r"(ok ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all_but_newest() { asm volatile("cp.async.wait_group 1;\n" ::); }

// A piece's per-step inputs for the block's BC channels, [IN_ARRAYS][SUB][BC] of T in shared memory: delta, u,
// dy, z (rows past nt and channels past D are zeros). `arrays` = 2 copies delta and u only (the forward sweep).
// Each thread copies the same channels (4 bytes: PER of them) of rows jr, jr + RSTEP, ... of every array, so its
// source addresses are one 64-bit row offset per piece plus constants (the generic index arithmetic of a flat loop
// over copies took about 75 instructions per copy).
constexpr int IN_ARRAYS = 4;
template <class T>
struct PieceLayout {
  static constexpr int PER = 4 / sizeof(T);  // channels per 4-byte copy
  static constexpr int ROWW = BC / PER;      // copies per row
  static constexpr int RSTEP = NT / ROWW;    // rows the block covers at once
  static_assert(NT % ROWW == 0 && SUB % RSTEP == 0, "piece tile shape");
  int jr, cl;  // this thread's first row and first channel
  __device__ __forceinline__ PieceLayout() : jr(threadIdx.x / ROWW), cl((threadIdx.x % ROWW) * PER) {}
};
template <class T>
__device__ __forceinline__ void copy_piece(T* tile, const ScanP<T>& p, int64_t row0, int nt, int d0, int arrays,
                                           bool async) {
  using Lay = PieceLayout<T>;
  const Lay l;
  const bool chan_ok = d0 + l.cl < p.D;
  const int64_t offD = (row0 + l.jr) * p.D + d0 + l.cl, offZ = (row0 + l.jr) * p.zs + d0 + l.cl;
#pragma unroll
  for (int a = 0; a < IN_ARRAYS; a++) {
    if (a >= arrays) break;
    const T* base = a == 0 ? p.delta : a == 1 ? p.u : a == 2 ? p.dy : p.z;
    const int64_t stride = a == 3 ? p.zs : p.D, off = a == 3 ? offZ : offD;
#pragma unroll
    for (int q = 0; q < SUB / Lay::RSTEP; q++) {
      const int j = l.jr + q * Lay::RSTEP;
      const bool ok = j < nt && chan_ok && base != nullptr;
      const T* src = ok ? base + off + q * Lay::RSTEP * stride : p.u;
      T* dst = tile + (a * SUB + j) * BC + l.cl;
      if (async) {
        cp_async4(dst, src, ok);
      } else {
#pragma unroll
        for (int c = 0; c < Lay::PER; c++) dst[c] = (ok && d0 + l.cl + c < p.D) ? src[c] : T(0.f);
      }
    }
  }
}
template <class T>
__device__ __forceinline__ float tile_at(const T* tile, int a, int j, int cl) {
  return ldf(tile, (a * SUB + j) * BC + cl);
}
template <class T>
__device__ __forceinline__ void tile_put(T* tile, int a, int j, int cl, float v) {
  stf(tile, (a * SUB + j) * BC + cl, v);
}

// The reverse of copy_piece: a walked piece's per-step outputs, which the walk left in its input tile over inputs it
// had read (ddelta over delta, du over u, y over dy, dz over z), to global memory, coalesced. y and dz when wanted.
// vec: every output row start is 4-byte aligned (else one channel per store).
template <class T>
__device__ __forceinline__ void store_piece(const T* tile, const ScanP<T>& p, const ScanG<T>& g, int64_t row0, int nt,
                                            int d0, bool vec) {
  using Lay = PieceLayout<T>;
  const Lay l;
  const int64_t offD = (row0 + l.jr) * p.D + d0 + l.cl, offZ = (row0 + l.jr) * p.zs + d0 + l.cl;
#pragma unroll
  for (int a = 0; a < IN_ARRAYS; a++) {
    T* base = a == 0 ? g.ddelta : a == 1 ? g.du : a == 2 ? g.y : (p.z ? g.dz : nullptr);
    if (base == nullptr) continue;
    const int64_t stride = a == 3 ? p.zs : p.D, off = a == 3 ? offZ : offD;
#pragma unroll
    for (int q = 0; q < SUB / Lay::RSTEP; q++) {
      const int j = l.jr + q * Lay::RSTEP;
      if (j >= nt) continue;
      T* dst = base + off + q * Lay::RSTEP * stride;
      const T* src = tile + (a * SUB + j) * BC + l.cl;
      if (vec && d0 + l.cl + Lay::PER <= p.D) {
        *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(src);
      } else {
#pragma unroll
        for (int c = 0; c < Lay::PER; c++)
          if (d0 + l.cl + c < p.D) dst[c] = src[c];
      }
    }
  }
}

// This thread's element of a piece's [SUB][NS] tile of B or C (SUB * NS <= NT: at most one per thread),
// loaded into a register one piece ahead as its raw bits (from_raw when it is stored to the tile).
template <class T, int NS>
__device__ __forceinline__ auto tile_elem(const T* m, int64_t stride, int64_t row0, int nt, int N) {
  static_assert(SUB * NS <= NT, "one tile element per thread");
  using Raw = decltype(ld_raw(m, 0));
  const int tt = threadIdx.x / NS, n = threadIdx.x % NS;
  return (tt < nt && n < N) ? ld_raw(m, (row0 + tt) * stride + n) : Raw(0);
}

// f(input a of step j) for a piece's SUB steps, evaluated once per channel rather than by both of its threads:
// each (lanes l and l ^ 16) evaluates half of the steps and the pair swaps results. Every lane must call it.
template <class T, class F>
__device__ __forceinline__ void pair_steps(float (&out)[SUB], const T* tk, int a, int cl, int half, F f) {
  constexpr int H = SUB / 2;
  float mine[H];
#pragma unroll
  for (int q = 0; q < H; q++) mine[q] = f(tile_at(tk, a, half * H + q, cl));
#pragma unroll
  for (int q = 0; q < H; q++) {
    const float other = __shfl_xor_sync(0xffffffffu, mine[q], 16);
    out[q] = half ? other : mine[q];
    out[q + H] = half ? mine[q] : other;
  }
}

// A thread's NH piece states in shared memory: slot j is [NT][NH] floats, each thread's NH contiguous, so a step's
// states go in NH / 4 vector stores and come back in as many loads (the [NH][NT] layout took one per state). At
// NH = 8 the two float4 groups are swapped in every other quad of threads: a quarter-warp's 128-bit accesses then
// hit 32 distinct banks.
template <int NH>
struct StateSlots {
  static_assert(NH == 2 || NH == 4 || NH == 8, "states per thread");
  float* g0;  // this thread's first group in slot 0
  float* g1;  // its second (NH = 8)
  __device__ __forceinline__ StateSlots(float* hh, int tid) {
    const int sw = NH == 8 ? ((tid >> 2) & 1) * 4 : 0;
    g0 = hh + tid * NH + sw;
    g1 = hh + tid * NH + (4 - sw);
  }
  __device__ __forceinline__ void put(int j, const float (&h)[NH]) const {
    float* o = g0 + j * NT * NH;
    if constexpr (NH == 2) {
      *reinterpret_cast<float2*>(o) = make_float2(h[0], h[1]);
    } else {
      *reinterpret_cast<float4*>(o) = make_float4(h[0], h[1], h[2], h[3]);
      if constexpr (NH == 8) *reinterpret_cast<float4*>(g1 + j * NT * NH) = make_float4(h[4], h[5], h[6], h[7]);
    }
  }
  // the group of 4 states of slot j that state i is in (at NH = 2: its 2 states, then zeros), in one vector load
  __device__ __forceinline__ float4 group(int j, int i) const {
    const float* o = (i < 4 ? g0 : g1) + j * NT * NH;
    if constexpr (NH == 2) {
      const float2 v = *reinterpret_cast<const float2*>(o);
      return make_float4(v.x, v.y, 0.f, 0.f);
    } else {
      return *reinterpret_cast<const float4*>(o);
    }
  }
};

// Shared memory of scan_bwd: piece states, B/C tiles, dB/dC partials, the rows of half_column_sum, two input
// tiles. With stored checkpoints the piece's starting state has a slot of its own (SUB slots, not SUB - 1).
template <int NS>
constexpr int transpose_rows_floats() {
  return (NT / 32) * 32 * (NS + 4);
}
template <class T, int NS, bool STORED>
constexpr size_t scan_bwd_smem() {
  return sizeof(float) * ((SUB - 1 + STORED) * (NS / 2) * NT + 2 * SUB * NS + (NT / 32) * SUB * 2 * NS +
                          transpose_rows_floats<NS>()) +
         sizeof(T) * 2 * IN_ARRAYS * SUB * BC;
}

// Register budget: 4 blocks per SM (128 registers, no spills); 5 blocks (96 registers) spilled and measured
// slower (bench/README.md, stop 10). The loops over a piece's SUB steps are unrolled (measured faster than not),
// written `#pragma unroll SUB`: a bare `#pragma unroll` compiles to other code, which spills in the f32 N = 16 kernel.
constexpr int BWD_MIN_BLOCKS = 4;
// async: the inputs are 4-byte aligned (see can_copy_async), else they are copied synchronously; vec_out: so are the
// outputs (can_store_vec).
// STORED: each piece's starting state comes from chunk_state_adj's checkpoints (p.CK, p.CP) and the state entering
// the chunk, instead of from a forward sweep over the chunk here (one exp per (t, d, n) fewer).
template <class T, int NS, bool STORED>
__global__ void __launch_bounds__(NT, BWD_MIN_BLOCKS) scan_bwd(ScanP<T> p, ScanG<T> g, bool async, bool vec_out) {
  constexpr int NH = NS / 2;  // states per thread
  // slot SLOT0 + j holds the states after step j of the piece; with STORED, slot 0 the states before it
  constexpr int SLOT0 = STORED ? 1 : 0;
  extern __shared__ float sm[];
  float* hh = sm;                                 // [SUB-1+SLOT0][NT][NH]
  float* sB = hh + (SUB - 1 + SLOT0) * NH * NT;   // [SUB][NS]
  float* sC = sB + SUB * NS;                      // [SUB][NS]
  float* red = sC + SUB * NS;                     // [NT/32][SUB][2NS]
  float* xrows = red + (NT / 32) * SUB * 2 * NS;  // [NT/32][32][NS + 4]: the dB/dC rows of half_column_sum, by warp
  T* tiles = (T*)(xrows + transpose_rows_floats<NS>());  // [2][IN_ARRAYS][SUB][BC]: input tiles, by piece parity
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, half = lane >> 4;
  const int cl = warp * 16 + (lane & 15);  // this thread's channel within the block
  const int c = blockIdx.y, d0 = blockIdx.x * BC, d = d0 + cl, b = blockIdx.z;
  const int n0 = half * NH;  // this thread's first state
  const bool act = d < p.D;
  const int s = c * p.Lc, e = min(p.L, s + p.Lc);
  const int npieces = (e - s + SUB - 1) / SUB;
  const int64_t o = ((int64_t)b * p.nchunk + c) * p.D + d;
  const int64_t rb = (int64_t)b * p.L;
  auto tile = [&](int k) { return tiles + (k & 1) * IN_ARRAYS * SUB * BC; };
  auto piece_len = [&](int k) { return min(SUB, e - s - k * SUB); };
  const StateSlots<NH> slots(hh, tid);
  float An[NH], h[NH];
#pragma unroll
  for (int i = 0; i < NH; i++) {
    const int n = n0 + i;
    An[i] = (act && n < p.N) ? p.A[(int64_t)d * p.N + n] : 0.f;
    h[i] = (act && n < p.N && p.nchunk > 1) ? p.S[o * p.N + n] : 0.f;
  }
  const float bias = (act && p.dbias) ? p.dbias[d] : 0.f;
  const float Dsk = (act && p.Dskip) ? p.Dskip[d] : 0.f;
  const auto softplus_dt = [&](float v) { return dt_of(v + bias, p.softplus); };  // of a raw delta

  // without STORED: forward over the chunk, keeping the state at the start of every piece; piece k+1's delta, u
  // and B are on their way while piece k is computed
  float ck[STORED ? 1 : MAXCK][NH];
  decltype(ld_raw(p.Bm, 0)) bnext = 0;
  if constexpr (!STORED) {
    copy_piece<T>(tile(0), p, rb + s, piece_len(0), d0, 2, async);
    cp_async_commit();
    bnext = tile_elem<T, NS>(p.Bm, p.bcs, rb + s, piece_len(0), p.N);
    for (int k = 0; k < npieces; k++) {
      const int nt = piece_len(k);
      __syncthreads();  // piece k-1 is done with sB and with tile(k+1)
      if (tid < SUB * NS) sB[tid] = from_raw(bnext);
      if (k + 1 < npieces) {
        copy_piece<T>(tile(k + 1), p, rb + s + (k + 1) * SUB, piece_len(k + 1), d0, 2, async);
        bnext = tile_elem<T, NS>(p.Bm, p.bcs, rb + s + (k + 1) * SUB, piece_len(k + 1), p.N);
      }
      cp_async_commit();
      cp_async_wait_all_but_newest();
      __syncthreads();  // sB and tile(k) are complete
      const T* tk = tile(k);
#pragma unroll
      for (int i = 0; i < NH; i++) ck[k][i] = h[i];
      float dts[SUB];
      pair_steps(dts, tk, 0, cl, half, softplus_dt);
#pragma unroll SUB
      for (int j = 0; j < SUB; j++) {
        if (j < nt) {
          const float dt = dts[j];
          const float dtl = dt * LOG2E, x = dt * tile_at(tk, 1, j, cl);
#pragma unroll
          for (int i = 0; i < NH; i++) h[i] = fmaf(exp2f(dtl * An[i]), h[i], x * sB[j * NS + n0 + i]);
        }
      }
    }
  }
  // with STORED, this chunk's first checkpoint slot (its piece 1's)
  const int64_t slot0 = ((int64_t)b * p.nchunk + c) * (p.ppc - 1);

  // backward over the pieces, last first; piece k-1's inputs and B/C are on their way while piece k is walked
  float gacc[NH], dAacc[NH];
#pragma unroll
  for (int i = 0; i < NH; i++) {
    const int n = n0 + i;
    gacc[i] = (act && n < p.N && p.nchunk > 1) ? p.Q[o * p.N + n] : 0.f;
    dAacc[i] = 0.f;
  }
  float dDacc = 0.f, dbacc = 0.f;
  __syncthreads();  // the forward sweep is done with both tiles
  copy_piece<T>(tile(npieces - 1), p, rb + s + (npieces - 1) * SUB, piece_len(npieces - 1), d0, IN_ARRAYS, async);
  cp_async_commit();
  bnext = tile_elem<T, NS>(p.Bm, p.bcs, rb + s + (npieces - 1) * SUB, piece_len(npieces - 1), p.N);
  auto cnext = tile_elem<T, NS>(p.Cm, p.bcs, rb + s + (npieces - 1) * SUB, piece_len(npieces - 1), p.N);
  for (int k = npieces - 1; k >= 0; k--) {
    const int ts = s + k * SUB, nt = piece_len(k);
    // the state before the piece: its checkpoint; with STORED, h = local + exp(A sum dt) * entering, whose loads
    // are issued here to arrive while the tiles are completed (as raw bits, converted where they are used, past the
    // barrier)
    decltype(ld_raw(p.CK, 0)) hl[NH];
    float cum = 0.f;
    if constexpr (STORED) {
#pragma unroll
      for (int i = 0; i < NH; i++) {
        const bool ok = act && n0 + i < p.N;
        hl[i] = ok && k > 0 ? ld_raw(p.CK, ((slot0 + k - 1) * p.N + n0 + i) * p.D + d) : 0;
        h[i] = ok && p.nchunk > 1 ? p.S[o * p.N + n0 + i] : 0.f;
      }
      if (act && k > 0) cum = p.CP[(slot0 + k - 1) * p.D + d];
    } else {
#pragma unroll
      for (int i = 0; i < NH; i++) h[i] = ck[k][i];
    }
    __syncthreads();  // piece k+1 is done with sB, sC, red and tile(k-1)
    if (tid < SUB * NS) {
      sB[tid] = from_raw(bnext);
      sC[tid] = from_raw(cnext);
    }
    if (k > 0) {  // pieces before the last are whole
      copy_piece<T>(tile(k - 1), p, rb + ts - SUB, SUB, d0, IN_ARRAYS, async);
      bnext = tile_elem<T, NS>(p.Bm, p.bcs, rb + ts - SUB, SUB, p.N);
      cnext = tile_elem<T, NS>(p.Cm, p.bcs, rb + ts - SUB, SUB, p.N);
    }
    cp_async_commit();
    cp_async_wait_all_but_newest();
    __syncthreads();  // sB, sC and tile(k) are complete
    const T* tk = tile(k);
    // per-step scalars of the piece: dt, sigmoid(z) and softplus'(delta + bias) = sigmoid(delta + bias)
    float dtv[SUB], sgv[SUB], spv[SUB];
    pair_steps(dtv, tk, 0, cl, half, softplus_dt);
    pair_steps(sgv, tk, 3, cl, half, [](float v) { return sigmoidf_(v); });
    pair_steps(spv, tk, 0, cl, half, [&](float v) { return p.softplus ? sigmoidf_(v + bias) : 1.f; });
    if constexpr (STORED) {
#pragma unroll
      for (int i = 0; i < NH; i++) h[i] = fmaf(exp2f(cum * LOG2E * An[i]), h[i], from_raw(hl[i]));
      slots.put(0, h);
    }
    // recompute the piece's states (inactive channels run on zeros, so their states stay defined)
#pragma unroll SUB
    for (int j = 0; j < SUB; j++) {
      if (j < nt) {
        const float dtl = dtv[j] * LOG2E, x = dtv[j] * tile_at(tk, 1, j, cl);
#pragma unroll
        for (int i = 0; i < NH; i++) h[i] = fmaf(exp2f(dtl * An[i]), h[i], x * sB[j * NS + n0 + i]);
        if (j + 1 < SUB) slots.put(SLOT0 + j, h);
      } else {
        dtv[j] = 0.f;
      }
    }
    // walk the piece backwards; hn carries the state after step j (read once: step j's h_{t-1} is step
    // j-1's h_t)
    float hn[NH];
#pragma unroll
    for (int i = 0; i < NH; i++) hn[i] = h[i];
#pragma unroll SUB
    for (int j = SUB - 1; j >= 0; j--) {
      if (j < nt) {  // uniform across the block
        const float zz = tile_at(tk, 3, j, cl), dyj = tile_at(tk, 2, j, cl);
        float sg = 1.f, gate = 1.f;
        if (p.z) {
          sg = sgv[j];
          gate = zz * sg;
        }
        const float gy = dyj * gate;
        const float dt = dtv[j], u = tile_at(tk, 1, j, cl), dtl = dt * LOG2E, dtu = dt * u;
        float* rows = xrows + warp * 32 * (NS + 4);
        float vals[2 * NH];  // this step's dB and dC terms, stored 4 at a time as soon as they are complete
        // ddt = sum_n G (A a h_{t-1} + u B) is accumulated as sum_n (G a h_{t-1}) A, plus u * dus below
        float ysum = 0.f, ddt = 0.f, dus = 0.f;
        float4 hg;  // the group of 4 states before step j that state i is in
#pragma unroll
        for (int i = 0; i < NH; i++) {
          // without STORED, the state before step 0 is the piece's checkpoint (read again from local memory rather
          // than kept in a shared-memory slot of its own)
          const bool slotted = STORED || j > 0;
          if (slotted && i % 4 == 0) hg = slots.group(SLOT0 + j - 1, i);
          const float hc = hn[i];
          const float hp = slotted ? (i % 4 == 0 ? hg.x : i % 4 == 1 ? hg.y : i % 4 == 2 ? hg.z : hg.w) : ck[k][i];
          hn[i] = hp;
          const float Bn = sB[j * NS + n0 + i], Cn = sC[j * NS + n0 + i];
          const float G = fmaf(Cn, gy, gacc[i]);
          const float a = exp2f(dtl * An[i]);
          const float Gah = G * a * hp;
          ysum = fmaf(Cn, hc, ysum);
          ddt = fmaf(Gah, An[i], ddt);
          dus = fmaf(G, Bn, dus);
          dAacc[i] = fmaf(Gah, dt, dAacc[i]);
          vals[i] = G * dtu;
          vals[NH + i] = gy * hc;
          gacc[i] = a * G;
          if constexpr (NH >= 4) {
            if (i % 4 == 3) {
              store_row4<2 * NH>(rows, lane, i - 3, vals[i - 3], vals[i - 2], vals[i - 1], vals[i]);
              store_row4<2 * NH>(rows, lane, NH + i - 3, vals[NH + i - 3], vals[NH + i - 2], vals[NH + i - 1],
                                 vals[NH + i]);
            }
          }
        }
        if constexpr (NH == 2) store_row4<4>(rows, lane, 0, vals[0], vals[1], vals[2], vals[3]);
        // the two halves of a channel hold partial sums over their states
        ysum += __shfl_xor_sync(0xffffffffu, ysum, 16);
        ddt += __shfl_xor_sync(0xffffffffu, ddt, 16);
        dus += __shfl_xor_sync(0xffffffffu, dus, 16);
        ddt = fmaf(u, dus, ddt);
        // the step's outputs go into its row of the tile, over inputs both halves have read (store_piece writes
        // them out after the walk)
        __syncwarp();
        if (half == 0) {
          T* tw = tile(k);
          const float ypre = fmaf(Dsk, u, ysum);
          if (p.z) tile_put(tw, 3, j, cl, dyj * ypre * sg * (1.f + zz * (1.f - sg)));
          if (g.y) tile_put(tw, 2, j, cl, ypre * gate);
          tile_put(tw, 1, j, cl, fmaf(gy, Dsk, dt * dus));
          const float dd = ddt * spv[j];
          tile_put(tw, 0, j, cl, dd);
          dbacc += dd;
          dDacc = fmaf(gy, u, dDacc);
        }
        // dB, dC: sums over the 16 channels of each half-warp
        const float rsum = half_column_sum<2 * NH>(rows, lane);
        const int l = lane & 15;
        if (l < 2 * NH) red[(warp * SUB + j) * 2 * NS + (l < NH ? n0 + l : NS + n0 + l - NH)] = rsum;
      }
    }
    __syncthreads();
    // dz, y and ddelta may overwrite z, dy and delta: this piece's rows of them were read into tile(k) already, and
    // the pieces in flight are others
    store_piece<T>(tile(k), p, g, rb + ts, nt, d0, vec_out);
    for (int i = tid; i < nt * 2 * NS; i += NT) {
      const int j = i / (2 * NS), q = i - j * 2 * NS;
      const int n = q < NS ? q : q - NS;
      if (n >= p.N) continue;
      float v = 0.f;
#pragma unroll
      for (int w = 0; w < NT / 32; w++) v += red[(w * SUB + j) * 2 * NS + q];
      atomicAdd(&g.dBC[(rb + ts + j) * 2 * p.N + (q < NS ? n : p.N + n)], v);
    }
  }
  if (!act) return;
#pragma unroll
  for (int i = 0; i < NH; i++)
    if (n0 + i < p.N) atomicAdd(&g.dA[(int64_t)d * p.N + n0 + i], dAacc[i]);
  if (half == 0) {
    if (g.dDskip) atomicAdd(&g.dDskip[d], dDacc);
    if (g.dDeltaBias) atomicAdd(&g.dDeltaBias[d], dbacc);
  }
}

// The piece copies and stores move 4 bytes (2 bf16 channels) at a time: every row start must be 4-byte aligned.
inline bool aligned4(const void* q) { return aligned_to(q, 4); }
template <class T>
bool rows_aligned4(const ScanP<T>& p) {
  const int per = 4 / sizeof(T);
  return p.D % per == 0 && (!p.z || p.zs % per == 0);
}
template <class T>
bool can_copy_async(const ScanP<T>& p) {
  return rows_aligned4(p) && aligned4(p.u) && aligned4(p.delta) && aligned4(p.dy) && (!p.z || aligned4(p.z));
}
template <class T>
bool can_store_vec(const ScanP<T>& p, const ScanG<T>& g) {
  return rows_aligned4(p) && aligned4(g.du) && aligned4(g.ddelta) && (!g.y || aligned4(g.y)) &&
         (!p.z || aligned4(g.dz));
}
// The one-pass forward moves channel pairs (two elements per global access, of either dtype): even widths and z
// stride, and every row it reads or writes aligned to a pair. Elsewhere the chunked passes serve.
template <class T>
bool channel_pairs_ok(const ScanP<T>& p, const T* y) {
  const auto paired = [](const void* q) { return aligned_to(q, 2 * sizeof(T)); };
  return p.D % 2 == 0 && paired(p.u) && paired(p.delta) && paired(y) && (!p.z || (p.zs % 2 == 0 && paired(p.z)));
}

// chunk_state_adj on lanes moves channel pairs of u, delta, dy and z: even widths and z stride, rows paired.
template <class T>
bool adj_lanes_ok(const ScanP<T>& p) {
  const auto paired = [](const void* q) { return aligned_to(q, 2 * sizeof(T)); };
  return p.D % 2 == 0 && paired(p.u) && paired(p.delta) && paired(p.dy) && (!p.z || (p.zs % 2 == 0 && paired(p.z)));
}

// dB, dC (strided outputs) from the f32 [T, 2N] accumulator
template <class T>
__global__ void write_dbc(const float* dBC, T* dB, T* dC, int64_t bcs, int64_t Tn, int N) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < Tn * 2 * N;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / (2 * N);
    const int q = (int)(i - r * 2 * N);
    if (q < N)
      stf(dB, r * bcs + q, dBC[i]);
    else
      stf(dC, r * bcs + q - N, dBC[i]);
  }
}

// ---- host side -----------------------------------------------------------------------------------------

struct Shape {
  int B, L, D, N;
};

// MAMBA_SCAN_PROFILE=1 prints each pass's time (CUDA events, synchronising) to stderr: for the benchmark.
struct Prof {
  bool on = false;
  cudaEvent_t ev[8];
  const char* name[8];
  int n = 0;
  Prof() {
    const char* e = getenv("MAMBA_SCAN_PROFILE");
    on = e && e[0] == '1';
  }
  void mark(const char* what) {
    if (!on || n >= 8) return;
    cudaEventCreate(&ev[n]);
    cudaEventRecord(ev[n], cuda_stream());
    name[n++] = what;
  }
  ~Prof() {
    if (!on || n < 2) return;
    cudaEventSynchronize(ev[n - 1]);
    fprintf(stderr, "scan profile:");
    last_profile().clear();
    for (int i = 1; i < n; i++) {
      float ms = 0.f;
      cudaEventElapsedTime(&ms, ev[i - 1], ev[i]);
      fprintf(stderr, " %s %.3f ms", name[i], ms);
      last_profile().push_back({name[i], ms});
    }
    fprintf(stderr, "\n");
    for (int i = 0; i < n; i++) cudaEventDestroy(ev[i]);
  }
  static std::vector<std::pair<std::string, float>>& last_profile() {
    static std::vector<std::pair<std::string, float>> v;
    return v;
  }
};

// Chunk length: enough chunks that B * chunks * ceil(D/128) blocks fill the GPU several times over.
int chunk_len(const Shape& s, int cap) {
  const int dblocks = (s.D + NT - 1) / NT;
  const int64_t want_blocks = (int64_t)sm_count() * 16;
  int64_t nch = (want_blocks + (int64_t)s.B * dblocks - 1) / ((int64_t)s.B * dblocks);
  nch = std::max<int64_t>(1, std::min<int64_t>(nch, (s.L + 15) / 16));
  int64_t lc = (s.L + nch - 1) / nch;
  if (cap > 0 && lc > cap) lc = cap;
  if (cap > 0) lc = (lc + SUB - 1) / SUB * SUB;
  return (int)std::max<int64_t>(1, lc);
}

// Forward chunk count. The passes' grids are (D/128) x chunks x B blocks. For long sequences more, shorter chunks
// run faster, best with the block count a whole number of FWD_WAVES "waves" (blocks resident on all SMs at once,
// from the output pass's occupancy; the sweep over wave counts is in bench/README.md, stop 9). Short sequences
// keep chunk_len's rule: chunks under 1024 steps would make the sequential combine over chunks the longer part.
// Threads per channel of the one-pass forward at this shape: 4 when its blocks of 32 channels fill
// SP_MIN_BLOCKS_PER_SM per SM, 8 when they fill half as many (state widths of 8 and 16), else 0: the chunked passes.
int one_pass_lanes(const Shape& s) {
  if (s.B > 65535) return 0;
  const int64_t blocks = (int64_t)s.B * ((s.D + SP_CH - 1) / SP_CH), need = (int64_t)SP_MIN_BLOCKS_PER_SM * sm_count();
  if (blocks >= need) return 4;
  if (s.N > 4 && 2 * blocks >= need) return 8;
  return 0;
}

constexpr int64_t FWD_WAVES = 8;
template <class T, int NS>
int forward_chunks(const Shape& s) {
  static int occ = 0;
  if (occ == 0) {
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, scan_out<T, NS>, NT, 0) != cudaSuccess || occ < 1) {
      cudaGetLastError();
      occ = 4;
    }
  }
  const int64_t slots = (int64_t)sm_count() * occ, base = (int64_t)s.B * ((s.D + NT - 1) / NT);
  const int64_t nch = std::max<int64_t>(1, (FWD_WAVES * slots) / base);
  if ((s.L + nch - 1) / nch >= 1024) return (int)nch;
  const int lc = chunk_len(s, 0);
  return (s.L + lc - 1) / lc;
}

template <class T, int NS>
void launch_fwd(Napi::Env env, ScanP<T>& p, T* y, float* last) {
  cudaStream_t st = cuda_stream();
  Prof prof;
  prof.mark("start");
  if (p.lanes > 0) {  // the one-pass forward (run_forward chose it)
    const dim3 grid((p.D + SP_CH - 1) / SP_CH, p.B);
    constexpr int WIDE = NS % 8 == 0 ? 8 : 4;  // one_pass_lanes gives 8 only for state widths of 8 and 16
    if (p.lanes == 8)
      scan_fwd_single<T, NS, WIDE><<<grid, SP_CH * WIDE, 0, st>>>(p, y, last);
    else
      scan_fwd_single<T, NS, 4><<<grid, SP_CH * 4, 0, st>>>(p, y, last);
    check_launch(env, "scan one-pass forward");
    prof.mark("one_pass");
    return;
  }
  // channel blocks vary fastest: blocks that run together read neighbouring columns of the same rows
  const dim3 grid((p.D + NT - 1) / NT, p.nchunk, p.B);
  if (p.nchunk > 1) {
    chunk_state<T, NS><<<grid, NT, 0, st>>>(p);
    check_launch(env, "scan chunk_state");
    prof.mark("chunk_state");
    const int64_t n = (int64_t)p.B * p.D * p.N;
    combine_fwd<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(p.S, p.P, p.A, last, p.B, p.nchunk, p.D, p.N);
    check_launch(env, "scan combine");
    prof.mark("combine");
  }
  scan_out<T, NS><<<grid, NT, 0, st>>>(p, y, last);
  check_launch(env, "scan output");
  prof.mark("output");
}

template <class T, int NS>
void launch_bwd(Napi::Env env, ScanP<T>& p, ScanG<T>& g) {
  // channel blocks vary fastest: blocks that run together read neighbouring columns of the same rows
  const dim3 grid((p.D + NT - 1) / NT, p.nchunk, p.B);
  cudaStream_t st = cuda_stream();
  const int64_t n = (int64_t)p.B * p.D * p.N;
  Prof prof;
  prof.mark("start");
  if (p.nchunk > 1) {
    if (adj_lanes_ok(p)) {
      const dim3 lgrid((p.D + SP_CH - 1) / SP_CH, p.nchunk, p.B);
      chunk_state_adj_lanes<T, NS><<<lgrid, SP_CH * ADJ_LANES, 0, st>>>(p);
    } else {
      chunk_state_adj<T, NS><<<grid, NT, 0, st>>>(p);
    }
    check_launch(env, "scan chunk_state_adj");
    prof.mark("chunk_state_adj");
    combine_fwd_bwd<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(p.S, p.Q, p.P, p.A, p.B, p.nchunk, p.D, p.N);
    check_launch(env, "scan combine");
    prof.mark("combine_fwd_bwd");
  }
  const dim3 bgrid((p.D + BC - 1) / BC, p.nchunk, p.B);
  const auto launch = [&](auto kernel, size_t smem, bool& attr_set) {
    if (!attr_set) {
      cuda_check(env, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                 "scan_bwd smem");
      attr_set = true;
    }
    kernel<<<bgrid, NT, smem, st>>>(p, g, can_copy_async(p), can_store_vec(p, g));
  };
  static bool attr_stored = false, attr_sweep = false;
  if (p.CK)
    launch(scan_bwd<T, NS, true>, scan_bwd_smem<T, NS, true>(), attr_stored);
  else
    launch(scan_bwd<T, NS, false>, scan_bwd_smem<T, NS, false>(), attr_sweep);
  check_launch(env, "scan backward");
  prof.mark("backward_main");
}

template <class T>
void dispatch_fwd(Napi::Env env, ScanP<T>& p, T* y, float* last) {
  if (p.N <= 4)
    launch_fwd<T, 4>(env, p, y, last);
  else if (p.N <= 8)
    launch_fwd<T, 8>(env, p, y, last);
  else
    launch_fwd<T, 16>(env, p, y, last);
}
template <class T>
void dispatch_bwd(Napi::Env env, ScanP<T>& p, ScanG<T>& g) {
  if (p.N <= 4)
    launch_bwd<T, 4>(env, p, g);
  else if (p.N <= 8)
    launch_bwd<T, 8>(env, p, g);
  else
    launch_bwd<T, 16>(env, p, g);
}

// The inputs of ScanP from the fields every scan op shares (native/src/scan_args.h checks them).
// The states live in registers: N is bounded before any buffer is sized by it.
template <class T>
ScanInputs<T, float> read_cuda_inputs(const ArgObject& a) {
  const int64_t N = a.integer("N");
  a.require(N <= kCudaScanMaxState,
            "the CUDA scan supports d_state N <= " + std::to_string(kCudaScanMaxState) + ", got " + std::to_string(N));
  return read_scan_inputs<T, float>(a, DeviceFetch{});
}
template <class T>
ScanP<T> scan_params(const ScanInputs<T, float>& in) {
  ScanP<T> p{};
  p.u = in.u;
  p.delta = in.delta;
  p.dbias = in.deltaBias;
  p.A = in.A;
  p.Bm = in.Bm;
  p.Cm = in.Cm;
  p.bcs = in.bcStride;
  p.Dskip = in.Dskip;
  p.z = in.z;
  p.zs = in.zStride;
  p.B = (int)in.B;
  p.L = (int)in.L;
  p.D = (int)in.D;
  p.N = (int)in.N;
  p.softplus = in.softplus;
  return p;
}
template <class T>
Shape shape_of(const ScanP<T>& p) {
  return {p.B, p.L, p.D, p.N};
}

template <class T>
void run_forward(const ArgObject& a) {
  Napi::Env env = a.env();
  const DeviceFetch f;
  const ScanInputs<T, float> in = read_cuda_inputs<T>(a);
  ScanP<T> p = scan_params<T>(in);
  T* y = f.get<T>(a, "y", (size_t)in.B * in.L * in.D);
  float* last = f.opt<float>(a, "lastState", (size_t)in.B * in.D * in.N);
  a.finish();
  const Shape s = shape_of(p);
  if (s.B == 0 || s.D == 0) return;
  if (s.L == 0) {
    if (last)
      cuda_check(env, cudaMemsetAsync(last, 0, sizeof(float) * s.B * s.D * s.N, cuda_stream()), "scan lastState");
    return;
  }
  p.lanes = channel_pairs_ok(p, y) ? one_pass_lanes(s) : 0;
  if (p.lanes > 0) {  // launch_fwd: the one-pass kernel
    p.Lc = s.L;
    p.nchunk = 1;
    dispatch_fwd<T>(env, p, y, last);
    return;
  }
  {
    const int nch = s.N <= 4 ? forward_chunks<T, 4>(s) : s.N <= 8 ? forward_chunks<T, 8>(s) : forward_chunks<T, 16>(s);
    p.Lc = (s.L + nch - 1) / nch;
    p.nchunk = (s.L + p.Lc - 1) / p.Lc;
  }
  if (p.nchunk > 1) {
    const size_t nS = (size_t)s.B * p.nchunk * s.D * s.N, nP = (size_t)s.B * p.nchunk * s.D;
    float* sc = (float*)scratch(env, sizeof(float) * (nS + nP));
    p.S = sc;
    p.P = sc + nS;
  }
  dispatch_fwd<T>(env, p, y, last);
}

// Backward chunks: up to SUB * MAXCK = 1024 steps for long sequences (longer chunks shorten both combines and
// the per-chunk work of the first pass; caps of 128..1024 are compared in bench/README.md, stop 10); shorter
// sequences get shorter chunks from chunk_len (enough blocks to fill the GPU).
constexpr int BWD_CHUNK_CAP = SUB * MAXCK;

// The most scratch the backward's stored checkpoints may take: N states in the storage dtype and one float per (b, d)
// and piece, 4.5 bytes per (t, d) in bf16 at N = 16 (110 MB at 8 x 2048 x 1536, 7.3 GB at 2^20: there the main pass
// sweeps each chunk itself). 1 GiB by default; MAMBA_SCAN_CHECKPOINT_MB sets it (0: never store; the tests run both
// ways).
size_t stored_checkpoint_bytes(const ArgObject& a) {
  const char* e = getenv("MAMBA_SCAN_CHECKPOINT_MB");
  if (!e || !*e) return size_t(1024) << 20;
  char* end = nullptr;
  const long long mb = strtoll(e, &end, 10);
  a.require(*end == '\0' && mb >= 0 && mb <= (1LL << 30),
            std::string("MAMBA_SCAN_CHECKPOINT_MB must be a whole number of MiB from 0 to 2^30, got '") + e + "'");
  return (size_t)mb << 20;
}

template <class T>
void run_backward(const ArgObject& a) {
  Napi::Env env = a.env();
  const DeviceFetch f;
  const ScanInputs<T, float> in = read_cuda_inputs<T>(a);
  ScanP<T> p = scan_params<T>(in);
  const ScanGradients<T, float> gr = read_scan_gradients<T, float>(a, f, in);
  a.finish();
  const Shape s = shape_of(p);
  const int64_t T_ = (int64_t)s.B * s.L;
  p.dy = gr.dy;
  ScanG<T> g{};
  g.du = gr.du;
  g.ddelta = gr.ddelta;
  g.dA = gr.dA;
  g.dDskip = gr.dDskip;
  g.dDeltaBias = gr.dDeltaBias;
  g.dz = gr.dz;
  g.y = gr.y;
  if (s.B == 0 || s.D == 0 || s.L == 0) {
    if (T_ > 0 && s.D == 0) {
      float* dBC = (float*)scratch(env, sizeof(float) * T_ * 2 * s.N);
      cuda_check(env, cudaMemsetAsync(dBC, 0, sizeof(float) * T_ * 2 * s.N, cuda_stream()), "scan dB/dC");
      write_dbc<T><<<grid_for(T_ * 2 * s.N), 256, 0, cuda_stream()>>>(dBC, gr.dB, gr.dC, p.bcs, T_, s.N);
      check_launch(env, "scan write dB/dC");
    }
    return;
  }
  p.Lc = chunk_len(s, BWD_CHUNK_CAP);
  p.nchunk = (s.L + p.Lc - 1) / p.Lc;
  a.require(p.nchunk <= 65535, "L = " + std::to_string(s.L) +
                                   " is longer than the CUDA backward handles in one call (" +
                                   std::to_string(65535LL * BWD_CHUNK_CAP) +
                                   " steps per sequence); split the sequence and carry the state");
  const size_t nS = p.nchunk > 1 ? (size_t)s.B * p.nchunk * s.D * s.N : 0,
               nP = p.nchunk > 1 ? (size_t)s.B * p.nchunk * s.D : 0;
  const size_t nBC = (size_t)T_ * 2 * s.N;
  // stored checkpoints when there are chunks to sweep and they fit stored_checkpoint_bytes()
  p.ppc = p.Lc / SUB;
  const size_t nCK = p.nchunk > 1 ? (size_t)s.B * p.nchunk * (p.ppc - 1) * s.D : 0;
  const size_t ckBytes = nCK * (sizeof(T) * s.N + sizeof(float));
  const bool stored = nCK > 0 && ckBytes <= stored_checkpoint_bytes(a);
  float* sc = (float*)scratch(env, sizeof(float) * (2 * nS + nP + nBC) + (stored ? ckBytes : 0));
  g.dBC = sc;
  p.S = sc + nBC;
  p.Q = p.S + nS;
  p.P = p.Q + nS;
  p.CP = stored ? p.P + nP : nullptr;  // the floats first, so the T states after them stay aligned
  p.CK = stored ? reinterpret_cast<T*>(p.CP + nCK) : nullptr;
  cuda_check(env, cudaMemsetAsync(g.dBC, 0, sizeof(float) * nBC, cuda_stream()), "scan dB/dC");
  dispatch_bwd<T>(env, p, g);
  write_dbc<T><<<grid_for((int64_t)nBC), 256, 0, cuda_stream()>>>(g.dBC, gr.dB, gr.dC, p.bcs, T_, s.N);
  check_launch(env, "scan write dB/dC");
}

}  // namespace
}  // namespace mamba

using namespace mamba;

// cuda.scanLastProfile() -> [[pass, ms], ...] of the last scan call made with MAMBA_SCAN_PROFILE=1 (benchmark)
MAMBA_OP(cuda, scanLastProfile) {
  const auto& v = Prof::last_profile();
  Napi::Array a = Napi::Array::New(info.Env(), v.size());
  for (size_t i = 0; i < v.size(); i++) {
    Napi::Array e = Napi::Array::New(info.Env(), 2);
    e.Set((uint32_t)0, Napi::String::New(info.Env(), v[i].first));
    e.Set((uint32_t)1, Napi::Number::New(info.Env(), v[i].second));
    a.Set((uint32_t)i, e);
  }
  return a;
}

// The two scan ops take one argument object (fields: native/KERNELS.md; read by native/src/scan_args.h, as
// their CPU twins do) plus dtype 'f32' | 'bf16': bf16 makes u, delta, Bm, Cm, z, y and their gradients bf16;
// deltaBias, A, Dskip, lastState and dA, dDskip, dDeltaBias stay f32 (fp32 state and math).
MAMBA_OP(cuda, selectiveScanForward) {
  return dtype_op(info, "selectiveScanForward",
                  [](auto t, const ArgObject& a) { run_forward<typename decltype(t)::type>(a); });
}
MAMBA_OP(cuda, selectiveScanBackward) {
  return dtype_op(info, "selectiveScanBackward",
                  [](auto t, const ArgObject& a) { run_backward<typename decltype(t)::type>(a); });
}
