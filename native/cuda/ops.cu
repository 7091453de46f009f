// CUDA twins of the CPU kernels in native/cpu (same names, same argument order; native/KERNELS.md):
// embedding, bias, rmsnorm, causal depthwise conv1d (+ recurrent step), cross-entropy, pooling, AdamW and
// the elementwise helpers. Arithmetic is fp32; where an op takes a trailing dtype ('f32' | 'bf16') it names
// the storage of its activations only (parameters and their gradients stay f32).
#include "common.cuh"
#include "../src/adamw_args.h"
#include "../src/conv_args.h"
#include "../src/limits.h"
#include <algorithm>
#include <cmath>
#include <map>
#include <type_traits>

namespace mamba {
namespace {

constexpr int TPB = 256;

// A device flag that kernels raise for an out-of-range index; read back once per call that can raise it.
int* bad_flag(Napi::Env env) {
  static int* f[16] = {nullptr};
  const int d = std::min(current_device(), 15);
  if (!f[d]) cuda_check(env, cudaMalloc(&f[d], sizeof(int)), "flag allocation");
  return f[d];
}
void reset_flag(Napi::Env env, int* f) {
  cuda_check(env, cudaMemsetAsync(f, 0xff, sizeof(int), cuda_stream()), "flag");
}
// -1 when no index was bad, else the smallest bad position (synchronises the stream).
int64_t read_flag(Napi::Env env, int* f) {
  // inside a CUDA-graph capture nothing may synchronise: the check is skipped there (the captured
  // ops were checked when they ran eagerly first)
  if (stream_capturing()) return -1;
  int h = -1;
  cuda_check(env, cudaMemcpyAsync(&h, f, sizeof(int), cudaMemcpyDeviceToHost, cuda_stream()), "flag read");
  cuda_check(env, cudaStreamSynchronize(cuda_stream()), "flag read");
  return h == -1 ? -1 : (int64_t)(unsigned)h;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}
// Block-wide sum/max for blockDim.x == TPB; every thread gets the result.
__device__ float block_sum(float v, float* sh) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float r = lane < TPB / 32 ? sh[lane] : 0.f;
  return warp_sum(r);
}
__device__ float block_max(float v, float* sh) {
  v = warp_max(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float r = lane < TPB / 32 ? sh[lane] : -INFINITY;
  return warp_max(r);
}

// Rows split across grid.y for column reductions: enough blocks to fill the GPU.
unsigned row_splits(int64_t rows, int64_t colblocks) {
  int64_t want = (int64_t)sm_count() * 8 / std::max<int64_t>(1, colblocks);
  want = std::max<int64_t>(1, std::min<int64_t>(want, (rows + 63) / 64));
  return (unsigned)std::min<int64_t>(want, 65535);
}

// ---- embedding ----------------------------------------------------------------------------------------
template <class T>
__global__ void embed_fwd(const int32_t* ids, const float* W, T* out, int64_t Tn, int64_t V, int64_t D, int* bad) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < Tn * D; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / D, d = i - t * D;
    const int id = ids[t];
    if (id < 0 || id >= V) {
      if (d == 0) atomicMin((unsigned*)bad, (unsigned)t);
      stf(out, i, 0.f);
      continue;
    }
    stf(out, i, W[(int64_t)id * D + d]);
  }
}
template <class T>
__global__ void embed_bwd(const int32_t* ids, const T* dOut, float* dW, int64_t Tn, int64_t V, int64_t D, int* bad) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < Tn * D; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / D, d = i - t * D;
    const int id = ids[t];
    if (id < 0 || id >= V) {
      if (d == 0) atomicMin((unsigned*)bad, (unsigned)t);
      continue;
    }
    atomicAdd(&dW[(int64_t)id * D + d], ldf(dOut, i));
  }
}

// ---- bias --------------------------------------------------------------------------------------------
template <class T>
__global__ void bias_fwd(T* y, const float* b, int64_t Tn, int64_t C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < Tn * C; i += (int64_t)gridDim.x * blockDim.x)
    stf(y, i, ldf(y, i) + b[i % C]);
}
// db[c] += sum_t dy[t, c]: block = 32 columns x 8 row lanes, grid.y splits the rows.
template <class T>
__global__ void col_sum(const T* dy, float* db, int64_t Tn, int64_t C) {
  __shared__ float sh[8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.f;
  if (c < C)
    for (int64_t t = blockIdx.y * 8 + threadIdx.y; t < Tn; t += (int64_t)gridDim.y * 8) acc += ldf(dy, t * C + c);
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float s = 0.f;
    for (int k = 0; k < 8; k++) s += sh[k][threadIdx.x];
    atomicAdd(&db[c], s);
  }
}

// ---- rmsnorm (warp per row) -------------------------------------------------------------------------
// Row loads for rms_fwd: lane's values v[i] = r[lane + 32 i] (0 past D), r = x + res (either may be absent). The loads
// take clamped indices and no branch, so that all of them are in flight together: with a guard around each, each
// value was used right after its own load, and a 768-wide row took ~10 us (24 round trips, whatever the rows).
template <class TO, int VPL, bool HX, bool HR>
__device__ __forceinline__ void rms_row(const TO* x, const float* res, int64_t base, int64_t D, int lane,
                                        float (&v)[VPL]) {
#pragma unroll
  for (int i = 0; i < VPL; i++) {
    const int64_t d = lane + 32 * i, c = base + (d < D ? d : D - 1);
    float a = 0.f;
    if constexpr (HX) a += ldf(x, c);
    if constexpr (HR) a += res[c];
    v[i] = d < D ? a : 0.f;
  }
}

// A lane keeps its VPL values of the row (columns lane, lane + 32, ...) in registers and reads r once. VPL = 0: rows
// longer than 32 * 32, a loop over the row.
template <class TO, int VPL>
__global__ void rms_fwd(const TO* __restrict__ x, const float* __restrict__ res, const float* __restrict__ w,
                        TO* __restrict__ out, float* __restrict__ rout, float* __restrict__ rstd, int64_t Tn, int64_t D,
                        float eps) {
  pdl_wait();
  pdl_trigger();
  const int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= Tn) return;
  // x null: r = res (the norm of a kept residual); rout null: r is not written
  float* rr = rout ? rout + row * D : nullptr;
  float ss = 0.f;
  if constexpr (VPL > 0) {
    float v[VPL];
    if (x && res)
      rms_row<TO, VPL, true, true>(x, res, row * D, D, lane, v);
    else if (x)
      rms_row<TO, VPL, true, false>(x, res, row * D, D, lane, v);
    else
      rms_row<TO, VPL, false, true>(x, res, row * D, D, lane, v);
    float wv[VPL];  // the weights too, loaded before the reduction waits
#pragma unroll
    for (int i = 0; i < VPL; i++) {
      const int64_t d = lane + 32 * i;
      wv[i] = w[d < D ? d : D - 1];
      ss = fmaf(v[i], v[i], ss);
    }
    ss = warp_sum(ss);
    const float s = rsqrtf(ss / (float)(D > 0 ? D : 1) + eps);
    if (lane == 0) rstd[row] = s;
#pragma unroll
    for (int i = 0; i < VPL; i++) {
      const int64_t d = lane + 32 * i;
      if (d < D) {
        if (rr) rr[d] = v[i];
        stf(out, row * D + d, v[i] * s * wv[i]);
      }
    }
  } else {
    const auto r_at = [&](int64_t d) { return (x ? ldf(x, row * D + d) : 0.f) + (res ? res[row * D + d] : 0.f); };
    for (int64_t d = lane; d < D; d += 32) {
      const float v = r_at(d);
      if (rr) rr[d] = v;
      ss = fmaf(v, v, ss);
    }
    ss = warp_sum(ss);
    const float s = rsqrtf(ss / (float)(D > 0 ? D : 1) + eps);
    if (lane == 0) rstd[row] = s;
    for (int64_t d = lane; d < D; d += 32) stf(out, row * D + d, (rr ? rr[d] : r_at(d)) * s * w[d]);
  }
}

