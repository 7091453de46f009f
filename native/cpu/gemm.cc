// Row-major GEMM: C[M,N] = alpha * op(A) @ op(B) + beta * C, op = identity or transpose.
// float with AVX2: BLIS-style blocking. For each KC x NC block of op(B), packed once into 16-wide
// column panels, threads take MC-row blocks of op(A), pack them into 6-row panels and run a 6 x 16
// register-blocked FMA micro-kernel (12 accumulators) over every (panel of A, panel of B) pair; the
// B micro-panel (KC x 16) stays in L1 while the A block streams from L2. Transposes only change the
// packing. double (gradient checks) and non-AVX2 builds use the simple row-axpy kernel below.
#include "gemm.h"
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>
#include "../src/args.h"
#include "common.h"
#include "../src/gemm_args.h"
#include "../src/registry.h"
#include "threadpool.h"
#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace mamba {

template <class T>
static void gemm_simple(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                        const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  // B as a K x N row-major panel (copy only if transposed)
  std::vector<T> bt;
  const T* Bn = B;
  int64_t ldbn = ldb;
  if (transB) {
    bt.resize((size_t)K * N);
    parallel_for(
        K,
        [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; k++)
        for (int64_t j = 0; j < N; j++) bt[k * N + j] = B[j * ldb + k];
        },
        16);
    Bn = bt.data();
    ldbn = N;
  }
  constexpr int64_t KB = 256;
  parallel_for(
      M,
      [&](int64_t i0, int64_t i1) {
    std::vector<T> acc((size_t)N);
    for (int64_t i = i0; i < i1; i++) {
      std::fill(acc.begin(), acc.end(), T(0));
      T* a = acc.data();
      for (int64_t k0 = 0; k0 < K; k0 += KB) {
        int64_t k1 = std::min(K, k0 + KB);
        for (int64_t k = k0; k < k1; k++) {
          T aik = transA ? A[k * lda + i] : A[i * lda + k];
          if (aik == T(0)) continue;
          const T* b = Bn + k * ldbn;
          for (int64_t j = 0; j < N; j++) a[j] += aik * b[j];
        }
      }
      T* c = C + i * ldc;
      if (beta == T(0))
        for (int64_t j = 0; j < N; j++) c[j] = alpha * a[j];
      else
        for (int64_t j = 0; j < N; j++) c[j] = alpha * a[j] + beta * c[j];
    }
      },
      std::max<int64_t>(1, 65536 / std::max<int64_t>(1, N * K)));
}

#ifdef __AVX2__
namespace {

constexpr int64_t MR = 6, NR = 16, KC = 256, MC = 96, NC = 2048;

// op(B)[k0:k0+kc, j0:j0+nc] -> panels of NR columns, each kc x NR row-major, zero-padded at the edge.
void pack_b(bool transB, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  const int64_t np = (nc + NR - 1) / NR;
  parallel_for(
      np,
      [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      float* o = out + p * kc * NR;
      const int64_t jb = j0 + p * NR, w = std::min(NR, j0 + nc - jb);
      for (int64_t k = 0; k < kc; k++) {
        float* r = o + k * NR;
        if (!transB) {
          const float* src = B + (k0 + k) * ldb + jb;
          for (int64_t j = 0; j < w; j++) r[j] = src[j];
        } else {
          for (int64_t j = 0; j < w; j++) r[j] = B[(jb + j) * ldb + k0 + k];
        }
        for (int64_t j = w; j < NR; j++) r[j] = 0.f;
      }
    }
      },
      4);
}

// op(A)[i0:i0+mc, k0:k0+kc] -> panels of MR rows, each kc x MR (k-major), zero-padded.
void pack_a(bool transA, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  const int64_t np = (mc + MR - 1) / MR;
  for (int64_t p = 0; p < np; p++) {
    float* o = out + p * kc * MR;
    const int64_t ib = i0 + p * MR, h = std::min(MR, i0 + mc - ib);
    if (transA) {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = A + (k0 + k) * lda + ib;
        float* r = o + k * MR;
        for (int64_t i = 0; i < h; i++) r[i] = src[i];
        for (int64_t i = h; i < MR; i++) r[i] = 0.f;
      }
    } else if (h == MR) {
      // six row streams in, one contiguous stream out
      const float* r0 = A + ib * lda + k0;
      for (int64_t k = 0; k < kc; k++) {
        float* d = o + k * MR;
        for (int64_t i = 0; i < MR; i++) d[i] = r0[i * lda + k];
      }
    } else {
      for (int64_t i = 0; i < h; i++) {
        const float* src = A + (ib + i) * lda + k0;
        for (int64_t k = 0; k < kc; k++) o[k * MR + i] = src[k];
      }
      for (int64_t i = h; i < MR; i++)
        for (int64_t k = 0; k < kc; k++) o[k * MR + i] = 0.f;
    }
  }
}

