// Shared helpers of the CUDA kernels: element loads/stores for f32 and bf16 storage (fp32 arithmetic),
// the dtype argument, nullable buffer arguments, a per-device scratch buffer and launch sizes.
#pragma once
#include <cuda_bf16.h>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <string>
#include "runtime.h"
#include "../src/adamw_args.h"
#include "../src/args.h"
#include "../src/registry.h"

namespace mamba {

__device__ __forceinline__ float ldf(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ldf(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
// An element's storage bits, widened later with from_raw: a bf16 load's widening waits for the load, so a kernel
// that prefetches a tile keeps the raw bits until the tile is used rather than stalling at the load
__device__ __forceinline__ float ld_raw(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ uint32_t ld_raw(const __nv_bfloat16* p, int64_t i) {
  return __ldg(reinterpret_cast<const unsigned short*>(p) + i);
}
__device__ __forceinline__ float from_raw(float v) { return v; }
__device__ __forceinline__ float from_raw(uint32_t bits) { return __uint_as_float(bits << 16); }
// elements i and i + 1 in one access (i even, p aligned to a pair): a float2, or two bf16 in one 32-bit word
__device__ __forceinline__ float2 ld_raw2(const float* p, int64_t i) {
  return __ldg(reinterpret_cast<const float2*>(p + i));
}
__device__ __forceinline__ uint32_t ld_raw2(const __nv_bfloat16* p, int64_t i) {
  return __ldg(reinterpret_cast<const unsigned*>(p + i));
}
__device__ __forceinline__ float2 from_raw2(float2 v) { return v; }
__device__ __forceinline__ float2 from_raw2(uint32_t bits) {
  return make_float2(__uint_as_float(bits << 16), __uint_as_float(bits & 0xffff0000u));
}
__device__ __forceinline__ void stf(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void stf(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ void stf2(float* p, int64_t i, float a, float b) {
  *reinterpret_cast<float2*>(p + i) = make_float2(a, b);
}
__device__ __forceinline__ void stf2(__nv_bfloat16* p, int64_t i, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p + i) = __floats2bfloat162_rn(a, b);
}

// 4 consecutive values of x (f32: 16 bytes, bf16: 8 bytes) as floats, and stored from floats
__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 ld4(const __nv_bfloat16* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                     __uint_as_float(u.y & 0xffff0000u));
}
__device__ __forceinline__ void st4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
__device__ __forceinline__ void st4(__nv_bfloat16* p, float4 v) {
  const __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
  *reinterpret_cast<uint2*>(p) =
      make_uint2(*reinterpret_cast<const unsigned*>(&a), *reinterpret_cast<const unsigned*>(&b));
}

// ---- programmatic dependent launch (sm_90 and later) ----
// A decoding step is ~100 small dependent kernels, and the gap between one kernel's end and the next one's start is a
// good part of its time. A kernel launched by launch_pdl may be scheduled while the kernel before it in the stream
// still runs, so its launch and block setup overlap that kernel's tail. Such a kernel calls pdl_wait() before it reads
// anything an earlier kernel wrote and before its first global store (only L2 prefetches may come before): it returns
// once the kernels before have completed and their writes are visible. pdl_trigger() then lets the next kernel
// launched this way be scheduled (its blocks wait in their own pdl_wait). Both are no-ops without the launch attribute.
__device__ __forceinline__ void pdl_wait() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// kernel<<<grid, block, smem, cuda_stream()>>>(args...), with programmatic dependent launch where pdl_enabled();
// only for kernels that call pdl_wait() as above. Errors are left for check_launch.
template <class... Params, class... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, Args&&... args) {
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = cuda_stream();
  cfg.attrs = &attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.f / (1.f + __expf(-x)); }
// softplus with the usual threshold: above 20 it is x to float precision
// (fast intrinsics; below -5 the series e - e^2/2 keeps the relative precision that log(1 + e) would lose)
__device__ __forceinline__ float softplusf_(float x) {
  if (x > 20.f) return x;
  const float e = __expf(x);
  return x < -5.f ? e * fmaf(-0.5f, e, 1.f) : __logf(1.f + e);
}

// AdamW's hyperparameters as the kernels take them (c1, c2 the bias corrections; gs the gradient's scale)
struct AdamwK {
  float lr, b1, b2, eps, c1, c2, gs;
};
inline AdamwK adamw_k(const AdamwHyper& h) {
  return {(float)h.lr, (float)h.beta1, (float)h.beta2, (float)h.eps, (float)h.c1, (float)h.c2, (float)h.gradScale};
}
// One AdamW update of one value (decoupled weight decay wd): the new parameter, m and v updated in place. The
// per-tensor (ops.cu) and multi-tensor (multi.cu) kernels share it.
__device__ __forceinline__ float adamw_value(float p, float g, float& m, float& v, const AdamwK& k, float wd) {
  g *= k.gs;
  m = k.b1 * m + (1.f - k.b1) * g;
  v = k.b2 * v + (1.f - k.b2) * g * g;
  return p - k.lr * ((m * k.c1) / (sqrtf(v * k.c2) + k.eps) + wd * p);
}

// Adds the block's sum of `acc` (one value per thread, NTHREADS threads) into *out with one atomic.
template <int NTHREADS>
__device__ __forceinline__ void block_add_double(double acc, double* out) {
  __shared__ double sh[NTHREADS / 32];
#pragma unroll
  for (int m = 16; m >= 1; m /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, m);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int w = 0; w < NTHREADS / 32; w++) s += sh[w];
    if (s != 0.0) atomicAdd(out, s);
  }
}

enum class DT { F32, BF16 };

// Optional trailing dtype argument 'f32' | 'bf16' (default f32).
inline DT arg_dtype(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!arg_present(info, i)) return DT::F32;
  if (!info[i].IsString()) throw_type(info.Env(), std::string(what) + ": dtype must be 'f32' or 'bf16'");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s == "f32") return DT::F32;
  if (s == "bf16") return DT::BF16;
  throw_type(info.Env(), std::string(what) + ": dtype must be 'f32' or 'bf16', got '" + s + "'");
}
inline size_t dt_bytes(DT t) { return t == DT::F32 ? 4 : 2; }

