// Multi-tensor ops: one launch over many f32 tensors (every parameter or gradient of a model) instead of
// one launch (and, for the norm, one synchronisation) per tensor. Tensors travel as a table of pointers
// in the kernel's parameter block, MT at a time; blockIdx.y picks the tensor, blockIdx.x strides over it.
// Their CPU twins are the per-tensor CPU kernels applied one by one (src/backend/ops.ts).
#include "../src/adamw_args.h"
#include "common.cuh"
#include <algorithm>
#include <cmath>
#include <vector>

namespace mamba {
namespace {

constexpr int MT = 40;  // tensors per launch (the table stays well under the 4 KB parameter limit)
constexpr int MTPB = 256;

struct Table {
  float* a[MT];          // the tensor (param for AdamW)
  float* g[MT];          // AdamW: gradient
  float* m[MT];          // AdamW: first moment
  float* v[MT];          // AdamW: second moment
  __nv_bfloat16* h[MT];  // AdamW: bf16 copy to refresh (or null); cast: the destination
  int64_t n[MT];
  float wd[MT];
  int count;
};

__global__ void k_sumsq(Table t, double* out) {
  const int j = blockIdx.y;
  const float* x = t.a[j];
  const int64_t n = t.n[j];
  double acc = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)MTPB + threadIdx.x; i < n; i += (int64_t)gridDim.x * MTPB) {
    const double v = x[i];
    acc = fma(v, v, acc);
  }
  block_add_double<MTPB>(acc, out);
}

__global__ void k_scale_fill(Table t, float s, bool fill) {
  const int j = blockIdx.y;
  float* x = t.a[j];
  const int64_t n = t.n[j];
  for (int64_t i = blockIdx.x * (int64_t)MTPB + threadIdx.x; i < n; i += (int64_t)gridDim.x * MTPB)
    x[i] = fill ? s : x[i] * s;
}

__global__ void k_cast(Table t) {
  const int j = blockIdx.y;
  const float* x = t.a[j];
  __nv_bfloat16* y = t.h[j];
  const int64_t n = t.n[j];
  for (int64_t i = blockIdx.x * (int64_t)MTPB + threadIdx.x; i < n; i += (int64_t)gridDim.x * MTPB)
    y[i] = __float2bfloat16_rn(x[i]);
}

// adamw_update (common.cuh) on every tensor of the table, each with its own weight decay
__global__ void k_adamw(Table t, float lr, float b1, float b2, float eps, float c1, float c2) {
  const int j = blockIdx.y;
  const int64_t n = t.n[j];
  for (int64_t i = blockIdx.x * (int64_t)MTPB + threadIdx.x; i < n; i += (int64_t)gridDim.x * MTPB)
    adamw_update(t.a[j], t.g[j], t.m[j], t.v[j], t.h[j], i, lr, b1, b2, eps, t.wd[j], c1, c2);
}

Napi::Array value_list(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw_type(env, std::string(what) + ": expected an array");
  return v.As<Napi::Array>();
}

// Reads the element counts (the array `numels`) and the buffers of the listed arrays into tables of MT, each
// list into its Table slot, checking every buffer holds n floats (bf16 where `bf16` marks the list). Null
// entries are allowed only in lists marked nullable.
enum Slot { SA, SG, SM, SV, SH };
struct ListArg {
  Napi::Value list;
  const char* what;
  Slot slot;
  bool bf16;
  bool nullable;
};
std::vector<Table> read_tables(Napi::Env env, const Napi::Value& numels, std::initializer_list<ListArg> lists,
                               const Napi::Array* wds = nullptr) {
  Napi::Array ns = value_list(env, numels, "multi-tensor numels");
  const uint32_t count = ns.Length();
  std::vector<Table> out((count + MT - 1) / MT);
  for (auto& t : out) t = Table{};
  for (const auto& la : lists) {
    Napi::Array l = value_list(env, la.list, la.what);
    if (l.Length() != count)
      throw Napi::RangeError::New(env, std::string(la.what) + ": " + std::to_string(l.Length()) + " buffers for " +
                                           std::to_string(count) + " sizes");
  }
  for (uint32_t k = 0; k < count; k++) {
    Table& t = out[k / MT];
    const int j = (int)(k % MT);
    Napi::Value nv = ns.Get(k);
    if (!nv.IsNumber() || nv.As<Napi::Number>().DoubleValue() < 0)
      throw_type(env, "multi-tensor numels: expected non-negative integers");
    const int64_t n = (int64_t)nv.As<Napi::Number>().DoubleValue();
    t.n[j] = n;
    t.count = j + 1;
    for (const auto& la : lists) {
      Napi::Value v = la.list.As<Napi::Array>().Get(k);
      void* ptr = nullptr;
      if (!(la.nullable && (v.IsNull() || v.IsUndefined())))
        ptr = value_device(env, v, la.what, (size_t)n * (la.bf16 ? 2 : 4));
      switch (la.slot) {
        case SA:
          t.a[j] = (float*)ptr;
          break;
        case SG:
          t.g[j] = (float*)ptr;
          break;
        case SM:
          t.m[j] = (float*)ptr;
          break;
        case SV:
          t.v[j] = (float*)ptr;
          break;
        case SH:
          t.h[j] = (__nv_bfloat16*)ptr;
          break;
      }
    }
    if (wds) {
      Napi::Value w = wds->Get(k);
      if (!w.IsNumber()) throw_type(env, "multiAdamw weightDecays: expected numbers");
      t.wd[j] = (float)w.As<Napi::Number>().DoubleValue();
    }
  }
  return out;
}

