// Causal depthwise conv1d over [T, D] rows (sequence-major, B sequences of length L), with optional
// SiLU, its backward (recomputing the pre-activation) and the one-token decoding step.
// Weights are transposed to [K, D] once per call so every inner loop runs over contiguous d.
#include "common.h"
#include "simd.h"
#include "../src/conv_args.h"
#include "../src/registry.h"

namespace mamba {
namespace {

struct ConvDims {
  int64_t B, L, D, K;
  bool silu;
};

// pre[r, d] = bias[d] + sum_k wT[k, d] x[t-K+1+k, d] for rows r in [r0, r1) of one sequence starting at row s.
template <class T>
inline void conv_rows(const T* x, int64_t xs, const T* wT, const T* bias, int64_t s, int64_t r0, int64_t r1, int64_t D,
                      int64_t K, T* pre, int64_t ps) {
  for (int64_t r = r0; r < r1; r++) {
    T* p = pre + (r - r0) * ps;
    if (bias)
      copy_n(bias, D, p);
    else
      std::fill(p, p + D, T(0));
    for (int64_t k = 0; k < K; k++) {
      int64_t src = r - (K - 1) + k;
      if (src < s) continue;
      const T* xr = x + src * xs;
      const T* w = wT + k * D;
      for (int64_t d = 0; d < D; d++) p[d] += w[d] * xr[d];
    }
  }
}

template <class T>
std::vector<T> transpose_w(const T* w, int64_t D, int64_t K) {
  std::vector<T> wT((size_t)(K * D));
  for (int64_t d = 0; d < D; d++)
    for (int64_t k = 0; k < K; k++) wT[k * D + d] = w[d * K + k];
  return wT;
}

inline int64_t rows_grain(int64_t D, int64_t K) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, D * K)); }

template <class T>
void conv_forward(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "conv1dForward");
  const ConvInputs<T, T> c = read_conv_inputs<T, T>(a, ArrayFetch{}, false);
  const int64_t B = c.B, L = c.L, D = c.D, K = c.K, xs = c.xStride, Tn = B * L;
  const bool silu = c.silu;
  const T *x = c.x, *w = c.w, *bias = c.bias;
  T* out = a.array<T>("out", Tn * D);
  check_cpu_dtype<T>(a);
  a.finish();
  auto wT = transpose_w(w, D, K);
  parallel_for(
      Tn,
      [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1;) {
      int64_t s = (r / L) * L, e = std::min(r1, s + L);  // rows of one sequence
      conv_rows(x, xs, wT.data(), bias, s, r, e, D, K, out + r * D, D);
      if (silu) silu_inplace(out + r * D, (e - r) * D);
      r = e;
    }
      },
      rows_grain(D, K));
}