// rms_fwd for rows of D % 4 == 0 (so every row starts 16-byte aligned in f32, 8 in bf16): lane l holds columns
// 4l + 128i .. +3 for i < V4 and moves them as vectors, a quarter of the load and store instructions of rms_fwd
// (whose 768-wide rows ran at about a third of HBM bandwidth in the 8,192-token prefill, bench/README.md stop 16).
template <class TO, int V4>
__global__ void rms_fwd_vec(const TO* __restrict__ x, const float* __restrict__ res, const float* __restrict__ w,
                            TO* __restrict__ out, float* __restrict__ rout, float* __restrict__ rstd, int64_t Tn,
                            int64_t D, float eps) {
  pdl_wait();
  pdl_trigger();
  const int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= Tn) return;
  float4 v[V4], wv[V4];
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int64_t d = 4 * lane + 128 * i, c = d < D ? d : D - 4;  // clamped: every load in flight together
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
    if (x) a = ld4(x + row * D + c);
    if (res) {
      const float4 b = ld4(res + row * D + c);
      a = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
    }
    v[i] = d < D ? a : make_float4(0.f, 0.f, 0.f, 0.f);
    wv[i] = ld4(w + c);
    ss = fmaf(v[i].x, v[i].x, fmaf(v[i].y, v[i].y, fmaf(v[i].z, v[i].z, fmaf(v[i].w, v[i].w, ss))));
  }
  ss = warp_sum(ss);
  const float s = rsqrtf(ss / (float)D + eps);
  if (lane == 0) rstd[row] = s;
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int64_t d = 4 * lane + 128 * i;
    if (d < D) {
      if (rout) st4(rout + row * D + d, v[i]);
      st4(out + row * D + d,
          make_float4(v[i].x * s * wv[i].x, v[i].y * s * wv[i].y, v[i].z * s * wv[i].z, v[i].w * s * wv[i].w));
    }
  }
}

template <class TG>
__global__ void rms_bwd(const TG* g, const float* dres, const float* r, const float* w, const float* rstd, float* dR,
                        TG* dRAct, int64_t Tn, int64_t D) {
  const int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= Tn) return;
  const float s = rstd[row];
  float dot = 0.f;
  for (int64_t d = lane; d < D; d += 32) dot = fmaf(ldf(g, row * D + d) * w[d], r[row * D + d], dot);
  const float c = warp_sum(dot) * s * s / (float)(D > 0 ? D : 1);
  for (int64_t d = lane; d < D; d += 32) {
    const int64_t i = row * D + d;
    const float v = (dres ? dres[i] : 0.f) + s * (ldf(g, i) * w[d] - r[i] * c);
    dR[i] = v;
    if (dRAct) stf(dRAct, i, v);
  }
}

// rms_bwd and rms_dw in one pass for rows of D % 4 == 0 up to 128 V4 wide: a warp walks rows (grid-stride), lane l
// keeps columns 4l + 128i as vectors with the weights loaded once, and adds g r rstd of its rows into its own sums;
// the block adds its warps' sums in shared memory and then into dW with one atomic per column. dR is also written
// in the activation dtype when dRAct is given (what the next block's products read; a separate cast before).
// Each value of g, r and dres is read once: the two kernels read g and r twice, at about half of HBM bandwidth.
template <class TG, int V4>
__global__ void __launch_bounds__(TPB, 2)
    rms_bwd_vec(const TG* __restrict__ g, const float* dres, const float* __restrict__ r, const float* __restrict__ w,
                const float* __restrict__ rstd, float* dR, TG* __restrict__ dRAct, float* __restrict__ dW, int64_t Tn,
                int64_t D) {
  __shared__ float red[128 * V4];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int i = threadIdx.x; i < 128 * V4; i += TPB) red[i] = 0.f;
  float4 wv[V4], acc[V4];
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int64_t d = 4 * lane + 128 * i;
    wv[i] = d < D ? ld4(w + d) : make_float4(0.f, 0.f, 0.f, 0.f);
    acc[i] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
  for (int64_t row = blockIdx.x * (int64_t)(TPB / 32) + warp; row < Tn; row += (int64_t)gridDim.x * (TPB / 32)) {
    const float s = rstd[row];
    float4 gv[V4], rv[V4];
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < V4; i++) {
      const int64_t d = 4 * lane + 128 * i, c = d < D ? d : D - 4;  // clamped: every load in flight together
      gv[i] = ld4(g + row * D + c);
      rv[i] = ld4(r + row * D + c);
      if (d >= D) gv[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int i = 0; i < V4; i++) {
      acc[i].x = fmaf(gv[i].x * rv[i].x, s, acc[i].x);  // dW's g r rstd, before g becomes g w
      acc[i].y = fmaf(gv[i].y * rv[i].y, s, acc[i].y);
      acc[i].z = fmaf(gv[i].z * rv[i].z, s, acc[i].z);
      acc[i].w = fmaf(gv[i].w * rv[i].w, s, acc[i].w);
      gv[i] = make_float4(gv[i].x * wv[i].x, gv[i].y * wv[i].y, gv[i].z * wv[i].z, gv[i].w * wv[i].w);
      dot = fmaf(gv[i].x, rv[i].x, fmaf(gv[i].y, rv[i].y, fmaf(gv[i].z, rv[i].z, fmaf(gv[i].w, rv[i].w, dot))));
    }
    const float c = warp_sum(dot) * s * s / (float)D;
#pragma unroll
    for (int i = 0; i < V4; i++) {
      const int64_t d = 4 * lane + 128 * i;
      if (d >= D) continue;
      float4 o = dres ? ld4(dres + row * D + d) : make_float4(0.f, 0.f, 0.f, 0.f);
      o.x += s * (gv[i].x - rv[i].x * c);
      o.y += s * (gv[i].y - rv[i].y * c);
      o.z += s * (gv[i].z - rv[i].z * c);
      o.w += s * (gv[i].w - rv[i].w * c);
      st4(dR + row * D + d, o);
      if (dRAct) st4(dRAct + row * D + d, o);
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int d = 4 * lane + 128 * i;
    if (d < D) {
      atomicAdd(&red[d], acc[i].x);
      atomicAdd(&red[d + 1], acc[i].y);
      atomicAdd(&red[d + 2], acc[i].z);
      atomicAdd(&red[d + 3], acc[i].w);
    }
  }
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += TPB) atomicAdd(&dW[d], red[d]);
}
// dW[d] += sum_t g[t,d] r[t,d] rstd[t]
template <class TG>
__global__ void rms_dw(const TG* g, const float* r, const float* rstd, float* dW, int64_t Tn, int64_t D) {
  __shared__ float sh[8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.f;
  if (c < D)
    for (int64_t t = blockIdx.y * 8 + threadIdx.y; t < Tn; t += (int64_t)gridDim.y * 8)
      acc = fmaf(ldf(g, t * D + c) * r[t * D + c], rstd[t], acc);
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < D) {
    float s = 0.f;
    for (int k = 0; k < 8; k++) s += sh[k][threadIdx.x];
    atomicAdd(&dW[c], s);
  }
}

// ---- causal depthwise conv1d --------------------------------------------------------------------------
__device__ __forceinline__ float silu_(float v) { return v * sigmoidf_(v); }

