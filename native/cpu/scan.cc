// Selective scan (Mamba S6) on the CPU over [T, D] activations, T = B * L sequence-major rows.
//   dt = softplus(delta + deltaBias) (or delta + deltaBias); h_t = exp(dt A) h_{t-1} + dt B_t u_t;
//   y_t = (C_t . h_t + Dskip u_t) * silu(z_t).
// Work items are (sequence, block of 64 channels); inside one, the state lives as [N][block] so every
// inner loop runs over contiguous channels with the 8-lane exp of simd.h (double: std::exp), and the
// rows 8 steps ahead are prefetched.
// Backward never stores all states: a first pass keeps h only at chunk starts (chunk = pow2 >= sqrt(L)
// in [64, 1024], so L/chunk x N x 64 floats per thread); then chunks are
// walked in reverse, each chunk's states and decays exp(dt A) recomputed into [chunk][N][block]
// buffers, and the adjoint
//   dh_t = C_t dy_t + exp(dt_{t+1} A) dh_{t+1}
// gives dA += dh a h_{t-1} dt, ddt += dh (A a h_{t-1} + B u), du = dh dt B + Dskip dy,
// dB_t = sum_d dh dt u, dC_t = sum_d dy h_t (a = exp(dt A)). It can also write y, rebuilt from those states, so
// that a recomputing caller need not run the forward scan again.
#include <cmath>
#include "common.h"
#include "simd.h"
#include "../src/scan_args.h"
#include "../src/registry.h"

namespace mamba {
namespace {

template <class T>
struct Scan {
  const T *u, *delta, *dbias, *A, *Bm, *Cm, *Dskip, *z;
  int64_t bcs, zs, B, L, D, N;
  bool sp;
};

// A work item's channels [d0, d0 + Dn) are kept in buffers padded to Dp (a multiple of the pack width)
// with zeros, so the inner loops run on whole packs: padded lanes have A = 0, u = 0, dy = 0, which
// keeps their state and gradients at exactly 0.
template <class T>
struct Block {
  using P = typename PackOf<T>::P;
  static constexpr int W = PackOf<T>::W;
  const Scan<T>& s;
  int64_t d0, Dn, Dp;
  std::vector<T> AT, Ds, db;  // A as [N][Dp], Dskip, deltaBias (padded)
  Block(const Scan<T>& s_, int64_t d0_, int64_t Dn_) : s(s_), d0(d0_), Dn(Dn_), Dp((Dn_ + W - 1) / W * W) {
    AT.assign((size_t)(s.N * Dp), T(0));
    Ds.assign((size_t)Dp, T(0));
    db.assign((size_t)Dp, T(0));
    for (int64_t n = 0; n < s.N; n++)
      for (int64_t d = 0; d < Dn; d++) AT[n * Dp + d] = s.A[(d0 + d) * s.N + n];
    for (int64_t d = 0; d < Dn; d++) {
      Ds[d] = s.Dskip ? s.Dskip[d0 + d] : T(0);
      db[d] = s.dbias ? s.dbias[d0 + d] : T(0);
    }
  }
  static P L(const T* p) { return PackIO<P>::ld(p); }
  static P B(T x) { return PackIO<P>::bc(x); }
  // copies Dn values of a row into a padded buffer
  void row(const T* src, T* dst) const {
    copy_n(src, Dn, dst);
    for (int64_t d = Dn; d < Dp; d++) dst[d] = T(0);
  }
  // brings a later row's inputs towards L1: rows are 4*D bytes apart, too far apart for the
  // hardware prefetcher to follow a block's short pieces of them
  // volatile asm: GCC deleted loops of __builtin_prefetch as side-effect free
  static void pf(const T* p) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char*)p));
#else
    __builtin_prefetch(p);
