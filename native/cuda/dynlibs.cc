#include "dynlibs.h"
#include <dlfcn.h>
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <stdexcept>
#include <vector>
#include "../src/gemm_args.h"
#include "../src/registry.h"
#include "runtime.h"

namespace mamba {
namespace {

void* open_first(const std::vector<const char*>& names, std::string* path, const char* what) {
  std::string tried;
  for (const char* n : names) {
    if (void* h = dlopen(n, RTLD_NOW | RTLD_LOCAL)) {
      *path = n;
      return h;
    }
    tried += std::string(tried.empty() ? "" : ", ") + n;
  }
  throw std::runtime_error(std::string(what) + " could not be loaded (tried " + tried +
                           "); install it or add its folder to LD_LIBRARY_PATH");
}

template <class F>
void sym(void* lib, const char* name, F* out) {
  void* p = dlsym(lib, name);
  if (!p) throw std::runtime_error(std::string("symbol ") + name + " missing from the loaded library");
  *out = reinterpret_cast<F>(p);
}

}  // namespace

Cublas& cublas() {
  static std::once_flag once;
  static Cublas lib;
  static std::string error;
  std::call_once(once, [] {
    try {
      void* h =
          open_first({"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13", "libcublas.so.12", "libcublas.so"},
                     &lib.path, "cuBLAS");
      sym(h, "cublasCreate_v2", &lib.create);
      sym(h, "cublasSetStream_v2", &lib.setStream);
      sym(h, "cublasGemmEx", &lib.gemmEx);
      sym(h, "cublasGemmStridedBatchedEx", &lib.gemmStridedBatchedEx);
      sym(h, "cublasSetWorkspace_v2", &lib.setWorkspace);
      if (lib.create(&lib.handle) != 0) throw std::runtime_error("cublasCreate failed (is a GPU present?)");
      lib.setStream(lib.handle, cuda_stream());
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw std::runtime_error(error);
  return lib;
}

// cuBLASLt, or null where it cannot be loaded (the tuned products then fall back to cublasGemmEx)
CublasLt* cublas_lt() {
  static std::once_flag once;
  static CublasLt lib;
  static bool ok = false;
  std::call_once(once, [] {
    try {
      void* h = open_first(
          {"libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"},
          &lib.path, "cuBLASLt");
      sym(h, "cublasLtCreate", &lib.create);
      sym(h, "cublasLtMatmulDescCreate", &lib.descCreate);
      sym(h, "cublasLtMatmulDescSetAttribute", &lib.descSetAttribute);
      sym(h, "cublasLtMatrixLayoutCreate", &lib.layoutCreate);
      sym(h, "cublasLtMatmulPreferenceCreate", &lib.preferenceCreate);
      sym(h, "cublasLtMatmulPreferenceSetAttribute", &lib.preferenceSetAttribute);
      sym(h, "cublasLtMatmulPreferenceDestroy", &lib.preferenceDestroy);
      sym(h, "cublasLtMatmulAlgoGetHeuristic", &lib.algoGetHeuristic);
      sym(h, "cublasLtMatmul", &lib.matmul);
      ok = lib.create(&lib.handle) == 0;
    } catch (const std::exception&) {
      ok = false;
    }
  });
  return ok ? &lib : nullptr;
}

namespace {

bool g_tuning = false;

// Workspace the tuned products may use: the weight-gradient algorithms that won on the H200 took up to 2.5 MB
// (bench/gemm-algos.cu); a bound of 4 MiB keeps it well inside the 130m step's memory target.
constexpr size_t kTunedWorkspace = 4u << 20;

struct Workspace {
  void* p = nullptr;
  size_t bytes = 0;
};
std::map<int, Workspace>& workspaces() {
  static std::map<int, Workspace> w;
  return w;
}

// the largest power of two up to 256 that the address is a multiple of (cuBLASLt's alignment preferences)
uint32_t alignment_of(const void* p) {
  uint32_t a = 256;
  while (a > 1 && (uintptr_t)p % a != 0) a /= 2;
  return a;
}

// A product's choice: cublasGemmEx's own (lt = false), or a cuBLASLt algorithm with its descriptors
struct Choice {
  bool lt = false;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
};
using TuneKey = std::tuple<int, bool, bool, int, int, int, int, int, int, int, int, bool, uint32_t, uint32_t, uint32_t>;

cublasStatus_t gemm_ex(bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda,
                       const void* B, int ldb, float beta, void* C, int ldc, cudaDataType_t type,
                       cudaDataType_t ctype) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  Cublas& cb = cublas();
  return cb.gemmEx(cb.handle, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                   B, type, ldb, A, type, lda, &beta, C, ctype, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

// Times a product (median of 5 after one warm-up run) into a scratch C; a negative time if it failed
template <class F>
float time_product(F run) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ts;
  bool ok = run() == 0;
  for (int r = 0; ok && r < 5; r++) {
    cudaEventRecord(e0, cuda_stream());
    ok = run() == 0;
    cudaEventRecord(e1, cuda_stream());
    cudaEventSynchronize(e1);
    float ms = 0.f;
    cudaEventElapsedTime(&ms, e0, e1);
    ts.push_back(ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  if (!ok || ts.empty()) return -1.f;
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

// The fastest of cublasGemmEx's choice and cuBLASLt's heuristic candidates for this product, timed on a scratch
// copy of C (beta != 0 products read it; the real C is not touched)
Choice tune(bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda, const void* B, int ldb,
            float beta, const void* C, int ldc, cudaDataType_t type, cudaDataType_t ctype) {
  Choice best;
  CublasLt* lt = cublas_lt();
  if (!lt) return best;
  const size_t ces = ctype == CUDA_R_32F ? 4 : 2;
  const size_t cbytes = ((size_t)(M - 1) * ldc + N) * ces;
  void* scratch = nullptr;
  if (cudaMalloc(&scratch, cbytes) != cudaSuccess) {
    cudaGetLastError();
    return best;
  }
  cudaMemcpyAsync(scratch, C, cbytes, cudaMemcpyDeviceToDevice, cuda_stream());
  float best_ms = time_product(
      [&] { return gemm_ex(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, scratch, ldc, type, ctype); });
  Workspace& ws = workspaces()[current_device()];
  if (!ws.p) {
    if (cudaMalloc(&ws.p, kTunedWorkspace) == cudaSuccess)
      ws.bytes = kTunedWorkspace;
    else
      ws.p = nullptr, cudaGetLastError();
  }
  Choice c;
  c.lt = true;
  const cublasOperation_t oa = transB ? CUBLAS_OP_T : CUBLAS_OP_N, ob = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  bool ok = lt->descCreate(&c.op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == 0 &&
            lt->descSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSA, &oa, sizeof(oa)) == 0 &&
            lt->descSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSB, &ob, sizeof(ob)) == 0 &&
            // cuBLASLt's A is our B, stored column-major as [N, K] (op N) or [K, N] (op T); its B is our A
            lt->layoutCreate(&c.la, type, transB ? K : N, transB ? N : K, ldb) == 0 &&
            lt->layoutCreate(&c.lb, type, transA ? M : K, transA ? K : M, lda) == 0 &&
            lt->layoutCreate(&c.lc, ctype, N, M, ldc) == 0;
  cublasLtMatmulHeuristicResult_t res[16];
  int nres = 0;
  if (ok) {
    cublasLtMatmulPreference_t pref = nullptr;
    const uint64_t wsz = ws.bytes;
    const uint32_t al_a = alignment_of(B), al_b = alignment_of(A), al_c = alignment_of(C);
    ok = lt->preferenceCreate(&pref) == 0 &&
         lt->preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof(wsz)) == 0 &&
         lt->preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a)) == 0 &&
         lt->preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b)) == 0 &&
         lt->preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof(al_c)) == 0 &&
         lt->preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof(al_c)) == 0 &&
         lt->algoGetHeuristic(lt->handle, c.op, c.la, c.lb, c.lc, c.lc, pref, 16, res, &nres) == 0;
    if (pref) lt->preferenceDestroy(pref);
  }
  for (int i = 0; ok && i < nres; i++) {
    if (res[i].state != 0 || res[i].workspaceSize > ws.bytes) continue;
    const float ms = time_product([&] {
      return lt->matmul(lt->handle, c.op, &alpha, B, c.la, A, c.lb, &beta, scratch, c.lc, scratch, c.lc, &res[i].algo,
                        ws.p, ws.bytes, cuda_stream());
    });
    if (ms > 0.f && (best_ms < 0.f || ms < best_ms)) {
      best_ms = ms;
      c.algo = res[i].algo;
      best = c;
    }
  }
  cudaStreamSynchronize(cuda_stream());
  cudaFree(scratch);
  cudaGetLastError();  // a candidate that failed leaves nothing behind
  return best;         // (descriptors of a losing Lt choice are kept: a few hundred bytes, once per shape)
}

}  // namespace