dim3 grid_of(const Table& t) {
  int64_t mx = 1;
  for (int j = 0; j < t.count; j++) mx = std::max<int64_t>(mx, t.n[j]);
  const int64_t bx = std::min<int64_t>((mx + MTPB * 4 - 1) / (MTPB * 4), std::max(1, sm_count() * 8));
  return dim3((unsigned)std::max<int64_t>(1, bx), (unsigned)t.count);
}

}  // namespace
}  // namespace mamba

using namespace mamba;

// cuda.multiSumSquares(buffers[], numels[]) -> sum of squares of every element (double accumulation, one sync)
MAMBA_OP(cuda, multiSumSquares) {
  Napi::Env env = info.Env();
  auto tables = read_tables(env, info[1], {{info[0], "multiSumSquares buffers", SA, false, false}});
  double* acc = zeroed_scratch_double(env, "multiSumSquares");
  for (const auto& t : tables) {
    k_sumsq<<<grid_of(t), MTPB, 0, cuda_stream()>>>(t, acc);
    check_launch(env, "multiSumSquares");
  }
  return Napi::Number::New(env, read_scratch_double(env, acc, "multiSumSquares"));
}

// multiScale and multiFill: (buffers[], numels[], v), one k_scale_fill launch per table
Napi::Value scale_or_fill(const Napi::CallbackInfo& info, const std::string& op, const char* vname, bool fill) {
  const std::string what = op + " buffers";
  auto tables = read_tables(info.Env(), info[1], {{info[0], what.c_str(), SA, false, false}});
  const float v = (float)arg_num(info, 2, (op + " " + vname).c_str());
  for (const auto& t : tables) {
    k_scale_fill<<<grid_of(t), MTPB, 0, cuda_stream()>>>(t, v, fill);
    check_launch(info.Env(), op.c_str());
  }
  return info.Env().Undefined();
}

// cuda.multiScale(buffers[], numels[], s): x *= s in place, every tensor
MAMBA_OP(cuda, multiScale) { return scale_or_fill(info, "multiScale", "s", false); }

// cuda.multiFill(buffers[], numels[], value)
MAMBA_OP(cuda, multiFill) { return scale_or_fill(info, "multiFill", "value", true); }

// cuda.multiCastBf16(src f32[], dst bf16[], numels[])
MAMBA_OP(cuda, multiCastBf16) {
  auto tables =
      read_tables(info.Env(), info[2],
                  {{info[0], "multiCastBf16 src", SA, false, false}, {info[1], "multiCastBf16 dst", SH, true, false}});
  for (const auto& t : tables) {
    k_cast<<<grid_of(t), MTPB, 0, cuda_stream()>>>(t);
    check_launch(info.Env(), "multiCastBf16");
  }
  return info.Env().Undefined();
}

// cuda.multiAdamw({ params, grads, m, v, bf16Copies (null entries: none), numels, weightDecays, lr, beta1, beta2, eps,
//   step }): AdamW on every tensor, refreshing its bf16 copy where one is given
MAMBA_OP(cuda, multiAdamw) {
  Napi::Env env = info.Env();
  const ArgObject a(info, 0, "multiAdamw");
  Napi::Array wds = value_list(env, a.value("weightDecays"), "multiAdamw weightDecays");
  auto tables = read_tables(env, a.value("numels"),
                            {{a.value("params"), "multiAdamw params", SA, false, false},
                             {a.value("grads"), "multiAdamw grads", SG, false, false},
                             {a.value("m"), "multiAdamw m", SM, false, false},
                             {a.value("v"), "multiAdamw v", SV, false, false},
                             {a.value("bf16Copies"), "multiAdamw bf16Copies", SH, true, true}},
                            &wds);
  const AdamwHyper h = read_adamw_hyper(a);
  a.finish();
  const double lr = h.lr, b1 = h.beta1, b2 = h.beta2, eps = h.eps, c1 = h.c1, c2 = h.c2;
  for (const auto& t : tables) {
    k_adamw<<<grid_of(t), MTPB, 0, cuda_stream()>>>(t, (float)lr, (float)b1, (float)b2, (float)eps, (float)c1,
                                                    (float)c2);
    check_launch(env, "multiAdamw");
  }
  return env.Undefined();
}
