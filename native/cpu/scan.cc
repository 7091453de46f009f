// Selective scan (Mamba S6) on the CPU over [T, D] activations, T = B * L sequence-major rows.
//   dt = softplus(delta + deltaBias) (or delta + deltaBias); h_t = exp(dt A) h_{t-1} + dt B_t u_t;
//   y_t = (C_t . h_t + Dskip u_t) * silu(z_t).
// Work items are (sequence, block of channels); inside one, the state lives as [N][block] so every
// inner loop runs over contiguous channels with the vectorisable exp of vmath.h.
// Backward never stores all states: a first pass keeps h only at chunk starts; then chunks are
// walked in reverse, each chunk's states recomputed into a [chunk][N][block] buffer, and the adjoint
//   dh_t = C_t dy_t + exp(dt_{t+1} A) dh_{t+1}
// gives dA += dh a h_{t-1} dt, ddt += dh (A a h_{t-1} + B u), du = dh dt B + Dskip dy,
// dB_t = sum_d dh dt u, dC_t = sum_d dy h_t (a = exp(dt A)).
#include <cmath>
#include "common.h"
#include "vmath.h"
#include "../src/registry.h"

namespace mamba {
namespace {

template <class T>
struct Scan {
  const T *u, *delta, *dbias, *A, *Bm, *Cm, *Dskip, *z;
  int64_t bcs, zs, B, L, D, N;
  bool sp;
};

// Per-block copy of A transposed to [N][Dn].
template <class T>
void a_block(const Scan<T>& s, int64_t d0, int64_t Dn, T* AT) {
  for (int64_t n = 0; n < s.N; n++)
    for (int64_t d = 0; d < Dn; d++) AT[n * Dn + d] = s.A[(d0 + d) * s.N + n];
}

template <class T>
inline void dt_row(const Scan<T>& s, int64_t row, int64_t d0, int64_t Dn, T* __restrict dtv) {
  const T* dl = s.delta + row * s.D + d0;
  if (s.dbias)
    for (int64_t d = 0; d < Dn; d++) dtv[d] = dl[d] + s.dbias[d0 + d];
  else
    for (int64_t d = 0; d < Dn; d++) dtv[d] = dl[d];
  if (s.sp)
    for (int64_t d = 0; d < Dn; d++) dtv[d] = vsoftplus(dtv[d]);
}

// One recurrence step for a block: h = exp(dt A) h + dt u B_t.
template <class T>
inline void step_block(const Scan<T>& s, int64_t row, int64_t d0, int64_t Dn, const T* __restrict AT, const T* __restrict dtv,
                       const T* hin, T* hout) {  // hin may equal hout (in-place step)
  const T* ur = s.u + row * s.D + d0;
  const T* Br = s.Bm + row * s.bcs;
  for (int64_t n = 0; n < s.N; n++) {
    const T bn = Br[n];
    const T* an = AT + n * Dn;
    const T* hi = hin + n * Dn;
    T* ho = hout + n * Dn;
    for (int64_t d = 0; d < Dn; d++) ho[d] = vexp(dtv[d] * an[d]) * hi[d] + dtv[d] * ur[d] * bn;
  }
}

constexpr int64_t FWD_BLOCK = 64;

template <class T>
void scan_forward(const Scan<T>& s, T* y, T* last) {
  const int64_t nblk = (s.D + FWD_BLOCK - 1) / FWD_BLOCK;
  parallel_for(s.B * nblk, [&](int64_t i0, int64_t i1) {
    std::vector<T> AT((size_t)(s.N * FWD_BLOCK)), h((size_t)(s.N * FWD_BLOCK)), dtv(FWD_BLOCK), acc(FWD_BLOCK);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / nblk, d0 = (item % nblk) * FWD_BLOCK, Dn = std::min(FWD_BLOCK, s.D - d0);
      a_block(s, d0, Dn, AT.data());
      std::fill(h.begin(), h.end(), T(0));
      for (int64_t t = 0; t < s.L; t++) {
        const int64_t row = b * s.L + t;
        dt_row(s, row, d0, Dn, dtv.data());
        const T* ur = s.u + row * s.D + d0;
        const T* Br = s.Bm + row * s.bcs;
        const T* Cr = s.Cm + row * s.bcs;
        T* __restrict a = acc.data();
        T* __restrict hp = h.data();
        const T* __restrict dv = dtv.data();
        if (s.Dskip)
          for (int64_t d = 0; d < Dn; d++) a[d] = s.Dskip[d0 + d] * ur[d];
        else
          std::fill(a, a + Dn, T(0));
        for (int64_t n = 0; n < s.N; n++) {
          const T bn = Br[n], cn = Cr[n];
          const T* __restrict an = AT.data() + n * Dn;
          T* __restrict hn = hp + n * Dn;
          for (int64_t d = 0; d < Dn; d++) {
            T hv = vexp(dv[d] * an[d]) * hn[d] + dv[d] * ur[d] * bn;
            hn[d] = hv;
            a[d] += hv * cn;
          }
        }
        T* yr = y + row * s.D + d0;
        if (s.z) {
          const T* zr = s.z + row * s.zs + d0;
          for (int64_t d = 0; d < Dn; d++) yr[d] = a[d] * zr[d] * vsigmoid(zr[d]);
        } else {
          std::copy(a, a + Dn, yr);
        }
      }
      if (last)
        for (int64_t d = 0; d < Dn; d++)
          for (int64_t n = 0; n < s.N; n++) last[(b * s.D + d0 + d) * s.N + n] = h[n * Dn + d];
    }
  }, 1);
}

inline int64_t chunk_for(int64_t L) {
  int64_t c = 64;
  while (c < 1024 && c * c < L) c *= 2;
  return c;
}

template <class T>
void scan_backward(const Scan<T>& s, const T* dy, T* du, T* ddelta, T* dA, T* dB, T* dC, T* dDskip, T* dDeltaBias, T* dz) {
  const int64_t N = s.N, D = s.D, L = s.L;
  // channel blocks: enough (sequence, block) items for the threads, at most 128 channels each
  const int64_t want = std::max<int64_t>(1, (num_threads() + s.B - 1) / std::max<int64_t>(1, s.B));
  int64_t blk = std::min<int64_t>(128, (((D + want - 1) / want) + 7) / 8 * 8);
  blk = std::max<int64_t>(1, std::min(blk, D));
  const int64_t nblk = (D + blk - 1) / blk;
  const int64_t Tn = s.B * L;
  const int64_t C = chunk_for(L), nch = (L + C - 1) / C;
  // dB/dC are sums over channels: with several blocks each writes its own partial rows, reduced after
  std::vector<T> part;
  if (nblk > 1) part.assign((size_t)(nblk * Tn * 2 * N), T(0));
  const int64_t nitems = s.B * nblk;
  // per item: dA [N][blk], dDskip [blk], dDeltaBias [blk]
  std::vector<T> pacc((size_t)(nitems * (N + 2) * blk), T(0));

  parallel_for(nitems, [&](int64_t i0, int64_t i1) {
    std::vector<T> AT((size_t)(N * blk)), ckpt((size_t)(nch * N * blk)), hbuf((size_t)(C * N * blk)), dtbuf((size_t)(C * blk));
    std::vector<T> dh((size_t)(N * blk)), dyp(blk), ddt(blk), duv(blk), dtu(blk);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / nblk, bi = item % nblk, d0 = bi * blk, Dn = std::min(blk, D - d0);
      T* dAacc = pacc.data() + item * (N + 2) * blk;
      T* dDacc = dAacc + N * blk;
      T* dbacc = dDacc + blk;
      a_block(s, d0, Dn, AT.data());
      // pass 1: states at chunk starts
      std::fill(ckpt.begin(), ckpt.begin() + N * Dn, T(0));
      std::vector<T>& h = hbuf;  // scratch for the running state
      std::copy(ckpt.begin(), ckpt.begin() + N * Dn, h.begin());
      for (int64_t c = 0; c + 1 < nch; c++) {
        for (int64_t t = c * C; t < (c + 1) * C; t++) {
          dt_row(s, b * L + t, d0, Dn, dtbuf.data());
          step_block(s, b * L + t, d0, Dn, AT.data(), dtbuf.data(), h.data(), h.data());
        }
        std::copy(h.begin(), h.begin() + N * Dn, ckpt.begin() + (c + 1) * N * Dn);
      }
      // pass 2: chunks in reverse
      std::fill(dh.begin(), dh.end(), T(0));
      for (int64_t c = nch - 1; c >= 0; c--) {
        const int64_t t0 = c * C, t1 = std::min(L, t0 + C);
        for (int64_t t = t0; t < t1; t++) {
          T* dtv = dtbuf.data() + (t - t0) * Dn;
          dt_row(s, b * L + t, d0, Dn, dtv);
          const T* hin = t == t0 ? ckpt.data() + c * N * Dn : hbuf.data() + (t - t0 - 1) * N * Dn;
          step_block(s, b * L + t, d0, Dn, AT.data(), dtv, hin, hbuf.data() + (t - t0) * N * Dn);
        }
        for (int64_t t = t1 - 1; t >= t0; t--) {
          const int64_t row = b * L + t;
          const T* __restrict dtv = dtbuf.data() + (t - t0) * Dn;
          const T* __restrict ht = hbuf.data() + (t - t0) * N * Dn;
          const T* __restrict hp = t == t0 ? ckpt.data() + c * N * Dn : hbuf.data() + (t - t0 - 1) * N * Dn;
          const T* ur = s.u + row * D + d0;
          const T* Br = s.Bm + row * s.bcs;
          const T* Cr = s.Cm + row * s.bcs;
          const T* dyr = dy + row * D + d0;
          T* __restrict g = dyp.data();
          if (s.z) {
            // the gate needs y before gating: C . h + Dskip u
            const T* zr = s.z + row * s.zs + d0;
            T* dzr = dz + row * s.zs + d0;
            T* yp = duv.data();
            if (s.Dskip) for (int64_t d = 0; d < Dn; d++) yp[d] = s.Dskip[d0 + d] * ur[d];
            else std::fill(yp, yp + Dn, T(0));
            for (int64_t n = 0; n < N; n++) {
              const T cn = Cr[n];
              const T* hn = ht + n * Dn;
              for (int64_t d = 0; d < Dn; d++) yp[d] += cn * hn[d];
            }
            for (int64_t d = 0; d < Dn; d++) {
              T zv = zr[d], sg = vsigmoid(zv);
              dzr[d] = dyr[d] * yp[d] * sg * (T(1) + zv * (T(1) - sg));
              g[d] = dyr[d] * zv * sg;
            }
          } else {
            std::copy(dyr, dyr + Dn, g);
          }
          T* __restrict dU = duv.data();
          T* __restrict dT = ddt.data();
          T* __restrict tu = dtu.data();
          for (int64_t d = 0; d < Dn; d++) {
            dDacc[d] += g[d] * ur[d];
            dU[d] = s.Dskip ? s.Dskip[d0 + d] * g[d] : T(0);
            dT[d] = T(0);
            tu[d] = dtv[d] * ur[d];
          }
          T* dBrow = nblk > 1 ? part.data() + (bi * Tn + row) * 2 * N : dB + row * s.bcs;
          T* dCrow = nblk > 1 ? dBrow + N : dC + row * s.bcs;
          for (int64_t n = 0; n < N; n++) {
            const T bn = Br[n], cn = Cr[n];
            const T* __restrict an = AT.data() + n * Dn;
            const T* __restrict htn = ht + n * Dn;
            const T* __restrict hpn = hp + n * Dn;
            T* __restrict dhn = dh.data() + n * Dn;
            T* __restrict dan = dAacc + n * Dn;
            T sc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t d = 0;
            for (; d + 8 <= Dn; d += 8) {
              for (int j = 0; j < 8; j++) {
                const int64_t e = d + j;
                T dhv = dhn[e] + cn * g[e];
                T a = vexp(dtv[e] * an[e]);
                T ahp = a * hpn[e];
                sc[j] += g[e] * htn[e];
                sb[j] += dhv * tu[e];
                dan[e] += dhv * ahp * dtv[e];
                dT[e] += dhv * (an[e] * ahp + bn * ur[e]);
                dU[e] += dhv * dtv[e] * bn;
                dhn[e] = a * dhv;
              }
            }
            T rc = ((sc[0] + sc[1]) + (sc[2] + sc[3])) + ((sc[4] + sc[5]) + (sc[6] + sc[7]));
            T rb = ((sb[0] + sb[1]) + (sb[2] + sb[3])) + ((sb[4] + sb[5]) + (sb[6] + sb[7]));
            for (; d < Dn; d++) {
              T dhv = dhn[d] + cn * g[d];
              T a = vexp(dtv[d] * an[d]);
              T ahp = a * hpn[d];
              rc += g[d] * htn[d];
              rb += dhv * tu[d];
              dan[d] += dhv * ahp * dtv[d];
              dT[d] += dhv * (an[d] * ahp + bn * ur[d]);
              dU[d] += dhv * dtv[d] * bn;
              dhn[d] = a * dhv;
            }
            dCrow[n] = rc;
            dBrow[n] = rb;
          }
          T* dur = du + row * D + d0;
          T* ddr = ddelta + row * D + d0;
          const T* dl = s.delta + row * D + d0;
          for (int64_t d = 0; d < Dn; d++) {
            dur[d] = dU[d];
            T v = dT[d];
            if (s.sp) v *= vsigmoid(dl[d] + (s.dbias ? s.dbias[d0 + d] : T(0)));
            ddr[d] = v;
            dbacc[d] += v;
          }
        }
      }
    }
  }, 1);

