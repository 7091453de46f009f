// Per-op GPU time (MAMBA_OP_PROFILE=1): addon.cc wraps every cuda.* binding so that CUDA events are
// recorded on the stream before and after it; cuda.opProfile() synchronises once and returns the total
// GPU time and call count per op (gemm split by its M x N x K), then starts afresh. Nothing is recorded
// while a CUDA graph is being captured. Events come from a pool, so profiling costs two event records
// per op call and no synchronisation until the report.
#include <algorithm>
#include <map>
#include <string>
#include <vector>
#include "runtime.h"
#include "../src/args.h"
#include "../src/registry.h"

namespace mamba {
namespace {

struct Pending {
  std::string key;
  cudaEvent_t a, b;
};
struct Total {
  double ms = 0;
  int64_t calls = 0;
};

struct OpProfiler {
  std::vector<cudaEvent_t> pool;
  std::vector<Pending> pending;
  std::map<std::string, Total> totals;
  cudaEvent_t take() {
    if (!pool.empty()) {
      cudaEvent_t e = pool.back();
      pool.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    cudaEventCreate(&e);
    return e;
  }
  void settle() {  // after a synchronize: fold the pending pairs into the totals
    for (auto& p : pending) {
      float ms = 0.f;
      if (cudaEventElapsedTime(&ms, p.a, p.b) == cudaSuccess) {
        auto& t = totals[p.key];
        t.ms += ms;
        t.calls++;
      }
      cudaGetLastError();
      pool.push_back(p.a);
      pool.push_back(p.b);
    }
    pending.clear();
  }
};
OpProfiler& prof() {
  static OpProfiler p;
  return p;
}

// gemm's key names its shape: "gemm MxNxK TN" from its argument object (transA, transB, M, N, K)
std::string key_of(const char* name, const Napi::CallbackInfo& info) {
  std::string k = name;
  if (k != "gemm" || info.Length() < 1 || !info[0].IsObject()) return k;
  Napi::Object o = info[0].As<Napi::Object>();
  auto num = [&](const char* f) {
    Napi::Value v = o.Get(f);
    return v.IsNumber() ? std::to_string(v.As<Napi::Number>().Int64Value()) : std::string("?");
  };
  auto tr = [&](const char* f) { return o.Get(f).ToBoolean().Value() ? "T" : "N"; };
  return k + " " + num("M") + "x" + num("N") + "x" + num("K") + " " + tr("transA") + tr("transB");
}

}  // namespace

Napi::Value profiled_op(const Napi::CallbackInfo& info) {
  const OpEntry* op = static_cast<const OpEntry*>(info.Data());
  if (stream_capturing()) return op->fn(info);
  OpProfiler& p = prof();
  if (p.pending.size() > 100000) {
    cudaStreamSynchronize(cuda_stream());
    p.settle();
  }
  cudaEvent_t a = p.take(), b = p.take();
  p.pending.push_back({key_of(op->name.c_str(), info), a, b});
  cudaEventRecord(a, cuda_stream());
  try {
    Napi::Value r = op->fn(info);
    cudaEventRecord(b, cuda_stream());
    return r;
  } catch (...) {
    cudaEventRecord(b, cuda_stream());  // a failed op still closes its pair
    throw;
  }
}

}  // namespace mamba

using namespace mamba;

// cuda.opProfile() -> [[op, calls, ms], ...] by time, largest first (empty unless MAMBA_OP_PROFILE=1); resets
MAMBA_OP(cuda, opProfile) {
  OpProfiler& p = prof();
  cudaStreamSynchronize(cuda_stream());
  p.settle();
  std::vector<std::pair<std::string, Total>> v(p.totals.begin(), p.totals.end());
  std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.second.ms > y.second.ms; });
  Napi::Array a = Napi::Array::New(info.Env(), v.size());
  for (size_t i = 0; i < v.size(); i++) {
    Napi::Array e = Napi::Array::New(info.Env(), 3);
    e.Set((uint32_t)0, Napi::String::New(info.Env(), v[i].first));
    e.Set((uint32_t)1, Napi::Number::New(info.Env(), (double)v[i].second.calls));
    e.Set((uint32_t)2, Napi::Number::New(info.Env(), v[i].second.ms));
    a.Set((uint32_t)i, e);
  }
  p.totals.clear();
  return a;
}
