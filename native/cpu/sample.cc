// CPU twin of sampleTokens (native/cuda/sample.cu): the same choice of the next token per row, in plain loops
// over the shared scalar math of native/src/sample.h, so that host-side sampling (src/generate sampleToken)
// and the device give the same tokens for the same seed. The top-p mass is summed in double here.
#include <cmath>
#include <vector>
#include "common.h"
#include "../src/registry.h"
#include "../src/sample_args.h"

namespace mamba {
namespace {

// The largest key t with pred(t) (pred true at 0 and monotone: true up to some key, false above), bit by bit
template <class P>
uint32_t largest_key(P&& pred) {
  uint32_t t = 0;
  for (int bit = 31; bit >= 0; bit--) {
    const uint32_t c = t | (1u << bit);
    if (pred(c)) t = c;
  }
  return t;
}

template <class L>
void sample_rows(const SampleArgs<L>& r) {
  const float T = r.params[0], topP = r.params[2];
  const int64_t V = r.V, topK = (int64_t)r.params[1];
  const float invT = T > 0 ? 1.0f / T : 0.0f;
  const bool greedy = !(T > 0) || !std::isfinite(invT);
  std::vector<float> l((size_t)V);
  std::vector<uint32_t> key((size_t)V);
  std::vector<double> w((size_t)V);
  for (int64_t b = 0; b < r.B; b++) {
    for (int64_t v = 0; v < V; v++) {
      l[v] = sample_ftz((float)r.logits[b * r.Vp + v]);
      key[v] = sample_key(l[v]);
    }
    int best = -1;
    float bs = 0;
    if (greedy) {
      for (int64_t v = 0; v < V; v++)
        if (sample_better(l[v], (int)v, bs, best)) bs = l[v], best = (int)v;
    } else {
      uint32_t thr = 0;
      if (topK > 0 && topK < V)
        thr = largest_key([&](uint32_t c) {
          int64_t n = 0;
          for (int64_t v = 0; v < V; v++) n += key[v] >= c;
          return n >= topK;
        });
      if (topP < 1) {
        float mx = -INFINITY;
        for (int64_t v = 0; v < V; v++)
          if (key[v] >= thr && l[v] > mx) mx = l[v];
        double total = 0;
        for (int64_t v = 0; v < V; v++) {
          w[v] = key[v] >= thr ? std::exp(((double)l[v] - mx) * invT) : 0.0;
          total += w[v];
        }
        const double target = (double)topP * total;
        const uint32_t thrK = thr;
        thr = largest_key([&](uint32_t c) {
          double m = 0;
          for (int64_t v = 0; v < V; v++)
            if (key[v] >= c && key[v] >= thrK) m += w[v];
          return m >= target;
        });
        if (thr < thrK) thr = thrK;
      }
      const uint32_t seed = (uint32_t)r.seeds[b], step = (uint32_t)r.steps[b];
      for (int64_t v = 0; v < V; v++) {
        if (key[v] < thr) continue;
        const float s = sample_score(l[v], invT, seed, step, (uint32_t)v);
        if (sample_better(s, (int)v, bs, best)) bs = s, best = (int)v;
      }
    }
    r.tokens[b] = best < 0 ? 0 : best;
    r.steps[b] += 1;
  }
}

// sampleTokens({ logits, params, seeds, steps, tokens, B, V, Vp }): logits Float32Array, or Float64Array (rounded
// to f32 first, as a device would hold them)
template <class T>
void sample_tokens(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "sampleTokens");
  const SampleArgs<T> r = read_sample<T>(a, ArrayFetch{});
  check_cpu_dtype<T>(a);
  a.finish();
  sample_rows(r);
}

}  // namespace
}  // namespace mamba

MAMBA_OP(cpu, sampleTokens) { MAMBA_DISPATCH_FIELD("logits", sample_tokens) }
