// cuBLAS and NCCL are not linked: they are opened with dlopen the first time they are needed, so the
// addon builds with nvcc alone and runs wherever the libraries are installed. We declare the few
// prototypes and enum values we use ourselves (values from the public cuBLAS / NCCL headers).
#pragma once
#include <cuda_runtime.h>
#include <library_types.h>
#include <cstddef>
#include <string>

namespace mamba {

// --- cuBLAS ------------------------------------------------------------------
typedef struct cublasContext* cublasHandle_t;
typedef int cublasStatus_t;  // CUBLAS_STATUS_SUCCESS = 0
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };

struct Cublas {
  cublasStatus_t (*create)(cublasHandle_t*);
  cublasStatus_t (*setStream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*gemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                           const void*, cudaDataType_t, int, const void*, cudaDataType_t, int, const void*, void*,
                           cudaDataType_t, int, cublasComputeType_t, cublasGemmAlgo_t);
  cublasStatus_t (*gemmStridedBatchedEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                         const void*, const void*, cudaDataType_t, int, long long, const void*,
                                         cudaDataType_t, int, long long, const void*, void*, cudaDataType_t, int,
                                         long long, int, cublasComputeType_t, cublasGemmAlgo_t);
  cublasStatus_t (*setWorkspace)(cublasHandle_t, void*, size_t);
  cublasHandle_t handle = nullptr;
  std::string path;
};
// The loaded library and a handle bound to cuda_stream(); throws std::runtime_error if it cannot load.
Cublas& cublas();

// Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C with element types `type` (CUDA_R_32F or CUDA_R_16BF)
// for A and B and `ctype` for C; accumulation in fp32. Throws std::runtime_error on failure.
void gemm_rowmajor(bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda, const void* B,
                   int ldb, float beta, void* C, int ldc, cudaDataType_t type, cudaDataType_t ctype);

// --- NCCL --------------------------------------------------------------------
typedef struct ncclComm* ncclComm_t;
typedef int ncclResult_t;  // ncclSuccess = 0
struct ncclUniqueId {
  char internal[128];
};
enum ncclRedOp_t { ncclSum = 0 };
enum ncclDataType_t { ncclFloat32 = 7, ncclBfloat16 = 9 };

struct Nccl {
  ncclResult_t (*getVersion)(int*);
  ncclResult_t (*getUniqueId)(ncclUniqueId*);
  ncclResult_t (*commInitRank)(ncclComm_t*, int, ncclUniqueId, int);
  ncclResult_t (*commDestroy)(ncclComm_t);
  ncclResult_t (*allReduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
  const char* (*getErrorString)(ncclResult_t);
  std::string path;
};
Nccl& nccl();

}  // namespace mamba
