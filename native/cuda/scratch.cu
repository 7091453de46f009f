// Per-device scratch buffer for multi-pass kernels (the scan's chunk states, reduction partials).
#include "common.cuh"
#include <algorithm>

namespace mamba {

namespace {
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
};
Scratch g_scratch[16];
int g_sms[16] = {0};
int cur_dev() { return std::min(current_device(), 15); }  // this device's slot
}  // namespace

void* scratch(Napi::Env env, size_t bytes) {
  Scratch& s = g_scratch[cur_dev()];
  if (bytes <= s.bytes) return s.p;
  // growing: earlier kernels on the stream may still read the old buffer
  cuda_check(env, cudaStreamSynchronize(cuda_stream()), "scratch");
  if (s.p) cudaFree(s.p);
  s.p = nullptr;
  s.bytes = 0;
  size_t want = bytes + bytes / 4;  // some headroom so slowly growing sizes do not reallocate each call
  cudaError_t e = cudaMalloc(&s.p, want);
  if (e != cudaSuccess) {
    cudaGetLastError();
    want = bytes;
    e = cudaMalloc(&s.p, want);
  }
  cuda_check(env, e, "scratch allocation");
  s.bytes = want;
  return s.p;
}

double* zeroed_scratch_double(Napi::Env env, const char* what) {
  double* acc = (double*)scratch(env, sizeof(double));
  cuda_check(env, cudaMemsetAsync(acc, 0, sizeof(double), cuda_stream()), what);
  return acc;
}

double read_scratch_double(Napi::Env env, const double* acc, const char* what) {
  double h = 0;
  cuda_check(env, cudaMemcpyAsync(&h, acc, sizeof(double), cudaMemcpyDeviceToHost, cuda_stream()), what);
  cuda_check(env, cudaStreamSynchronize(cuda_stream()), what);
  return h;
}

size_t scratch_bytes() { return g_scratch[cur_dev()].bytes; }

int sm_count() {
  int d = cur_dev();
  if (g_sms[d] == 0) {
    int n = 0;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, d) != cudaSuccess) {
      cudaGetLastError();
      n = 108;
    }
    g_sms[d] = n;
  }
  return g_sms[d];
}

}  // namespace mamba

using namespace mamba;

// cuda.deviceClockKHz(device) -> the SM clock the driver reports (for the benchmarks' instruction floors; 0 if unknown)
MAMBA_OP(cuda, deviceClockKHz) {
  int dev = (int)arg_int(info, 0, "deviceClockKHz(device)"), khz = 0;
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev) != cudaSuccess) {
    cudaGetLastError();
    khz = 0;
  }
  return Napi::Number::New(info.Env(), khz);
}
