// sampleTokens: the next token of every row of logits [B, Vp] chosen on the device (greedy, temperature, top-k,
// top-p; seeded), so generation copies B int32 tokens to the host per step instead of B x Vp logits. The
// scalar math is native/src/sample.h, shared with the CPU twin (native/cpu/sample.cc): for the same seed both
// give the same tokens (top-p up to the order of its mass sums). One block per row; nothing is sorted: the top-k
// threshold is a radix select over the ordered float keys (4 histogram passes over the row, which stays in L2),
// the top-p one a bit-by-bit search over the same keys (32 mass passes).
#include "common.cuh"
#include "../src/sample_args.h"

namespace mamba {
namespace {

constexpr int ST = 512, SW = ST / 32;

__device__ __forceinline__ float block_sum(float x, float* sh) {
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) x += __shfl_xor_sync(0xffffffffu, x, m);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = x;
  __syncthreads();
  float t = 0.f;
#pragma unroll
  for (int w = 0; w < SW; w++) t += sh[w];
  __syncthreads();
  return t;
}
__device__ __forceinline__ float block_max(float x, float* sh) {
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, m));
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = x;
  __syncthreads();
  float t = sh[0];
#pragma unroll
  for (int w = 1; w < SW; w++) t = fmaxf(t, sh[w]);
  __syncthreads();
  return t;
}
// the best (score, index) pair of the block, on every thread
__device__ __forceinline__ void block_best(float& s, int& v, float* shs, int* shv) {
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) {
    const float os = __shfl_xor_sync(0xffffffffu, s, m);
    const int ov = __shfl_xor_sync(0xffffffffu, v, m);
    if (ov >= 0 && sample_better(os, ov, s, v)) s = os, v = ov;
  }
  if ((threadIdx.x & 31) == 0) shs[threadIdx.x >> 5] = s, shv[threadIdx.x >> 5] = v;
  __syncthreads();
  s = shs[0];
  v = shv[0];
#pragma unroll
  for (int w = 1; w < SW; w++)
    if (shv[w] >= 0 && sample_better(shs[w], shv[w], s, v)) s = shs[w], v = shv[w];
  __syncthreads();
}

// The k-th largest key of a row (k in 1..V-1): a radix select over 8-bit digits from the top, one shared-memory
// histogram pass per digit (4 passes; integer counts, so the order of the atomics does not matter). The same key as
// the twin's bit-by-bit search: the largest t with at least k keys >= t.
template <class L>
__device__ uint32_t kth_largest_key(const L* row, int V, int k, int* hist, int* sh) {
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += ST) hist[i] = 0;
    __syncthreads();
    // the keys of a row crowd into few digits (the top byte of most logits is one of two or three), so the lanes of
    // a warp that share a digit add their count once (a loop uniform over the warp: __match_any_sync needs every lane)
    for (int v0 = 0; v0 < V; v0 += ST) {
      const int v = v0 + (int)threadIdx.x;
      int digit = 256;  // none
      if (v < V) {
        const uint32_t key = sample_key(sample_ftz(ldf(row, v)));
        if ((key & mask) == prefix) digit = (int)((key >> shift) & 255);
      }
      const unsigned same = __match_any_sync(0xffffffffu, digit);
      if (digit < 256 && (threadIdx.x & 31) == __ffs(same) - 1) atomicAdd(&hist[digit], __popc(same));
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // the digit of the k-th largest among the keys with this prefix
      int above = 0, d = 255;
      for (; d > 0 && above + hist[d] < k; d--) above += hist[d];
      sh[0] = d;
      sh[1] = k - above;
    }
    __syncthreads();
    prefix |= (uint32_t)sh[0] << shift;
    mask |= 255u << shift;
    k = sh[1];
    __syncthreads();  // sh and hist are rewritten by the next pass
  }
  return prefix;
}

