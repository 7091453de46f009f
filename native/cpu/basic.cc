// Elementwise, normalisation, loss, pooling and optimizer kernels (CPU, float and double).
// Each binding parses its arguments with the element type picked by the first float array, so a
// mismatched array is a TypeError and a short one a RangeError before any memory is touched.
#include "../src/adamw_args.h"
#include <cmath>
#include "common.h"
#include "simd.h"
#include "../src/registry.h"

namespace mamba {
namespace {

// Rows per thread worth the pool's overhead (~a few microseconds).
inline int64_t row_grain(int64_t width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width)); }

template <class T>
void embedding_forward(const Napi::CallbackInfo& info) {
  int64_t Tn = arg_int(info, 3, "embeddingForward T"), V = arg_int(info, 4, "embeddingForward V"),
          D = arg_int(info, 5, "embeddingForward D");
  check_dims(info, "embeddingForward", {Tn, V, D});
  const int32_t* ids = arg_array<int32_t>(info, 0, "embeddingForward ids", Tn);
  const T* W = arg_array<T>(info, 1, "embeddingForward W", V * D);
  T* out = arg_array<T>(info, 2, "embeddingForward out", Tn * D);
  for (int64_t t = 0; t < Tn; t++)
    if (ids[t] < 0 || ids[t] >= V)
      throw_range(info.Env(), "embeddingForward: id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                  " is outside 0.." + std::to_string(V - 1));
  parallel_for(
      Tn,
      [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) copy_n(W + (int64_t)ids[t] * D, D, out + t * D);
      },
      row_grain(D));
}

template <class T>
void embedding_backward(const Napi::CallbackInfo& info) {
  int64_t Tn = arg_int(info, 3, "embeddingBackward T"), V = arg_int(info, 4, "embeddingBackward V"),
          D = arg_int(info, 5, "embeddingBackward D");
  check_dims(info, "embeddingBackward", {Tn, V, D});
  const int32_t* ids = arg_array<int32_t>(info, 0, "embeddingBackward ids", Tn);
  const T* dOut = arg_array<T>(info, 1, "embeddingBackward dOut", Tn * D);
  T* dW = arg_array<T>(info, 2, "embeddingBackward dW", V * D);
  for (int64_t t = 0; t < Tn; t++)
    if (ids[t] < 0 || ids[t] >= V)
      throw_range(info.Env(), "embeddingBackward: id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                  " is outside 0.." + std::to_string(V - 1));
  // threads own disjoint column blocks of dW, so rows with equal ids never race
  int64_t blocks = (D + 15) / 16;
  parallel_for(
      blocks,
      [&](int64_t b0, int64_t b1) {
    int64_t d0 = b0 * 16, d1 = std::min(D, b1 * 16);
    for (int64_t t = 0; t < Tn; t++) {
      T* w = dW + (int64_t)ids[t] * D;
      const T* g = dOut + t * D;
      for (int64_t d = d0; d < d1; d++) w[d] += g[d];
    }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(1, Tn)));
}

template <class T>
void bias_forward(const Napi::CallbackInfo& info) {
  int64_t Tn = arg_int(info, 2, "biasForward T"), C = arg_int(info, 3, "biasForward C");
  check_dims(info, "biasForward", {Tn, C});
  T* y = arg_array<T>(info, 0, "biasForward y", Tn * C);
  const T* b = arg_array<T>(info, 1, "biasForward b", C);
  parallel_for(
      Tn,
      [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      T* r = y + t * C;
      for (int64_t c = 0; c < C; c++) r[c] += b[c];
    }
      },
      row_grain(C));
}

// db[c] += sum over rows of dy[., c]: per-part partial sums, then one serial pass.
template <class T>
void bias_backward(const Napi::CallbackInfo& info) {
  int64_t Tn = arg_int(info, 2, "biasBackward T"), C = arg_int(info, 3, "biasBackward C");
  check_dims(info, "biasBackward", {Tn, C});
  const T* dy = arg_array<T>(info, 0, "biasBackward dy", Tn * C);
  T* db = arg_array<T>(info, 1, "biasBackward db", C);
  std::vector<double> acc((size_t)num_threads() * C, 0.0);
  int64_t parts = parallel_parts(Tn, row_grain(C), [&](int64_t p, int64_t t0, int64_t t1) {
    double* a = acc.data() + p * C;
    for (int64_t t = t0; t < t1; t++) {
      const T* r = dy + t * C;
      for (int64_t c = 0; c < C; c++) a[c] += r[c];
    }
  });
  for (int64_t p = 0; p < parts; p++)
    for (int64_t c = 0; c < C; c++) db[c] += (T)acc[p * C + c];
}