// Tiled: a thread owns V adjacent channels, moved as one access (V = 4: 8 bytes of bf16, 16 of f32, when D, the
// strides and the pointers allow; else V = 1), and a run of TL consecutive time steps of one sequence, sliding the
// K-tap window along in registers, so x is read once (plus a K-1 halo per run) and no index is divided. The rows of
// the next G steps are loaded while the current G are computed: the bytes a thread has in flight are what bounds
// these kernels (a thread per channel with loads a step or two ahead kept about 16 KB an SM in flight, and ran at a
// third to a half of HBM bandwidth). Block = 32 threads (x, one warp across 32 V channels) by CONV_FWD_RY or
// CONV_BWD_RY runs (y). Layouts, group lengths and run lengths measured: bench/conv-tune.cu, bench/README.md (stop 38).
constexpr int CONV_CX = 32, CONV_G = 4, CONV_FWD_RY = 8, CONV_BWD_RY = 4;
constexpr int CONV_FWD_TL = 64, CONV_BWD_TL = 128;  // longest runs; shorter while the grid is under 3/4 of a wave

// V elements of T as one access (2 to 16 bytes), and as floats
template <int BYTES>
struct RawOf;
template <>
struct RawOf<2> {
  using type = unsigned short;
};
template <>
struct RawOf<4> {
  using type = unsigned;
};
template <>
struct RawOf<8> {
  using type = uint2;
};
template <>
struct RawOf<16> {
  using type = uint4;
};
template <class T, int V>
struct Lanes {
  using Raw = typename RawOf<V * sizeof(T)>::type;
  __device__ static Raw load(const T* p) { return __ldg(reinterpret_cast<const Raw*>(p)); }
  __device__ static void unpack(const Raw& r, float (&f)[V]) {
    const T* e = reinterpret_cast<const T*>(&r);
#pragma unroll
    for (int i = 0; i < V; i++) f[i] = ldf(e, i);
  }
  __device__ static void store(T* p, const float (&f)[V]) {
    Raw r;
    T* e = reinterpret_cast<T*>(&r);
#pragma unroll
    for (int i = 0; i < V; i++) stf(e, i, f[i]);
    *reinterpret_cast<Raw*>(p) = r;
  }
  // rows first .. first + CONV_G - 1 of base (rows `stride` elements apart) as raw bits; zeros from row `end` on
  __device__ static void rows(Raw (&r)[CONV_G], const T* base, int64_t stride, int first, int end) {
#pragma unroll
    for (int q = 0; q < CONV_G; q++) r[q] = first + q < end ? load(base + (int64_t)(first + q) * stride) : Raw{};
  }
};

// The taps and bias of a thread's V channels d .. d + V - 1, and its window's first K - 1 inputs for a run from l0:
// win[k] = x(l0 - (K-1) + k), zero before the sequence
template <int K, int V>
__device__ __forceinline__ void conv_taps(const float* w, const float* bias, int d, float (&wk)[V][K], float (&bs)[V]) {
#pragma unroll
  for (int c = 0; c < V; c++) {
#pragma unroll
    for (int k = 0; k < K; k++) wk[c][k] = w[(int64_t)(d + c) * K + k];
    bs[c] = bias ? bias[d + c] : 0.f;
  }
}
template <class T, int K, int V>
__device__ __forceinline__ void conv_halo(const T* xb, int64_t xs, int l0, float (&win)[K][V]) {
#pragma unroll
  for (int k = 0; k < K - 1; k++) {
    const int l = l0 - (K - 1) + k;
    if (l >= 0)
      Lanes<T, V>::unpack(Lanes<T, V>::load(xb + (int64_t)l * xs), win[k]);
    else
#pragma unroll
      for (int c = 0; c < V; c++) win[k][c] = 0.f;
  }
}

// Channels a thread moves at once: 4 when K <= 4 (wider windows would spill the backward's registers) and every row
// of every operand starts on a group of 4 (D, the strides and the pointers), else 1.
int conv_lanes(int64_t D, int64_t K, std::initializer_list<std::pair<const void*, int64_t>> rows, size_t elem) {
  if (K > 4 || D % 4 != 0) return 1;
  for (const auto& [p, stride] : rows)
    if (p && (stride % 4 != 0 || !aligned_to(p, 4 * elem))) return 1;
  return 4;
}

// Blocks of `threads` of `kernel` that fit on one SM (asked once per kernel)
int conv_resident(const void* kernel, int threads) {
  static std::map<const void*, int> known;
  const auto it = known.find(kernel);
  if (it != known.end()) return it->second;
  int b = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, kernel, threads, 0) != cudaSuccess) b = 1;
  cudaGetLastError();
  return known[kernel] = b;
}

// The grid of a conv launch: runs of the longest length up to tl_max (a multiple of CONV_G) that still give 3/4 of a
// wave of blocks (one wave measured fastest at 8 x 2048 x 1536; two were 3-6% slower), at least CONV_G.
struct ConvGrid {
  dim3 grid;
  int TL;
};
ConvGrid conv_grid(int64_t B, int64_t L, int64_t D, int V, int RY, int tl_max, const void* kernel) {
  const int64_t cx = (D / V + CONV_CX - 1) / CONV_CX;
  const int64_t wave = (int64_t)sm_count() * std::max(1, conv_resident(kernel, CONV_CX * RY));
  const auto rows = [&](int tl) { return (L + (int64_t)tl * RY - 1) / ((int64_t)tl * RY); };
  int tl = tl_max;
  while (tl > CONV_G && 4 * cx * rows(tl) * B < 3 * wave) tl /= 2;
  return {dim3((unsigned)cx, (unsigned)rows(tl), (unsigned)B), tl};
}

template <class T, int K, int V>
__global__ void __launch_bounds__(CONV_CX* CONV_FWD_RY)
    conv_fwd(const T* __restrict__ x, int64_t xs, const float* __restrict__ w, const float* __restrict__ bias,
             T* __restrict__ out, int L, int D, int TL, bool silu) {
  using P = Lanes<T, V>;
  using Raw = typename P::Raw;
  const int d = (blockIdx.x * CONV_CX + threadIdx.x) * V, b = blockIdx.z;
  const int l0 = (blockIdx.y * CONV_FWD_RY + threadIdx.y) * TL;
  if (d >= D || l0 >= L) return;
  const int l1 = min(L, l0 + TL);
  float wk[V][K], bs[V], win[K][V];  // win[k] = x(l - (K-1) + k) at step l
  conv_taps<K, V>(w, bias, d, wk, bs);
  const T* xb = x + (int64_t)b * L * xs + d;
  T* ob = out + (int64_t)b * L * D + d;
  conv_halo<T, K, V>(xb, xs, l0, win);
  Raw cur[CONV_G];
  P::rows(cur, xb, xs, l0, l1);
  for (int l = l0; l < l1; l += CONV_G) {
    Raw nxt[CONV_G];
    P::rows(nxt, xb, xs, l + CONV_G, l1);
#pragma unroll
    for (int q = 0; q < CONV_G; q++) {
      if (l + q < l1) {
        P::unpack(cur[q], win[K - 1]);
        float o[V];
#pragma unroll
        for (int c = 0; c < V; c++) {
          float acc = bs[c];
#pragma unroll
          for (int k = 0; k < K; k++) acc = fmaf(wk[c][k], win[k][c], acc);
          o[c] = silu ? silu_(acc) : acc;
        }
        P::store(ob + (int64_t)(l + q) * D, o);
#pragma unroll
        for (int k = 0; k < K - 1; k++)
#pragma unroll
          for (int c = 0; c < V; c++) win[k][c] = win[k + 1][c];
      }
    }
#pragma unroll
    for (int q = 0; q < CONV_G; q++) cur[q] = nxt[q];
  }
}

