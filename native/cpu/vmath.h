// Vectorisable float exp / log1p / sigmoid: straight-line code (no calls, no branches) that GCC turns
// into AVX2 inside loops over contiguous data. Double keeps the libm functions (gradient checks).
#pragma once
// no-trapping-math lets GCC if-convert the selects below (float compares may trap otherwise) so the
// loops vectorise. no-tree-loop-distribute-patterns keeps short row copies as vector moves: GCC turned
// them into memmove calls, and glibc's memmove (rep movsb) took ~250 cycles per 256-byte row on this
// AMD machine, three quarters of the scan's time.
#pragma GCC optimize("no-trapping-math", "no-tree-loop-distribute-patterns")
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mamba {

// exp(x) for float: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 Taylor polynomial (truncation
// < 1e-8 relative), 2^n put into the exponent bits. x < -87 gives 0 (no denormals), x > 88 is clamped.
inline float vexp(float x) {
  float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693145751953125f;  // ln2 split hi/lo so n*ln2 is exact enough
  r = r - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  float v = p * scale;
  return x < -87.0f ? 0.0f : v;
}
inline double vexp(double x) { return std::exp(x); }

// log(u) for u in [1, 2]: u = m 2^e with m in [1, sqrt2) (e = 0) or m = u/2 (e = 1);
// log m = 2 atanh(f), f = (m-1)/(m+1), |f| < 0.172, odd series to f^9.
inline float vlog_1_2(float u) {
  bool big = u > 1.41421356f;
  float m = big ? u * 0.5f : u;
  float f = (m - 1.0f) / (m + 1.0f), f2 = f * f;
  float s = 1.0f / 9.0f;
  s = s * f2 + 1.0f / 7.0f;
  s = s * f2 + 1.0f / 5.0f;
  s = s * f2 + 1.0f / 3.0f;
  s = s * f2 + 1.0f;
  return 2.0f * f * s + (big ? 0.693147180559945f : 0.0f);
}

// softplus(x) = max(x, 0) + log1p(exp(-|x|)); log1p(y) = log(1+y) * y / ((1+y) - 1) keeps the
// relative accuracy for tiny y (Goldberg's trick).
inline float vsoftplus(float x) {
  float y = vexp(-std::fabs(x));
  float u = 1.0f + y;
  float d = u - 1.0f;
  float l = d == 0.0f ? y : vlog_1_2(u) * (y / d);
  return (x > 0.0f ? x : 0.0f) + l;
}
inline double vsoftplus(double x) { return (x > 0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))); }

inline float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }
inline double vsigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace mamba