// f(v, logit of v) for this thread's tokens v = tid, tid + ST, ... < V, in that order. The logits of RG tokens are
// loaded together (clamped indices, no branch) before f sees them: a plain loop waited for each load, about 100
// dependent round trips to L2 per pass over a 50,280-token row.
constexpr int RG = 8;
template <class L, class F>
__device__ __forceinline__ void for_row(const L* row, int V, F&& f) {
  for (int v0 = threadIdx.x; v0 < V; v0 += RG * ST) {
    float l[RG];
#pragma unroll
    for (int u = 0; u < RG; u++) l[u] = sample_ftz(ldf(row, min(v0 + u * ST, V - 1)));
#pragma unroll
    for (int u = 0; u < RG; u++)
      if (v0 + u * ST < V) f(v0 + u * ST, l[u]);
  }
}

template <class L>
__global__ void __launch_bounds__(ST)
    sample_rows(const L* __restrict__ logits, const float* __restrict__ params, const int32_t* __restrict__ seeds,
                int32_t* __restrict__ steps, int32_t* __restrict__ tokens, int V, int64_t Vp) {
  pdl_wait();
  pdl_trigger();
  __shared__ int shi[SW];
  __shared__ float shf[SW];
  __shared__ int hist[256];
  const int b = blockIdx.x, tid = threadIdx.x;
  const L* row = logits + (int64_t)b * Vp;
  const float T = params[0], topP = params[2];
  const int topK = (int)params[1];
  const float invT = T > 0 ? sample_div(1.0f, T) : 0.0f;
  const bool greedy = !(T > 0) || (sample_bits(invT) & 0x7f800000u) == 0x7f800000u;
  const uint32_t seed = (uint32_t)seeds[b], step = (uint32_t)steps[b];
  float bs = 0.f;
  int bv = -1;
  if (greedy) {
    for_row(row, V, [&](int v, float l) {
      if (sample_better(l, v, bs, bv)) bs = l, bv = v;
    });
  } else {
    uint32_t thr = 0;  // keys below it are cut
    if (topK > 0 && topK < V) thr = kth_largest_key(row, V, topK, hist, shi);
    if (topP < 1.f) {
      float mx = -INFINITY;
      for_row(row, V, [&](int, float l) {
        if (sample_key(l) >= thr) mx = fmaxf(mx, l);
      });
      mx = block_max(mx, shf);
      const auto weight = [&](float l, uint32_t cut) { return sample_key(l) >= cut ? __expf((l - mx) * invT) : 0.f; };
      float total = 0.f;
      for_row(row, V, [&](int, float l) { total += weight(l, thr); });
      const float target = topP * block_sum(total, shf);
      uint32_t t = 0;  // the largest key whose tokens at or above it hold the mass topP
      for (int bit = 31; bit >= 0; bit--) {
        const uint32_t c = t | (1u << bit), cut = max(c, thr);
        float m = 0.f;
        for_row(row, V, [&](int, float l) { m += weight(l, cut); });
        if (block_sum(m, shf) >= target) t = c;
      }
      thr = max(t, thr);
    }
    for_row(row, V, [&](int v, float l) {
      if (sample_key(l) < thr) return;
      const float s = sample_score(l, invT, seed, step, (uint32_t)v);
      if (sample_better(s, v, bs, bv)) bs = s, bv = v;
    });
  }
  block_best(bs, bv, shf, shi);  // its barriers also order every thread's read of steps[b] before the write
  if (tid == 0) {
    tokens[b] = bv < 0 ? 0 : bv;
    steps[b] = (int32_t)(step + 1);
  }
}

}  // namespace
}  // namespace mamba

using namespace mamba;

// cuda.sampleTokens({ logits, params, seeds, steps, tokens, B, V, Vp, dtype? }): fields in native/src/sample_args.h;
// dtype ('f32' | 'bf16') is that of logits, the rest are f32 (params) and i32.
MAMBA_OP(cuda, sampleTokens) {
  return dtype_op(info, "sampleTokens", [](auto t, const ArgObject& a) {
    using L = typename decltype(t)::type;
    const SampleArgs<L> r = read_sample<L>(a, DeviceFetch{});
    a.finish();
    launch_pdl(sample_rows<L>, (unsigned)r.B, ST, 0, r.logits, r.params, r.seeds, r.steps, r.tokens, (int)r.V, r.Vp);
    check_launch(a.env(), "sampleTokens");
  });
}