// Fused backward over a run [l0, l1): the thread walks l = l0 .. l1+K-2 computing dpre(l) = dOut(l) act'(pre(l))
// (zero past L), keeps the last K of them, and emits dx(l-K+1) = sum_k w[k] dpre(l-k) once it is complete;
// dw[k] += dpre(l) x(l-K+1+k) and dbias += dpre(l) only for l inside the run (each l counted once), summed
// over the block's runs in shared memory and added with one atomic per channel, tap and block.
template <class T, int K, int V>
__global__ void __launch_bounds__(CONV_CX* CONV_BWD_RY)
    conv_bwd(const T* __restrict__ x, int64_t xs, const float* __restrict__ w, const float* __restrict__ bias,
             const T* __restrict__ dOut, T* __restrict__ dx, int64_t dxs, float* dw, float* dbias, int L, int D, int TL,
             bool silu) {
  using P = Lanes<T, V>;
  using Raw = typename P::Raw;
  constexpr int NCH = CONV_CX * V;  // channels of a block
  __shared__ float red[CONV_BWD_RY][K + 1][NCH];
  const int d = (blockIdx.x * CONV_CX + threadIdx.x) * V, b = blockIdx.z;
  const int l0 = (blockIdx.y * CONV_BWD_RY + threadIdx.y) * TL;
  float gw[V][K + 1];
#pragma unroll
  for (int c = 0; c < V; c++)
#pragma unroll
    for (int k = 0; k <= K; k++) gw[c][k] = 0.f;
  if (d < D && l0 < L) {
    const int l1 = min(L, l0 + TL);
    const int lend = l1 + K - 1, lread = min(L, lend);  // steps walked; steps read
    float wk[V][K], bs[V], win[K][V], dp[K][V] = {};    // dp[K-1-k] = dpre(l - k)
    conv_taps<K, V>(w, bias, d, wk, bs);
    const T* xb = x + (int64_t)b * L * xs + d;
    const T* gb = dOut + (int64_t)b * L * D + d;
    T* dxb = dx + (int64_t)b * L * dxs + d;
    conv_halo<T, K, V>(xb, xs, l0, win);
    Raw cx[CONV_G], cg[CONV_G];
    P::rows(cx, xb, xs, l0, lread);
    P::rows(cg, gb, D, l0, lread);
    for (int l = l0; l < lend; l += CONV_G) {
      Raw nx[CONV_G], ng[CONV_G];
      P::rows(nx, xb, xs, l + CONV_G, lread);
      P::rows(ng, gb, D, l + CONV_G, lread);
#pragma unroll
      for (int q = 0; q < CONV_G; q++) {
        const int lq = l + q;
        if (lq >= lend) break;
        float g[V];
        if (lq < L) {
          P::unpack(cx[q], win[K - 1]);
          P::unpack(cg[q], g);
#pragma unroll
          for (int c = 0; c < V; c++) {
            if (silu) {
              float pre = bs[c];
#pragma unroll
              for (int k = 0; k < K; k++) pre = fmaf(wk[c][k], win[k][c], pre);
              const float sg = sigmoidf_(pre);
              g[c] *= sg * (1.f + pre * (1.f - sg));
            }
            if (lq < l1) {
#pragma unroll
              for (int k = 0; k < K; k++) gw[c][k] = fmaf(g[c], win[k][c], gw[c][k]);
              gw[c][K] += g[c];
            }
          }
        } else {
#pragma unroll
          for (int c = 0; c < V; c++) g[c] = 0.f;
        }
#pragma unroll
        for (int k = 0; k < K - 1; k++)
#pragma unroll
          for (int c = 0; c < V; c++) dp[k][c] = dp[k + 1][c];
#pragma unroll
        for (int c = 0; c < V; c++) dp[K - 1][c] = g[c];
        const int lo = lq - (K - 1);
        if (lo >= l0) {
          float acc[V];
#pragma unroll
          for (int c = 0; c < V; c++) {
            acc[c] = 0.f;
#pragma unroll
            for (int k = 0; k < K; k++) acc[c] = fmaf(wk[c][k], dp[K - 1 - k][c], acc[c]);
          }
          P::store(dxb + (int64_t)lo * dxs, acc);
        }
#pragma unroll
        for (int k = 0; k < K - 1; k++)
#pragma unroll
          for (int c = 0; c < V; c++) win[k][c] = win[k + 1][c];
      }
#pragma unroll
      for (int q = 0; q < CONV_G; q++) {
        cx[q] = nx[q];
        cg[q] = ng[q];
      }
    }
  }
#pragma unroll
  for (int c = 0; c < V; c++)
#pragma unroll
    for (int k = 0; k <= K; k++) red[threadIdx.y][k][threadIdx.x * V + c] = gw[c][k];
  __syncthreads();
  // each channel's taps summed over the block's runs
  for (int ch = threadIdx.y * CONV_CX + threadIdx.x; ch < NCH; ch += CONV_CX * CONV_BWD_RY) {
    const int dc = blockIdx.x * NCH + ch;
    if (dc >= D) continue;
#pragma unroll
    for (int k = 0; k <= K; k++) {
      float v = 0.f;
#pragma unroll
      for (int r = 0; r < CONV_BWD_RY; r++) v += red[r][k][ch];
      if (k < K)
        atomicAdd(&dw[(int64_t)dc * K + k], v);
      else if (dbias)
        atomicAdd(&dbias[dc], v);
    }
  }
}

// One decoding step of the conv: shift x into the state (oldest first), K taps. Every load is issued before the
// first store: a loop that shifted the state in place waited for each load behind the store before it.
template <class T, int K>
__global__ void conv_step(float* __restrict__ st, const T* __restrict__ x, int64_t xs, const float* __restrict__ w,
                          const float* __restrict__ bias, T* __restrict__ out, int B, int64_t D, bool silu) {
  pdl_wait();
  pdl_trigger();
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)B * D) return;
  const int64_t b = i / D, d = i - b * D;
  float* s = st + i * K;
  float v[K], wk[K];
#pragma unroll
  for (int k = 0; k < K; k++) {
    v[k] = k + 1 < K ? s[k + 1] : ldf(x, b * xs + d);
    wk[k] = w[d * K + k];
  }
  float acc = bias ? bias[d] : 0.f;
#pragma unroll
  for (int k = 0; k < K; k++) {
    s[k] = v[k];
    acc = fmaf(wk[k], v[k], acc);
  }
  stf(out, i, silu ? silu_(acc) : acc);
}

// ---- cross-entropy (block per row) ---------------------------------------------------------------------
template <class T>
__global__ void xent(const T* logits, const int32_t* tg, float* losses, T* dl, int64_t Tn, int64_t V, float gs,
                     int ignore, int* bad) {
  __shared__ float sh[TPB / 32];
  for (int64_t t = blockIdx.x; t < Tn; t += gridDim.x) {
    const T* l = logits + t * V;
    T* dr = dl ? dl + t * V : nullptr;
    const int target = tg[t];
    if (target == ignore) {
      if (threadIdx.x == 0) losses[t] = 0.f;
      if (dr)
        for (int64_t v = threadIdx.x; v < V; v += TPB) stf(dr, v, 0.f);
      continue;
    }
    if (target < 0 || target >= V) {
      if (threadIdx.x == 0) {
        atomicMin((unsigned*)bad, (unsigned)t);
        losses[t] = NAN;
      }
      continue;
    }
    float mx = -INFINITY;
    for (int64_t v = threadIdx.x; v < V; v += TPB) mx = fmaxf(mx, ldf(l, v));
    mx = block_max(mx, sh);
    float se = 0.f;
    for (int64_t v = threadIdx.x; v < V; v += TPB) se += __expf(ldf(l, v) - mx);
    se = block_sum(se, sh);
    const float lse = mx + logf(se);
    if (threadIdx.x == 0) losses[t] = lse - ldf(l, target);
    if (dr)
      for (int64_t v = threadIdx.x; v < V; v += TPB)
        stf(dr, v, gs * (__expf(ldf(l, v) - lse) - (v == target ? 1.f : 0.f)));
  }
}

