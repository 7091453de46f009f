// Multi-tensor ops: one launch over many f32 tensors (every parameter or gradient of a model) instead of
// one launch (and, for the norm, one synchronisation) per tensor. Tensors travel as a table of pointers
// in the kernel's parameter block, MT at a time; each block takes a span of SPAN elements of one tensor (the table's
// prefix sums of blocks per tensor say which). Their CPU twins are the per-tensor CPU kernels applied one by one
// (src/backend/ops.ts). Spans sized by each tensor, not a grid as wide as the table's largest tensor for all of
// them: those idle blocks cost the 130m step's passes more than their bytes did (bench/README.md, stop 35). A tensor
// whose buffers are all 16-byte aligned (8 for a bf16 one) moves 4 floats per access, else one.
#include "../src/adamw_args.h"
#include "common.cuh"
#include <algorithm>
#include <cmath>
#include <vector>

namespace mamba {
namespace {

constexpr int MT = 40;  // tensors per launch (the table stays well under the 4 KB parameter limit)
constexpr int MTPB = 256;
constexpr int SPAN = MTPB * 64;  // elements per block: 16 float4 per thread

struct Table {
  float* a[MT];          // the tensor (param for AdamW)
  float* g[MT];          // AdamW: gradient
  float* m[MT];          // AdamW: first moment
  float* v[MT];          // AdamW: second moment
  __nv_bfloat16* h[MT];  // AdamW: bf16 copy to refresh (or null); cast: the destination
  int64_t n[MT];
  float wd[MT];
  bool vec[MT];       // every buffer of the tensor is aligned for 4-element accesses
  int start[MT + 1];  // the first block of each tensor; start[count] = the grid
  int count;
};

// The tensor of this block (a walk over at most MT prefix sums, from the parameter block)
__device__ __forceinline__ int tensor_of(const Table& t) {
  int j = 0;
  while (j + 1 < t.count && (int)blockIdx.x >= t.start[j + 1]) j++;
  return j;
}
// This block's span of tensor j: f4(i) for each group of 4 elements starting at i (when vec), then f1(i) for each
// element left
template <class F4, class F1>
__device__ __forceinline__ void for_span(const Table& t, int j, F4 f4, F1 f1) {
  const int64_t lo = (int64_t)(blockIdx.x - t.start[j]) * SPAN, hi = min(t.n[j], lo + SPAN);
  int64_t rest = lo;
  if (t.vec[j]) {
    rest = lo + (hi - lo) / 4 * 4;
#pragma unroll 4
    for (int64_t i = lo + 4 * threadIdx.x; i < rest; i += 4 * MTPB) f4(i);
  }
  for (int64_t i = rest + threadIdx.x; i < hi; i += MTPB) f1(i);
}

__global__ void k_sumsq(Table t, double* out) {
  const int j = tensor_of(t);
  const float* x = t.a[j];
  double acc = 0.0;
  const auto sq = [&](float v) { acc = fma((double)v, (double)v, acc); };
  for_span(
      t, j,
      [&](int64_t i) {
    const float4 v = ld4(x + i);
    sq(v.x), sq(v.y), sq(v.z), sq(v.w);
      },
      [&](int64_t i) { sq(x[i]); });
  block_add_double<MTPB>(acc, out);
}

__global__ void k_scale_fill(Table t, float s, bool fill) {
  const int j = tensor_of(t);
  float* x = t.a[j];
  for_span(
      t, j,
      [&](int64_t i) {
    const float4 v = fill ? make_float4(s, s, s, s) : ld4(x + i);
    st4(x + i, fill ? v : make_float4(v.x * s, v.y * s, v.z * s, v.w * s));
      },
      [&](int64_t i) { x[i] = fill ? s : x[i] * s; });
}

__global__ void k_cast(Table t) {
  const int j = tensor_of(t);
  const float* x = t.a[j];
  __nv_bfloat16* y = t.h[j];
  for_span(
      t, j, [&](int64_t i) { st4(y + i, ld4(x + i)); }, [&](int64_t i) { y[i] = __float2bfloat16_rn(x[i]); });
}

// adamw_value (common.cuh) on every tensor of the table, each with its own weight decay, refreshing its bf16 copy
// where it has one
__global__ void k_adamw(Table t, AdamwK k) {
  const int j = tensor_of(t);
  float *p = t.a[j], *m = t.m[j], *v = t.v[j];
  const float* g = t.g[j];
  __nv_bfloat16* h = t.h[j];
  const float wd = t.wd[j];
  for_span(
      t, j,
      [&](int64_t i) {
    float4 p4 = ld4(p + i), m4 = ld4(m + i), v4 = ld4(v + i);
    const float4 g4 = ld4(g + i);
    p4.x = adamw_value(p4.x, g4.x, m4.x, v4.x, k, wd);
    p4.y = adamw_value(p4.y, g4.y, m4.y, v4.y, k, wd);
    p4.z = adamw_value(p4.z, g4.z, m4.z, v4.z, k, wd);
    p4.w = adamw_value(p4.w, g4.w, m4.w, v4.w, k, wd);
    st4(p + i, p4), st4(m + i, m4), st4(v + i, v4);
    if (h) st4(h + i, p4);
      },
      [&](int64_t i) {
    const float pi = adamw_value(p[i], g[i], m[i], v[i], k, wd);
    p[i] = pi;
    if (h) h[i] = __float2bfloat16_rn(pi);
  });
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
    t.vec[j] = true;
    for (const auto& la : lists) {
      Napi::Value v = la.list.As<Napi::Array>().Get(k);
      void* ptr = nullptr;
      if (!(la.nullable && (v.IsNull() || v.IsUndefined())))
        ptr = value_device(env, v, la.what, (size_t)n * (la.bf16 ? 2 : 4));
      if (!aligned_to(ptr, la.bf16 ? 8 : 16)) t.vec[j] = false;  // null (no bf16 copy) counts as aligned
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

// Sets the table's spans (a tensor of n elements gets ceil(n / SPAN) blocks, at least one) and returns its grid.
unsigned grid_of(Table& t) {
  int64_t b = 0;
  for (int j = 0; j < t.count; j++) {
    t.start[j] = (int)b;
    b += std::max<int64_t>(1, (t.n[j] + SPAN - 1) / SPAN);
  }
  t.start[t.count] = (int)b;
  return (unsigned)std::max<int64_t>(1, b);
}

}  // namespace
}  // namespace mamba

using namespace mamba;

// cuda.multiSumSquares(buffers[], numels[]) -> sum of squares of every element (double accumulation, one sync)
MAMBA_OP(cuda, multiSumSquares) {
  Napi::Env env = info.Env();
  auto tables = read_tables(env, info[1], {{info[0], "multiSumSquares buffers", SA, false, false}});
  double* acc = zeroed_scratch_double(env, "multiSumSquares");
  for (auto& t : tables) {
    const unsigned grid = grid_of(t);
    k_sumsq<<<grid, MTPB, 0, cuda_stream()>>>(t, acc);
    check_launch(env, "multiSumSquares");
  }
  return Napi::Number::New(env, read_scratch_double(env, acc, "multiSumSquares"));
}

// multiScale and multiFill: (buffers[], numels[], v), one k_scale_fill launch per table
Napi::Value scale_or_fill(const Napi::CallbackInfo& info, const std::string& op, const char* vname, bool fill) {
  const std::string what = op + " buffers";
  auto tables = read_tables(info.Env(), info[1], {{info[0], what.c_str(), SA, false, false}});
  const float v = (float)arg_num(info, 2, (op + " " + vname).c_str());
  for (auto& t : tables) {
    const unsigned grid = grid_of(t);
    k_scale_fill<<<grid, MTPB, 0, cuda_stream()>>>(t, v, fill);
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
  for (auto& t : tables) {
    const unsigned grid = grid_of(t);
    k_cast<<<grid, MTPB, 0, cuda_stream()>>>(t);
    check_launch(info.Env(), "multiCastBf16");
  }
  return info.Env().Undefined();
}

// cuda.multiAdamw({ params, grads, m, v, bf16Copies (null entries: none), numels, weightDecays, lr, beta1, beta2, eps,
//   step, gradScale? }): AdamW on every tensor, each gradient read times gradScale, refreshing its bf16 copy where
//   one is given
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
  for (auto& t : tables) {
    const unsigned grid = grid_of(t);
    k_adamw<<<grid, MTPB, 0, cuda_stream()>>>(t, adamw_k(h));
    check_launch(env, "multiAdamw");
  }
  return env.Undefined();
}
