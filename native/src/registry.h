// Op registry: every kernel binding registers itself under a namespace ("cpu" or "cuda") with a static
// initialiser, so adding a kernel never means editing a central list. addon.cc exports the registry.
#pragma once
#include <napi.h>
#include <string>
#include <vector>

namespace mamba {

using OpFn = Napi::Value (*)(const Napi::CallbackInfo&);
struct OpEntry {
  std::string ns, name;
  OpFn fn;
};
std::vector<OpEntry>& op_registry();
struct RegisterOp {
  RegisterOp(const char* ns, const char* name, OpFn fn) { op_registry().push_back({ns, name, fn}); }
};

}  // namespace mamba

// MAMBA_OP(cpu, gemm) { ... body using `info` ... }  defines and registers addon.cpu.gemm
#define MAMBA_OP(ns, name)                                                                \
  static Napi::Value mamba_op_##ns##_##name(const Napi::CallbackInfo& info);              \
  static ::mamba::RegisterOp mamba_reg_##ns##_##name(#ns, #name, mamba_op_##ns##_##name); \
  static Napi::Value mamba_op_##ns##_##name(const Napi::CallbackInfo& info)