#endif
  }
  void prefetch(int64_t r, const T* dy = nullptr) const {
    for (int64_t d = 0; d < Dn; d += 64 / (int64_t)sizeof(T)) {
      if (dy) pf(dy + r * s.D + d0 + d);
      pf(s.delta + r * s.D + d0 + d);
      pf(s.u + r * s.D + d0 + d);
      if (s.z) pf(s.z + r * s.zs + d0 + d);
    }
    pf(s.Bm + r * s.bcs);
    pf(s.Cm + r * s.bcs);
  }
  // dt (after bias and softplus) and u of one row
  void dt_u(int64_t r, T* dtv, T* ub) const {
    row(s.delta + r * s.D + d0, dtv);
    row(s.u + r * s.D + d0, ub);
    for (int64_t d = 0; d < Dp; d += W) {
      P x = L(dtv + d) + L(db.data() + d);
      if (s.sp) x = vsoftplus(x);
      st(dtv + d, x);
    }
  }
  // h_out = exp(dt A) h_in + dt u B_r (h_in may equal h_out); with aout, also keeps a = exp(dt A)
  // for the adjoint pass
  void step(int64_t r, const T* dtv, const T* ub, const T* hin, T* hout, T* aout = nullptr) const {
    const T* Br = s.Bm + r * s.bcs;
    for (int64_t d = 0; d < Dp; d += W) {
      const P dt = L(dtv + d), dtu = dt * L(ub + d);
      for (int64_t n = 0; n < s.N; n++) {
        const int64_t i = n * Dp + d;
        P a = vexp(dt * L(AT.data() + i));
        if (aout) st(aout + i, a);
        st(hout + i, fmadd(a, L(hin + i), dtu * B(Br[n])));
      }
    }
  }
};

constexpr int64_t BLOCK = 64;  // channels per work item: [N][64] floats of state stay in L1

template <class T>
void scan_forward(const Scan<T>& s, T* y, T* last) {
  using Bk = Block<T>;
  using P = typename Bk::P;
  constexpr int W = Bk::W;
  const int64_t nblk = (s.D + BLOCK - 1) / BLOCK;
  parallel_for(
      s.B * nblk,
      [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / nblk, d0 = (item % nblk) * BLOCK;
      Bk k(s, d0, std::min(BLOCK, s.D - d0));
      const int64_t Dp = k.Dp;
      std::vector<T> h((size_t)(s.N * Dp), T(0)), dtv(Dp), ub(Dp), acc(Dp), zb(Dp);
      for (int64_t t = 0; t < s.L; t++) {
        const int64_t r = b * s.L + t;
        if (t + 8 < s.L) k.prefetch(r + 8);
        k.dt_u(r, dtv.data(), ub.data());
        const T* Br = s.Bm + r * s.bcs;
        const T* Cr = s.Cm + r * s.bcs;
        // channels outer, states inner: the output accumulates in a register and every state's
        // decay exp is independent, so the exp chains overlap
        for (int64_t d = 0; d < Dp; d += W) {
          const P dt = Bk::L(dtv.data() + d), uv = Bk::L(ub.data() + d), dtu = dt * uv;
          P a = Bk::L(k.Ds.data() + d) * uv;
          const T* an = k.AT.data() + d;
          T* hn = h.data() + d;
          for (int64_t n = 0; n < s.N; n++) {
            P hv = fmadd(vexp(dt * Bk::L(an + n * Dp)), Bk::L(hn + n * Dp), dtu * Bk::B(Br[n]));
            st(hn + n * Dp, hv);
            a = fmadd(hv, Bk::B(Cr[n]), a);
          }
          st(acc.data() + d, a);
        }
        if (s.z) {
          k.row(s.z + r * s.zs + d0, zb.data());
          for (int64_t d = 0; d < Dp; d += W) {
            P zv = Bk::L(zb.data() + d);
            st(acc.data() + d, Bk::L(acc.data() + d) * zv * vsigmoid(zv));
          }
        }
        copy_n(acc.data(), k.Dn, y + r * s.D + d0);
      }
      if (last)
        for (int64_t d = 0; d < k.Dn; d++)
          for (int64_t n = 0; n < s.N; n++) last[(b * s.D + d0 + d) * s.N + n] = h[n * Dp + d];
    }
      },
      1);
}

inline int64_t chunk_for(int64_t L) {
  int64_t c = 64;
  while (c < 1024 && c * c < L) c *= 2;
  return c;
}