void set_gemm_tuning(bool on) { g_tuning = on; }
size_t gemm_workspace_bytes() {
  const auto it = workspaces().find(current_device());
  return it == workspaces().end() ? 0 : it->second.bytes;
}

void gemm_rowmajor(bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda, const void* B,
                   int ldb, float beta, void* C, int ldc, cudaDataType_t type, cudaDataType_t ctype) {
  if (g_tuning && K > 0 && !stream_capturing()) {
    static std::map<TuneKey, Choice> chosen;
    const int dev = current_device();
    const TuneKey key{dev,
                      transA,
                      transB,
                      M,
                      N,
                      K,
                      lda,
                      ldb,
                      ldc,
                      (int)type,
                      (int)ctype,
                      beta != 0.f,
                      alignment_of(A),
                      alignment_of(B),
                      alignment_of(C)};
    auto it = chosen.find(key);
    if (it == chosen.end())
      it = chosen.emplace(key, tune(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, type, ctype)).first;
    const Choice& c = it->second;
    if (c.lt) {
      CublasLt* lt = cublas_lt();
      const Workspace& ws = workspaces()[dev];
      const cublasStatus_t s = lt->matmul(lt->handle, c.op, &alpha, B, c.la, A, c.lb, &beta, C, c.lc, C, c.lc, &c.algo,
                                          ws.p, ws.bytes, cuda_stream());
      if (s != 0) throw std::runtime_error("cublasLtMatmul failed with status " + std::to_string(s));
      return;
    }
  }
  const cublasStatus_t s = gemm_ex(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, type, ctype);
  if (s != 0) throw std::runtime_error("cublasGemmEx failed with status " + std::to_string(s));
}