  if (nblk > 1) {
    parallel_for(Tn, [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; row++) {
        T* db = dB + row * s.bcs;
        T* dc = dC + row * s.bcs;
        for (int64_t n = 0; n < N; n++) { db[n] = T(0); dc[n] = T(0); }
        for (int64_t bi = 0; bi < nblk; bi++) {
          const T* p = part.data() + (bi * Tn + row) * 2 * N;
          for (int64_t n = 0; n < N; n++) { db[n] += p[n]; dc[n] += p[N + n]; }
        }
      }
    }, 256);
  }
  for (int64_t item = 0; item < nitems; item++) {
    const int64_t d0 = (item % nblk) * blk, Dn = std::min(blk, D - d0);
    const T* dAacc = pacc.data() + item * (N + 2) * blk;
    for (int64_t d = 0; d < Dn; d++)
      for (int64_t n = 0; n < N; n++) dA[(d0 + d) * N + n] += dAacc[n * Dn + d];
    if (dDskip) for (int64_t d = 0; d < Dn; d++) dDskip[d0 + d] += dAacc[N * blk + d];
    if (dDeltaBias) for (int64_t d = 0; d < Dn; d++) dDeltaBias[d0 + d] += dAacc[N * blk + blk + d];
  }
}

// Reads the shared leading arguments u, delta, deltaBias, A, Bm, Cm, bcStride, Dskip, z, zStride.
template <class T>
Scan<T> read_scan(const Napi::CallbackInfo& info, const char* op, int64_t rows, int64_t B, int64_t L, int64_t D, int64_t N, bool sp, size_t base) {
  Scan<T> s;
  std::string o(op);
  s.B = B; s.L = L; s.D = D; s.N = N; s.sp = sp;
  s.bcs = arg_int(info, base + 6, (o + " bcStride").c_str());
  s.zs = arg_int(info, base + 9, (o + " zStride").c_str());
  check_stride(info, (o + " Bm/Cm").c_str(), s.bcs, N);
  s.u = arg_array<T>(info, base + 0, (o + " u").c_str(), rows * D);
  s.delta = arg_array<T>(info, base + 1, (o + " delta").c_str(), rows * D);
  s.dbias = arg_opt<T>(info, base + 2, (o + " deltaBias").c_str(), D);
  s.A = arg_array<T>(info, base + 3, (o + " A").c_str(), D * N);
  s.Bm = arg_array<T>(info, base + 4, (o + " Bm").c_str(), strided_len(rows, N, s.bcs));
  s.Cm = arg_array<T>(info, base + 5, (o + " Cm").c_str(), strided_len(rows, N, s.bcs));
  s.Dskip = arg_opt<T>(info, base + 7, (o + " Dskip").c_str(), D);
  if (arg_present(info, base + 8)) check_stride(info, (o + " z").c_str(), s.zs, D);
  s.z = arg_opt<T>(info, base + 8, (o + " z").c_str(), strided_len(rows, D, s.zs));
  return s;
}

