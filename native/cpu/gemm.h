#pragma once
#include <cstdint>
namespace mamba {
// Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C.
template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);
}  // namespace mamba