Nccl& nccl() {
  static std::once_flag once;
  static Nccl lib;
  static std::string error;
  std::call_once(once, [] {
    try {
      void* h = open_first({"libnccl.so.2", "/usr/lib/x86_64-linux-gnu/libnccl.so.2", "libnccl.so"}, &lib.path, "NCCL");
      sym(h, "ncclGetVersion", &lib.getVersion);
      sym(h, "ncclGetUniqueId", &lib.getUniqueId);
      sym(h, "ncclCommInitRank", &lib.commInitRank);
      sym(h, "ncclCommDestroy", &lib.commDestroy);
      sym(h, "ncclAllReduce", &lib.allReduce);
      sym(h, "ncclGetErrorString", &lib.getErrorString);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw std::runtime_error(error);
  return lib;
}

}  // namespace mamba

using namespace mamba;

// a dtype field of gemm: 'f32' (the default) | 'bf16'
static cudaDataType_t gemm_type(const ArgObject& a, const char* key) {
  if (!a.has(key)) return CUDA_R_32F;
  const std::string s = a.string(key);
  if (s == "f32") return CUDA_R_32F;
  if (s == "bf16") return CUDA_R_16BF;
  throw_type(a.env(), a.name(key) + ": expected 'f32' or 'bf16', got '" + s + "'");
}

// cuda.gemm({ transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, abType?, cType? }): abType (A and B)
// and cType 'f32' (the default) | 'bf16'; fields in native/KERNELS.md, sizes checked by native/src/gemm_args.h
MAMBA_OP(cuda, gemm) {
  const ArgObject a(info, 0, "gemm");
  const GemmDims g = read_gemm_dims(a);
  const cudaDataType_t t = gemm_type(a, "abType"), ct = gemm_type(a, "cType");
  const size_t es = t == CUDA_R_32F ? 4 : 2, ces = ct == CUDA_R_32F ? 4 : 2;
  const void* A = value_device(a.env(), a.value("A"), "gemm A", g.na * es);
  const void* B = value_device(a.env(), a.value("B"), "gemm B", g.nb * es);
  void* C = value_device(a.env(), a.value("C"), "gemm C", g.nc * ces);
  a.finish();
  if (g.M == 0 || g.N == 0) return info.Env().Undefined();
  try {
    gemm_rowmajor(g.ta, g.tb, (int)g.M, (int)g.N, (int)g.K, (float)g.alpha, A, (int)g.lda, B, (int)g.ldb, (float)g.beta,
                  C, (int)g.ldc, t, ct);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

// cuda.gemmTuning(on): tuned products (dynlibs.h set_gemm_tuning) on or off for this process
MAMBA_OP(cuda, gemmTuning) {
  if (info.Length() < 1 || !info[0].IsBoolean()) throw_type(info.Env(), "gemmTuning: expected true or false");
  set_gemm_tuning(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

// cuda.libraries() -> { cublas: path | error, nccl: path | error }
MAMBA_OP(cuda, libraries) {
  Napi::Object o = Napi::Object::New(info.Env());
  try {
    o.Set("cublas", cublas().path);
  } catch (const std::exception& e) {
    o.Set("cublasError", e.what());
  }
  try {
    Nccl& n = nccl();
    int v = 0;
    n.getVersion(&v);
    o.Set("nccl", n.path);
    o.Set("ncclVersion", v);
  } catch (const std::exception& e) {
    o.Set("ncclError", e.what());
  }
  return o;
}