template <class T>
void scan_backward(const Scan<T>& s, const T* dy, T* du, T* ddelta, T* dA, T* dB, T* dC, T* dDskip, T* dDeltaBias,
                   T* dz, T* y) {
  using Bk = Block<T>;
  using P = typename Bk::P;
  constexpr int W = Bk::W;
  const int64_t N = s.N, D = s.D, L = s.L;
  const int64_t nblk = (D + BLOCK - 1) / BLOCK;
  const int64_t Tn = s.B * L;
  const int64_t C = chunk_for(L), nch = (L + C - 1) / C;
  const int64_t nitems = s.B * nblk;
  // dB/dC are sums over channels. With one block per sequence every row has one writer. Otherwise the
  // items are split into per-thread parts: part 0 adds into dB/dC (zeroed first), part p > 0 into its
  // own [T][2N] scratch, summed after; memory (threads - 1) x T x 2N, independent of D.
  const bool direct = nblk == 1;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads(), nitems));
  std::vector<T> part;
  if (!direct) {
    part.assign((size_t)((parts - 1) * Tn * 2 * N), T(0));
    parallel_for(
        Tn,
        [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++)
        for (int64_t n = 0; n < N; n++) {
          dB[r * s.bcs + n] = T(0);
          dC[r * s.bcs + n] = T(0);
        }
        },
        1024);
  }
  const int64_t BP = (BLOCK + W - 1) / W * W;
  // per item: dA [N][BP], dDskip [BP], dDeltaBias [BP]
  std::vector<T> pacc((size_t)(nitems * (N + 2) * BP), T(0));

  const int64_t used = parallel_parts(nitems, 1, [&](int64_t pi, int64_t i0, int64_t i1) {
    const int64_t S = N * BP;
    std::vector<T> ckpt((size_t)(nch * S)), hbuf((size_t)(C * S)), abuf((size_t)(C * S)), dtbuf((size_t)(C * BP)),
        ubuf((size_t)(C * BP));
    std::vector<T> dh((size_t)S), g(BP), zb(BP), yp(BP), dU(BP), dT(BP), tu(BP), raw(BP), tmp(BP);
    T* mine = !direct && pi > 0 ? part.data() + (pi - 1) * Tn * 2 * N : nullptr;
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / nblk, bi = item % nblk, d0 = bi * BLOCK;
      Bk k(s, d0, std::min(BLOCK, D - d0));
      const int64_t Dp = k.Dp, Dn = k.Dn;
      T* dAacc = pacc.data() + item * (N + 2) * BP;
      T* dDacc = dAacc + N * BP;
      T* dbacc = dDacc + BP;
      std::fill(ckpt.begin(), ckpt.begin() + S, T(0));
      std::fill(dh.begin(), dh.end(), T(0));
      // pass 1: states at chunk starts (hbuf[0] is the running state)
      T* h = hbuf.data();
      std::fill(h, h + S, T(0));
      for (int64_t c = 0; c + 1 < nch; c++) {
        for (int64_t t = c * C; t < (c + 1) * C; t++) {
          if (t + 8 < L) k.prefetch(b * L + t + 8);
          k.dt_u(b * L + t, dtbuf.data(), ubuf.data());
          k.step(b * L + t, dtbuf.data(), ubuf.data(), h, h);
        }
        copy_n(h, S, ckpt.data() + (c + 1) * S);
      }
      // pass 2: chunks in reverse, states recomputed into hbuf
      for (int64_t c = nch - 1; c >= 0; c--) {
        const int64_t t0 = c * C, t1 = std::min(L, t0 + C);
        for (int64_t t = t0; t < t1; t++) {
          if (t + 8 < t1) k.prefetch(b * L + t + 8);
          T* dtv = dtbuf.data() + (t - t0) * Dp;
          T* ub = ubuf.data() + (t - t0) * Dp;
          k.dt_u(b * L + t, dtv, ub);
          const T* hin = t == t0 ? ckpt.data() + c * S : hbuf.data() + (t - t0 - 1) * S;
          k.step(b * L + t, dtv, ub, hin, hbuf.data() + (t - t0) * S, abuf.data() + (t - t0) * S);
        }
        for (int64_t t = t1 - 1; t >= t0; t--) {
          const int64_t r = b * L + t;
          if (t - 8 >= t0) k.prefetch(r - 8, dy);
          const T* dtv = dtbuf.data() + (t - t0) * Dp;
          const T* ub = ubuf.data() + (t - t0) * Dp;
          const T* ht = hbuf.data() + (t - t0) * S;
          const T* at = abuf.data() + (t - t0) * S;
          const T* hp = t == t0 ? ckpt.data() + c * S : hbuf.data() + (t - t0 - 1) * S;
          const T* Br = s.Bm + r * s.bcs;
          const T* Cr = s.Cm + r * s.bcs;
          // dy and z of row r are read here and never again: y and dz may overwrite them
          k.row(dy + r * D + d0, g.data());
          if (s.z || y) {
            // the gate and the rebuilt output need y before gating: C . h + Dskip u, as the forward sums it
            for (int64_t d = 0; d < Dp; d += W) st(yp.data() + d, Bk::L(k.Ds.data() + d) * Bk::L(ub + d));
            for (int64_t n = 0; n < N; n++) {
              const P cn = Bk::B(Cr[n]);
              for (int64_t d = 0; d < Dp; d += W)
                st(yp.data() + d, fmadd(cn, Bk::L(ht + n * Dp + d), Bk::L(yp.data() + d)));
            }
          }
          if (s.z) {
            k.row(s.z + r * s.zs + d0, zb.data());
            const P one = Bk::B(T(1));
            for (int64_t d = 0; d < Dp; d += W) {
              P zv = Bk::L(zb.data() + d), sg = vsigmoid(zv), gv = Bk::L(g.data() + d), yv = Bk::L(yp.data() + d);
              st(tmp.data() + d, gv * yv * sg * fmadd(zv, one - sg, one));
              st(g.data() + d, gv * zv * sg);
              st(yp.data() + d, yv * zv * sg);  // the gated output, in the forward's order of operations
            }
            copy_n(tmp.data(), Dn, dz + r * s.zs + d0);
          }
          if (y) copy_n(yp.data(), Dn, y + r * D + d0);
          for (int64_t d = 0; d < Dp; d += W) {
            P gv = Bk::L(g.data() + d), uv = Bk::L(ub + d);
            st(dDacc + d, fmadd(gv, uv, Bk::L(dDacc + d)));
            st(dU.data() + d, Bk::L(k.Ds.data() + d) * gv);
            st(dT.data() + d, Bk::B(T(0)));
            st(tu.data() + d, Bk::L(dtv + d) * uv);
          }
          T* dBrow = mine ? mine + r * 2 * N : dB + r * s.bcs;
          T* dCrow = mine ? dBrow + N : dC + r * s.bcs;
          for (int64_t n = 0; n < N; n++) {
            const P bn = Bk::B(Br[n]), cn = Bk::B(Cr[n]);
            const T* an = k.AT.data() + n * Dp;
            const T* htn = ht + n * Dp;
            const T* hpn = hp + n * Dp;
            const T* atn = at + n * Dp;
            T* dhn = dh.data() + n * Dp;
            T* dan = dAacc + n * BP;
            P sc = Bk::B(T(0)), sb = Bk::B(T(0));
            for (int64_t d = 0; d < Dp; d += W) {
              P gv = Bk::L(g.data() + d), dt = Bk::L(dtv + d), a = Bk::L(atn + d);
              P dhv = fmadd(cn, gv, Bk::L(dhn + d));
              P x = dhv * a * Bk::L(hpn + d);  // dh_t a h_{t-1}: shared by dA and ddt
              P w = dhv * bn;
              sc = fmadd(gv, Bk::L(htn + d), sc);
              sb = fmadd(dhv, Bk::L(tu.data() + d), sb);
              st(dan + d, fmadd(x, dt, Bk::L(dan + d)));
              st(dT.data() + d, fmadd(w, Bk::L(ub + d), fmadd(x, Bk::L(an + d), Bk::L(dT.data() + d))));
              st(dU.data() + d, fmadd(w, dt, Bk::L(dU.data() + d)));
              st(dhn + d, a * dhv);
            }
            if (direct) {
              dCrow[n] = hsum(sc);
              dBrow[n] = hsum(sb);
            } else {
              dCrow[n] += hsum(sc);
              dBrow[n] += hsum(sb);
            }
          }
          copy_n(dU.data(), Dn, du + r * D + d0);
          if (s.sp) {
            k.row(s.delta + r * D + d0, raw.data());
            for (int64_t d = 0; d < Dp; d += W)
              st(dT.data() + d, Bk::L(dT.data() + d) * vsigmoid(Bk::L(raw.data() + d) + Bk::L(k.db.data() + d)));
          }
          for (int64_t d = 0; d < Dp; d += W) st(dbacc + d, Bk::L(dbacc + d) + Bk::L(dT.data() + d));
          copy_n(dT.data(), Dn, ddelta + r * D + d0);
        }
      }
    }
  });
  if (!direct && used > 1) {
    parallel_for(
        Tn,
        [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        T* db = dB + r * s.bcs;
        T* dc = dC + r * s.bcs;
        for (int64_t p = 0; p + 1 < used; p++) {
          const T* q = part.data() + (p * Tn + r) * 2 * N;
          for (int64_t n = 0; n < N; n++) {
            db[n] += q[n];
            dc[n] += q[N + n];
          }
        }
      }
        },
        256);
  }
  for (int64_t item = 0; item < nitems; item++) {
    const int64_t d0 = (item % nblk) * BLOCK, Dn = std::min(BLOCK, D - d0);
    const T* dAacc = pacc.data() + item * (N + 2) * BP;
    for (int64_t d = 0; d < Dn; d++)
      for (int64_t n = 0; n < N; n++) dA[(d0 + d) * N + n] += dAacc[n * BP + d];
    if (dDskip)
      for (int64_t d = 0; d < Dn; d++) dDskip[d0 + d] += dAacc[N * BP + d];
    if (dDeltaBias)
      for (int64_t d = 0; d < Dn; d++) dDeltaBias[d0 + d] += dAacc[N * BP + BP + d];
  }
}

