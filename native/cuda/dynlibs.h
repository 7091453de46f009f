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

// --- cuBLASLt (the tuned products of training) ----------------------------------
typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};
enum cublasLtMatmulDescAttributes_t { CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4 };
enum cublasLtMatmulPreferenceAttributes_t {
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
};

struct CublasLt {
  cublasStatus_t (*create)(cublasLtHandle_t*);
  cublasStatus_t (*descCreate)(cublasLtMatmulDesc_t*, cublasComputeType_t, cudaDataType_t);
  cublasStatus_t (*descSetAttribute)(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void*, size_t);
  cublasStatus_t (*layoutCreate)(cublasLtMatrixLayout_t*, cudaDataType_t, uint64_t, uint64_t, int64_t);
  cublasStatus_t (*preferenceCreate)(cublasLtMatmulPreference_t*);
  cublasStatus_t (*preferenceSetAttribute)(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t,
                                           const void*, size_t);
  cublasStatus_t (*preferenceDestroy)(cublasLtMatmulPreference_t);
  cublasStatus_t (*algoGetHeuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                     cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                     cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t*, int*);
  cublasStatus_t (*matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*, cublasLtMatrixLayout_t,
                           const void*, cublasLtMatrixLayout_t, const void*, const void*, cublasLtMatrixLayout_t, void*,
                           cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t);
  cublasLtHandle_t handle = nullptr;
  std::string path;
};

// Tuned products (off by default; the trainer turns them on): the first product of each shape, layout and
// alignment times cublasGemmEx's own choice against every algorithm cuBLASLt's heuristic offers and keeps the
// fastest for the rest of the process. The choice depends on timings, so a tuned product's last bits may differ
// between processes: inference keeps the fixed choice.
void set_gemm_tuning(bool on);
size_t gemm_workspace_bytes();  // the tuned products' workspace on the current device (0 until one needs it)

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
