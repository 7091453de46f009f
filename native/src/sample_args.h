// The named arguments of sampleTokens (native/cuda/sample.cu, CPU twin native/cpu/sample.cc), read and checked
// once for both: { logits [B, Vp], params [4] f32 (temperature, topK, topP, unused), seeds [B] i32,
// steps [B] i32 (in/out: the step each row samples at, incremented), tokens [B] i32 out, B, V, Vp }.
#pragma once
#include "args.h"
#include "sample.h"

namespace mamba {

template <class L>
struct SampleArgs {
  const L* logits;
  const float* params;
  const int32_t* seeds;
  int32_t* steps;
  int32_t* tokens;
  int64_t B, V, Vp;
};

template <class L, class Fetch>
SampleArgs<L> read_sample(const ArgObject& a, const Fetch& f) {
  SampleArgs<L> r{};
  r.B = a.integer("B");
  r.V = a.integer("V");
  r.Vp = a.integer("Vp");
  a.require(r.B >= 1 && r.B <= 65535, "B must be 1..65535, got " + std::to_string(r.B));
  a.require(r.V >= 1 && r.V <= r.Vp && r.Vp < (int64_t)1 << 30, "need 1 <= V <= Vp < 2^30");
  r.logits = f.template get<const L>(a, "logits", r.B * r.Vp);
  r.params = f.template get<const float>(a, "params", kSampleParams);
  r.seeds = f.template get<const int32_t>(a, "seeds", r.B);
  r.steps = f.template get<int32_t>(a, "steps", r.B);
  r.tokens = f.template get<int32_t>(a, "tokens", r.B);
  return r;
}

}  // namespace mamba