template <class T>
void forward_op(const Napi::CallbackInfo& info) {
  const char* op = "selectiveScanForward";
  int64_t B = arg_int(info, 12, "selectiveScanForward B"), L = arg_int(info, 13, "selectiveScanForward L");
  int64_t D = arg_int(info, 14, "selectiveScanForward D"), N = arg_int(info, 15, "selectiveScanForward N");
  bool sp = arg_bool(info, 16, "selectiveScanForward deltaSoftplus");
  check_dims(info, op, {B, L, D, N});
  Scan<T> s = read_scan<T>(info, op, B * L, B, L, D, N, sp, 0);
  T* y = arg_array<T>(info, 10, "selectiveScanForward y", B * L * D);
  T* last = arg_opt<T>(info, 11, "selectiveScanForward lastState", B * D * N);
  scan_forward(s, y, last);
}

template <class T>
void backward_op(const Napi::CallbackInfo& info) {
  const char* op = "selectiveScanBackward";
  int64_t B = arg_int(info, 19, "selectiveScanBackward B"), L = arg_int(info, 20, "selectiveScanBackward L");
  int64_t D = arg_int(info, 21, "selectiveScanBackward D"), N = arg_int(info, 22, "selectiveScanBackward N");
  bool sp = arg_bool(info, 23, "selectiveScanBackward deltaSoftplus");
  check_dims(info, op, {B, L, D, N});
  const int64_t rows = B * L;
  Scan<T> s = read_scan<T>(info, op, rows, B, L, D, N, sp, 0);
  const T* dy = arg_array<T>(info, 10, "selectiveScanBackward dy", rows * D);
  T* du = arg_array<T>(info, 11, "selectiveScanBackward du", rows * D);
  T* ddelta = arg_array<T>(info, 12, "selectiveScanBackward ddelta", rows * D);
  T* dA = arg_array<T>(info, 13, "selectiveScanBackward dA", D * N);
  T* dB = arg_array<T>(info, 14, "selectiveScanBackward dB", strided_len(rows, N, s.bcs));
  T* dC = arg_array<T>(info, 15, "selectiveScanBackward dC", strided_len(rows, N, s.bcs));
  T* dD = arg_opt<T>(info, 16, "selectiveScanBackward dDskip", D);
  T* dDB = arg_opt<T>(info, 17, "selectiveScanBackward dDeltaBias", D);
  T* dz = arg_opt<T>(info, 18, "selectiveScanBackward dz", strided_len(rows, D, s.zs));
  if (!!dz != !!s.z) throw_range(info.Env(), "selectiveScanBackward: dz must be given exactly when z is");
  if (rows == 0 || D == 0 || N == 0) return;
  scan_backward(s, dy, du, ddelta, dA, dB, dC, dD, dDB, dz);
}