// ---- pooling ---------------------------------------------------------------------------------------------
// mean: each block sums a slice of L into its row of partials [slices, B, D]; pool_mean_sum adds the slices in order
// and divides by L. No atomics, so the same input gives the same bits on every run (a classifier's probabilities
// too).
template <class T>
__global__ void pool_mean_part(const T* x, float* part, int B, int L, int64_t D) {
  const int64_t d = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  const int b = blockIdx.z;
  if (d >= D) return;
  const int l0 = (int)((int64_t)L * blockIdx.y / gridDim.y), l1 = (int)((int64_t)L * (blockIdx.y + 1) / gridDim.y);
  float acc = 0.f;
  for (int l = l0; l < l1; l++) acc += ldf(x, ((int64_t)b * L + l) * D + d);
  part[((int64_t)blockIdx.y * B + b) * D + d] = acc;
}
template <class T>
__global__ void pool_mean_sum(const float* part, T* out, int slices, int64_t BD, int L) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= BD) return;
  float s = 0.f;
  for (int k = 0; k < slices; k++) s += part[k * BD + i];
  stf(out, i, s / (float)L);
}
template <class T>
__global__ void pool_last(const T* x, T* out, int B, int L, int64_t D) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)B * D) return;
  const int64_t b = i / D, d = i - b * D;
  stf(out, i, ldf(x, (b * L + L - 1) * D + d));
}
template <class T>
__global__ void pool_bwd(const T* g, T* dx, int B, int L, int64_t D, int mode) {
  const int64_t n = (int64_t)B * L * D;
  const float inv = 1.f / (float)L;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t t = i / D, d = i - t * D, b = t / L;
    const int l = (int)(t - b * L);
    stf(dx, i, mode == 1 ? (l == L - 1 ? ldf(g, b * D + d) : 0.f) : ldf(g, b * D + d) * inv);
  }
}

// ---- optimizer and elementwise ------------------------------------------------------------------------
__global__ void adamw(float* p, const float* g, float* m, float* v, int64_t n, AdamwK k, float wd,
                      __nv_bfloat16* copy) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float pi = adamw_value(p[i], g[i], m[i], v[i], k, wd);
    p[i] = pi;
    if (copy) copy[i] = __float2bfloat16_rn(pi);
  }
}
template <class T>
__global__ void sumsq(const T* x, int64_t n, double* out) {
  double acc = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const double v = ldf(x, i);
    acc = fma(v, v, acc);
  }
  block_add_double<TPB>(acc, out);
}
template <class T>
__global__ void scale_k(T* x, int64_t n, float s) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    stf(x, i, ldf(x, i) * s);
}
template <class T>
__global__ void add_k(const T* a, const T* b, T* o, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    stf(o, i, ldf(a, i) + ldf(b, i));
}
template <class T>
__global__ void fill_k(T* x, int64_t n, float v) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    stf(x, i, v);
}

__global__ void neg_exp_k(const float* x, float* o, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    o[i] = -expf(x[i]);
}
__global__ void add_product_k(const float* a, const float* b, float* o, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    o[i] = fmaf(a[i], b[i], o[i]);
}

void nonneg(const Napi::CallbackInfo& info, const char* op, std::initializer_list<int64_t> dims) {
  for (int64_t d : dims)
    if (d < 0) throw Napi::RangeError::New(info.Env(), std::string(op) + ": sizes must be non-negative");
}

}  // namespace
}  // namespace mamba

using namespace mamba;

using bf16_t = __nv_bfloat16;
// Runs `launch(T*)` with T = float or __nv_bfloat16 according to the dtype argument.
#define BY_DTYPE(dt, BODY) \
  if ((dt) == DT::F32) {   \
    using T = float;       \
    BODY;                  \
  } else {                 \
    using T = bf16_t;      \
    BODY;                  \
  }

// cuda.embeddingForward(ids i32[T], W f32[V,D], out[T,D], T, V, D [, dtype of out])
MAMBA_OP(cuda, embeddingForward) {
  Napi::Env env = info.Env();
  const int64_t Tn = arg_int(info, 3, "embeddingForward T"), V = arg_int(info, 4, "embeddingForward V"),
                D = arg_int(info, 5, "embeddingForward D");
  nonneg(info, "embeddingForward", {Tn, V, D});
  const DT dt = arg_dtype(info, 6, "embeddingForward");
  const int32_t* ids = arg_dev<int32_t>(info, 0, "embeddingForward ids", Tn);
  const float* W = arg_dev<float>(info, 1, "embeddingForward W", V * D);
  void* out = arg_dev_dt(info, 2, "embeddingForward out", dt, Tn * D);
  if (Tn * D == 0) return env.Undefined();
  int* bad = bad_flag(env);
  reset_flag(env, bad);
  BY_DTYPE(dt, (launch_pdl(embed_fwd<T>, grid_for(Tn * D), TPB, 0, ids, W, (T*)out, Tn, V, D, bad)));
  check_launch(env, "embeddingForward");
  const int64_t t = read_flag(env, bad);
  if (t >= 0)
    throw Napi::RangeError::New(
        env, "embeddingForward: the id at position " + std::to_string(t) + " is outside 0.." + std::to_string(V - 1));
  return env.Undefined();
}

// cuda.embeddingBackward(ids, dOut[T,D], dW f32[V,D] acc, T, V, D [, dtype of dOut]) -- atomic scatter-add
MAMBA_OP(cuda, embeddingBackward) {
  Napi::Env env = info.Env();
  const int64_t Tn = arg_int(info, 3, "embeddingBackward T"), V = arg_int(info, 4, "embeddingBackward V"),
                D = arg_int(info, 5, "embeddingBackward D");
  nonneg(info, "embeddingBackward", {Tn, V, D});
  const DT dt = arg_dtype(info, 6, "embeddingBackward");
  const int32_t* ids = arg_dev<int32_t>(info, 0, "embeddingBackward ids", Tn);
  const void* dOut = arg_dev_dt(info, 1, "embeddingBackward dOut", dt, Tn * D);
  float* dW = arg_dev<float>(info, 2, "embeddingBackward dW", V * D);
  if (Tn * D == 0) return env.Undefined();
  int* bad = bad_flag(env);
  reset_flag(env, bad);
  BY_DTYPE(dt, (embed_bwd<T><<<grid_for(Tn * D), TPB, 0, cuda_stream()>>>(ids, (const T*)dOut, dW, Tn, V, D, bad)));
  check_launch(env, "embeddingBackward");
  const int64_t t = read_flag(env, bad);
  if (t >= 0)
    throw Napi::RangeError::New(
        env, "embeddingBackward: the id at position " + std::to_string(t) + " is outside 0.." + std::to_string(V - 1));
  return env.Undefined();
}

// cuda.biasForward(y[T,C], b f32[C], T, C [, dtype of y])
MAMBA_OP(cuda, biasForward) {
  const int64_t Tn = arg_int(info, 2, "biasForward T"), C = arg_int(info, 3, "biasForward C");
  nonneg(info, "biasForward", {Tn, C});
  const DT dt = arg_dtype(info, 4, "biasForward");
  void* y = arg_dev_dt(info, 0, "biasForward y", dt, Tn * C);
  const float* b = arg_dev<float>(info, 1, "biasForward b", C);
  if (Tn * C == 0) return info.Env().Undefined();
  BY_DTYPE(dt, (bias_fwd<T><<<grid_for(Tn * C), TPB, 0, cuda_stream()>>>((T*)y, b, Tn, C)));
  check_launch(info.Env(), "biasForward");
  return info.Env().Undefined();
}

// cuda.biasBackward(dy[T,C], db f32[C] acc, T, C [, dtype of dy])
MAMBA_OP(cuda, biasBackward) {
  const int64_t Tn = arg_int(info, 2, "biasBackward T"), C = arg_int(info, 3, "biasBackward C");
  nonneg(info, "biasBackward", {Tn, C});
  const DT dt = arg_dtype(info, 4, "biasBackward");
  const void* dy = arg_dev_dt(info, 0, "biasBackward dy", dt, Tn * C);
  float* db = arg_dev<float>(info, 1, "biasBackward db", C);
  if (Tn * C == 0) return info.Env().Undefined();
  const unsigned cb = (unsigned)((C + 31) / 32);
  BY_DTYPE(dt, (col_sum<T><<<dim3(cb, row_splits(Tn, cb)), dim3(32, 8), 0, cuda_stream()>>>((const T*)dy, db, Tn, C)));
  check_launch(info.Env(), "biasBackward");
  return info.Env().Undefined();
}