template <class T>
void rmsnorm_forward(const Napi::CallbackInfo& info) {
  int64_t Tn = arg_int(info, 6, "rmsnormForward T"), D = arg_int(info, 7, "rmsnormForward D");
  double eps = arg_num(info, 8, "rmsnormForward eps");
  check_dims(info, "rmsnormForward", {Tn, D});
  if (!(eps >= 0)) throw_range(info.Env(), "rmsnormForward: eps must be >= 0");
  // x null: r = residualIn (the norm of a kept residual); residualOut null: r is not written (x must be null)
  const T* x = arg_opt<T>(info, 0, "rmsnormForward x", Tn * D);
  const T* res = arg_opt<T>(info, 1, "rmsnormForward residualIn", Tn * D);
  const T* w = arg_array<T>(info, 2, "rmsnormForward w", D);
  T* out = arg_array<T>(info, 3, "rmsnormForward out", Tn * D);
  T* rout = arg_opt<T>(info, 4, "rmsnormForward residualOut", Tn * D);
  T* rstd = arg_array<T>(info, 5, "rmsnormForward rstd", Tn);
  if (!x && !res) throw_range(info.Env(), "rmsnormForward: x and residualIn cannot both be null");
  if (!rout && x) throw_range(info.Env(), "rmsnormForward: residualOut may be null only when x is null");
  parallel_for(
      Tn,
      [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      if (!x) {
        const T* rr = res + t * D;
        if (rout && rout + t * D != rr) copy_n(rr, D, rout + t * D);
        T s = (T)(1.0 / std::sqrt((double)dot(rr, rr, D) / (double)std::max<int64_t>(1, D) + eps));
        rstd[t] = s;
        T* o = out + t * D;
        for (int64_t d = 0; d < D; d++) o[d] = rr[d] * s * w[d];
        continue;
      }
      const T* xr = x + t * D;
      T* rr = rout + t * D;
      if (res) {
        const T* q = res + t * D;
        for (int64_t d = 0; d < D; d++) rr[d] = xr[d] + q[d];
      } else if (rr != xr) {
        copy_n(xr, D, rr);
      }
      T s = (T)(1.0 / std::sqrt((double)dot(rr, rr, D) / (double)std::max<int64_t>(1, D) + eps));
      rstd[t] = s;
      T* o = out + t * D;
      for (int64_t d = 0; d < D; d++) o[d] = rr[d] * s * w[d];
    }
      },
      row_grain(D));
}

// out = r s w with s = (mean r^2 + eps)^-1/2, ds/dr_j = -s^3 r_j / D, so
// dr_j = s (g_j w_j - r_j s^2 <g w, r> / D) (+ dResidualOut_j).
template <class T>
void rmsnorm_backward(const Napi::CallbackInfo& info) {
  int64_t Tn = arg_int(info, 7, "rmsnormBackward T"), D = arg_int(info, 8, "rmsnormBackward D");
  check_dims(info, "rmsnormBackward", {Tn, D});
  const T* g = arg_array<T>(info, 0, "rmsnormBackward dOut", Tn * D);
  const T* dres = arg_opt<T>(info, 1, "rmsnormBackward dResidualOut", Tn * D);
  const T* r = arg_array<T>(info, 2, "rmsnormBackward residualOut", Tn * D);
  const T* w = arg_array<T>(info, 3, "rmsnormBackward w", D);
  const T* rstd = arg_array<T>(info, 4, "rmsnormBackward rstd", Tn);
  T* dR = arg_array<T>(info, 5, "rmsnormBackward dR", Tn * D);
  T* dW = arg_array<T>(info, 6, "rmsnormBackward dW", D);
  std::vector<T> acc((size_t)num_threads() * D, T(0));
  std::vector<T> gw_buf((size_t)num_threads() * D);
  int64_t parts = parallel_parts(Tn, row_grain(D), [&](int64_t p, int64_t t0, int64_t t1) {
    T* a = acc.data() + p * D;
    T* gw = gw_buf.data() + p * D;
    for (int64_t t = t0; t < t1; t++) {
      const T* gr = g + t * D;
      const T* rr = r + t * D;
      T s = rstd[t];
      for (int64_t d = 0; d < D; d++) {
        gw[d] = gr[d] * w[d];
        a[d] += gr[d] * rr[d] * s;
      }
      T c = dot(gw, rr, D) * s * s / (T)std::max<int64_t>(1, D);
      T* o = dR + t * D;
      if (dres) {
        const T* q = dres + t * D;
        for (int64_t d = 0; d < D; d++) o[d] = q[d] + s * (gw[d] - rr[d] * c);
      } else {
        for (int64_t d = 0; d < D; d++) o[d] = s * (gw[d] - rr[d] * c);
      }
    }
  });
  for (int64_t p = 0; p < parts; p++)
    for (int64_t d = 0; d < D; d++) dW[d] += acc[p * D + d];
}

