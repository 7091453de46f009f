// Next-token choice on logits [B, Vp] (native/cuda/sample.cu and its CPU twin native/cpu/sample.cc): the scalar
// math both sides share, written so that they give bit-identical tokens for the same seed.
//
// Sampling is the Gumbel-max trick: token = argmax over the allowed set of fmaf(logit, 1/T, g_v) with
// g_v = -log(-log(u_v)) and u_v from a counter-based hash of (seed, step, v). Every float operation here is
// one IEEE operation that both sides round the same way: explicit fmaf, the device's _rn intrinsics (the
// CUDA build uses --use_fast_math, whose plain `/` is approximate and whose `a * b + c` may fuse), and the
// log is our own polynomial rather than libm's or CUDA's logf. Denormals are flushed to zero on both sides
// (the device flushes them under fast math). top-k keeps every token whose logit is >= the k-th largest
// (found exactly, bit by bit over ordered float keys); top-p keeps the top tokens whose probability mass
// first reaches p (its mass sums differ in order between the sides, so it is exact only up to rounding).
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define MAMBA_HD __host__ __device__ __forceinline__
#else
#define MAMBA_HD inline
#endif

namespace mamba {

// the sampling parameters as the ops read them from a device (or host) array of 4 floats, so a captured CUDA
// graph serves any settings: temperature (0: greedy), top-k (0: all; an integer), top-p (1: all), unused
constexpr int kSampleParams = 4;

MAMBA_HD uint32_t sample_bits(float x) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
#endif
}
MAMBA_HD float sample_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, 4);
  return x;
#endif
}
MAMBA_HD float sample_fma(float a, float b, float c) {
#ifdef __CUDA_ARCH__
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}
MAMBA_HD float sample_mul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
MAMBA_HD float sample_add(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
MAMBA_HD float sample_div(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
// denormals to (signed) zero, as the device does under fast math
MAMBA_HD float sample_ftz(float x) {
  return (sample_bits(x) & 0x7f800000u) == 0 ? sample_float(sample_bits(x) & 0x80000000u) : x;
}

// A float's bits as an unsigned key in the float order (-inf lowest, +inf highest); NaN ranks below -inf so that
// it is never chosen.
MAMBA_HD uint32_t sample_key(float x) {
  const uint32_t u = sample_bits(sample_ftz(x));
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// 32-bit integer mix (a xorshift-multiply finaliser): a counter-based generator, no state between calls
MAMBA_HD uint32_t sample_mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
MAMBA_HD uint32_t sample_hash(uint32_t seed, uint32_t step, uint32_t v) {
  return sample_mix(v ^ sample_mix(step + 0x9e3779b9u * sample_mix(seed ^ 0x85ebca6bu)));
}

// log(x) for a positive normal x: x = m 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s),
// s = (m - 1) / (m + 1), |s| <= 0.172, by its series to s^9 (relative error below 1e-7)
MAMBA_HD float sample_log(float x) {
  const uint32_t u = sample_bits(x);
  int e = (int)((u >> 23) & 0xff) - 127;
  uint32_t mb = (u & 0x007fffffu) | 0x3f800000u;  // m in [1, 2)
  if (mb > 0x3fb504f3u) {                         // m > sqrt(2): halve it
    mb -= 0x00800000u;
    e += 1;
  }
  const float m = sample_float(mb);
  const float f = sample_add(m, -1.0f);  // exact
  const float s = sample_div(f, sample_add(m, 1.0f));
  const float z = sample_mul(s, s);
  float p = sample_fma(z, 1.0f / 9.0f, 1.0f / 7.0f);
  p = sample_fma(z, p, 1.0f / 5.0f);
  p = sample_fma(z, p, 1.0f / 3.0f);
  p = sample_fma(z, p, 1.0f);
  const float r = sample_mul(sample_add(s, s), p);
  return sample_fma((float)e, 0.693147180559945f, r);
}

// The Gumbel noise of vocabulary entry v: -log(-log(u)), u in (0, 1): an odd multiple of 2^-24 (24 bits, so the
// conversion is exact and u never rounds to 1)
MAMBA_HD float sample_gumbel(uint32_t seed, uint32_t step, uint32_t v) {
  const uint32_t h = sample_hash(seed, step, v);
  const float u = sample_mul((float)((h >> 8) | 1u), 1.0f / 16777216.0f);
  return -sample_log(-sample_log(u));
}

// The perturbed score of a logit: logit / T + g, with invT = 1 / T as the host computes it (fp32)
MAMBA_HD float sample_score(float logit, float invT, uint32_t seed, uint32_t step, uint32_t v) {
  return sample_ftz(sample_fma(sample_ftz(logit), invT, sample_gumbel(seed, step, v)));
}

// (score, index) pairs: the larger score wins, ties go to the lower index, so any reduction order agrees
MAMBA_HD bool sample_better(float s, int v, float best, int bv) {
  return s > best || (s == best && v < bv) || (bv < 0 && s == s);
}

}  // namespace mamba