// cuda.rmsnormForward(x, residualIn|null, w, out, residualOut, rstd, T, D, eps [, dtype of x and out]) --
// residualIn, residualOut (the residual stream), w and rstd are f32.
MAMBA_OP(cuda, rmsnormForward) {
  Napi::Env env = info.Env();
  const int64_t Tn = arg_int(info, 6, "rmsnormForward T"), D = arg_int(info, 7, "rmsnormForward D");
  const double eps = arg_num(info, 8, "rmsnormForward eps");
  nonneg(info, "rmsnormForward", {Tn, D});
  if (!(eps >= 0)) throw Napi::RangeError::New(env, "rmsnormForward: eps must be >= 0");
  const DT dt = arg_dtype(info, 9, "rmsnormForward");
  const void* x = arg_dev_dt_opt(info, 0, "rmsnormForward x", dt, Tn * D);
  const float* res = arg_dev_opt<float>(info, 1, "rmsnormForward residualIn", Tn * D);
  const float* w = arg_dev<float>(info, 2, "rmsnormForward w", D);
  void* out = arg_dev_dt(info, 3, "rmsnormForward out", dt, Tn * D);
  float* rout = arg_dev_opt<float>(info, 4, "rmsnormForward residualOut", Tn * D);
  if (!x && !res) throw Napi::RangeError::New(env, "rmsnormForward: x and residualIn cannot both be null");
  if (!rout && x) throw Napi::RangeError::New(env, "rmsnormForward: residualOut may be null only when x is null");
  float* rstd = arg_dev<float>(info, 5, "rmsnormForward rstd", Tn);
  if (Tn == 0) return env.Undefined();
  const unsigned grid = (unsigned)((Tn + 7) / 8);
  by_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto launch = [&](auto vpl) {
      launch_pdl(rms_fwd<T, decltype(vpl)::value>, grid, TPB, 0, (const T*)x, res, w, (T*)out, rout, rstd, Tn, D,
                 (float)eps);
    };
    const auto launch_vec = [&](auto v4) {
      launch_pdl(rms_fwd_vec<T, decltype(v4)::value>, grid, TPB, 0, (const T*)x, res, w, (T*)out, rout, rstd, Tn, D,
                 (float)eps);
    };
    if (D >= 4 && D % 4 == 0 && D <= 32 * 32 && aligned16(x) && aligned16(res) && aligned16(w) && aligned16(out) &&
        aligned16(rout)) {
      if (D <= 128 * 2)
        launch_vec(std::integral_constant<int, 2>{});
      else if (D <= 128 * 4)
        launch_vec(std::integral_constant<int, 4>{});
      else if (D <= 128 * 6)
        launch_vec(std::integral_constant<int, 6>{});
      else
        launch_vec(std::integral_constant<int, 8>{});
    } else if (D <= 32 * 8)
      launch(std::integral_constant<int, 8>{});
    else if (D <= 32 * 16)
      launch(std::integral_constant<int, 16>{});
    else if (D <= 32 * 32)
      launch(std::integral_constant<int, 32>{});
    else
      launch(std::integral_constant<int, 0>{});
  });
  check_launch(env, "rmsnormForward");
  return env.Undefined();
}

// cuda.rmsnormBackward(dOut, dResidualOut|null, residualOut, w, rstd, dR, dW acc, T, D, dOutDtype [, dRAct|null]):
// dRAct, in dOut's dtype, receives dR too (the next block's products read it).
MAMBA_OP(cuda, rmsnormBackward) {
  Napi::Env env = info.Env();
  const int64_t Tn = arg_int(info, 7, "rmsnormBackward T"), D = arg_int(info, 8, "rmsnormBackward D");
  nonneg(info, "rmsnormBackward", {Tn, D});
  const DT dt = arg_dtype(info, 9, "rmsnormBackward");
  const void* g = arg_dev_dt(info, 0, "rmsnormBackward dOut", dt, Tn * D);
  const float* dres = arg_dev_opt<float>(info, 1, "rmsnormBackward dResidualOut", Tn * D);
  const float* r = arg_dev<float>(info, 2, "rmsnormBackward residualOut", Tn * D);
  const float* w = arg_dev<float>(info, 3, "rmsnormBackward w", D);
  const float* rstd = arg_dev<float>(info, 4, "rmsnormBackward rstd", Tn);
  float* dR = arg_dev<float>(info, 5, "rmsnormBackward dR", Tn * D);
  float* dW = arg_dev<float>(info, 6, "rmsnormBackward dW", D);
  void* dRAct = info.Length() > 10 ? arg_dev_dt_opt(info, 10, "rmsnormBackward dRAct", dt, Tn * D) : nullptr;
  if (Tn == 0 || D == 0) return env.Undefined();
  const bool vec = D % 4 == 0 && D <= 128 * 6 && aligned16(g) && aligned16(dres) && aligned16(r) && aligned16(w) &&
                   aligned16(dR) && aligned16(dRAct);
  by_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (vec) {
      const unsigned grid = (unsigned)std::min<int64_t>((Tn + 7) / 8, 2 * (int64_t)sm_count());
      const auto launch = [&](auto v4) {
        rms_bwd_vec<T, decltype(v4)::value>
            <<<grid, TPB, 0, cuda_stream()>>>((const T*)g, dres, r, w, rstd, dR, (T*)dRAct, dW, Tn, D);
      };
      if (D <= 128 * 2)
        launch(std::integral_constant<int, 2>{});
      else if (D <= 128 * 4)
        launch(std::integral_constant<int, 4>{});
      else
        launch(std::integral_constant<int, 6>{});
    } else {
      const unsigned grid = (unsigned)((Tn + 7) / 8), cb = (unsigned)((D + 31) / 32);
      rms_bwd<T><<<grid, TPB, 0, cuda_stream()>>>((const T*)g, dres, r, w, rstd, dR, (T*)dRAct, Tn, D);
      rms_dw<T><<<dim3(cb, row_splits(Tn, cb)), dim3(32, 8), 0, cuda_stream()>>>((const T*)g, r, rstd, dW, Tn, D);
    }
  });
  check_launch(env, "rmsnormBackward");
  return env.Undefined();
}

// The conv ops take one argument object (fields: native/KERNELS.md; read by native/src/conv_args.h, as their CPU
// twins do); dtype ('f32' | 'bf16') is that of x, out, dOut and dx; w, bias, dw, dbias and convState are f32.
template <class T>
ConvInputs<T, float> read_cuda_conv(const ArgObject& a, bool step) {
  const int64_t K = a.integer("K");
  a.require(K >= 1 && K <= kCudaConvMaxTaps,
            "K must be 1.." + std::to_string(kCudaConvMaxTaps) + ", got " + std::to_string(K));
  const ConvInputs<T, float> c = read_conv_inputs<T, float>(a, DeviceFetch{}, step);
  a.require(c.B <= 65535, "at most 65535 sequences per call");
  return c;
}

template <class T>
void run_conv_forward(const ArgObject& a) {
  const ConvInputs<T, float> c = read_cuda_conv<T>(a, false);
  const int64_t Tn = c.B * c.L;
  T* out = DeviceFetch{}.get<T>(a, "out", Tn * c.D);
  a.finish();
  if (Tn * c.D == 0) return;
  const int V = conv_lanes(c.D, c.K, {{c.x, c.xStride}, {out, c.D}}, sizeof(T));
  with_1_to_8((int)c.K, [&](auto kc) {
    constexpr int KK = decltype(kc)::value;
    const auto launch = [&](auto kernel, int v) {
      const ConvGrid g = conv_grid(c.B, c.L, c.D, v, CONV_FWD_RY, CONV_FWD_TL, (const void*)kernel);
      kernel<<<g.grid, dim3(CONV_CX, CONV_FWD_RY), 0, cuda_stream()>>>(c.x, c.xStride, c.w, c.bias, out, (int)c.L,
                                                                       (int)c.D, g.TL, c.silu);
    };
    if constexpr (KK <= 4) {  // (conv_lanes gives wider windows 1)
      if (V == 4) return launch(conv_fwd<T, KK, 4>, 4);
    }
    launch(conv_fwd<T, KK, 1>, 1);
  });
  check_launch(a.env(), "conv1dForward");
}

