#include "dynlibs.h"
#include <dlfcn.h>
#include <mutex>
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

void gemm_rowmajor(bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda, const void* B,
                   int ldb, float beta, void* C, int ldc, cudaDataType_t type, cudaDataType_t ctype) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  Cublas& cb = cublas();
  cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
  cublasStatus_t s = cb.gemmEx(cb.handle, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                               K, &alpha, B, type, ldb, A, type, lda, &beta, C, ctype, ldc, ct, CUBLAS_GEMM_DEFAULT);
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