template <class T>
void step_op(const Napi::CallbackInfo& info) {
  const char* op = "selectiveScanStep";
  int64_t B = arg_int(info, 12, "selectiveScanStep B"), D = arg_int(info, 13, "selectiveScanStep D"), N = arg_int(info, 14, "selectiveScanStep N");
  bool sp = arg_bool(info, 15, "selectiveScanStep deltaSoftplus");
  check_dims(info, op, {B, D, N});
  T* state = arg_array<T>(info, 0, "selectiveScanStep state", B * D * N);
  Scan<T> s = read_scan<T>(info, op, B, B, 1, D, N, sp, 1);
  T* y = arg_array<T>(info, 11, "selectiveScanStep y", B * D);
  parallel_for(B * D, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const int64_t b = i / D, d = i % D;
      T dt = s.delta[i] + (s.dbias ? s.dbias[d] : T(0));
      if (sp) dt = vsoftplus(dt);
      const T uv = s.u[i];
      const T* Br = s.Bm + b * s.bcs;
      const T* Cr = s.Cm + b * s.bcs;
      T* h = state + i * N;
      T acc = s.Dskip ? s.Dskip[d] * uv : T(0);
      for (int64_t n = 0; n < N; n++) {
        h[n] = vexp(dt * s.A[d * N + n]) * h[n] + dt * uv * Br[n];
        acc += h[n] * Cr[n];
      }
      if (s.z) {
        const T zv = s.z[b * s.zs + d];
        acc *= zv * vsigmoid(zv);
      }
      y[i] = acc;
    }
  }, 256);
}

}  // namespace
}  // namespace mamba

#define MAMBA_DISPATCH(i, fn)                                  \
  if (::mamba::arg_is_f64(info, i)) ::mamba::fn<double>(info); \
  else ::mamba::fn<float>(info);                               \
  return info.Env().Undefined();

MAMBA_OP(cpu, selectiveScanForward) { MAMBA_DISPATCH(0, forward_op) }
MAMBA_OP(cpu, selectiveScanBackward) { MAMBA_DISPATCH(0, backward_op) }
MAMBA_OP(cpu, selectiveScanStep) { MAMBA_DISPATCH(0, step_op) }
