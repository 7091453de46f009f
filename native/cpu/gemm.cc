// Row-major GEMM: C[M,N] = alpha * op(A) @ op(B) + beta * C, op = identity or transpose.
// Operands are repacked so the inner loop is a contiguous axpy over N, which the compiler vectorises;
// rows of C are split across threads. float and double (double serves the gradient checks).
#include "gemm.h"
#include <algorithm>
#include <cstring>
#include <vector>
#include "../src/args.h"
#include "../src/registry.h"
#include "threadpool.h"

namespace mamba {

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  // B as a K x N row-major panel (copy only if transposed)
  std::vector<T> bt;
  const T* Bn = B;
  int64_t ldbn = ldb;
  if (transB) {
    bt.resize((size_t)K * N);
    parallel_for(K, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; k++)
        for (int64_t j = 0; j < N; j++) bt[k * N + j] = B[j * ldb + k];
    }, 16);
    Bn = bt.data();
    ldbn = N;
  }
  constexpr int64_t KB = 256;
  parallel_for(M, [&](int64_t i0, int64_t i1) {
    std::vector<T> acc((size_t)N);
    for (int64_t i = i0; i < i1; i++) {
      std::fill(acc.begin(), acc.end(), T(0));
      T* a = acc.data();
      for (int64_t k0 = 0; k0 < K; k0 += KB) {
        int64_t k1 = std::min(K, k0 + KB);
        for (int64_t k = k0; k < k1; k++) {
          T aik = transA ? A[k * lda + i] : A[i * lda + k];
          if (aik == T(0)) continue;
          const T* b = Bn + k * ldbn;
          for (int64_t j = 0; j < N; j++) a[j] += aik * b[j];
        }
      }
      T* c = C + i * ldc;
      if (beta == T(0)) for (int64_t j = 0; j < N; j++) c[j] = alpha * a[j];
      else for (int64_t j = 0; j < N; j++) c[j] = alpha * a[j] + beta * c[j];
    }
  }, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, N * K)));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace mamba

// cpu.gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc): Float32Array or Float64Array
MAMBA_OP(cpu, gemm) {
  using namespace mamba;
  bool ta = arg_bool(info, 0, "gemm transA"), tb = arg_bool(info, 1, "gemm transB");
  int64_t M = arg_int(info, 2, "gemm M"), N = arg_int(info, 3, "gemm N"), K = arg_int(info, 4, "gemm K");
  double alpha = arg_num(info, 5, "gemm alpha");
  int64_t lda = arg_int(info, 7, "gemm lda"), ldb = arg_int(info, 9, "gemm ldb"), ldc = arg_int(info, 12, "gemm ldc");
  double beta = arg_num(info, 10, "gemm beta");
  if (M < 0 || N < 0 || K < 0) throw Napi::RangeError::New(info.Env(), "gemm: negative size");
  size_t na = (M && K) ? (size_t)((ta ? K : M) - 1) * lda + (ta ? M : K) : 0;
  size_t nb = (N && K) ? (size_t)((tb ? N : K) - 1) * ldb + (tb ? K : N) : 0;
  size_t nc = (M && N) ? (size_t)(M - 1) * ldc + N : 0;
  if (arg_is_f64(info, 6)) {
    gemm<double>(ta, tb, M, N, K, alpha, arg_array<double>(info, 6, "gemm A", na), lda, arg_array<double>(info, 8, "gemm B", nb), ldb,
                 beta, arg_array<double>(info, 11, "gemm C", nc), ldc);
  } else {
    gemm<float>(ta, tb, M, N, K, (float)alpha, arg_array<float>(info, 6, "gemm A", na), lda, arg_array<float>(info, 8, "gemm B", nb), ldb,
                (float)beta, arg_array<float>(info, 11, "gemm C", nc), ldc);
  }
  return info.Env().Undefined();
}
