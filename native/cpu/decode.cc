// CPU twins of the fused decoding ops (native/cuda/decode.cu): the same math and arguments in plain
// loops, double accumulation. decodeIn, decodeInProj, convXProj and decodeOut serve the tests (CPU decoding takes the
// unfused step); decodeSsm on x_proj whole (xProj) is that unfused step's scan step. The x_proj partial sums cover the
// same runs of kDecodeChunk channels as the CUDA blocks, so both can be compared partial by partial.
#include <cmath>
#include "common.h"
#include "../src/decode_args.h"
#include "../src/registry.h"

namespace mamba {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

int64_t batch_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const int64_t B = arg_int(info, i, op);
  if (B < 1 || B > kDecodeMaxB)
    throw_range(info.Env(),
                std::string(op) + ": B must be 1.." + std::to_string(kDecodeMaxB) + ", got " + std::to_string(B));
  return B;
}

// One row of the block's input half: n = RMSNorm(r) * normW rounded to T (the unfused step's normOut); xz = n Win^T;
// the conv step of xs into the row's convState [E, K] (oldest first) + SiLU -> xc; z. Shared by decodeIn and
// decodeInProj.
template <class T>
void norm_in_conv_row(const T* r, const T* normW, double eps, const T* Win, T* st, const T* convW, const T* convB,
                      T* xc, T* z, int64_t D, int64_t E, int64_t K, std::vector<T>& xn) {
  double ss = 0;
  for (int64_t d = 0; d < D; d++) ss += (double)r[d] * r[d];
  const double s = 1.0 / std::sqrt(ss / (double)D + eps);
  for (int64_t d = 0; d < D; d++) xn[d] = (T)(r[d] * s * normW[d]);
  for (int64_t o = 0; o < 2 * E; o++) {
    double a = 0;
    for (int64_t d = 0; d < D; d++) a += (double)Win[o * D + d] * xn[d];
    if (o >= E) {
      z[o - E] = (T)a;
      continue;
    }
    T* s_ = st + o * K;
    for (int64_t k = 0; k + 1 < K; k++) s_[k] = s_[k + 1];
    s_[K - 1] = (T)a;
    double c = convB ? convB[o] : 0;
    for (int64_t k = 0; k < K; k++) c += (double)convW[o * K + k] * s_[k];
    xc[o] = (T)(c * sigmoid(c));
  }
}

// x_proj of one row b of xc as partial sums over runs of kDecodeChunk channels, xPart[p, b, :] of [P, B, J] (the
// runs the CUDA blocks cover).
template <class T>
void x_proj_parts_row(const T* xc, const T* Wx, T* xPart, int64_t b, int64_t B, int64_t E, int64_t J) {
  for (int64_t p = 0; p < decode_parts(E); p++)
    for (int64_t j = 0; j < J; j++) {
      double a = 0;
      for (int64_t o = p * kDecodeChunk; o < std::min<int64_t>(E, (p + 1) * kDecodeChunk); o++)
        a += (double)xc[o] * Wx[j * E + o];
      xPart[(p * B + b) * J + j] = (T)a;
    }
}

// decodeIn({ hIn, rIn?, normW, Win, convState, convW, convBias?, Wx, rOut, xc, z, xPart, B, D, E, K, J, eps })
template <class T>
void decode_in(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "decodeIn");
  const DecodeInArgs<T, T> r = read_decode_in<T, T>(a, ArrayFetch{});
  check_cpu_dtype<T>(a);
  a.finish();
  const int64_t B = r.B, D = r.D, E = r.E, K = r.K, J = r.J;
  const T *hIn = r.hIn, *rIn = r.rIn;
  T* rOut = r.rOut;
  std::vector<T> xn((size_t)D);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t d = 0; d < D; d++) rOut[b * D + d] = hIn[b * D + d] + (rIn ? rIn[b * D + d] : T(0));
    norm_in_conv_row(rOut + b * D, r.normW, r.eps, r.Win, r.convState + b * E * K, r.convW, r.convBias, r.xc + b * E,
                     r.z + b * E, D, E, K, xn);
    x_proj_parts_row<T>(r.xc + b * E, r.Wx, r.xPart, b, B, E, J);
  }
}

