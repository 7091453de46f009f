// The named arguments of gemm (C = alpha op(A) op(B) + beta C, row-major; fields in native/KERNELS.md): sizes,
// leading dimensions and the element counts A, B and C must hold, read and checked once here for the CPU
// (native/cpu/gemm.cc) and cuBLAS (native/cuda/dynlibs.cc) bindings.
#pragma once
#include "args.h"

namespace mamba {

struct GemmDims {
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  double alpha, beta;
  size_t na, nb, nc;  // elements A, B and C span
};

// Fields transA, transB, M, N, K, alpha, lda, ldb, beta, ldc (A, B, C are read by the binding).
inline GemmDims read_gemm_dims(const ArgObject& a) {
  GemmDims g{};
  g.ta = a.boolean("transA");
  g.tb = a.boolean("transB");
  g.M = a.integer("M");
  g.N = a.integer("N");
  g.K = a.integer("K");
  a.require(g.M >= 0 && g.N >= 0 && g.K >= 0, "M, N and K must be >= 0");
  g.alpha = a.number("alpha");
  g.beta = a.number("beta");
  g.lda = a.integer("lda");
  g.ldb = a.integer("ldb");
  g.ldc = a.integer("ldc");
  const int64_t wa = g.ta ? g.M : g.K, wb = g.tb ? g.K : g.N;  // row widths of A and B as stored
  a.require(g.lda >= wa && g.ldb >= wb && g.ldc >= g.N, "leading dimensions lda " + std::to_string(g.lda) + ", ldb " +
                                                            std::to_string(g.ldb) + ", ldc " + std::to_string(g.ldc) +
                                                            " must be at least the row widths " + std::to_string(wa) +
                                                            ", " + std::to_string(wb) + ", " + std::to_string(g.N));
  g.na = strided_span(g.ta ? g.K : g.M, g.lda, wa);
  g.nb = strided_span(g.tb ? g.N : g.K, g.ldb, wb);
  g.nc = strided_span(g.M, g.ldc, g.N);
  return g;
}

}  // namespace mamba
