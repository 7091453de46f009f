// The named arguments of the causal depthwise conv ops (conv1dForward, conv1dBackward, conv1dStep; fields in
// native/KERNELS.md), read and checked once here for the CPU twins (native/cpu/conv1d.cc, ArrayFetch) and the
// CUDA kernels (native/cuda/ops.cu, DeviceFetch). Act: x, out and their gradients; Par: w, bias, dw, dbias and
// the decoding state.
#pragma once
#include "args.h"

namespace mamba {

template <class Act, class Par>
struct ConvInputs {
  const Act* x;
  int64_t xStride;  // x: rows of xStride (columns of a wider tensor)
  const Par* w;
  const Par* bias;     // w [D, K], bias [D] optional
  int64_t B, L, D, K;  // L = 1 for the step
  bool silu;
};

// Fields x, xStride, w, bias?, B, L (not for the step), D, K, silu.
template <class Act, class Par, class Fetch>
ConvInputs<Act, Par> read_conv_inputs(const ArgObject& a, const Fetch& f, bool step) {
  ConvInputs<Act, Par> c{};
  c.B = a.integer("B");
  c.L = step ? 1 : a.integer("L");
  c.D = a.integer("D");
  c.K = a.integer("K");
  a.require(c.B >= 0 && c.L >= 0 && c.D >= 0, "B, L and D must be >= 0");
  a.require(c.K >= 1, "the kernel width K must be >= 1, got " + std::to_string(c.K));
  c.silu = a.boolean("silu");
  c.xStride = a.integer("xStride");
  a.require(c.xStride >= c.D, "xStride " + std::to_string(c.xStride) + " is smaller than D = " + std::to_string(c.D));
  c.x = f.template get<const Act>(a, "x", strided_span(c.B * c.L, c.xStride, c.D));
  c.w = f.template get<const Par>(a, "w", c.D * c.K);
  c.bias = f.template opt<const Par>(a, "bias", c.D);
  return c;
}

template <class Act, class Par>
struct ConvGradients {
  const Act* dOut;
  Act* dx;
  int64_t dxStride;  // overwritten
  Par* dw;
  Par* dbias;  // accumulated; dbias optional
};

// Fields dOut, dx, dxStride, dw, dbias? of conv1dBackward.
template <class Act, class Par, class Fetch>
ConvGradients<Act, Par> read_conv_gradients(const ArgObject& a, const Fetch& f, const ConvInputs<Act, Par>& c) {
  ConvGradients<Act, Par> g{};
  const int64_t rows = c.B * c.L;
  g.dOut = f.template get<const Act>(a, "dOut", rows * c.D);
  g.dxStride = a.integer("dxStride");
  a.require(g.dxStride >= c.D,
            "dxStride " + std::to_string(g.dxStride) + " is smaller than D = " + std::to_string(c.D));
  g.dx = f.template get<Act>(a, "dx", strided_span(rows, g.dxStride, c.D));
  g.dw = f.template get<Par>(a, "dw", c.D * c.K);
  g.dbias = f.template opt<Par>(a, "dbias", c.D);
  return g;
}

}  // namespace mamba