// decodeInProj({ r, normW, Win, convState, convW, convBias?, xc, z, B, D, E, K, eps })
template <class T>
void decode_in_proj(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "decodeInProj");
  const DecodeInProjArgs<T, T> r = read_decode_in_proj<T, T>(a, ArrayFetch{});
  check_cpu_dtype<T>(a);
  a.finish();
  const int64_t D = r.D, E = r.E, K = r.K;
  std::vector<T> xn((size_t)D);
  for (int64_t b = 0; b < r.B; b++)
    norm_in_conv_row(r.r + b * D, r.normW, r.eps, r.Win, r.convState + b * E * K, r.convW, r.convBias, r.xc + b * E,
                     r.z + b * E, D, E, K, xn);
}

// convXProj({ x, xStride, convState, convW, convBias?, Wx, xc, xProj, B, E, K, J }): the conv step as conv1dStep
// (SiLU), then xProj = xc Wx^T from xc as stored.
template <class T>
void conv_x_proj(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "convXProj");
  const ConvXProjArgs<T, T> r = read_conv_x_proj<T, T>(a, ArrayFetch{});
  check_cpu_dtype<T>(a);
  a.finish();
  const int64_t B = r.B, E = r.E, K = r.K, J = r.J;
  for (int64_t b = 0; b < B; b++) {
    T* xc = r.xc + b * E;
    for (int64_t d = 0; d < E; d++) {
      T* s = r.convState + (b * E + d) * K;
      for (int64_t k = 0; k + 1 < K; k++) s[k] = s[k + 1];
      s[K - 1] = r.x[b * r.xStride + d];
      double c = r.convBias ? r.convBias[d] : 0;
      for (int64_t k = 0; k < K; k++) c += (double)r.convW[d * K + k] * s[k];
      xc[d] = (T)(c * sigmoid(c));
    }
    for (int64_t j = 0; j < J; j++) {
      double p = 0;
      for (int64_t d = 0; d < E; d++) p += (double)r.Wx[j * E + d] * xc[d];
      r.xProj[b * J + j] = (T)p;
    }
  }
}

// decodeSsm({ xPart | xProj, xc, z, zStride?, Wdt, dtBias?, A, Dskip?, ssmState, y, B, E, R, N })
template <class T>
void decode_ssm(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "decodeSsm");
  const DecodeSsmArgs<T, T> r = read_decode_ssm<T, T>(a, ArrayFetch{});
  check_cpu_dtype<T>(a);
  a.finish();
  const int64_t B = r.B, E = r.E, R = r.R, N = r.N, J = R + 2 * N, P = decode_parts(E);
  const T *xPart = r.xPart, *xProj = r.xProj, *xc = r.xc, *z = r.z, *Wdt = r.Wdt, *dtBias = r.dtBias, *A = r.A,
          *Dskip = r.Dskip;
  T *state = r.ssmState, *y = r.y;
  std::vector<T> xd((size_t)J);  // x_proj of one row: dt_in [R], B [N], C [N]
  for (int64_t b = 0; b < B; b++) {
    for (int64_t j = 0; j < J; j++) {
      double s = 0;
      if (xProj)
        s = xProj[b * J + j];
      else
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
      const double zz = z[b * r.zStride + d];
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

MAMBA_OP(cpu, convXProj){MAMBA_DISPATCH_FIELD("x", conv_x_proj)} MAMBA_OP(cpu, decodeIn){
    MAMBA_DISPATCH_FIELD("hIn", decode_in)} MAMBA_OP(cpu, decodeInProj){
    MAMBA_DISPATCH_FIELD("r", decode_in_proj)} MAMBA_OP(cpu, decodeSsm){
    MAMBA_DISPATCH_FIELD("xc", decode_ssm)} MAMBA_OP(cpu, decodeOut) {
  MAMBA_DISPATCH(0, decode_out)
}
