// Argument helpers for bindings: typed pointers out of TypedArrays (CPU) or device buffers (CUDA),
// with the element type and length checked, so a wrong call is a JS TypeError, never a crash.
#pragma once
#include <napi.h>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace mamba {

template <class T>
struct ArrayKind;
template <>
struct ArrayKind<float> {
  static constexpr napi_typedarray_type k = napi_float32_array;
  static constexpr const char* n = "Float32Array";
};
template <>
struct ArrayKind<double> {
  static constexpr napi_typedarray_type k = napi_float64_array;
  static constexpr const char* n = "Float64Array";
};
template <>
struct ArrayKind<int32_t> {
  static constexpr napi_typedarray_type k = napi_int32_array;
  static constexpr const char* n = "Int32Array";
};
template <>
struct ArrayKind<uint8_t> {
  static constexpr napi_typedarray_type k = napi_uint8_array;
  static constexpr const char* n = "Uint8Array";
};
template <>
struct ArrayKind<uint16_t> {
  static constexpr napi_typedarray_type k = napi_uint16_array;
  static constexpr const char* n = "Uint16Array";
};

[[noreturn]] inline void throw_type(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

// A typed view of a CPU TypedArray value; `min_len` elements must be present.
template <class T>
T* value_array(Napi::Env env, const Napi::Value& v, const std::string& what, size_t min_len = 0) {
  if (!v.IsTypedArray()) throw_type(env, what + ": expected a " + ArrayKind<T>::n);
  auto ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != ArrayKind<T>::k) throw_type(env, what + ": expected a " + ArrayKind<T>::n);
  if (ta.ElementLength() < min_len)
    throw Napi::RangeError::New(
        env, what + ": has " + std::to_string(ta.ElementLength()) + " elements, needs " + std::to_string(min_len));
  auto buf = ta.ArrayBuffer();
  return reinterpret_cast<T*>(static_cast<uint8_t*>(buf.Data()) + ta.ByteOffset());
}

// A typed view of a CPU TypedArray argument; `min_len` elements must be present.
template <class T>
T* arg_array(const Napi::CallbackInfo& info, size_t i, const char* what, size_t min_len = 0) {
  if (i >= info.Length()) throw_type(info.Env(), std::string(what) + ": expected a " + ArrayKind<T>::n);
  return value_array<T>(info.Env(), info[i], what, min_len);
}

// Elements a strided [rows, width] argument spans: the last row ends at (rows-1)*stride + width.
inline size_t strided_span(int64_t rows, int64_t stride, int64_t width) {
  return rows > 0 && width > 0 ? (size_t)((rows - 1) * stride + width) : 0;
}

inline bool arg_is_f64(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].IsTypedArray() &&
         info[i].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
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

