// The named arguments of the selective scan ops (selectiveScanForward, selectiveScanBackward; fields in
// native/KERNELS.md), read and checked once here for both twins: the CPU bindings (TypedArrays, via
// ArrayFetch) and the CUDA bindings (device buffers, via DeviceFetch) differ only in how a field becomes a
// pointer and in their element types (Act: u, delta, B, C, z, y and their gradients; Par: deltaBias, A, Dskip,
// the states and the parameter gradients).
#pragma once
#include "args.h"

namespace mamba {

template <class Act, class Par>
struct ScanInputs {
  const Act* u;
  const Act* delta;
  const Par* deltaBias;
  const Par* A;
  const Act* Bm;
  const Act* Cm;
  int64_t bcStride;  // B and C rows share one stride (columns of x_proj's output)
  const Par* Dskip;
  const Act* z;
  int64_t zStride;
  int64_t B, L, D, N;
  bool softplus;
};

// Fields u, delta, deltaBias?, A, Bm, Cm, bcStride, Dskip?, z?, zStride (needed with z), B, L, D, N, deltaSoftplus.
template <class Act, class Par, class Fetch>
ScanInputs<Act, Par> read_scan_inputs(const ArgObject& a, const Fetch& f) {
  ScanInputs<Act, Par> s{};
  s.B = a.integer("B");
  s.L = a.integer("L");
  s.D = a.integer("D");
  s.N = a.integer("N");
  a.require(s.B >= 0 && s.L >= 0 && s.D >= 0, "B, L and D must be >= 0");
  a.require(s.N >= 1, "the state size N must be >= 1");
  s.softplus = a.boolean("deltaSoftplus");
  const int64_t rows = s.B * s.L;
  s.bcStride = a.integer("bcStride");
  a.require(s.bcStride >= s.N,
            "bcStride " + std::to_string(s.bcStride) + " is smaller than N = " + std::to_string(s.N));
  s.u = f.template get<const Act>(a, "u", rows * s.D);
  s.delta = f.template get<const Act>(a, "delta", rows * s.D);
  s.deltaBias = f.template opt<const Par>(a, "deltaBias", s.D);
  s.A = f.template get<const Par>(a, "A", s.D * s.N);
  s.Bm = f.template get<const Act>(a, "Bm", strided_span(rows, s.bcStride, s.N));
  s.Cm = f.template get<const Act>(a, "Cm", strided_span(rows, s.bcStride, s.N));
  s.Dskip = f.template opt<const Par>(a, "Dskip", s.D);
  s.zStride = a.has("zStride") ? a.integer("zStride") : s.D;
  if (a.has("z")) {
    a.require(s.zStride >= s.D, "zStride " + std::to_string(s.zStride) + " is smaller than D = " + std::to_string(s.D));
    s.z = f.template get<const Act>(a, "z", strided_span(rows, s.zStride, s.D));
  }
  return s;
}

template <class Act, class Par>
struct ScanGradients {
  const Act* dy;
  Act* du;
  Act* ddelta;  // ddelta may be delta itself (native/KERNELS.md)
  Par* dA;      // accumulated
  Act* dB;
  Act* dC;  // overwritten, rows of bcStride
  Par* dDskip;
  Par* dDeltaBias;  // accumulated, optional
  Act* dz;          // overwritten, rows of zStride; given exactly when z is (may be z itself)
  Act* y;           // optional: the forward's output, rebuilt from the recomputed states (may be dy itself)
};

// Fields dy, du, ddelta, dA, dB, dC, dDskip?, dDeltaBias?, dz?, y? of selectiveScanBackward.
template <class Act, class Par, class Fetch>
ScanGradients<Act, Par> read_scan_gradients(const ArgObject& a, const Fetch& f, const ScanInputs<Act, Par>& s) {
  ScanGradients<Act, Par> g{};
  const int64_t rows = s.B * s.L;
  g.dy = f.template get<const Act>(a, "dy", rows * s.D);
  g.du = f.template get<Act>(a, "du", rows * s.D);
  g.ddelta = f.template get<Act>(a, "ddelta", rows * s.D);
  g.dA = f.template get<Par>(a, "dA", s.D * s.N);
  g.dB = f.template get<Act>(a, "dB", strided_span(rows, s.bcStride, s.N));
  g.dC = f.template get<Act>(a, "dC", strided_span(rows, s.bcStride, s.N));
  g.dDskip = f.template opt<Par>(a, "dDskip", s.D);
  g.dDeltaBias = f.template opt<Par>(a, "dDeltaBias", s.D);
  g.dz = f.template opt<Act>(a, "dz", strided_span(rows, s.zStride, s.D));
  a.require(!!g.dz == !!s.z, "dz must be given exactly when z is");
  g.y = f.template opt<Act>(a, "y", rows * s.D);
  return g;
}

}  // namespace mamba
