// Which layout of the causal depthwise conv1d (K = 4, SiLU) runs nearest HBM bandwidth at the 130m training shape
// (B = 8, L = 2048, D = 1536, bf16; x the first half of in_proj's [T, 3072] output, dx the first half of its
// gradient)? A standalone dev harness, not part of the addon (issue 17, stop 38):
//   nvcc -O3 -std=c++17 -arch=sm_90 bench/conv-tune.cu -o /tmp/conv-tune && /tmp/conv-tune
// Rows: the production kernels of stop 37 (native/cuda/ops.cu conv_fwd / conv_bwd: a thread per channel (pair),
// runs of TL steps, loads issued a step or two ahead), against "ring" kernels in which a thread owns V adjacent
// channels moved as one 4-, 8- or 16-byte access and loads the next G steps' rows while it computes the current
// G (more bytes in flight per thread: the production forward keeps about 8 bytes a thread in flight, 16 KB an SM,
// under the ~30 KB an SM that HBM's bandwidth-latency product asks for). L2 is flushed before each timed launch;
// median of 15. Each variant's outputs are compared with the production kernel's (forward and dx bit-equal: the
// same FMA order; dw and dbias to rounding, their atomics add in another order).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#define CK(x)                                                                                 \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

using bf16 = __nv_bfloat16;
__device__ __forceinline__ float ldf(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void stf(bf16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ float sigmoidf_(float x) { return 1.f / (1.f + __expf(-x)); }
__device__ __forceinline__ float silu_(float v) { return v * sigmoidf_(v); }

// ---- the production kernels (stop 37) ----
constexpr int CONV_CW = 64, CONV_RY = 4;
template <int K>
__global__ void __launch_bounds__(CONV_CW* CONV_RY)
    prod_fwd(const bf16* __restrict__ x, int64_t xs, const float* __restrict__ w, const float* __restrict__ bias,
             bf16* __restrict__ out, int L, int D, int TL, bool silu) {
  const int d = blockIdx.x * CONV_CW + threadIdx.x, b = blockIdx.z;
  const int l0 = (blockIdx.y * CONV_RY + threadIdx.y) * TL;
  if (d >= D || l0 >= L) return;
  const int l1 = min(L, l0 + TL);
  float wk[K], win[K];
#pragma unroll
  for (int k = 0; k < K; k++) wk[k] = w[(int64_t)d * K + k];
  const float bs = bias ? bias[d] : 0.f;
  const int64_t rb = (int64_t)b * L;
#pragma unroll
  for (int k = 0; k < K - 1; k++) {
    const int l = l0 - (K - 1) + k;
    win[k] = l >= 0 ? ldf(x, (rb + l) * xs + d) : 0.f;
  }
#pragma unroll 4
  for (int l = l0; l < l1; l++) {
    win[K - 1] = ldf(x, (rb + l) * xs + d);
    float acc = bs;
#pragma unroll
    for (int k = 0; k < K; k++) acc = fmaf(wk[k], win[k], acc);
    stf(out, (rb + l) * D + d, silu ? silu_(acc) : acc);
#pragma unroll
    for (int k = 0; k < K - 1; k++) win[k] = win[k + 1];
  }
}

__device__ __forceinline__ void ld2(const bf16* p, int64_t i, float (&v)[2]) {
  const unsigned u = __ldg(reinterpret_cast<const unsigned*>(p + i));
  v[0] = __uint_as_float(u << 16);
  v[1] = __uint_as_float(u & 0xffff0000u);
}
__device__ __forceinline__ void st2(bf16* p, int64_t i, const float (&v)[2]) {
  *reinterpret_cast<__nv_bfloat162*>(p + i) = __floats2bfloat162_rn(v[0], v[1]);
}

template <int K>
__global__ void __launch_bounds__(CONV_CW* CONV_RY)
    prod_bwd(const bf16* __restrict__ x, int64_t xs, const float* __restrict__ w, const float* __restrict__ bias,
             const bf16* __restrict__ dOut, bf16* __restrict__ dx, int64_t dxs, float* dw, float* dbias, int L, int D,
             int TL, bool silu) {
  constexpr int CP = 2;
  __shared__ float red[CONV_RY][K + 1][CONV_CW * CP];
  const int d = (blockIdx.x * CONV_CW + threadIdx.x) * CP, b = blockIdx.z;
  const int l0 = (blockIdx.y * CONV_RY + threadIdx.y) * TL;
  float gw[CP][K + 1];
#pragma unroll
  for (int c = 0; c < CP; c++)
#pragma unroll
    for (int k = 0; k <= K; k++) gw[c][k] = 0.f;
  if (d < D && l0 < L) {
    const int l1 = min(L, l0 + TL);
    float wk[CP][K], win[K][CP], dp[K][CP], bs[CP];
#pragma unroll
    for (int c = 0; c < CP; c++) {
#pragma unroll
      for (int k = 0; k < K; k++) {
        wk[c][k] = w[(int64_t)(d + c) * K + k];
        dp[k][c] = 0.f;
      }
      bs[c] = bias ? bias[d + c] : 0.f;
    }
    const int64_t rb = (int64_t)b * L;
#pragma unroll
    for (int k = 0; k < K - 1; k++) {
      const int l = l0 - (K - 1) + k;
      if (l >= 0)
        ld2(x, (rb + l) * xs + d, win[k]);
      else
#pragma unroll
        for (int c = 0; c < CP; c++) win[k][c] = 0.f;
    }
    const int lend = l1 + K - 1;
#pragma unroll 2
    for (int l = l0; l < lend; l++) {
      float g[CP];
      if (l < L) {
        ld2(x, (rb + l) * xs + d, win[K - 1]);
        ld2(dOut, (rb + l) * D + d, g);
#pragma unroll
        for (int c = 0; c < CP; c++) {
          if (silu) {
            float pre = bs[c];
#pragma unroll
            for (int k = 0; k < K; k++) pre = fmaf(wk[c][k], win[k][c], pre);
            const float sg = sigmoidf_(pre);
            g[c] *= sg * (1.f + pre * (1.f - sg));
          }
          if (l < l1) {
#pragma unroll
            for (int k = 0; k < K; k++) gw[c][k] = fmaf(g[c], win[k][c], gw[c][k]);
            gw[c][K] += g[c];
          }
        }
      } else {
#pragma unroll
        for (int c = 0; c < CP; c++) g[c] = 0.f;
      }
#pragma unroll
      for (int k = 0; k < K - 1; k++)
#pragma unroll
        for (int c = 0; c < CP; c++) dp[k][c] = dp[k + 1][c];
#pragma unroll
      for (int c = 0; c < CP; c++) dp[K - 1][c] = g[c];
      const int lo = l - (K - 1);
      if (lo >= l0) {
        float acc[CP];
#pragma unroll
        for (int c = 0; c < CP; c++) {
          acc[c] = 0.f;
#pragma unroll
          for (int k = 0; k < K; k++) acc[c] = fmaf(wk[c][k], dp[K - 1 - k][c], acc[c]);
        }
        st2(dx, (rb + lo) * dxs + d, acc);
      }
#pragma unroll
      for (int k = 0; k < K - 1; k++)
#pragma unroll
        for (int c = 0; c < CP; c++) win[k][c] = win[k + 1][c];
    }
  }
#pragma unroll
  for (int c = 0; c < CP; c++)
#pragma unroll
    for (int k = 0; k <= K; k++) red[threadIdx.y][k][threadIdx.x * CP + c] = gw[c][k];
  __syncthreads();
  const int t = threadIdx.y * CONV_CW + threadIdx.x;
  const int dc = blockIdx.x * CONV_CW * CP + t;
  if (t < CONV_CW * CP && dc < D) {
#pragma unroll
    for (int k = 0; k <= K; k++) {
      float v = 0.f;
#pragma unroll
      for (int r = 0; r < CONV_RY; r++) v += red[r][k][t];
      if (k < K)
        atomicAdd(&dw[(int64_t)dc * K + k], v);
      else if (dbias)
        atomicAdd(&dbias[dc], v);
    }
  }
}

// ---- ring kernels: V channels a thread in one access, the next G rows loaded while the current G are computed ----
template <int BYTES>
struct RawOf;
template <>
struct RawOf<4> {
  using type = unsigned;
};
template <>
struct RawOf<8> {
  using type = uint2;
};
template <>
struct RawOf<16> {
  using type = uint4;
};
template <int V>
struct Pack {
  static constexpr int W = V / 2;  // 32-bit words (two bf16 each)
  using Raw = typename RawOf<V * 2>::type;
  __device__ static Raw load(const bf16* p) { return __ldg(reinterpret_cast<const Raw*>(p)); }
  __device__ static void unpack(const Raw& r, float (&f)[V]) {
    const unsigned* w = reinterpret_cast<const unsigned*>(&r);
#pragma unroll
    for (int i = 0; i < W; i++) {
      f[2 * i] = __uint_as_float(w[i] << 16);
      f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
  __device__ static void store(bf16* p, const float (&f)[V]) {
    Raw r;
    unsigned* w = reinterpret_cast<unsigned*>(&r);
#pragma unroll
    for (int i = 0; i < W; i++) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
      w[i] = *reinterpret_cast<const unsigned*>(&h);
    }
    *reinterpret_cast<Raw*>(p) = r;
  }
};

constexpr int RING_CX = 32;  // channel groups a block spans (one warp)
template <int K, int V, int G, int RY>
__global__ void __launch_bounds__(RING_CX* RY)
    ring_fwd(const bf16* __restrict__ x, int64_t xs, const float* __restrict__ w, const float* __restrict__ bias,
             bf16* __restrict__ out, int L, int D, int TL, bool silu) {
  using P = Pack<V>;
  using Raw = typename P::Raw;
  const int d = (blockIdx.x * RING_CX + threadIdx.x) * V, b = blockIdx.z;
  const int l0 = (blockIdx.y * RY + threadIdx.y) * TL;
  if (d >= D || l0 >= L) return;
  const int l1 = min(L, l0 + TL);
  float wk[V][K], bs[V], win[K][V];
#pragma unroll
  for (int c = 0; c < V; c++) {
#pragma unroll
    for (int k = 0; k < K; k++) wk[c][k] = w[(int64_t)(d + c) * K + k];
    bs[c] = bias ? bias[d + c] : 0.f;
  }
  const bf16* xb = x + (int64_t)b * L * xs + d;
  bf16* ob = out + (int64_t)b * L * D + d;
#pragma unroll
  for (int k = 0; k < K - 1; k++) {
    const int l = l0 - (K - 1) + k;
    if (l >= 0)
      P::unpack(P::load(xb + (int64_t)l * xs), win[k]);
    else
#pragma unroll
      for (int c = 0; c < V; c++) win[k][c] = 0.f;
  }
  Raw cur[G];
#pragma unroll
  for (int q = 0; q < G; q++) cur[q] = l0 + q < l1 ? P::load(xb + (int64_t)(l0 + q) * xs) : Raw{};
  for (int l = l0; l < l1; l += G) {
    Raw nxt[G];
#pragma unroll
    for (int q = 0; q < G; q++) {
      const int r = l + G + q;
      nxt[q] = r < l1 ? P::load(xb + (int64_t)r * xs) : Raw{};
    }
#pragma unroll
    for (int q = 0; q < G; q++) {
      if (l + q < l1) {
        P::unpack(cur[q], win[K - 1]);
        float o[V];
#pragma unroll
        for (int c = 0; c < V; c++) {
          float acc = bs[c];
#pragma unroll
          for (int k = 0; k < K; k++) acc = fmaf(wk[c][k], win[k][c], acc);
          o[c] = silu ? silu_(acc) : acc;
        }
        P::store(ob + (int64_t)(l + q) * D, o);
#pragma unroll
        for (int k = 0; k < K - 1; k++)
#pragma unroll
          for (int c = 0; c < V; c++) win[k][c] = win[k + 1][c];
      }
    }
#pragma unroll
    for (int q = 0; q < G; q++) cur[q] = nxt[q];
  }
}

template <int K, int V, int G, int RY>
__global__ void __launch_bounds__(RING_CX* RY)
    ring_bwd(const bf16* __restrict__ x, int64_t xs, const float* __restrict__ w, const float* __restrict__ bias,
             const bf16* __restrict__ dOut, bf16* __restrict__ dx, int64_t dxs, float* dw, float* dbias, int L, int D,
             int TL, bool silu) {
  using P = Pack<V>;
  using Raw = typename P::Raw;
  constexpr int NCH = RING_CX * V;  // channels of a block
  __shared__ float red[RY][K + 1][NCH];
  const int d = (blockIdx.x * RING_CX + threadIdx.x) * V, b = blockIdx.z;
  const int l0 = (blockIdx.y * RY + threadIdx.y) * TL;
  float gw[V][K + 1];
#pragma unroll
  for (int c = 0; c < V; c++)
#pragma unroll
    for (int k = 0; k <= K; k++) gw[c][k] = 0.f;
  if (d < D && l0 < L) {
    const int l1 = min(L, l0 + TL);
    const int lend = l1 + K - 1, lload = min(L, lend);  // rows walked; rows read
    float wk[V][K], bs[V], win[K][V], dp[K][V];
#pragma unroll
    for (int c = 0; c < V; c++) {
#pragma unroll
      for (int k = 0; k < K; k++) {
        wk[c][k] = w[(int64_t)(d + c) * K + k];
        dp[k][c] = 0.f;
      }
      bs[c] = bias ? bias[d + c] : 0.f;
    }
    const bf16* xb = x + (int64_t)b * L * xs + d;
    const bf16* gb = dOut + (int64_t)b * L * D + d;
    bf16* dxb = dx + (int64_t)b * L * dxs + d;
#pragma unroll
    for (int k = 0; k < K - 1; k++) {
      const int l = l0 - (K - 1) + k;
      if (l >= 0)
        P::unpack(P::load(xb + (int64_t)l * xs), win[k]);
      else
#pragma unroll
        for (int c = 0; c < V; c++) win[k][c] = 0.f;
    }
    Raw cx[G], cg[G];
#pragma unroll
    for (int q = 0; q < G; q++) {
      const int r = l0 + q;
      cx[q] = r < lload ? P::load(xb + (int64_t)r * xs) : Raw{};
      cg[q] = r < lload ? P::load(gb + (int64_t)r * D) : Raw{};
    }
    for (int l = l0; l < lend; l += G) {
      Raw nx[G], ng[G];
#pragma unroll
      for (int q = 0; q < G; q++) {
        const int r = l + G + q;
        nx[q] = r < lload ? P::load(xb + (int64_t)r * xs) : Raw{};
        ng[q] = r < lload ? P::load(gb + (int64_t)r * D) : Raw{};
      }
#pragma unroll
      for (int q = 0; q < G; q++) {
        const int lq = l + q;
        if (lq < lend) {
          float g[V];
          if (lq < L) {
            P::unpack(cx[q], win[K - 1]);
            P::unpack(cg[q], g);
#pragma unroll
            for (int c = 0; c < V; c++) {
              if (silu) {
                float pre = bs[c];
#pragma unroll
                for (int k = 0; k < K; k++) pre = fmaf(wk[c][k], win[k][c], pre);
                const float sg = sigmoidf_(pre);
                g[c] *= sg * (1.f + pre * (1.f - sg));
              }
              if (lq < l1) {
#pragma unroll
                for (int k = 0; k < K; k++) gw[c][k] = fmaf(g[c], win[k][c], gw[c][k]);
                gw[c][K] += g[c];
              }
            }
          } else {
#pragma unroll
            for (int c = 0; c < V; c++) g[c] = 0.f;
          }
#pragma unroll
          for (int k = 0; k < K - 1; k++)
#pragma unroll
            for (int c = 0; c < V; c++) dp[k][c] = dp[k + 1][c];
#pragma unroll
          for (int c = 0; c < V; c++) dp[K - 1][c] = g[c];
          const int lo = lq - (K - 1);
          if (lo >= l0) {
            float acc[V];
#pragma unroll
            for (int c = 0; c < V; c++) {
              acc[c] = 0.f;
#pragma unroll
              for (int k = 0; k < K; k++) acc[c] = fmaf(wk[c][k], dp[K - 1 - k][c], acc[c]);
            }
            P::store(dxb + (int64_t)lo * dxs, acc);
          }
#pragma unroll
          for (int k = 0; k < K - 1; k++)
#pragma unroll
            for (int c = 0; c < V; c++) win[k][c] = win[k + 1][c];
        }
      }
#pragma unroll
      for (int q = 0; q < G; q++) {
        cx[q] = nx[q];
        cg[q] = ng[q];
      }
    }
  }
#pragma unroll
  for (int c = 0; c < V; c++)
#pragma unroll
    for (int k = 0; k <= K; k++) red[threadIdx.y][k][threadIdx.x * V + c] = gw[c][k];
  __syncthreads();
  const int t = threadIdx.y * RING_CX + threadIdx.x;
  for (int ch = t; ch < NCH; ch += RING_CX * RY) {
    const int dc = blockIdx.x * NCH + ch;
    if (dc >= D) continue;
#pragma unroll
    for (int k = 0; k <= K; k++) {
      float v = 0.f;
#pragma unroll
      for (int r = 0; r < RY; r++) v += red[r][k][ch];
      if (k < K)
        atomicAdd(&dw[(int64_t)dc * K + k], v);
      else if (dbias)
        atomicAdd(&dbias[dc], v);
    }
  }
}

// ---- harness ----
constexpr int B = 8, L = 2048, D = 1536, K = 4;
constexpr int64_t T = (int64_t)B * L, XS = 2 * D, DXS = 2 * D;

struct Bufs {
  bf16 *x, *dOut, *out, *dx;
  float *w, *bias, *dw, *dbias;
  char* flush;
};
constexpr size_t FLUSH = 256u << 20;

template <class F>
float time_median(const Bufs& m, F launch, int reps = 15) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> ts;
  for (int r = 0; r < reps + 2; r++) {
    CK(cudaMemsetAsync(m.flush, r & 0xff, FLUSH));
    CK(cudaMemsetAsync(m.dw, 0, D * K * 4));
    CK(cudaMemsetAsync(m.dbias, 0, D * 4));
    CK(cudaEventRecord(a));
    launch();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    CK(cudaGetLastError());
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    if (r >= 2) ts.push_back(ms * 1000.f);
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

int sm_count() {
  int n = 0;
  CK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0));
  return n;
}
int resident(const void* k, int threads) {
  int n = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, threads, 0));
  return n;
}
// the production rule (ops.cu conv_run)
int prod_run(int cp, int res) {
  const int64_t cb = (D + CONV_CW * cp - 1) / (CONV_CW * cp);
  const int64_t want_rows =
      std::max<int64_t>(1, 2 * (int64_t)sm_count() * std::max(1, res) / std::max<int64_t>(1, cb * B));
  int64_t tl = (L + want_rows * CONV_RY - 1) / (want_rows * CONV_RY);
  return (int)std::max<int64_t>(8, std::min<int64_t>(256, tl));
}

