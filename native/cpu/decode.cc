// CPU twins of the fused decoding ops (native/cuda/decode.cu): the same math and argument order in plain
// loops, double accumulation, for the tests (CPU decoding itself keeps the unfused step). The x_proj partial
// sums cover the same runs of kDecodeChunk channels as the CUDA blocks, so both can be compared partial by
// partial.
#include <cmath>
#include "common.h"
#include "../src/decode.h"
#include "../src/registry.h"

namespace mamba {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

int64_t batch_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const int64_t B = arg_int(info, i, op);
  if (B < 1 || B > kDecodeMaxB) throw_range(info.Env(), std::string(op) + ": B must be 1.." + std::to_string(kDecodeMaxB) + ", got " + std::to_string(B));
  return B;
}
template <class T>
bool overlaps(const T* a, int64_t na, const T* b, int64_t nb) { return b && a < b + nb && b < a + na; }

// decodeIn(hIn, rIn|null, normW, Win, convState, convW, convBias|null, Wx, rOut, xc, z, xPart, B, D, E, K, J, eps)
template <class T>
void decode_in(const Napi::CallbackInfo& info) {
  const int64_t B = batch_arg(info, 12, "decodeIn B");
  const int64_t D = arg_int(info, 13, "decodeIn D"), E = arg_int(info, 14, "decodeIn E"), K = arg_int(info, 15, "decodeIn K"),
                J = arg_int(info, 16, "decodeIn J");
  const double eps = arg_num(info, 17, "decodeIn eps");
  if (D < 1 || E < 1 || J < 1 || K < 1) throw_range(info.Env(), "decodeIn: D, E, K and J must be >= 1");
  if (!(eps >= 0)) throw_range(info.Env(), "decodeIn: eps must be >= 0");
  const int64_t P = decode_parts(E);
  const T* hIn = arg_array<T>(info, 0, "decodeIn hIn", B * D);
  const T* rIn = arg_opt<T>(info, 1, "decodeIn rIn", B * D);
  const T* normW = arg_array<T>(info, 2, "decodeIn normW", D);
  const T* Win = arg_array<T>(info, 3, "decodeIn Win", 2 * E * D);
  T* st = arg_array<T>(info, 4, "decodeIn convState", B * E * K);
  const T* convW = arg_array<T>(info, 5, "decodeIn convW", E * K);
  const T* convB = arg_opt<T>(info, 6, "decodeIn convBias", E);
  const T* Wx = arg_array<T>(info, 7, "decodeIn Wx", J * E);
  T* rOut = arg_array<T>(info, 8, "decodeIn rOut", B * D);
  T* xc = arg_array<T>(info, 9, "decodeIn xc", B * E);
  T* z = arg_array<T>(info, 10, "decodeIn z", B * E);
  T* xPart = arg_array<T>(info, 11, "decodeIn xPart", P * B * J);
  if (overlaps<T>(rOut, B * D, rIn, B * D) || overlaps<T>(rOut, B * D, hIn, B * D)) throw_range(info.Env(), "decodeIn: rOut must not overlap hIn or rIn");
  std::vector<T> xn((size_t)D);
  for (int64_t b = 0; b < B; b++) {
    // residual add and RMSNorm
    double ss = 0;
    for (int64_t d = 0; d < D; d++) {
      const T r = hIn[b * D + d] + (rIn ? rIn[b * D + d] : T(0));
      rOut[b * D + d] = r;
      ss += (double)r * r;
    }
    const double s = 1.0 / std::sqrt(ss / (double)D + eps);
    for (int64_t d = 0; d < D; d++) xn[d] = (T)(rOut[b * D + d] * s * normW[d]);
    // in_proj, then the conv step (xs half) or z
    for (int64_t o = 0; o < 2 * E; o++) {
      double a = 0;
      for (int64_t d = 0; d < D; d++) a += (double)Win[o * D + d] * xn[d];
      if (o >= E) { z[b * E + o - E] = (T)a; continue; }
      T* s_ = st + (b * E + o) * K;
      for (int64_t k = 0; k + 1 < K; k++) s_[k] = s_[k + 1];
      s_[K - 1] = (T)a;
      double c = convB ? convB[o] : 0;
      for (int64_t k = 0; k < K; k++) c += (double)convW[o * K + k] * s_[k];
      xc[b * E + o] = (T)(c * sigmoid(c));
    }
    // x_proj partial sums over runs of kDecodeChunk channels
    for (int64_t p = 0; p < P; p++)
      for (int64_t j = 0; j < J; j++) {
        double a = 0;
        for (int64_t o = p * kDecodeChunk; o < std::min<int64_t>(E, (p + 1) * kDecodeChunk); o++) a += (double)xc[b * E + o] * Wx[j * E + o];
        xPart[(p * B + b) * J + j] = (T)a;
      }
  }
}

