// cpu.fmaPeak(threads, seconds) -> GFLOP/s: an FMA-throughput loop (10 independent 8-wide chains through
// the addend, so latency never limits) on `threads` threads of the pool at once. The benchmarks quote it as the
// machine's measured peak next to the nominal clock-based one: under turbo or SMT the two differ.
#include <chrono>
#include "common.h"
#include "../src/registry.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace mamba {
namespace {

double fma_loop(int64_t iters) {
#ifdef __AVX2__
  __m256 acc[10];
  for (int i = 0; i < 10; i++) acc[i] = _mm256_set1_ps(0.001f * (float)i);
  const __m256 m = _mm256_set1_ps(1e-3f), a = _mm256_set1_ps(1e-4f);
  for (int64_t it = 0; it < iters; it++)
    for (int i = 0; i < 10; i++) acc[i] = _mm256_fmadd_ps(m, a, acc[i]);
  float s = 0;
  alignas(32) float out[8];
  for (int i = 0; i < 10; i++) {
    _mm256_store_ps(out, acc[i]);
    s += out[0];
  }
  return (double)s;
#else
  float acc[12];
  for (int i = 0; i < 12; i++) acc[i] = 0.001f * (float)i;
  for (int64_t it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) acc[i] = acc[i] * 0.9999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 12; i++) s += acc[i];
  return (double)s;
#endif
}

}  // namespace
}  // namespace mamba

MAMBA_OP(cpu, fmaPeak) {
  using namespace mamba;
  int64_t th = arg_int(info, 0, "fmaPeak threads");
  double secs = arg_num(info, 1, "fmaPeak seconds");
  if (th < 1 || th > num_threads()) throw_range(info.Env(), "fmaPeak: threads must be in 1..numThreads()");
  if (!(secs > 0 && secs <= 10)) throw_range(info.Env(), "fmaPeak: seconds must be in (0, 10]");
#ifdef __AVX2__
  const double flops_per_iter = 10 * 8 * 2;
#else
  const double flops_per_iter = 12 * 2;
#endif
  // calibrate the iteration count on one thread, then run all threads together
  int64_t iters = 1 << 16;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    volatile double sink = fma_loop(iters);
    (void)sink;
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > secs / 4 || iters > (int64_t(1) << 40)) break;
    iters *= 2;
  }
  iters *= 2;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<double> sink((size_t)th);
  parallel_parts(th, 1, [&](int64_t p, int64_t, int64_t) { sink[p] = fma_loop(iters); });
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Napi::Number::New(info.Env(), flops_per_iter * (double)iters * (double)th / dt / 1e9);
}