// C[mr, nr] = alpha * acc + beta * C for a partial 6x16 tile of accumulators (edges of the matrix).
inline void store_tile(__m256 (&acc)[MR][2], float* c, int64_t ldc, float alpha, float beta, int64_t mr, int64_t nr) {
  alignas(32) float tmp[MR][NR];
  for (int64_t i = 0; i < MR; i++) {
    _mm256_store_ps(tmp[i], acc[i][0]);
    _mm256_store_ps(tmp[i] + 8, acc[i][1]);
  }
  for (int64_t i = 0; i < mr; i++)
    for (int64_t j = 0; j < nr; j++) {
      float* cij = c + i * ldc + j;
      *cij = beta != 0.f ? alpha * tmp[i][j] + beta * *cij : alpha * tmp[i][j];
    }
}

// C[0:mr, 0:nr] = alpha * (a panel . b panel) + beta * C   (beta == 0: C is not read)
inline void micro_6x16(int64_t kc, const float* __restrict a, const float* __restrict b, float* c, int64_t ldc,
                       float alpha, float beta, int64_t mr, int64_t nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_loadu_ps(b + k * NR), b1 = _mm256_loadu_ps(b + k * NR + 8);
    const float* ak = a + k * MR;
    __m256 x = _mm256_broadcast_ss(ak + 0);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(ak + 1);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(ak + 2);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(ak + 3);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(ak + 4);
    c40 = _mm256_fmadd_ps(x, b0, c40);
    c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(ak + 5);
    c50 = _mm256_fmadd_ps(x, b0, c50);
    c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
    for (int64_t i = 0; i < MR; i++) {
      float* ci = c + i * ldc;
      __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
      if (beta != 0.f) {
        r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
        r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
      }
      _mm256_storeu_ps(ci, r0);
      _mm256_storeu_ps(ci + 8, r1);
    }
    return;
  }
  store_tile(acc, c, ldc, alpha, beta, mr, nr);
}

// Weight gradients C (+)= A^T B with A [K, M], B [K, N] (row k of each is contiguous): no packing,
// the 6 x 16 kernel reads 6 values of row k of A and 16 of row k of B straight from memory. Tiles at
// the edges mask their B loads and repeat the last valid row of A (results for it are not stored).
inline void micro_tn(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                     float alpha, float beta, int64_t mr, int64_t nr) {
  __m256 acc[MR][2];
  for (int64_t i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)std::min<int64_t>(nr, 8)), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)std::max<int64_t>(0, nr - 8)), lane);
  int64_t ri[MR];
  for (int64_t i = 0; i < MR; i++) ri[i] = std::min(i, mr - 1);
  if (nr == NR && mr == MR) {
    for (int64_t k = 0; k < kc; k++) {
      const float* bk = b + k * ldb;
      const float* ak = a + k * lda;
      const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8);
      for (int64_t i = 0; i < MR; i++) {
        const __m256 x = _mm256_broadcast_ss(ak + i);
        acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
      }
    }
  } else {
    for (int64_t k = 0; k < kc; k++) {
      const float* bk = b + k * ldb;
      const float* ak = a + k * lda;
      const __m256 b0 = _mm256_maskload_ps(bk, m0), b1 = _mm256_maskload_ps(bk + 8, m1);
      for (int64_t i = 0; i < MR; i++) {
        const __m256 x = _mm256_broadcast_ss(ak + ri[i]);
        acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
      }
    }
  }
  store_tile(acc, c, ldc, alpha, beta, mr, nr);
}

void gemm_tn(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
             float beta, float* C, int64_t ldc) {
  const int64_t ti = (M + MR - 1) / MR, tj = (N + NR - 1) / NR;
  // one parallel region; inside it K goes in chunks so the rows of A and B a chunk touches stay in
  // L2 while the thread's tiles sweep them (i fastest: one B column strip stays in L1)
  constexpr int64_t KCH = 512;
  parallel_for(
      ti * tj,
      [&](int64_t t0, int64_t t1) {
    for (int64_t k0 = 0; k0 < K; k0 += KCH) {
      const int64_t kc = std::min(KCH, K - k0);
      const float bet = k0 == 0 ? beta : 1.f;
      for (int64_t t = t0; t < t1; t++) {
        const int64_t jb = (t / ti) * NR, ib = (t % ti) * MR;
        micro_tn(kc, A + k0 * lda + ib, lda, B + k0 * ldb + jb, ldb, C + ib * ldc + jb, ldc, alpha, bet,
                 std::min(MR, M - ib), std::min(NR, N - jb));
      }
    }
      },
      std::max<int64_t>(1, 65536 / std::max<int64_t>(1, K * MR * NR / 16)));
}

