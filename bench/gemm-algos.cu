// Does cuBLAS's default choice (cublasGemmEx, CUBLAS_GEMM_DEFAULT, as native/cuda/dynlibs.cc calls it) leave time
// on the table at the 130m training step's products? The profile of stop 37 has the products with a small side
// (x_proj's 80 columns, dt_proj's rank 48) at 1.5-3.5x the time their one large operand takes to stream from HBM.
// A standalone dev harness, not part of the addon (issue 17, stop 38), built where the CUDA toolkit has cuBLAS:
//   nvcc -O3 -std=c++17 -arch=sm_90 bench/gemm-algos.cu -o /tmp/gemm-algos -lcublasLt -lcublas && /tmp/gemm-algos
// Each row is one product of the step, named as bench/profile-ops.js names it (row-major M x N x K, op(A) op(B)),
// with its leading dimensions, beta and output dtype as src/nn/mixer.ts calls it. Timed: cublasGemmEx default, and
// every algorithm cublasLt's heuristic offers (up to 16, 32 MiB of workspace). L2 flushed before each launch;
// median of 15.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(x)                                                                                 \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)
#define CB(x)                                                                    \
  do {                                                                           \
    int s_ = (int)(x);                                                           \
    if (s_ != 0) {                                                               \
      std::fprintf(stderr, "%s:%d %s: status %d\n", __FILE__, __LINE__, #x, s_); \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

struct Shape {
  const char* what;
  int M, N, K;
  bool ta, tb;
  int lda, ldb, ldc;
  float beta;
  bool c_f32;
  int calls;  // per 130m step
};

constexpr size_t FLUSH = 256u << 20, WS = 32u << 20;

int main() {
  const Shape shapes[] = {
      {"dt_proj forward (and its recompute)", 16384, 1536, 48, false, true, 80, 48, 1536, 0.f, false, 47},
      {"x_proj dx, added to the scan's du", 16384, 1536, 80, false, false, 80, 1536, 1536, 1.f, false, 24},
      {"dt_proj weight gradient", 1536, 48, 16384, true, false, 1536, 80, 48, 1.f, true, 24},
      {"x_proj weight gradient", 80, 1536, 16384, true, false, 80, 1536, 1536, 1.f, true, 24},
      {"x_proj forward", 16384, 80, 1536, false, true, 1536, 1536, 80, 0.f, false, 24},
      {"dt_proj d(dt_low)", 16384, 48, 1536, false, false, 1536, 48, 80, 0.f, false, 24},
      {"in_proj forward", 16384, 3072, 768, false, true, 768, 768, 3072, 0.f, false, 24},
      {"in_proj weight gradient", 3072, 768, 16384, true, false, 3072, 768, 768, 1.f, true, 24},
      {"in_proj dx", 16384, 768, 3072, false, false, 3072, 768, 768, 0.f, false, 24},
      {"out_proj weight gradient", 768, 1536, 16384, true, false, 768, 1536, 1536, 1.f, true, 24},
      {"out_proj dy", 16384, 1536, 768, false, false, 768, 1536, 1536, 0.f, false, 24},
      {"out_proj forward", 16384, 768, 1536, false, true, 1536, 1536, 768, 0.f, false, 24},
  };
  void *A, *Bm, *C, *ws;
  char* flush;
  CK(cudaMalloc(&A, 128u << 20));
  CK(cudaMalloc(&Bm, 128u << 20));
  CK(cudaMalloc(&C, 128u << 20));
  CK(cudaMalloc(&ws, WS));
  CK(cudaMalloc(&flush, FLUSH));
  {
    std::vector<__nv_bfloat16> h(64u << 20);  // 128 MiB: the largest operand is 100 MB
    uint64_t s = 7;
    for (auto& v : h) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = __float2bfloat16((float)((s >> 40) & 0xffff) / 65536.f - 0.5f);
    }
    CK(cudaMemcpy(A, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(Bm, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemset(C, 0, 128u << 20));
  }
  cublasHandle_t cb;
  CB(cublasCreate(&cb));
  cublasLtHandle_t lt;
  CB(cublasLtCreate(&lt));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto median = [&](auto launch) {
    std::vector<float> ts;
    for (int r = 0; r < 17; r++) {
      CK(cudaMemsetAsync(flush, r, FLUSH));
      CK(cudaEventRecord(e0));
      const int st = launch();
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      if (st != 0) return -1.f;
      float ms;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      if (r >= 2) ts.push_back(ms * 1000.f);
    }
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
  };
  double total_default = 0, total_best = 0;
  for (const Shape& s : shapes) {
    const float alpha = 1.f, beta = s.beta;
    const cudaDataType_t ct = s.c_f32 ? CUDA_R_32F : CUDA_R_16BF;
    // row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
    const cublasOperation_t oa = s.tb ? CUBLAS_OP_T : CUBLAS_OP_N, ob = s.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float t_def = median([&] {
      return (int)cublasGemmEx(cb, oa, ob, s.N, s.M, s.K, &alpha, Bm, CUDA_R_16BF, s.ldb, A, CUDA_R_16BF, s.lda, &beta,
                               C, ct, s.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    });
    cublasLtMatmulDesc_t op;
    CB(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &oa, sizeof(oa)));
    CB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &ob, sizeof(ob)));
    cublasLtMatrixLayout_t la, lb, lc;
    // Lt's A is our B: stored column-major as [N, K] (op N) or [K, N] (op T); Lt's B is our A: [K, M] or [M, K]
    CB(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, s.tb ? s.K : s.N, s.tb ? s.N : s.K, s.ldb));
    CB(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, s.ta ? s.M : s.K, s.ta ? s.K : s.M, s.lda));
    CB(cublasLtMatrixLayoutCreate(&lc, ct, s.N, s.M, s.ldc));
    cublasLtMatmulPreference_t pref;
    CB(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t wsz = WS;
    CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof(wsz)));
    cublasLtMatmulHeuristicResult_t res[16];
    int nres = 0;
    CB(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 16, res, &nres));
    float best = 1e30f;
    int besti = -1;
    float first = -1.f;
    for (int i = 0; i < nres; i++) {
      const float t = median([&] {
        return (int)cublasLtMatmul(lt, op, &alpha, Bm, la, A, lb, &beta, C, lc, C, lc, &res[i].algo, ws, WS, 0);
      });
      if (i == 0) first = t;
      if (t > 0 && t < best) best = t, besti = i;
    }
    const double bytes = 2.0 * ((double)s.M * s.K + (double)s.K * s.N) +
                         (s.c_f32 ? 4.0 : 2.0) * (double)s.M * s.N * (s.beta != 0.f ? 2 : 1);
    std::printf(
        "%-38s %5dx%5dx%5d %c%c: GemmEx default %7.2f us | Lt heuristic #0 %7.2f us | best of %2d: #%d %7.2f us"
        " (ws %zu) | HBM floor %.1f us, %.0f TFLOP/s at best\n",
        s.what, s.M, s.N, s.K, s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', t_def, first, nres, besti, best,
        besti >= 0 ? res[besti].workspaceSize : 0, bytes / 4.8e6, 2.0 * s.M * s.N * s.K / best / 1e6);
    total_default += t_def * s.calls;
    total_best += std::min(best, t_def) * s.calls;
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
  }
  std::printf("per 130m step: GemmEx default %.3f ms, best of each %.3f ms\n", total_default / 1e3, total_best / 1e3);
  return 0;
}