template <class T>
void cross_entropy_forward(const Napi::CallbackInfo& info) {
  int64_t Tn = arg_int(info, 4, "crossEntropyForward T"), V = arg_int(info, 5, "crossEntropyForward V");
  double gs = arg_num(info, 6, "crossEntropyForward gradScale");
  int64_t ignore = arg_present(info, 7) ? arg_int(info, 7, "crossEntropyForward ignoreIndex") : -1;
  check_dims(info, "crossEntropyForward", {Tn, V});
  if (V < 1) throw_range(info.Env(), "crossEntropyForward: V must be >= 1");
  const T* logits = arg_array<T>(info, 0, "crossEntropyForward logits", Tn * V);
  const int32_t* tg = arg_array<int32_t>(info, 1, "crossEntropyForward targets", Tn);
  T* losses = arg_array<T>(info, 2, "crossEntropyForward losses", Tn);
  T* dl = arg_opt<T>(info, 3, "crossEntropyForward dLogits", Tn * V);
  for (int64_t t = 0; t < Tn; t++)
    if (tg[t] != ignore && (tg[t] < 0 || tg[t] >= V))
      throw_range(info.Env(), "crossEntropyForward: target " + std::to_string(tg[t]) + " at position " +
                                  std::to_string(t) + " is outside 0.." + std::to_string(V - 1));
  parallel_for(
      Tn,
      [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const T* l = logits + t * V;
      T* dr = dl ? dl + t * V : nullptr;
      if (tg[t] == ignore) {
        losses[t] = 0;
        if (dr) std::fill(dr, dr + V, T(0));
        continue;
      }
      T mx = l[0];
      for (int64_t v = 1; v < V; v++) mx = std::max(mx, l[v]);
      double se = 0;
      for (int64_t v = 0; v < V; v++) se += std::exp((double)(l[v] - mx));
      double lse = (double)mx + std::log(se);
      T lt = l[tg[t]];
      losses[t] = (T)(lse - (double)lt);
      if (dr) {
        for (int64_t v = 0; v < V; v++) dr[v] = (T)(gs * std::exp((double)l[v] - lse));
        dr[tg[t]] -= (T)gs;
      }
    }
      },
      std::max<int64_t>(1, 4096 / V));
}

template <class T>
void pool_forward(const Napi::CallbackInfo& info) {
  int64_t B = arg_int(info, 2, "poolForward B"), L = arg_int(info, 3, "poolForward L"),
          D = arg_int(info, 4, "poolForward D");
  int64_t mode = arg_int(info, 5, "poolForward mode");
  check_dims(info, "poolForward", {B, L, D});
  if (mode != 0 && mode != 1) throw_range(info.Env(), "poolForward: mode must be 0 (mean) or 1 (last)");
  if (L < 1) throw_range(info.Env(), "poolForward: L must be >= 1");
  const T* x = arg_array<T>(info, 0, "poolForward x", B * L * D);
  T* out = arg_array<T>(info, 1, "poolForward out", B * D);
  parallel_for(
      B,
      [&](int64_t b0, int64_t b1) {
    std::vector<double> acc((size_t)D);
    for (int64_t b = b0; b < b1; b++) {
      T* o = out + b * D;
      if (mode == 1) {
        copy_n(x + (b * L + L - 1) * D, D, o);
        continue;
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t l = 0; l < L; l++) {
        const T* r = x + (b * L + l) * D;
        for (int64_t d = 0; d < D; d++) acc[d] += r[d];
      }
      for (int64_t d = 0; d < D; d++) o[d] = (T)(acc[d] / (double)L);
    }
      },
      1);
}

