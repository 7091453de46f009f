// Addon entry: exports { cpu: {...ops}, cuda: {...ops} | undefined, build: {...} }.
#include <napi.h>
#include "registry.h"

namespace mamba {

std::vector<OpEntry>& op_registry() {
  static std::vector<OpEntry> ops;
  return ops;
}

}  // namespace mamba

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace mamba;
  Napi::Object cpu = Napi::Object::New(env);
  Napi::Object cuda = Napi::Object::New(env);
  for (const auto& op : op_registry()) {
    Napi::Object target = op.ns == "cuda" ? cuda : cpu;
    target.Set(op.name, Napi::Function::New(env, op.fn, op.name));
  }
  exports.Set("cpu", cpu);
#ifdef MAMBA_WITH_CUDA
  exports.Set("cuda", cuda);
#endif
  Napi::Object build = Napi::Object::New(env);
#ifdef MAMBA_WITH_CUDA
  build.Set("cuda", true);
#else
  build.Set("cuda", false);
#endif
  build.Set("compiler", __VERSION__);
  exports.Set("build", build);
  return exports;
}

NODE_API_MODULE(mamba_native, InitAddon)