template <class T>
void run_conv_backward(const ArgObject& a) {
  const ConvInputs<T, float> c = read_cuda_conv<T>(a, false);
  const ConvGradients<T, float> g = read_conv_gradients<T, float>(a, DeviceFetch{}, c);
  a.finish();
  const int64_t Tn = c.B * c.L;
  if (Tn * c.D == 0) return;
  const int V = conv_lanes(c.D, c.K, {{c.x, c.xStride}, {g.dOut, c.D}, {g.dx, g.dxStride}}, sizeof(T));
  with_1_to_8((int)c.K, [&](auto kc) {
    constexpr int KK = decltype(kc)::value;
    const auto launch = [&](auto kernel, int v) {
      const ConvGrid cg = conv_grid(c.B, c.L, c.D, v, CONV_BWD_RY, CONV_BWD_TL, (const void*)kernel);
      kernel<<<cg.grid, dim3(CONV_CX, CONV_BWD_RY), 0, cuda_stream()>>>(
          c.x, c.xStride, c.w, c.bias, g.dOut, g.dx, g.dxStride, g.dw, g.dbias, (int)c.L, (int)c.D, cg.TL, c.silu);
    };
    if constexpr (KK <= 4) {  // (conv_lanes gives wider windows 1)
      if (V == 4) return launch(conv_bwd<T, KK, 4>, 4);
    }
    launch(conv_bwd<T, KK, 1>, 1);
  });
  check_launch(a.env(), "conv1dBackward");
}

template <class T>
void run_conv_step(const ArgObject& a) {
  const ConvInputs<T, float> c = read_cuda_conv<T>(a, true);
  float* st = DeviceFetch{}.get<float>(a, "convState", c.B * c.D * c.K);
  T* out = DeviceFetch{}.get<T>(a, "out", c.B * c.D);
  a.finish();
  if (c.B * c.D == 0) return;
  const unsigned grid = (unsigned)((c.B * c.D + TPB - 1) / TPB);
  with_1_to_8((int)c.K, [&](auto kc) {
    launch_pdl(conv_step<T, decltype(kc)::value>, grid, TPB, 0, st, c.x, c.xStride, c.w, c.bias, out, (int)c.B, c.D,
               c.silu);
  });
  check_launch(a.env(), "conv1dStep");
}

// The conv ops' argument object (native/src/conv_args.h) names their dtype.
MAMBA_OP(cuda, conv1dForward) {
  return dtype_op(info, "conv1dForward",
                  [](auto t, const ArgObject& a) { run_conv_forward<typename decltype(t)::type>(a); });
}
MAMBA_OP(cuda, conv1dBackward) {
  return dtype_op(info, "conv1dBackward",
                  [](auto t, const ArgObject& a) { run_conv_backward<typename decltype(t)::type>(a); });
}
MAMBA_OP(cuda, conv1dStep) {
  return dtype_op(info, "conv1dStep", [](auto t, const ArgObject& a) { run_conv_step<typename decltype(t)::type>(a); });
}

// cuda.crossEntropyForward(logits[T,V], targets i32[T], losses f32[T], dLogits|null, T, V, gradScale, ignoreIndex,
//   checkTargets [, dtype of logits and dLogits]). checkTargets false: the caller checked the targets on the host, and
//   nothing waits for the kernel (a target out of range still only gets a NaN loss); true reads the kernel's flag
//   back, which waits for the whole forward queued before it (score's passes then could not overlap the host work).
MAMBA_OP(cuda, crossEntropyForward) {
  Napi::Env env = info.Env();
  const int64_t Tn = arg_int(info, 4, "crossEntropyForward T"), V = arg_int(info, 5, "crossEntropyForward V");
  const double gs = arg_num(info, 6, "crossEntropyForward gradScale");
  const int64_t ignore = arg_present(info, 7) ? arg_int(info, 7, "crossEntropyForward ignoreIndex") : -1;
  const bool check = !arg_present(info, 8) || info[8].ToBoolean().Value();
  nonneg(info, "crossEntropyForward", {Tn, V});
  if (V < 1) throw Napi::RangeError::New(env, "crossEntropyForward: V must be >= 1");
  const DT dt = arg_dtype(info, 9, "crossEntropyForward");
  const void* logits = arg_dev_dt(info, 0, "crossEntropyForward logits", dt, Tn * V);
  const int32_t* tg = arg_dev<int32_t>(info, 1, "crossEntropyForward targets", Tn);
  float* losses = arg_dev<float>(info, 2, "crossEntropyForward losses", Tn);
  void* dl = arg_dev_dt_opt(info, 3, "crossEntropyForward dLogits", dt, Tn * V);
  if (Tn == 0) return env.Undefined();
  int* bad = bad_flag(env);
  reset_flag(env, bad);
  const unsigned grid = (unsigned)std::min<int64_t>(Tn, 65535 * 4);
  BY_DTYPE(dt, (xent<T><<<grid, TPB, 0, cuda_stream()>>>((const T*)logits, tg, losses, (T*)dl, Tn, V, (float)gs,
                                                         (int)ignore, bad)));
  check_launch(env, "crossEntropyForward");
  const int64_t t = check ? read_flag(env, bad) : -1;
  if (t >= 0)
    throw Napi::RangeError::New(env, "crossEntropyForward: the target at position " + std::to_string(t) +
                                         " is outside 0.." + std::to_string(V - 1));
  return env.Undefined();
}

// cuda.poolForward(x[B*L,D], out[B,D], B, L, D, mode 0 mean | 1 last [, dtype of x and out])
MAMBA_OP(cuda, poolForward) {
  Napi::Env env = info.Env();
  const int64_t B = arg_int(info, 2, "poolForward B"), L = arg_int(info, 3, "poolForward L"),
                D = arg_int(info, 4, "poolForward D");
  const int64_t mode = arg_int(info, 5, "poolForward mode");
  nonneg(info, "poolForward", {B, L, D});
  if (mode != 0 && mode != 1) throw Napi::RangeError::New(env, "poolForward: mode must be 0 (mean) or 1 (last)");
  if (L < 1) throw Napi::RangeError::New(env, "poolForward: L must be >= 1");
  if (B > 65535) throw Napi::RangeError::New(env, "poolForward: B must be <= 65535 on CUDA");
  const DT dt = arg_dtype(info, 6, "poolForward");
  const void* x = arg_dev_dt(info, 0, "poolForward x", dt, B * L * D);
  void* out = arg_dev_dt(info, 1, "poolForward out", dt, B * D);
  if (B * D == 0) return env.Undefined();
  cudaStream_t st = cuda_stream();
  if (mode == 1) {
    BY_DTYPE(dt, (pool_last<T>
                  <<<(unsigned)((B * D + TPB - 1) / TPB), TPB, 0, st>>>((const T*)x, (T*)out, (int)B, (int)L, D)));
  } else {
    // f32 partial sums over slices of L (enough blocks to fill the GPU), then their sum in slice order
    const unsigned db = (unsigned)((D + 127) / 128);
    const unsigned slices = (unsigned)std::max<int64_t>(
        1, std::min<int64_t>((L + 255) / 256, (int64_t)sm_count() * 8 / std::max<int64_t>(1, db * B)));
    float* part = (float*)scratch(env, sizeof(float) * slices * B * D);
    BY_DTYPE(dt,
             (pool_mean_part<T><<<dim3(db, slices, (unsigned)B), 128, 0, st>>>((const T*)x, part, (int)B, (int)L, D)));
    BY_DTYPE(dt, (pool_mean_sum<T><<<grid_for(B * D), TPB, 0, st>>>(part, (T*)out, (int)slices, B * D, (int)L)));
  }
  check_launch(env, "poolForward");
  return env.Undefined();
}