// One named argument object: the form of every kernel with more than a handful of arguments
// (native/KERNELS.md). Each field is read by name and checked once; a missing or mistyped field is a TypeError
// naming op and field, and finish() rejects fields the op does not know (a misspelt optional field would
// otherwise pass as null).
class ArgObject {
 public:
  ArgObject(const Napi::CallbackInfo& info, size_t i, const char* op) : env_(info.Env()), op_(op) {
    const bool object = i < info.Length() && info[i].IsObject() && !info[i].IsArray() && !info[i].IsTypedArray() &&
                        !info[i].IsExternal();
    if (!object)
      throw_type(env_, std::string(op_) + ": expected one argument object of named fields (native/KERNELS.md)");
    obj_ = info[i].As<Napi::Object>();
  }
  Napi::Env env() const { return env_; }
  const char* op() const { return op_; }
  // "op key", for messages (built only when one is thrown: bindings run on every kernel call)
  std::string name(const char* key) const { return std::string(op_) + " " + key; }
  // the field is there and not null/undefined
  bool has(const char* key) const { return !absent(raw(key)); }
  static bool absent(const Napi::Value& v) { return v.IsNull() || v.IsUndefined(); }
  // the field's value, undefined when it is not there (for optional fields: one lookup instead of has + value)
  Napi::Value optional(const char* key) const { return raw(key); }
  Napi::Value value(const char* key) const {
    Napi::Value v = raw(key);
    if (v.IsNull() || v.IsUndefined()) throw_type(env_, name(key) + ": missing");
    return v;
  }
  int64_t integer(const char* key) const {
    Napi::Value v = value(key);
    if (!v.IsNumber()) throw_type(env_, name(key) + ": expected a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != (double)(int64_t)d) throw_type(env_, name(key) + ": expected an integer");
    return (int64_t)d;
  }
  double number(const char* key) const {
    Napi::Value v = value(key);
    if (!v.IsNumber()) throw_type(env_, name(key) + ": expected a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  bool boolean(const char* key) const {
    Napi::Value v = value(key);
    if (!v.IsBoolean()) throw_type(env_, name(key) + ": expected a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  std::string string(const char* key) const {
    Napi::Value v = value(key);
    if (!v.IsString()) throw_type(env_, name(key) + ": expected a string");
    return v.As<Napi::String>().Utf8Value();
  }
  template <class T>
  T* array(const char* key, size_t min_len) const {
    return array_of<T>(key, value(key), min_len);
  }
  // field `key`, already looked up as v
  template <class T>
  T* array_of(const char* key, const Napi::Value& v, size_t min_len) const {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != ArrayKind<T>::k)
      return value_array<T>(env_, v, name(key), min_len);
    auto ta = v.As<Napi::TypedArray>();
    if (ta.ElementLength() < min_len) return value_array<T>(env_, v, name(key), min_len);  // throws the RangeError
    return reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
  }
  template <class T>
  T* array_opt(const char* key, size_t min_len) const {
    Napi::Value v = raw(key);
    return absent(v) ? nullptr : array_of<T>(key, v, min_len);
  }
  // a RangeError "op: msg" unless ok
  void require(bool ok, const std::string& msg) const {
    if (!ok) throw Napi::RangeError::New(env_, std::string(op_) + ": " + msg);
  }
  // call after reading every field: every own enumerable key of the object must have been read. As many keys as
  // fields read that held a value is the common case, settled by the count alone (this runs on every call).
  void finish() const {
    napi_value keys;
    if (napi_get_all_property_names(env_, obj_, napi_key_own_only,
                                    static_cast<napi_key_filter>(napi_key_enumerable | napi_key_skip_symbols),
                                    napi_key_numbers_to_strings, &keys) != napi_ok)
      throw_type(env_, std::string(op_) + ": could not list the argument object's fields");
    uint32_t n = 0;
    napi_get_array_length(env_, keys, &n);
    if (n == (uint32_t)ndefined_) return;
    for (uint32_t k = 0; k < n; k++) {
      napi_value key;
      char buf[64];
      size_t len = 0;
      napi_get_element(env_, keys, k, &key);
      napi_get_value_string_utf8(env_, key, buf, sizeof buf, &len);
      if (seen(buf)) continue;
      std::string known;
      for (int j = 0; j < nseen_; j++) known += (j ? ", " : "") + std::string(seen_[j]);
      throw_type(env_, std::string(op_) + ": unknown field '" + buf + "' (fields: " + known + ")");
    }
  }

 private:
  static constexpr int kMaxFields = 48;
  bool seen(const char* key) const {
    for (int j = 0; j < nseen_; j++)
      if (std::strcmp(seen_[j], key) == 0) return true;
    return false;
  }
  Napi::Value raw(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (nseen_ < kMaxFields && !seen(key)) {
      seen_[nseen_++] = key;
      if (!v.IsUndefined()) ndefined_++;
    }
    return v;
  }
  Napi::Env env_;
  const char* op_;
  Napi::Object obj_;
  mutable const char* seen_[kMaxFields];
  mutable int nseen_ = 0;
  mutable int ndefined_ = 0;  // fields read whose value was not undefined
};

// How a field becomes a pointer on the CPU: a TypedArray of the element type (const E reads a const view).
struct ArrayFetch {
  template <class E>
  E* get(const ArgObject& a, const char* key, size_t n) const {
    return a.array<std::remove_const_t<E>>(key, n);
  }
  template <class E>
  E* opt(const ArgObject& a, const char* key, size_t n) const {
    Napi::Value v = a.optional(key);
    return ArgObject::absent(v) ? nullptr : a.array_of<std::remove_const_t<E>>(key, v, n);
  }
};

// Whether field `key` of the argument object at i is a Float64Array (the double CPU kernels).
inline bool field_is_f64(const Napi::CallbackInfo& info, size_t i, const char* key) {
  if (i >= info.Length() || !info[i].IsObject()) return false;
  Napi::Value v = info[i].As<Napi::Object>().Get(key);
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

}  // namespace mamba
