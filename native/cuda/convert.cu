// Element type conversions and fills on the GPU (bf16 <-> f32), used by Tensor.to() and mixed precision.
#include <cuda_bf16.h>
#include <cstdint>
#include "runtime.h"
#include "../src/args.h"
#include "../src/registry.h"

namespace {

__global__ void f32_to_bf16(const float* __restrict__ x, __nv_bfloat16* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}
__global__ void bf16_to_f32(const __nv_bfloat16* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __bfloat162float(x[i]);
}
__global__ void fill_f32(float* __restrict__ y, float v, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = v;
}

int blocks_for(int64_t n) { return (int)std::min<int64_t>((n + 255) / 256, 65535); }

}  // namespace

using namespace mamba;

// cuda.castF32ToBf16(src, dst, n)
MAMBA_OP(cuda, castF32ToBf16) {
  int64_t n = arg_int(info, 2, "cast n");
  const float* x = arg_dev<float>(info, 0, "cast src", n);
  auto* y = arg_dev<__nv_bfloat16>(info, 1, "cast dst", n);
  if (n > 0) f32_to_bf16<<<blocks_for(n), 256, 0, cuda_stream()>>>(x, y, n);
  check_launch(info.Env(), "f32_to_bf16");
  return info.Env().Undefined();
}

// cuda.castBf16ToF32(src, dst, n)
MAMBA_OP(cuda, castBf16ToF32) {
  int64_t n = arg_int(info, 2, "cast n");
  const auto* x = arg_dev<__nv_bfloat16>(info, 0, "cast src", n);
  float* y = arg_dev<float>(info, 1, "cast dst", n);
  if (n > 0) bf16_to_f32<<<blocks_for(n), 256, 0, cuda_stream()>>>(x, y, n);
  check_launch(info.Env(), "bf16_to_f32");
  return info.Env().Undefined();
}

// cuda.fillF32(dst, value, n)
MAMBA_OP(cuda, fillF32) {
  int64_t n = arg_int(info, 2, "fill n");
  float* y = arg_dev<float>(info, 0, "fill dst", n);
  if (n > 0) fill_f32<<<blocks_for(n), 256, 0, cuda_stream()>>>(y, (float)arg_num(info, 1, "fill value"), n);
  check_launch(info.Env(), "fill_f32");
  return info.Env().Undefined();
}