// A device pointer argument that may be null/undefined.
template <class T>
T* arg_dev_opt(const Napi::CallbackInfo& info, size_t i, const char* what, size_t min_elems = 0) {
  return arg_present(info, i) ? arg_dev<T>(info, i, what, min_elems) : nullptr;
}
// A raw device pointer whose element size depends on the dtype argument.
inline void* arg_dev_dt(const Napi::CallbackInfo& info, size_t i, const char* what, DT t, size_t min_elems) {
  return arg_device(info, i, what, min_elems * dt_bytes(t));
}
inline void* arg_dev_dt_opt(const Napi::CallbackInfo& info, size_t i, const char* what, DT t, size_t min_elems) {
  return arg_present(info, i) ? arg_dev_dt(info, i, what, t, min_elems) : nullptr;
}

// How a field of an argument object becomes a device pointer (the CUDA side of ArrayFetch, src/args.h): a
// buffer of at least n elements of E.
struct DeviceFetch {
  template <class E>
  E* get(const ArgObject& a, const char* key, size_t n) const {
    return static_cast<E*>(field_device(a.env(), a.value(key), a.op(), key, n * sizeof(E)));
  }
  template <class E>
  E* opt(const ArgObject& a, const char* key, size_t n) const {
    Napi::Value v = a.optional(key);
    return ArgObject::absent(v) ? nullptr : static_cast<E*>(field_device(a.env(), v, a.op(), key, n * sizeof(E)));
  }
};

// The dtype field of an argument object: 'f32' (the default when absent) or 'bf16'.
inline DT field_dtype(const ArgObject& a) {
  if (!a.has("dtype")) return DT::F32;
  const std::string s = a.string("dtype");
  if (s == "f32") return DT::F32;
  if (s == "bf16") return DT::BF16;
  throw_type(a.env(), std::string(a.op()) + ": dtype must be 'f32' or 'bf16', got '" + s + "'");
}

// Scratch memory for multi-pass kernels, stream-ordered on cuda_stream(): valid until the next call
// (all kernels run on one stream, so reuse by the next op is ordered after this op's kernels).
void* scratch(Napi::Env env, size_t bytes);
size_t scratch_bytes();  // what the scratch buffer holds now (memoryStats reports it)
// A zeroed double in scratch for a reduction to atomically add into, and its value read back (synchronises).
double* zeroed_scratch_double(Napi::Env env, const char* what);
double read_scratch_double(Napi::Env env, const double* acc, const char* what);
int sm_count();

// Host-side alignment checks before vector or paired accesses; a null pointer (an absent optional array) counts as
// aligned.
inline bool aligned_to(const void* q, size_t bytes) { return (uintptr_t)q % bytes == 0; }
inline bool aligned16(const void* q) { return aligned_to(q, 16); }

inline int grid_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  return (int)(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

// f(std::integral_constant<int, K>{}) for a runtime K in 1..8 (larger: 8), so kernels can keep K values per
// thread in registers (the conv's taps, the fused decode's batch rows)
template <class F>
void with_1_to_8(int k, F&& f) {
  switch (k) {
    case 1:
      f(std::integral_constant<int, 1>{});
      break;
    case 2:
      f(std::integral_constant<int, 2>{});
      break;
    case 3:
      f(std::integral_constant<int, 3>{});
      break;
    case 4:
      f(std::integral_constant<int, 4>{});
      break;
    case 5:
      f(std::integral_constant<int, 5>{});
      break;
    case 6:
      f(std::integral_constant<int, 6>{});
      break;
    case 7:
      f(std::integral_constant<int, 7>{});
      break;
    default:
      f(std::integral_constant<int, 8>{});
      break;
  }
}

// f(Tag<float>{}) or f(Tag<__nv_bfloat16>{}) for a storage dtype: one instantiation of a templated op per dtype
template <class T>
struct Tag {
  using type = T;
};
template <class F>
void by_dtype(DT dt, F&& f) {
  if (dt == DT::F32)
    f(Tag<float>{});
  else
    f(Tag<__nv_bfloat16>{});
}

// The body of an op whose argument object names its dtype ('f32' or 'bf16'): run(Tag<T>{}, args)
template <class F>
Napi::Value dtype_op(const Napi::CallbackInfo& info, const char* op, F&& run) {
  const ArgObject a(info, 0, op);
  by_dtype(field_dtype(a), [&](auto t) { run(t, a); });
  return info.Env().Undefined();
}

}  // namespace mamba