template <class T>
void pool_backward(const Napi::CallbackInfo& info) {
  int64_t B = arg_int(info, 2, "poolBackward B"), L = arg_int(info, 3, "poolBackward L"),
          D = arg_int(info, 4, "poolBackward D");
  int64_t mode = arg_int(info, 5, "poolBackward mode");
  check_dims(info, "poolBackward", {B, L, D});
  if (mode != 0 && mode != 1) throw_range(info.Env(), "poolBackward: mode must be 0 (mean) or 1 (last)");
  if (L < 1) throw_range(info.Env(), "poolBackward: L must be >= 1");
  const T* g = arg_array<T>(info, 0, "poolBackward dOut", B * D);
  T* dx = arg_array<T>(info, 1, "poolBackward dx", B * L * D);
  parallel_for(
      B * L,
      [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      int64_t b = r / L, l = r % L;
      T* o = dx + r * D;
      const T* gr = g + b * D;
      if (mode == 1) {
        if (l == L - 1)
          copy_n(gr, D, o);
        else
          std::fill(o, o + D, T(0));
      } else {
        T inv = T(1) / (T)L;
        for (int64_t d = 0; d < D; d++) o[d] = gr[d] * inv;
      }
    }
      },
      row_grain(D));
}

template <class T>
void adamw_step(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "adamwStep");
  const int64_t n = a.integer("n");
  a.require(n >= 0, "n must be >= 0");
  const AdamwHyper h = read_adamw_hyper(a);
  const double wd = a.number("weightDecay");
  T* p = a.array<T>("param", n);
  const T* g = a.array<T>("grad", n);
  T* m = a.array<T>("m", n);
  T* v = a.array<T>("v", n);
  a.finish();
  const T c1 = (T)h.c1, c2 = (T)h.c2;
  const T B1 = (T)h.beta1, B2 = (T)h.beta2, LR = (T)h.lr, E = (T)h.eps, WD = (T)wd, GS = (T)h.gradScale;
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      T gi = g[i] * GS;
      T mi = B1 * m[i] + (T(1) - B1) * gi;
      T vi = B2 * v[i] + (T(1) - B2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] -= LR * ((mi * c1) / (std::sqrt(vi * c2) + E) + WD * p[i]);
    }
      },
      16384);
}

template <class T>
double sum_squares(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 1, "sumSquares n");
  check_dims(info, "sumSquares", {n});
  const T* x = arg_array<T>(info, 0, "sumSquares x", n);
  std::vector<double> part((size_t)num_threads(), 0.0);
  int64_t parts = parallel_parts(n, 65536, [&](int64_t p, int64_t i0, int64_t i1) {
    double s[4] = {0, 0, 0, 0};
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4)
      for (int j = 0; j < 4; j++) s[j] += (double)x[i + j] * (double)x[i + j];
    for (; i < i1; i++) s[0] += (double)x[i] * (double)x[i];
    part[p] = (s[0] + s[1]) + (s[2] + s[3]);
  });
  double r = 0;
  for (int64_t p = 0; p < parts; p++) r += part[p];
  return r;
}

template <class T>
void scale_op(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 1, "scale n");
  check_dims(info, "scale", {n});
  T* x = arg_array<T>(info, 0, "scale x", n);
  T s = (T)arg_num(info, 2, "scale s");
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) x[i] *= s;
      },
      65536);
}

template <class T>
void add_op(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 3, "add n");
  check_dims(info, "add", {n});
  const T* a = arg_array<T>(info, 0, "add a", n);
  const T* b = arg_array<T>(info, 1, "add b", n);
  T* o = arg_array<T>(info, 2, "add out", n);
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) o[i] = a[i] + b[i];
      },
      65536);
}