// cuda.poolBackward(dOut[B,D], dx[B*L,D], B, L, D, mode [, dtype])
MAMBA_OP(cuda, poolBackward) {
  Napi::Env env = info.Env();
  const int64_t B = arg_int(info, 2, "poolBackward B"), L = arg_int(info, 3, "poolBackward L"),
                D = arg_int(info, 4, "poolBackward D");
  const int64_t mode = arg_int(info, 5, "poolBackward mode");
  nonneg(info, "poolBackward", {B, L, D});
  if (mode != 0 && mode != 1) throw Napi::RangeError::New(env, "poolBackward: mode must be 0 (mean) or 1 (last)");
  if (L < 1) throw Napi::RangeError::New(env, "poolBackward: L must be >= 1");
  const DT dt = arg_dtype(info, 6, "poolBackward");
  const void* g = arg_dev_dt(info, 0, "poolBackward dOut", dt, B * D);
  void* dx = arg_dev_dt(info, 1, "poolBackward dx", dt, B * L * D);
  if (B * L * D == 0) return env.Undefined();
  BY_DTYPE(dt, (pool_bwd<T>
                <<<grid_for(B * L * D), TPB, 0, cuda_stream()>>>((const T*)g, (T*)dx, (int)B, (int)L, D, (int)mode)));
  check_launch(env, "poolBackward");
  return env.Undefined();
}

// cuda.adamwStep({ param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale?, bf16Copy? }) -- f32
// master weights; when bf16Copy (a bf16 buffer of n) is given it receives the updated weights for bf16 matmuls.
MAMBA_OP(cuda, adamwStep) {
  Napi::Env env = info.Env();
  const ArgObject a(info, 0, "adamwStep");
  const DeviceFetch f;
  const int64_t n = a.integer("n");
  a.require(n >= 0, "n must be >= 0");
  const AdamwHyper h = read_adamw_hyper(a);
  const double wd = a.number("weightDecay");
  float* p = f.get<float>(a, "param", n);
  const float* g = f.get<const float>(a, "grad", n);
  float* m = f.get<float>(a, "m", n);
  float* v = f.get<float>(a, "v", n);
  auto* copy = f.opt<__nv_bfloat16>(a, "bf16Copy", n);
  a.finish();
  if (n == 0) return env.Undefined();
  adamw<<<grid_for(n), TPB, 0, cuda_stream()>>>(p, g, m, v, n, adamw_k(h), (float)wd, copy);
  check_launch(env, "adamwStep");
  return env.Undefined();
}

// cuda.sumSquares(x, n [, dtype]) -> number (double accumulation; synchronises)
MAMBA_OP(cuda, sumSquares) {
  Napi::Env env = info.Env();
  const int64_t n = arg_int(info, 1, "sumSquares n");
  nonneg(info, "sumSquares", {n});
  const DT dt = arg_dtype(info, 2, "sumSquares");
  const void* x = arg_dev_dt(info, 0, "sumSquares x", dt, n);
  if (n == 0) return Napi::Number::New(env, 0);
  double* acc = zeroed_scratch_double(env, "sumSquares");
  const int grid = std::min<int>(grid_for(n), sm_count() * 8);
  if (dt == DT::F32)
    sumsq<float><<<grid, TPB, 0, cuda_stream()>>>((const float*)x, n, acc);
  else
    sumsq<__nv_bfloat16><<<grid, TPB, 0, cuda_stream()>>>((const __nv_bfloat16*)x, n, acc);
  check_launch(env, "sumSquares");
  return Napi::Number::New(env, read_scratch_double(env, acc, "sumSquares"));
}

// cuda.scale(x, n, s [, dtype]) in place
MAMBA_OP(cuda, scale) {
  const int64_t n = arg_int(info, 1, "scale n");
  nonneg(info, "scale", {n});
  const DT dt = arg_dtype(info, 3, "scale");
  void* x = arg_dev_dt(info, 0, "scale x", dt, n);
  const float s = (float)arg_num(info, 2, "scale s");
  if (n == 0) return info.Env().Undefined();
  if (dt == DT::F32)
    scale_k<float><<<grid_for(n), TPB, 0, cuda_stream()>>>((float*)x, n, s);
  else
    scale_k<__nv_bfloat16><<<grid_for(n), TPB, 0, cuda_stream()>>>((__nv_bfloat16*)x, n, s);
  check_launch(info.Env(), "scale");
  return info.Env().Undefined();
}

// cuda.add(a, b, out, n [, dtype]) -- out may alias a
MAMBA_OP(cuda, add) {
  const int64_t n = arg_int(info, 3, "add n");
  nonneg(info, "add", {n});
  const DT dt = arg_dtype(info, 4, "add");
  const void* a = arg_dev_dt(info, 0, "add a", dt, n);
  const void* b = arg_dev_dt(info, 1, "add b", dt, n);
  void* o = arg_dev_dt(info, 2, "add out", dt, n);
  if (n == 0) return info.Env().Undefined();
  if (dt == DT::F32)
    add_k<float><<<grid_for(n), TPB, 0, cuda_stream()>>>((const float*)a, (const float*)b, (float*)o, n);
  else
    add_k<__nv_bfloat16><<<grid_for(n), TPB, 0, cuda_stream()>>>((const __nv_bfloat16*)a, (const __nv_bfloat16*)b,
                                                                 (__nv_bfloat16*)o, n);
  check_launch(info.Env(), "add");
  return info.Env().Undefined();
}

// cuda.fill(x, n, value [, dtype])
MAMBA_OP(cuda, fill) {
  const int64_t n = arg_int(info, 1, "fill n");
  nonneg(info, "fill", {n});
  const DT dt = arg_dtype(info, 3, "fill");
  void* x = arg_dev_dt(info, 0, "fill x", dt, n);
  const float v = (float)arg_num(info, 2, "fill value");
  if (n == 0) return info.Env().Undefined();
  if (dt == DT::F32)
    fill_k<float><<<grid_for(n), TPB, 0, cuda_stream()>>>((float*)x, n, v);
  else
    fill_k<__nv_bfloat16><<<grid_for(n), TPB, 0, cuda_stream()>>>((__nv_bfloat16*)x, n, v);
  check_launch(info.Env(), "fill");
  return info.Env().Undefined();
}

// cuda.negExp(x, out, n): out = -exp(x) (f32; the mixer's A from A_log without a host round trip)
MAMBA_OP(cuda, negExp) {
  const int64_t n = arg_int(info, 2, "negExp n");
  nonneg(info, "negExp", {n});
  const float* x = arg_dev<float>(info, 0, "negExp x", n);
  float* o = arg_dev<float>(info, 1, "negExp out", n);
  if (n == 0) return info.Env().Undefined();
  neg_exp_k<<<grid_for(n), TPB, 0, cuda_stream()>>>(x, o, n);
  check_launch(info.Env(), "negExp");
  return info.Env().Undefined();
}

// cuda.addProduct(a, b, out, n): out += a * b (f32)
MAMBA_OP(cuda, addProduct) {
  const int64_t n = arg_int(info, 3, "addProduct n");
  nonneg(info, "addProduct", {n});
  const float* a = arg_dev<float>(info, 0, "addProduct a", n);
  const float* b = arg_dev<float>(info, 1, "addProduct b", n);
  float* o = arg_dev<float>(info, 2, "addProduct out", n);
  if (n == 0) return info.Env().Undefined();
  add_product_k<<<grid_for(n), TPB, 0, cuda_stream()>>>(a, b, o, n);
  check_launch(info.Env(), "addProduct");
  return info.Env().Undefined();
}