// decodeSsm(xPart, xc, z, Wdt, dtBias|null, A, Dskip|null, ssmState, y, B, E, R, N)
template <class T>
void decode_ssm(const Napi::CallbackInfo& info) {
  const int64_t B = batch_arg(info, 9, "decodeSsm B");
  const int64_t E = arg_int(info, 10, "decodeSsm E"), R = arg_int(info, 11, "decodeSsm R"), N = arg_int(info, 12, "decodeSsm N");
  if (E < 1 || R < 1 || N < 1) throw_range(info.Env(), "decodeSsm: E, R and N must be >= 1");
  const int64_t J = R + 2 * N, P = decode_parts(E);
  const T* xPart = arg_array<T>(info, 0, "decodeSsm xPart", P * B * J);
  const T* xc = arg_array<T>(info, 1, "decodeSsm xc", B * E);
  const T* z = arg_array<T>(info, 2, "decodeSsm z", B * E);
  const T* Wdt = arg_array<T>(info, 3, "decodeSsm Wdt", E * R);
  const T* dtBias = arg_opt<T>(info, 4, "decodeSsm dtBias", E);
  const T* A = arg_array<T>(info, 5, "decodeSsm A", E * N);
  const T* Dskip = arg_opt<T>(info, 6, "decodeSsm Dskip", E);
  T* state = arg_array<T>(info, 7, "decodeSsm ssmState", B * E * N);
  T* y = arg_array<T>(info, 8, "decodeSsm y", B * E);
  std::vector<T> xd((size_t)J);  // x_proj of one row: dt_in [R], B [N], C [N]
  for (int64_t b = 0; b < B; b++) {
    for (int64_t j = 0; j < J; j++) {
      double s = 0;
      for (int64_t p = 0; p < P; p++) s += xPart[(p * B + b) * J + j];
      xd[j] = (T)s;
    }
    const T *dtIn = xd.data(), *Bm = dtIn + R, *Cm = Bm + N;
    for (int64_t d = 0; d < E; d++) {
      double delta = 0;
      for (int64_t r = 0; r < R; r++) delta += (double)dtIn[r] * Wdt[d * R + r];
      const double dt = softplus((double)(T)delta + (dtBias ? dtBias[d] : 0));
      const double u = xc[b * E + d];
      T* h = state + (b * E + d) * N;
      double acc = 0;
      for (int64_t n = 0; n < N; n++) {
        h[n] = (T)(std::exp(dt * A[d * N + n]) * h[n] + dt * u * Bm[n]);
        acc += (double)Cm[n] * h[n];
      }
      acc += (Dskip ? Dskip[d] : 0) * u;
      const double zz = z[b * E + d];
      y[b * E + d] = (T)(acc * zz * sigmoid(zz));
    }
  }
}

// decodeOut(y, Wout, hOut, B, D, E)
template <class T>
void decode_out(const Napi::CallbackInfo& info) {
  const int64_t B = batch_arg(info, 3, "decodeOut B");
  const int64_t D = arg_int(info, 4, "decodeOut D"), E = arg_int(info, 5, "decodeOut E");
  if (D < 1 || E < 1) throw_range(info.Env(), "decodeOut: D and E must be >= 1");
  const T* y = arg_array<T>(info, 0, "decodeOut y", B * E);
  const T* W = arg_array<T>(info, 1, "decodeOut Wout", D * E);
  T* out = arg_array<T>(info, 2, "decodeOut hOut", B * D);
  for (int64_t b = 0; b < B; b++)
    for (int64_t o = 0; o < D; o++) {
      double a = 0;
      for (int64_t e = 0; e < E; e++) a += (double)W[o * E + e] * y[b * E + e];
      out[b * D + o] = (T)a;
    }
}

}  // namespace
}  // namespace mamba

MAMBA_OP(cpu, decodeIn) { MAMBA_DISPATCH(0, decode_in) }
MAMBA_OP(cpu, decodeSsm) { MAMBA_DISPATCH(0, decode_ssm) }
MAMBA_OP(cpu, decodeOut) { MAMBA_DISPATCH(0, decode_out) }
