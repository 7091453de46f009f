// A minimal SIMD pack for the scan: F8 (8 floats in an AVX2 register) where the build has AVX2, else
// the scalar type itself (double always: it serves the gradient checks). Kernels are written once
// against ld/st/bc/fma/vexp/... and PackOf<T>::W lanes.
#pragma once
#include "vmath.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace mamba {

template <class T>
struct PackOf {
  using P = T;
  static constexpr int W = 1;
};

// scalar ops
inline void st(float* p, float v) { *p = v; }
inline void st(double* p, double v) { *p = v; }
inline float fmadd(float a, float b, float c) { return a * b + c; }
inline double fmadd(double a, double b, double c) { return a * b + c; }
inline float hsum(float a) { return a; }
inline double hsum(double a) { return a; }

#ifdef __AVX2__
struct F8 {
  __m256 v;
};
template <>
struct PackOf<float> {
  using P = F8;
  static constexpr int W = 8;
};
inline F8 operator+(F8 a, F8 b) { return {_mm256_add_ps(a.v, b.v)}; }
inline F8 operator-(F8 a, F8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline F8 operator*(F8 a, F8 b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline F8 operator/(F8 a, F8 b) { return {_mm256_div_ps(a.v, b.v)}; }
inline F8& operator+=(F8& a, F8 b) {
  a.v = _mm256_add_ps(a.v, b.v);
  return a;
}
inline F8 fmadd(F8 a, F8 b, F8 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline void st(float* p, F8 v) { _mm256_storeu_ps(p, v.v); }
inline float hsum(F8 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Same algorithm as the scalar vexp(float) in vmath.h.
inline F8 vexp(F8 x) {
  __m256 xc = _mm256_min_ps(_mm256_max_ps(x.v, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 v = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return {_mm256_andnot_ps(_mm256_cmp_ps(x.v, _mm256_set1_ps(-87.0f), _CMP_LT_OQ), v)};
}
inline F8 vsigmoid(F8 x) {
  __m256 one = _mm256_set1_ps(1.0f);
  F8 e = vexp(F8{_mm256_sub_ps(_mm256_setzero_ps(), x.v)});
  return {_mm256_div_ps(one, _mm256_add_ps(one, e.v))};
}
inline F8 vsoftplus(F8 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x.v);
  __m256 y = vexp(F8{_mm256_sub_ps(_mm256_setzero_ps(), ax)}).v;
  __m256 u = _mm256_add_ps(one, y), d = _mm256_sub_ps(u, one);
  // log(u), u in [1, 2]
  __m256 big = _mm256_cmp_ps(u, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
  __m256 m = _mm256_blendv_ps(u, _mm256_mul_ps(u, _mm256_set1_ps(0.5f)), big);
  __m256 f = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one)), f2 = _mm256_mul_ps(f, f);
  __m256 s = _mm256_set1_ps(1.0f / 9.0f);
  s = _mm256_fmadd_ps(s, f2, _mm256_set1_ps(1.0f / 7.0f));
  s = _mm256_fmadd_ps(s, f2, _mm256_set1_ps(1.0f / 5.0f));
  s = _mm256_fmadd_ps(s, f2, _mm256_set1_ps(1.0f / 3.0f));
  s = _mm256_fmadd_ps(s, f2, one);
  __m256 lg = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), f), s),
                            _mm256_and_ps(big, _mm256_set1_ps(0.693147180559945f)));
  __m256 tiny = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ);
  __m256 l = _mm256_blendv_ps(_mm256_mul_ps(lg, _mm256_div_ps(y, _mm256_blendv_ps(d, one, tiny))), y, tiny);
  return {_mm256_add_ps(_mm256_max_ps(x.v, _mm256_setzero_ps()), l)};
}
#endif

// Uniform load/broadcast by pack type.
template <class P>
struct PackIO;
template <>
struct PackIO<float> {
  static float ld(const float* p) { return *p; }
  static float bc(float x) { return x; }
};
template <>
struct PackIO<double> {
  static double ld(const double* p) { return *p; }
  static double bc(double x) { return x; }
};
#ifdef __AVX2__
template <>
struct PackIO<F8> {
  static F8 ld(const float* p) { return {_mm256_loadu_ps(p)}; }
  static F8 bc(float x) { return {_mm256_set1_ps(x)}; }
};
#endif

// dst[0:n] = src[0:n] with vector loads/stores, never a memmove call (see vmath.h's pragma).
template <class T>
inline void copy_n(const T* __restrict src, int64_t n, T* __restrict dst) {
  using P = typename PackOf<T>::P;
  constexpr int W = PackOf<T>::W;
  int64_t i = 0;
  for (; i + W <= n; i += W) st(dst + i, PackIO<P>::ld(src + i));
  for (; i < n; i++) dst[i] = src[i];
}

// x = x * sigmoid(x) over n values (packs, then a scalar tail).
template <class T>
inline void silu_inplace(T* x, int64_t n) {
  using P = typename PackOf<T>::P;
  constexpr int W = PackOf<T>::W;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    P v = PackIO<P>::ld(x + i);
    st(x + i, v * vsigmoid(v));
  }
  for (; i < n; i++) x[i] = x[i] * vsigmoid(x[i]);
}

// g = dOut * silu'(pre) with pre given in g: silu'(p) = s (1 + p (1 - s)), s = sigmoid(p).
template <class T>
inline void silu_backward_inplace(const T* dOut, T* g, int64_t n) {
  using P = typename PackOf<T>::P;
  constexpr int W = PackOf<T>::W;
  const P one = PackIO<P>::bc(T(1));
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    P pre = PackIO<P>::ld(g + i), sg = vsigmoid(pre);
    st(g + i, PackIO<P>::ld(dOut + i) * sg * fmadd(pre, one - sg, one));
  }
  for (; i < n; i++) {
    T pre = g[i], sg = vsigmoid(pre);
    g[i] = dOut[i] * sg * (T(1) + pre * (T(1) - sg));
  }
}

}  // namespace mamba