// The fields every scan op shares (native/src/scan_args.h checks them, for the CUDA twins too).
template <class T>
Scan<T> scan_of(const ScanInputs<T, T>& in) {
  Scan<T> s;
  s.u = in.u;
  s.delta = in.delta;
  s.dbias = in.deltaBias;
  s.A = in.A;
  s.Bm = in.Bm;
  s.Cm = in.Cm;
  s.Dskip = in.Dskip;
  s.z = in.z;
  s.bcs = in.bcStride;
  s.zs = in.zStride;
  s.B = in.B;
  s.L = in.L;
  s.D = in.D;
  s.N = in.N;
  s.sp = in.softplus;
  return s;
}

template <class T>
void forward_op(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "selectiveScanForward");
  const ArrayFetch f;
  const Scan<T> s = scan_of(read_scan_inputs<T, T>(a, f));
  T* y = f.get<T>(a, "y", s.B * s.L * s.D);
  T* last = f.opt<T>(a, "lastState", s.B * s.D * s.N);
  check_cpu_dtype<T>(a);
  a.finish();
  scan_forward(s, y, last);
}

template <class T>
void backward_op(const Napi::CallbackInfo& info) {
  const ArgObject a(info, 0, "selectiveScanBackward");
  const ArrayFetch f;
  const ScanInputs<T, T> in = read_scan_inputs<T, T>(a, f);
  const ScanGradients<T, T> g = read_scan_gradients<T, T>(a, f, in);
  check_cpu_dtype<T>(a);
  a.finish();
  if (in.B * in.L == 0 || in.D == 0) return;
  scan_backward(scan_of(in), g.dy, g.du, g.ddelta, g.dA, g.dB, g.dC, g.dDskip, g.dDeltaBias, g.dz, g.y);
}

}  // namespace
}  // namespace mamba

// cpu.selectiveScanForward / selectiveScanBackward({ ...fields }): one argument object each, fields in
// native/KERNELS.md; Float64Array fields run the double kernels.
MAMBA_OP(cpu, selectiveScanForward){MAMBA_DISPATCH_FIELD("u", forward_op)} MAMBA_OP(cpu, selectiveScanBackward) {
  MAMBA_DISPATCH_FIELD("u", backward_op)
}