// g = dOut * act'(pre); dx[t'] = sum_k w[k] g[t'+K-1-k] (same sequence); dw[d,k] += sum_t g[t] x[t-K+1+k];
// dbias += sum_t g[t]. Parts of the rows keep their own dw/dbias partial sums.
template <class T>
void conv_backward(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "conv1dBackward");
  const ConvInputs<T, T> c = read_conv_inputs<T, T>(a, ArrayFetch{}, false);
  const ConvGradients<T, T> cg = read_conv_gradients<T, T>(a, ArrayFetch{}, c);
  check_cpu_dtype<T>(a);
  a.finish();
  const int64_t B = c.B, L = c.L, D = c.D, K = c.K, xs = c.xStride, dxs = cg.dxStride, Tn = B * L;
  const bool silu = c.silu;
  const T *x = c.x, *w = c.w, *bias = c.bias, *dOut = cg.dOut;
  T *dx = cg.dx, *dw = cg.dw, *dbias = cg.dbias;
  auto wT = transpose_w(w, D, K);
  int nt = num_threads();
  std::vector<T> acc((size_t)nt * (K + 1) * D, T(0));  // per part: dwT [K, D] then dbias [D]
  constexpr int64_t RB = 64;                           // rows per block of g
  int64_t parts = parallel_parts(Tn, rows_grain(D, K), [&](int64_t p, int64_t r0, int64_t r1) {
    T* dwT = acc.data() + p * (K + 1) * D;
    T* db = dwT + K * D;
    std::vector<T> g((size_t)(RB + K - 1) * D);
    for (int64_t r = r0; r < r1;) {
      int64_t s = (r / L) * L, se = s + L;
      int64_t e = std::min({r1, se, r + RB});
      int64_t ge = std::min(se, e + K - 1);  // g needed for rows [r, ge)
      if (silu) {
        conv_rows(x, xs, wT.data(), bias, s, r, ge, D, K, g.data(), D);
        silu_backward_inplace(dOut + r * D, g.data(), (ge - r) * D);
      } else {
        copy_n(dOut + r * D, (ge - r) * D, g.data());
      }
      for (int64_t t = r; t < e; t++) {
        T* o = dx + t * dxs;
        std::fill(o, o + D, T(0));
        for (int64_t k = 0; k < K; k++) {
          int64_t src = t + K - 1 - k;  // output row that reads x[t] through tap k
          if (src >= ge) continue;
          const T* gr = g.data() + (src - r) * D;
          const T* wk = wT.data() + k * D;
          for (int64_t d = 0; d < D; d++) o[d] += wk[d] * gr[d];
        }
        const T* gt = g.data() + (t - r) * D;
        for (int64_t d = 0; d < D; d++) db[d] += gt[d];
        for (int64_t k = 0; k < K; k++) {
          int64_t src = t - (K - 1) + k;
          if (src < s) continue;
          const T* xr = x + src * xs;
          T* a = dwT + k * D;
          for (int64_t d = 0; d < D; d++) a[d] += gt[d] * xr[d];
        }
      }
      r = e;
    }
  });
  for (int64_t p = 0; p < parts; p++) {
    const T* dwT = acc.data() + p * (K + 1) * D;
    for (int64_t d = 0; d < D; d++)
      for (int64_t k = 0; k < K; k++) dw[d * K + k] += dwT[k * D + d];
    if (dbias)
      for (int64_t d = 0; d < D; d++) dbias[d] += dwT[K * D + d];
  }
}

template <class T>
void conv_step(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "conv1dStep");
  const ConvInputs<T, T> c = read_conv_inputs<T, T>(a, ArrayFetch{}, true);
  const int64_t B = c.B, D = c.D, K = c.K, xs = c.xStride;
  const bool silu = c.silu;
  const T *x = c.x, *w = c.w, *bias = c.bias;
  T* st = a.array<T>("convState", B * D * K);
  T* out = a.array<T>("out", B * D);
  check_cpu_dtype<T>(a);
  a.finish();
  parallel_for(
      B * D,
      [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      int64_t b = i / D, d = i % D;
      T* s = st + i * K;
      for (int64_t k = 0; k + 1 < K; k++) s[k] = s[k + 1];
      s[K - 1] = x[b * xs + d];
      T acc = bias ? bias[d] : T(0);
      for (int64_t k = 0; k < K; k++) acc += w[d * K + k] * s[k];
      out[i] = silu ? acc * vsigmoid(acc) : acc;
    }
      },
      4096);
}

}  // namespace
}  // namespace mamba

// cpu.conv1dForward / conv1dBackward / conv1dStep({ ...fields }): fields in native/KERNELS.md
MAMBA_OP(cpu, conv1dForward){MAMBA_DISPATCH_FIELD("x", conv_forward)} MAMBA_OP(cpu, conv1dBackward){
    MAMBA_DISPATCH_FIELD("x", conv_backward)} MAMBA_OP(cpu, conv1dStep) {
  MAMBA_DISPATCH_FIELD("x", conv_step)
}
