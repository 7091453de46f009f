// Addon entry: exports { cpu: {...ops}, cuda: {...ops} | undefined, build: {...}, limits: {...} }.
#include <napi.h>
#include <cstdlib>
#include "args.h"
#include "limits.h"
#include "registry.h"

namespace mamba {

#ifdef MAMBA_WITH_CUDA
Napi::Value profiled_op(const Napi::CallbackInfo& info);  // native/cuda/opprofile.cc
#endif

std::vector<OpEntry>& op_registry() {
  static std::vector<OpEntry> ops;
  return ops;
}

}  // namespace mamba

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace mamba;
  Napi::Object cpu = Napi::Object::New(env);
  Napi::Object cuda = Napi::Object::New(env);
  // MAMBA_OP_PROFILE=1: every cuda.* op is timed with CUDA events (cuda.opProfile() reports)
  const char* pe = getenv("MAMBA_OP_PROFILE");
  const bool profile = pe && pe[0] == '1';
  for (const auto& op : op_registry()) {
    Napi::Object target = op.ns == "cuda" ? cuda : cpu;
#ifdef MAMBA_WITH_CUDA
    if (profile && op.ns == "cuda" && op.name != "opProfile") {
      target.Set(op.name, Napi::Function::New(env, profiled_op, op.name, const_cast<OpEntry*>(&op)));
      continue;
    }
#endif
    (void)profile;
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
  // what callers must respect (src/limits.h); src/backend reads these rather than keeping copies
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("cudaScanMaxState", kCudaScanMaxState);
  limits.Set("cudaConvMaxTaps", kCudaConvMaxTaps);
  limits.Set("decodeChunk", kDecodeChunk);
  limits.Set("decodeMaxBatch", kDecodeMaxB);
  limits.Set("decodeGroup", kDecodeGroup);
  limits.Set("decodeThreads", kDecodeThreads);
  limits.Set("decodeSharedBytes", kDecodeSharedBytes);
  limits.Set("decodeMaxState", kDecodeMaxState);
  limits.Set("decodeMaxConv", kDecodeMaxConv);
  limits.Set("decodeFits", Napi::Function::New(
                               env,
                               [](const Napi::CallbackInfo& info) -> Napi::Value {
                                 int64_t v[7];
                                 for (size_t i = 0; i < 7; i++)
                                   v[i] = arg_int(info, i, "limits.decodeFits(B, D, E, R, N, K, actBytes)");
                                 return Napi::Boolean::New(info.Env(),
                                                           decode_fits(v[0], v[1], v[2], v[3], v[4], v[5], v[6]));
                               },
                               "decodeFits"));
  limits.Set("decodeInProjFits", Napi::Function::New(
                                     env,
                                     [](const Napi::CallbackInfo& info) -> Napi::Value {
                                       int64_t v[4];
                                       for (size_t i = 0; i < 4; i++)
                                         v[i] = arg_int(info, i, "limits.decodeInProjFits(B, D, E, K)");
                                       return Napi::Boolean::New(info.Env(),
                                                                 decode_in_proj_fits(v[0], v[1], v[2], v[3]));
                                     },
                                     "decodeInProjFits"));
  limits.Set("convXProjFits", Napi::Function::New(
                                  env,
                                  [](const Napi::CallbackInfo& info) -> Napi::Value {
                                    int64_t v[4];
                                    for (size_t i = 0; i < 4; i++)
                                      v[i] = arg_int(info, i, "limits.convXProjFits(B, E, K, J)");
                                    return Napi::Boolean::New(info.Env(), conv_x_proj_fits(v[0], v[1], v[2], v[3]));
                                  },
                                  "convXProjFits"));
  exports.Set("limits", limits);
  return exports;
}

NODE_API_MODULE(mamba_native, InitAddon)
