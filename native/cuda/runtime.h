// CUDA runtime face of the addon: device buffers handed to JS as Externals, one stream for all work,
// a caching allocator, and helpers for bindings. Compiled only when nvcc is found.
#pragma once
#include <cuda_runtime.h>
#include <napi.h>
#include <utility>
#include <cstdint>
#include <string>

namespace mamba {

cudaStream_t cuda_stream();
// Throws a JS Error naming `what` if `e` is not cudaSuccess (out of memory gets its own message).
void cuda_check(Napi::Env env, cudaError_t e, const char* what);
// The device pointer of a buffer argument (an External made by cuda.alloc or cuda.view).
void* arg_device(const Napi::CallbackInfo& info, size_t i, const char* what, size_t min_bytes = 0);
// The device pointer of one element of an array argument (for the multi-tensor ops).
void* value_device(Napi::Env env, const Napi::Value& v, const char* what, size_t min_bytes = 0);
// The same for field `key` of an argument object of op `op` (the "op key" message is built only on failure).
void* field_device(Napi::Env env, const Napi::Value& v, const char* op, const char* key, size_t min_bytes);
// a CUDA buffer's pointer and size in bytes (a TypeError naming `what` if v is none, or a freed one)
std::pair<void*, size_t> device_span(Napi::Env env, const Napi::Value& v, const char* what);
template <class T>
T* arg_dev(const Napi::CallbackInfo& info, size_t i, const char* what, size_t min_elems = 0) {
  return static_cast<T*>(arg_device(info, i, what, min_elems * sizeof(T)));
}
// The calling thread's current CUDA device.
int current_device();
// True while the stream is being captured into a CUDA graph (ops must then not synchronise).
bool stream_capturing();
// Raises a JS error if the last kernel launch failed.
void check_launch(Napi::Env env, const char* kernel);
// Whether launch_pdl (common.cuh) launches with programmatic dependent launch: on sm_90 and later, unless MAMBA_PDL=0
// (read once).
bool pdl_enabled();

}  // namespace mamba
