// The named arguments of the fused decoding ops decodeIn and decodeSsm (fields in native/KERNELS.md), read and
// checked once here for the CPU twins (native/cpu/decode.cc, ArrayFetch) and the CUDA kernels
// (native/cuda/decode.cu, DeviceFetch). Act: the activation dtype (hIn, Win, Wx, xc, z, Wdt, y); Par: the f32
// side on CUDA (the residual, norm and conv weights, states, partial sums).
#pragma once
#include "args.h"
#include "decode.h"

namespace mamba {

// Whether [a, a + na) and [b, b + nb) (element counts) share a byte; null never overlaps.
template <class P, class Q>
bool ranges_overlap(const P* a, int64_t na, const Q* b, int64_t nb) {
  const auto pa = (uintptr_t)a, pb = (uintptr_t)b;
  return a && b && pa < pb + (uintptr_t)(nb * sizeof(Q)) && pb < pa + (uintptr_t)(na * sizeof(P));
}

inline int64_t decode_batch(const ArgObject& a) {
  const int64_t B = a.integer("B");
  a.require(B >= 1 && B <= kDecodeMaxB, "B must be 1.." + std::to_string(kDecodeMaxB) + ", got " + std::to_string(B));
  return B;
}

template <class Act, class Par>
struct DecodeInArgs {
  const Act* hIn;
  const Par* rIn;
  const Par* normW;
  const Act* Win;
  Par* convState;
  const Par* convW;
  const Par* convBias;
  const Act* Wx;
  Par* rOut;
  Act* xc;
  Act* z;
  Par* xPart;
  int64_t B, D, E, K, J;
  double eps;
};

// The sizes and buffers of the norm, in_proj and conv step that decodeIn and decodeInProj both take: B, D, E, K, eps,
// normW, Win, convState, convW, convBias?, xc, z (Args: either's argument struct).
template <class Act, class Par, class Args, class Fetch>
void read_norm_in_conv(const ArgObject& a, const Fetch& f, Args& r) {
  r.B = decode_batch(a);
  r.D = a.integer("D");
  r.E = a.integer("E");
  r.K = a.integer("K");
  a.require(r.D >= 1 && r.E >= 1 && r.K >= 1, "D, E and K must be >= 1");
  r.eps = a.number("eps");
  a.require(r.eps >= 0, "eps must be >= 0");
  const int64_t B = r.B, D = r.D, E = r.E, K = r.K;
  r.normW = f.template get<const Par>(a, "normW", D);
  r.Win = f.template get<const Act>(a, "Win", 2 * E * D);
  r.convState = f.template get<Par>(a, "convState", B * E * K);
  r.convW = f.template get<const Par>(a, "convW", E * K);
  r.convBias = f.template opt<const Par>(a, "convBias", E);
  r.xc = f.template get<Act>(a, "xc", B * E);
  r.z = f.template get<Act>(a, "z", B * E);
}

// Fields hIn, rIn?, normW, Win, convState, convW, convBias?, Wx, rOut, xc, z, xPart, B, D, E, K, J, eps.
template <class Act, class Par, class Fetch>
DecodeInArgs<Act, Par> read_decode_in(const ArgObject& a, const Fetch& f) {
  DecodeInArgs<Act, Par> r{};
  read_norm_in_conv<Act, Par>(a, f, r);
  r.J = a.integer("J");
  a.require(r.J >= 1, "J must be >= 1");
  const int64_t B = r.B, D = r.D, E = r.E, J = r.J;
  r.hIn = f.template get<const Act>(a, "hIn", B * D);
  r.rIn = f.template opt<const Par>(a, "rIn", B * D);
  r.Wx = f.template get<const Act>(a, "Wx", J * E);
  r.rOut = f.template get<Par>(a, "rOut", B * D);
  r.xPart = f.template get<Par>(a, "xPart", decode_parts(E) * B * J);
  // every CUDA block reads hIn and rIn while one writes rOut
  const bool apart = !ranges_overlap(r.rOut, B * D, r.rIn, B * D) && !ranges_overlap(r.rOut, B * D, r.hIn, B * D);
  a.require(apart, "rOut must not overlap hIn or rIn");
  return r;
}

// decodeInProj: the unfused step's RMSNorm, in_proj and conv step in one op, reading the residual r itself (the
// residual add happened in the previous out_proj's product, which accumulates into r).
template <class Act, class Par>
struct DecodeInProjArgs {
  const Par* r;
  const Par* normW;
  const Act* Win;
  Par* convState;
  const Par* convW;
  const Par* convBias;
  Act* xc;
  Act* z;
  int64_t B, D, E, K;
  double eps;
};

// Fields r, normW, Win, convState, convW, convBias?, xc, z, B, D, E, K, eps.
template <class Act, class Par, class Fetch>
DecodeInProjArgs<Act, Par> read_decode_in_proj(const ArgObject& a, const Fetch& f) {
  DecodeInProjArgs<Act, Par> r{};
  read_norm_in_conv<Act, Par>(a, f, r);
  r.r = f.template get<const Par>(a, "r", r.B * r.D);
  return r;
}

template <class Act, class Par>
struct DecodeSsmArgs {
  const Par* xPart;  // decodeIn's partial sums [P, B, J], or
  const Act* xProj;  // x_proj itself [B, J] (a product of the unfused step); exactly one of the two is given
  const Act* xc;
  const Act* z;  // rows of zStride (z may be the second half of xz, [B, 2E])
  const Act* Wdt;
  const Par* dtBias;
  const Par* A;
  const Par* Dskip;
  Par* ssmState;
  Act* y;
  int64_t B, E, R, N, zStride;
  // buffers the next block's step reads, which the CUDA kernel pulls into L2 while this step runs (no effect on the
  // results; the CPU twin ignores them)
  Napi::Value prefetch;
};

// Fields xPart | xProj, xc, z, zStride?, Wdt, dtBias?, A, Dskip?, ssmState, y, B, E, R, N, prefetch? (an array of
// buffers).
template <class Act, class Par, class Fetch>
DecodeSsmArgs<Act, Par> read_decode_ssm(const ArgObject& a, const Fetch& f) {
  DecodeSsmArgs<Act, Par> r{};
  r.B = decode_batch(a);
  r.E = a.integer("E");
  r.R = a.integer("R");
  r.N = a.integer("N");
  a.require(r.E >= 1 && r.R >= 1 && r.N >= 1, "E, R and N must be >= 1");
  const int64_t B = r.B, E = r.E, R = r.R, N = r.N, J = R + 2 * N;
  a.require(a.has("xPart") != a.has("xProj"), "give exactly one of xPart (partial sums) and xProj");
  r.xPart = f.template opt<const Par>(a, "xPart", decode_parts(E) * B * J);
  r.xProj = f.template opt<const Act>(a, "xProj", B * J);
  r.xc = f.template get<const Act>(a, "xc", B * E);
  r.zStride = a.has("zStride") ? a.integer("zStride") : E;
  a.require(r.zStride >= E, "zStride " + std::to_string(r.zStride) + " is smaller than E = " + std::to_string(E));
  r.z = f.template get<const Act>(a, "z", strided_span(B, r.zStride, E));
  r.Wdt = f.template get<const Act>(a, "Wdt", E * R);
  r.dtBias = f.template opt<const Par>(a, "dtBias", E);
  r.A = f.template get<const Par>(a, "A", E * N);
  r.Dskip = f.template opt<const Par>(a, "Dskip", E);
  r.ssmState = f.template get<Par>(a, "ssmState", B * E * N);
  r.y = f.template get<Act>(a, "y", B * E);
  r.prefetch = a.optional("prefetch");
  a.require(ArgObject::absent(r.prefetch) || r.prefetch.IsArray(), "prefetch must be an array of buffers");
  return r;
}

// convXProj: the unfused step's conv step (SiLU, as conv1dStep) and x_proj in one op: xc = SiLU(conv step of x into
// convState [B, E, K] + convBias); xProj = xc Wx^T [B, J].
template <class Act, class Par>
struct ConvXProjArgs {
  const Act* x;
  int64_t xStride;  // x: rows of xStride (the xs columns of in_proj's output)
  Par* convState;
  const Par* convW;
  const Par* convBias;
  const Act* Wx;
  Act* xc;
  Act* xProj;
  int64_t B, E, K, J;
};

// Fields x, xStride, convState, convW, convBias?, Wx, xc, xProj, B, E, K, J.
template <class Act, class Par, class Fetch>
ConvXProjArgs<Act, Par> read_conv_x_proj(const ArgObject& a, const Fetch& f) {
  ConvXProjArgs<Act, Par> r{};
  r.B = decode_batch(a);
  r.E = a.integer("E");
  r.K = a.integer("K");
  r.J = a.integer("J");
  a.require(r.E >= 1 && r.K >= 1 && r.J >= 1, "E, K and J must be >= 1");
  const int64_t B = r.B, E = r.E, K = r.K, J = r.J;
  r.xStride = a.integer("xStride");
  a.require(r.xStride >= E, "xStride " + std::to_string(r.xStride) + " is smaller than E = " + std::to_string(E));
  r.x = f.template get<const Act>(a, "x", strided_span(B, r.xStride, E));
  r.convState = f.template get<Par>(a, "convState", B * E * K);
  r.convW = f.template get<const Par>(a, "convW", E * K);
  r.convBias = f.template opt<const Par>(a, "convBias", E);
  r.Wx = f.template get<const Act>(a, "Wx", J * E);
  r.xc = f.template get<Act>(a, "xc", B * E);
  r.xProj = f.template get<Act>(a, "xProj", B * J);
  return r;
}

}  // namespace mamba
