// Shared helpers for the CPU kernel bindings: dtype dispatch, strided lengths, row reductions.
#pragma once
#include <napi.h>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>
#include "../src/args.h"
#include "threadpool.h"

// Binding body that runs fn<double> or fn<float> by the element type of the float array at argument i
// (Float64Array: the double kernels that serve the gradient checks).
#define MAMBA_DISPATCH(i, fn)       \
  if (::mamba::arg_is_f64(info, i)) \
    ::mamba::fn<double>(info);      \
  else                              \
    ::mamba::fn<float>(info);       \
  return info.Env().Undefined();

// The same for an op taking one argument object: the element type of its field `key`.
#define MAMBA_DISPATCH_FIELD(key, fn)      \
  if (::mamba::field_is_f64(info, 0, key)) \
    ::mamba::fn<double>(info);             \
  else                                     \
    ::mamba::fn<float>(info);              \
  return info.Env().Undefined();

namespace mamba {

// An argument object's optional dtype field ('f32' | 'f64' on the CPU) must name the arrays' element type: the
// TypeScript wrappers pass one object to either twin.
template <class T>
void check_cpu_dtype(const ArgObject& a) {
  if (!a.has("dtype")) return;
  const std::string want = std::is_same<T, double>::value ? "f64" : "f32", got = a.string("dtype");
  a.require(got == want, "dtype '" + got + "' does not match the " + want + " arrays");
}

// Elements a strided [rows, width] argument must hold: the last row ends at (rows-1)*stride + width.
inline size_t strided_len(int64_t rows, int64_t width, int64_t stride) {
  return (rows > 0 && width > 0) ? (size_t)((rows - 1) * stride + width) : 0;
}

[[noreturn]] inline void throw_range(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

inline void check_dims(const Napi::CallbackInfo& info, const char* op, std::initializer_list<int64_t> dims) {
  for (int64_t d : dims)
    if (d < 0) throw_range(info.Env(), std::string(op) + ": sizes must be non-negative");
}

inline void check_stride(const Napi::CallbackInfo& info, const char* what, int64_t stride, int64_t width) {
  if (stride < width)
    throw_range(info.Env(), std::string(what) + ": row stride " + std::to_string(stride) +
                                " is smaller than the width " + std::to_string(width));
}

// Optional typed array: null/undefined -> nullptr.
template <class T>
T* arg_opt(const Napi::CallbackInfo& info, size_t i, const char* what, size_t min_len) {
  return arg_present(info, i) ? arg_array<T>(info, i, what, min_len) : nullptr;
}

// Runs body(p, r0, r1) over `parts` contiguous row ranges of [0, rows) in parallel; each part owns
// acc[p * width .. ) so reductions over rows need no atomics. Returns the number of parts used.
template <class F>
int64_t parallel_parts(int64_t rows, int64_t min_rows_per_part, F&& body) {
  int64_t parts =
      std::max<int64_t>(1, std::min<int64_t>(num_threads(), rows / std::max<int64_t>(1, min_rows_per_part)));
  parallel_for(
      parts,
      [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) body(p, rows * p / parts, rows * (p + 1) / parts);
      },
      1);
  return parts;
}

// Sum with 8 independent accumulators so the compiler can vectorise without -ffast-math.
template <class T>
inline T dot(const T* a, const T* b, int64_t n) {
  T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
  T r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) r += a[i] * b[i];
  return r;
}

}  // namespace mamba