template <class T>
std::vector<T> down(const T* p, size_t n) {
  std::vector<T> h(n);
  CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

int main() {
  Bufs m;
  CK(cudaMalloc(&m.x, T * XS * 2));
  CK(cudaMalloc(&m.dOut, T * D * 2));
  CK(cudaMalloc(&m.out, T * D * 2));
  CK(cudaMalloc(&m.dx, T * DXS * 2));
  CK(cudaMalloc(&m.w, D * K * 4));
  CK(cudaMalloc(&m.bias, D * 4));
  CK(cudaMalloc(&m.dw, D * K * 4));
  CK(cudaMalloc(&m.dbias, D * 4));
  CK(cudaMalloc(&m.flush, FLUSH));
  {
    uint64_t s = 12345;
    auto rnd = [&] {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      return (float)((s >> 40) & 0xffffff) / 16777216.f - 0.5f;
    };
    std::vector<bf16> hx(T * XS), hg(T * D);
    for (auto& v : hx) v = __float2bfloat16(4.f * rnd());
    for (auto& v : hg) v = __float2bfloat16(rnd());
    std::vector<float> hw(D * K), hb(D);
    for (auto& v : hw) v = rnd();
    for (auto& v : hb) v = 0.2f * rnd();
    CK(cudaMemcpy(m.x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(m.dOut, hg.data(), hg.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(m.w, hw.data(), hw.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(m.bias, hb.data(), hb.size() * 4, cudaMemcpyHostToDevice));
  }
  const double fwd_bytes = (double)T * D * 2 * 2, bwd_bytes = (double)T * D * 2 * 3;
  std::printf(
      "shape B=%d L=%d D=%d K=%d bf16, SiLU; forward moves %.1f MB, backward %.1f MB (HBM floor at 4.8 TB/s: "
      "%.1f / %.1f us)\n",
      B, L, D, K, fwd_bytes / 1e6, bwd_bytes / 1e6, fwd_bytes / 4.8e6, bwd_bytes / 4.8e6);

  // forward
  const int ptl = prod_run(1, resident((const void*)prod_fwd<K>, CONV_CW * CONV_RY));
  auto prod_f = [&] {
    const dim3 grid((D + CONV_CW - 1) / CONV_CW, (L + ptl * CONV_RY - 1) / (ptl * CONV_RY), B);
    prod_fwd<K><<<grid, dim3(CONV_CW, CONV_RY)>>>(m.x, XS, m.w, m.bias, m.out, L, D, ptl, true);
  };
  const float tp = time_median(m, prod_f);
  prod_f();
  CK(cudaDeviceSynchronize());
  const auto ref_out = down(m.out, T * D);
  std::printf("fwd production TL=%d: %.2f us (%.0f GB/s)\n", ptl, tp, fwd_bytes / tp / 1e3);

  auto try_fwd = [&](const char* name, auto kernel, int V, int RY, int TL) {
    auto launch = [&] {
      const dim3 grid((D / V + RING_CX - 1) / RING_CX, (L + TL * RY - 1) / (TL * RY), B);
      kernel<<<grid, dim3(RING_CX, RY)>>>(m.x, XS, m.w, m.bias, m.out, L, D, TL, true);
    };
    CK(cudaMemset(m.out, 0, T * D * 2));
    launch();
    CK(cudaDeviceSynchronize());
    const auto o = down(m.out, T * D);
    const bool same = std::memcmp(o.data(), ref_out.data(), o.size() * 2) == 0;
    const float t = time_median(m, launch);
    std::printf("fwd %s TL=%d: %.2f us (%.0f GB/s) %s, %d blocks/SM\n", name, TL, t, fwd_bytes / t / 1e3,
                same ? "bit-equal" : "DIFFERS", resident((const void*)kernel, RING_CX * RY));
  };
  for (int TL : {16, 32, 64}) {
    try_fwd("ring V=2 G=8 RY=4", ring_fwd<K, 2, 8, 4>, 2, 4, TL);
    try_fwd("ring V=4 G=8 RY=4", ring_fwd<K, 4, 8, 4>, 4, 4, TL);
    try_fwd("ring V=8 G=4 RY=4", ring_fwd<K, 8, 4, 4>, 8, 4, TL);
    try_fwd("ring V=8 G=8 RY=2", ring_fwd<K, 8, 8, 2>, 8, 2, TL);
    try_fwd("ring V=4 G=4 RY=8", ring_fwd<K, 4, 4, 8>, 4, 8, TL);
  }

  // backward
  const int btl = prod_run(2, resident((const void*)prod_bwd<K>, CONV_CW * CONV_RY));
  auto prod_b = [&] {
    const dim3 grid((D + CONV_CW * 2 - 1) / (CONV_CW * 2), (L + btl * CONV_RY - 1) / (btl * CONV_RY), B);
    prod_bwd<K>
        <<<grid, dim3(CONV_CW, CONV_RY)>>>(m.x, XS, m.w, m.bias, m.dOut, m.dx, DXS, m.dw, m.dbias, L, D, btl, true);
  };
  const float tb = time_median(m, prod_b);
  CK(cudaMemset(m.dw, 0, D * K * 4));
  CK(cudaMemset(m.dbias, 0, D * 4));
  prod_b();
  CK(cudaDeviceSynchronize());
  const auto ref_dx = down(m.dx, T * DXS);
  const auto ref_dw = down(m.dw, D * K), ref_db = down(m.dbias, D);
  std::printf("bwd production TL=%d: %.2f us (%.0f GB/s)\n", btl, tb, bwd_bytes / tb / 1e3);
  auto try_bwd = [&](const char* name, auto kernel, int V, int RY, int TL) {
    auto launch = [&] {
      const dim3 grid((D / V + RING_CX - 1) / RING_CX, (L + TL * RY - 1) / (TL * RY), B);
      kernel<<<grid, dim3(RING_CX, RY)>>>(m.x, XS, m.w, m.bias, m.dOut, m.dx, DXS, m.dw, m.dbias, L, D, TL, true);
    };
    CK(cudaMemset(m.dx, 0, T * DXS * 2));
    CK(cudaMemset(m.dw, 0, D * K * 4));
    CK(cudaMemset(m.dbias, 0, D * 4));
    launch();
    CK(cudaDeviceSynchronize());
    const auto o = down(m.dx, T * DXS);
    const auto ow = down(m.dw, D * K), ob = down(m.dbias, D);
    bool same = true;
    for (int64_t r = 0; r < T && same; r++) same = std::memcmp(&o[r * DXS], &ref_dx[r * DXS], D * 2) == 0;
    double num = 0, den = 0;
    for (int i = 0; i < D * K; i++) num += std::pow(ow[i] - ref_dw[i], 2), den += std::pow(ref_dw[i], 2);
    for (int i = 0; i < D; i++) num += std::pow(ob[i] - ref_db[i], 2), den += std::pow(ref_db[i], 2);
    const float t = time_median(m, launch);
    std::printf("bwd %s TL=%d: %.2f us (%.0f GB/s) dx %s, dw/dbias rel err %.1e, %d blocks/SM\n", name, TL, t,
                bwd_bytes / t / 1e3, same ? "bit-equal" : "DIFFERS", std::sqrt(num / den),
                resident((const void*)kernel, RING_CX * RY));
  };
  for (int TL : {16, 32, 64, 128}) {
    try_bwd("ring V=2 G=8 RY=4", ring_bwd<K, 2, 8, 4>, 2, 4, TL);
    try_bwd("ring V=2 G=4 RY=8", ring_bwd<K, 2, 4, 8>, 2, 8, TL);
    try_bwd("ring V=4 G=4 RY=4", ring_bwd<K, 4, 4, 4>, 4, 4, TL);
    try_bwd("ring V=4 G=8 RY=2", ring_bwd<K, 4, 8, 2>, 4, 2, TL);
    try_bwd("ring V=8 G=4 RY=2", ring_bwd<K, 8, 4, 2>, 8, 2, TL);
  }
  return 0;
}
