// Argument helpers for bindings: typed pointers out of TypedArrays (CPU) or device buffers (CUDA),
// with the element type and length checked, so a wrong call is a JS TypeError, never a crash.
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>

namespace mamba {

template <class T> struct ArrayKind;
template <> struct ArrayKind<float> { static constexpr napi_typedarray_type k = napi_float32_array; static constexpr const char* n = "Float32Array"; };
template <> struct ArrayKind<double> { static constexpr napi_typedarray_type k = napi_float64_array; static constexpr const char* n = "Float64Array"; };
template <> struct ArrayKind<int32_t> { static constexpr napi_typedarray_type k = napi_int32_array; static constexpr const char* n = "Int32Array"; };
template <> struct ArrayKind<uint8_t> { static constexpr napi_typedarray_type k = napi_uint8_array; static constexpr const char* n = "Uint8Array"; };
template <> struct ArrayKind<uint16_t> { static constexpr napi_typedarray_type k = napi_uint16_array; static constexpr const char* n = "Uint16Array"; };

[[noreturn]] inline void throw_type(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

// A typed view of a CPU TypedArray argument; `min_len` elements must be present.
template <class T>
T* arg_array(const Napi::CallbackInfo& info, size_t i, const char* what, size_t min_len = 0) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsTypedArray()) throw_type(env, std::string(what) + ": expected a " + ArrayKind<T>::n);
  auto ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != ArrayKind<T>::k) throw_type(env, std::string(what) + ": expected a " + ArrayKind<T>::n);
  if (ta.ElementLength() < min_len)
    throw Napi::RangeError::New(env, std::string(what) + ": has " + std::to_string(ta.ElementLength()) + " elements, needs " + std::to_string(min_len));
  auto buf = ta.ArrayBuffer();
  return reinterpret_cast<T*>(static_cast<uint8_t*>(buf.Data()) + ta.ByteOffset());
}

inline bool arg_is_f64(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

inline int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber()) throw_type(info.Env(), std::string(what) + ": expected a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != (double)(int64_t)v) throw_type(info.Env(), std::string(what) + ": expected an integer");
  return (int64_t)v;
}

inline double arg_num(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber()) throw_type(info.Env(), std::string(what) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

inline bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsBoolean()) throw_type(info.Env(), std::string(what) + ": expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

inline bool arg_present(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && !info[i].IsNull() && !info[i].IsUndefined();
}

}  // namespace mamba