template <class T>
void fill_op(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 1, "fill n");
  check_dims(info, "fill", {n});
  T* x = arg_array<T>(info, 0, "fill x", n);
  T v = (T)arg_num(info, 2, "fill value");
  parallel_for(
      n, [&](int64_t i0, int64_t i1) { std::fill(x + i0, x + i1, v); }, 65536);
}

// out = -exp(x): the mixer's A = -exp(A_log), recomputed on the model's device at every forward
template <class T>
void neg_exp_op(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 2, "negExp n");
  check_dims(info, "negExp", {n});
  const T* x = arg_array<T>(info, 0, "negExp x", n);
  T* o = arg_array<T>(info, 1, "negExp out", n);
  for (int64_t i = 0; i < n; i++) o[i] = -std::exp(x[i]);
}

// out += a * b elementwise: d A_log = dA * A accumulated into the A_log gradient
template <class T>
void add_product_op(const Napi::CallbackInfo& info) {
  int64_t n = arg_int(info, 3, "addProduct n");
  check_dims(info, "addProduct", {n});
  const T* a = arg_array<T>(info, 0, "addProduct a", n);
  const T* b = arg_array<T>(info, 1, "addProduct b", n);
  T* o = arg_array<T>(info, 2, "addProduct out", n);
  for (int64_t i = 0; i < n; i++) o[i] += a[i] * b[i];
}

}  // namespace
}  // namespace mamba

MAMBA_OP(cpu, embeddingForward){MAMBA_DISPATCH(1, embedding_forward)} MAMBA_OP(cpu, embeddingBackward){
    MAMBA_DISPATCH(1, embedding_backward)} MAMBA_OP(cpu, biasForward){
    MAMBA_DISPATCH(0, bias_forward)} MAMBA_OP(cpu,
                                              biasBackward){MAMBA_DISPATCH(
    0, bias_backward)} MAMBA_OP(cpu, rmsnormForward) {  // the element type from x, or from residualIn when x is null
  if (::mamba::arg_present(info, 0)) {
    MAMBA_DISPATCH(0, rmsnorm_forward)
  }
  MAMBA_DISPATCH(1, rmsnorm_forward)
}
MAMBA_OP(cpu, rmsnormBackward){MAMBA_DISPATCH(0, rmsnorm_backward)} MAMBA_OP(cpu, crossEntropyForward){
    MAMBA_DISPATCH(0, cross_entropy_forward)} MAMBA_OP(cpu, poolForward){
    MAMBA_DISPATCH(0, pool_forward)} MAMBA_OP(cpu, poolBackward){MAMBA_DISPATCH(0, pool_backward)}
// cpu.adamwStep({ param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step })
MAMBA_OP(cpu, adamwStep){MAMBA_DISPATCH_FIELD("param", adamw_step)} MAMBA_OP(cpu, scale){
    MAMBA_DISPATCH(0, scale_op)} MAMBA_OP(cpu, add){MAMBA_DISPATCH(0, add_op)} MAMBA_OP(cpu, fill){
    MAMBA_DISPATCH(0, fill_op)} MAMBA_OP(cpu, negExp){MAMBA_DISPATCH(0, neg_exp_op)} MAMBA_OP(cpu, addProduct){
    MAMBA_DISPATCH(0, add_product_op)} MAMBA_OP(cpu, sumSquares) {
  double r = mamba::arg_is_f64(info, 0) ? mamba::sum_squares<double>(info) : mamba::sum_squares<float>(info);
  return Napi::Number::New(info.Env(), r);
}

// cpu.expF32(x, out, n): the scan's vectorised float exp over an array, exposed so tests can check
// its accuracy directly (packs of 8 where AVX2 is built, the scalar version for the tail).
MAMBA_OP(cpu, expF32) {
  using namespace mamba;
  int64_t n = arg_int(info, 2, "expF32 n");
  check_dims(info, "expF32", {n});
  const float* x = arg_array<float>(info, 0, "expF32 x", n);
  float* out = arg_array<float>(info, 1, "expF32 out", n);
  using P = PackOf<float>::P;
  constexpr int W = PackOf<float>::W;
  int64_t i = 0;
  for (; i + W <= n; i += W) st(out + i, vexp(PackIO<P>::ld(x + i)));
  for (; i < n; i++) out[i] = vexp(x[i]);
  return info.Env().Undefined();
}