// <a, b> over K floats with two 8-wide FMA accumulators (a fixed summation order: reproducible).
inline float dot_f32(const float* a, const float* b, int64_t K) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(s0, s1));
  float sum = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
  for (; k < K; k++) sum += a[k] * b[k];
  return sum;
}

// Narrow outputs (N <= 8): C[i, j] = alpha <op(A) row i, B' row j> + beta C[i, j] with B' = op(B)^T [N, K]
// made once (tiny), A rows read once with 8-wide FMAs along k. Packing A for a 16-wide panel would
// cost more than the product itself here.
void gemm_narrow(bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
  std::vector<float> bt((size_t)(N * K));
  for (int64_t j = 0; j < N; j++)
    for (int64_t k = 0; k < K; k++) bt[j * K + k] = transB ? B[j * ldb + k] : B[k * ldb + j];
  parallel_for(
      M,
      [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float* a = A + i * lda;
      for (int64_t j = 0; j < N; j++) {
        const float* bj = bt.data() + j * K;
        const float sum = dot_f32(a, bj, K);
        float* c = C + i * ldc + j;
        *c = beta != 0.f ? alpha * sum + beta * *c : alpha * sum;
      }
    }
      },
      std::max<int64_t>(1, 8192 / std::max<int64_t>(1, N * K)));
}

// Few rows against a transposed B (y = x W^T for one token per sequence: recurrent generation).
// Each output is a dot product of two contiguous rows, so nothing is packed; threads split N.
void gemm_rows_tb(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc) {
  parallel_for(
      N,
      [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j++) {
      const float* bj = B + j * ldb;
      for (int64_t i = 0; i < M; i++) {
        const float* a = A + i * lda;
        const float sum = dot_f32(a, bj, K);
        float* c = C + i * ldc + j;
        *c = beta != 0.f ? alpha * sum + beta * *c : alpha * sum;
      }
    }
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(1, M * K)));
}

void gemm_f32_avx2(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!transA && transB && M <= 4) return gemm_rows_tb(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // few rows of C: too few MC blocks to share, and packing A^T would cost more than it saves
  if (transA && !transB && M < 2 * MC) return gemm_tn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (!transA && N <= 8) return gemm_narrow(transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  std::vector<float> bp((size_t)(std::min(KC, K) * ((std::min(NC, N) + NR - 1) / NR) * NR));
  const int64_t mblocks = (M + MC - 1) / MC;
  for (int64_t j0 = 0; j0 < N; j0 += NC) {
    const int64_t nc = std::min(NC, N - j0);
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0);
      const float bet = k0 == 0 ? beta : 1.f;  // later K blocks accumulate
      pack_b(transB, B, ldb, k0, kc, j0, nc, bp.data());
      parallel_for(
          mblocks,
          [&](int64_t m0, int64_t m1) {
        std::vector<float> ap((size_t)(MC * kc));
        for (int64_t mb = m0; mb < m1; mb++) {
          const int64_t i0 = mb * MC, mc = std::min(MC, M - i0);
          pack_a(transA, A, lda, i0, mc, k0, kc, ap.data());
          for (int64_t jp = 0; jp < nc; jp += NR) {
            const float* bpan = bp.data() + (jp / NR) * kc * NR;
            const int64_t nr = std::min(NR, nc - jp);
            for (int64_t ip = 0; ip < mc; ip += MR)
              micro_6x16(kc, ap.data() + (ip / MR) * kc * MR, bpan, C + (i0 + ip) * ldc + j0 + jp, ldc, alpha, bet,
                         std::min(MR, mc - ip), nr);
          }
        }
          },
          1);
    }
  }
}

}  // namespace
#endif

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta C (beta 0 clears, even over NaN)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
#ifdef __AVX2__
  if constexpr (std::is_same<T, float>::value) {
    gemm_f32_avx2(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#endif
  gemm_simple(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace mamba

// cpu.gemm({ transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc }): Float32Array or Float64Array A, B, C
namespace mamba {
namespace {
template <class T>
void gemm_op(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "gemm");
  const GemmDims g = read_gemm_dims(a);
  const T* A = a.array<T>("A", g.na);
  const T* B = a.array<T>("B", g.nb);
  T* C = a.array<T>("C", g.nc);
  a.finish();
  gemm<T>(g.ta, g.tb, g.M, g.N, g.K, (T)g.alpha, A, g.lda, B, g.ldb, (T)g.beta, C, g.ldc);
}
}  // namespace
}  // namespace mamba

MAMBA_OP(cpu, gemm) { MAMBA_DISPATCH_FIELD("A", gemm_op) }
