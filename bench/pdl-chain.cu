// Does programmatic dependent launch (PDL, Hopper) shorten a chain of small dependent kernels replayed from a
// CUDA graph, as the batched decoding step is (issue 17: at B = 64 the step is 6 kernels per layer, 3 of them
// cuBLAS products, and bound by the chain rather than by bytes)? A standalone dev harness, not part of the addon:
//   nvcc -O3 -arch=sm_90 bench/pdl-chain.cu -o /tmp/pdl-chain -ldl && /tmp/pdl-chain
// Rows: a chain of K small elementwise kernels (the size of a B = 64 decode activation, 64 x 1536 floats), each
// reading the previous one's output, captured into one graph and replayed; launched plainly, and with the
// programmatic-serialization attribute so each kernel's blocks are scheduled while its predecessor runs and wait
// at griddepcontrol.wait. The same with a cuBLAS product (64 x 1536 by 1536 x 80, the x_proj shape) between every
// two kernels, as in the decode step, where only our kernels can carry the attribute. Median of 21 replays.
// Run on an H200 in stop 16 (bench/results/stop16-h200/pdl-chain.txt): 1.16 -> 0.87 us per kernel for our kernels
// alone, 9.82 us per kernel-and-product pair with or without PDL (bench/README.md, "Generation (cuda, NVIDIA H200)").
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#define CK(x)                                                                                 \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      return 1;                                                                               \
    }                                                                                         \
  } while (0)

// y = x * a + b; waits for the previous kernel's writes (a no-op unless launched with PDL), and lets the next
// kernel start launching as soon as every block of this one has begun
__global__ void step_kernel(const float* __restrict__ x, float* __restrict__ y, int n, float a, float b) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = fmaf(x[i], a, b);
}

// the C API of cuBLAS, opened at run time (this machine's build has no cuBLAS to link)
typedef int (*CreateFn)(void**);
typedef int (*SetStreamFn)(void*, cudaStream_t);
typedef int (*SgemmFn)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int, const float*,
                       float*, int);

int main() {
  const int rows = 64, width = 1536, proj = 80, n = rows * width, K = 144;
  void* lib = dlopen("libcublas.so", RTLD_NOW);
  if (!lib) lib = dlopen("libcublas.so.13", RTLD_NOW);
  if (!lib) lib = dlopen("libcublas.so.12", RTLD_NOW);
  CreateFn create = lib ? (CreateFn)dlsym(lib, "cublasCreate_v2") : nullptr;
  SetStreamFn setStream = lib ? (SetStreamFn)dlsym(lib, "cublasSetStream_v2") : nullptr;
  SgemmFn sgemm = lib ? (SgemmFn)dlsym(lib, "cublasSgemm_v2") : nullptr;

  float *x, *y, *w, *p;
  CK(cudaMalloc(&x, n * sizeof(float)));
  CK(cudaMalloc(&y, n * sizeof(float)));
  CK(cudaMalloc(&w, width * proj * sizeof(float)));
  CK(cudaMalloc(&p, rows * proj * sizeof(float)));
  CK(cudaMemset(x, 0, n * sizeof(float)));
  CK(cudaMemset(w, 0, width * proj * sizeof(float)));
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  void* handle = nullptr;
  if (create && create(&handle) == 0) setStream(handle, st);

  const auto launch = [&](bool pdl, const float* in, float* out) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((n + 255) / 256);
    cfg.blockDim = dim3(256);
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = pdl ? attr : nullptr;
    cfg.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, step_kernel, in, out, n, 1.0001f, 0.5f);
  };
  const float one = 1.f, zero = 0.f;
  // one row of the table: K kernels (with a product after each when `gemm`), captured once, replayed 21 times
  const auto measure = [&](bool pdl, bool gemm, double* usPerKernel) -> int {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int k = 0; k < K; k++) {
      CK(launch(pdl, k % 2 ? y : x, k % 2 ? x : y));
      // column-major: P [proj x rows] = W^T [proj x width] . X [width x rows]
      if (gemm) sgemm(handle, 1, 0, proj, rows, width, &one, w, width, k % 2 ? x : y, width, &zero, p, proj);
    }
    CK(cudaStreamEndCapture(st, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    std::vector<float> ms;
    for (int r = 0; r < 22; r++) {
      CK(cudaEventRecord(a, st));
      CK(cudaGraphLaunch(ge, st));
      CK(cudaEventRecord(b, st));
      CK(cudaEventSynchronize(b));
      float t;
      CK(cudaEventElapsedTime(&t, a, b));
      if (r > 0) ms.push_back(t);  // the first replay uploads the graph
    }
    std::sort(ms.begin(), ms.end());
    *usPerKernel = 1000.0 * ms[ms.size() / 2] / K;
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    return 0;
  };
  std::printf("chain of %d kernels on %d x %d floats, one CUDA graph, median of 21 replays\n", K, rows, width);
  std::printf("| chain | plain, us per kernel | with PDL, us per kernel |\n| --- | ---: | ---: |\n");
  double plain, pdl;
  if (measure(false, false, &plain) || measure(true, false, &pdl)) return 1;
  std::printf("| elementwise kernels only | %.2f | %.2f |\n", plain, pdl);
  if (!handle) {
    std::printf("cuBLAS not found: the rows with products were not run\n");
    return 0;
  }
  if (measure(false, true, &plain) || measure(true, true, &pdl)) return 1;
  std::printf("| each kernel followed by a cuBLAS product (64 x 1536 . 1536 x 80) | %.2f | %.2f |\n", plain, pdl);
  return 0;
}
