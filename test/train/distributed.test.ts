// CPU parts of multi-GPU training: per-rank window sharding and batch slices, torchrun/Slurm rendezvous
// parsing, and the context-parallel scan and conv halo with ranks simulated in one process, checked
// against the project's CPU kernels on the whole sequence (f64).
import { describe, expect, it } from 'vitest';
import { Tensor, columns, conv1dForward, selectiveScanForward } from '../../src/backend/index.js';
import {
  batchSlice,
  combineRanks,
  contextParallelScan,
  convHalos,
  parseRendezvousEnv,
  pieceBounds,
  shardWindowStarts,
  splitBatch,
  type ScanInputs,
} from '../../src/train/index.js';
import { randn, randu, relErr } from '../helpers.js';

describe('data sharding', () => {
  const draw = (rank: number, ws: number, step = 3, micro = 1) => shardWindowStarts(7, rank, ws, step, micro, 32, 1e6);

  it('is deterministic from (seed, rank, step, micro)', () => {
    expect(draw(2, 4)).toEqual(draw(2, 4));
    expect(draw(2, 4).every((s) => Number.isInteger(s) && s >= 0 && s <= 1e6)).toBe(true);
  });

  it('gives each rank, step, micro-batch and seed a distinct stream', () => {
    const streams = [
      ...[0, 1, 2, 3].map((r) => draw(r, 4)),
      draw(0, 4, 4),
      draw(0, 4, 3, 0),
      shardWindowStarts(8, 0, 4, 3, 1, 32, 1e6),
    ].map((s) => s.join(','));
    expect(new Set(streams).size).toBe(streams.length);
    // windows rarely collide across ranks (32 x 4 draws out of 1e6 + 1 starts)
    const all = [0, 1, 2, 3].flatMap((r) => draw(r, 4));
    expect(new Set(all).size).toBeGreaterThan(all.length - 3);
  });

  it('rejects a rank outside the world', () => {
    expect(() => draw(4, 4)).toThrow(/rank 4 is out of range 0..3/);
    expect(() => shardWindowStarts(1, 0, 1, -1, 0, 1, 10)).toThrow(/step/);
  });

  it('splits a global batch into equal slices whose union is the batch', () => {
    const batch = Array.from({ length: 12 }, (_, i) => `seq${i}`);
    for (const N of [1, 2, 3, 4, 6, 12]) {
      const parts = Array.from({ length: N }, (_, r) => splitBatch(batch, r, N));
      expect(parts.every((p) => p.length === 12 / N)).toBe(true);
      expect(parts.flat()).toEqual(batch);
    }
    expect(batchSlice(12, 2, 4)).toEqual({ start: 6, count: 3 });
    expect(() => batchSlice(10, 0, 4)).toThrow('global batch B=10 is not divisible by the number of ranks N=4');
  });
});

describe('rendezvous environment', () => {
  it('defaults to a single process', () => {
    expect(parseRendezvousEnv({})).toEqual({
      rank: 0,
      worldSize: 1,
      localRank: 0,
      masterAddr: '127.0.0.1',
      masterPort: 29500,
      source: 'single',
    });
  });

  it('reads torchrun variables', () => {
    const env = { WORLD_SIZE: '8', RANK: '5', LOCAL_RANK: '1', MASTER_ADDR: 'node0', MASTER_PORT: '12355' };
    expect(parseRendezvousEnv(env)).toEqual({
      rank: 5,
      worldSize: 8,
      localRank: 1,
      masterAddr: 'node0',
      masterPort: 12355,
      source: 'torchrun',
    });
  });

  it('reads Slurm variables, torchrun winning when both are set', () => {
    const env = { SLURM_NTASKS: '4', SLURM_PROCID: '3', SLURM_LOCALID: '0', MASTER_ADDR: 'n1' };
    expect(parseRendezvousEnv(env)).toMatchObject({ rank: 3, worldSize: 4, localRank: 0, masterAddr: 'n1' });
    expect(parseRendezvousEnv(env).source).toBe('slurm');
    expect(parseRendezvousEnv({ ...env, WORLD_SIZE: '2', RANK: '1' })).toMatchObject({ rank: 1, worldSize: 2 });
  });

  it('names the variable and value of bad input', () => {
    const bad = (env: Record<string, string>) => () => parseRendezvousEnv(env);
    expect(bad({ WORLD_SIZE: '4', RANK: '4' })).toThrow('RANK=4 is out of range 0..3 (WORLD_SIZE=4)');
    expect(bad({ WORLD_SIZE: '4', RANK: '1.5' })).toThrow('RANK="1.5" is not a non-negative integer');
    expect(bad({ WORLD_SIZE: 'two', RANK: '0' })).toThrow('WORLD_SIZE="two" is not a non-negative integer');
    expect(bad({ WORLD_SIZE: '0', RANK: '0' })).toThrow('WORLD_SIZE=0 is out of range');
    expect(bad({ WORLD_SIZE: '2', RANK: '0', LOCAL_RANK: '-1' })).toThrow('LOCAL_RANK="-1"');
    expect(bad({ WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '70000' })).toThrow(
      'MASTER_PORT=70000 is out of range 1..65535',
    );
    expect(bad({ MASTER_PORT: '0' })).toThrow('MASTER_PORT=0 is out of range 1..65535');
    expect(bad({ WORLD_SIZE: '2' })).toThrow('RANK is not set (WORLD_SIZE=2)');
    expect(bad({ SLURM_NTASKS: '2', SLURM_PROCID: '2' })).toThrow(
      'SLURM_PROCID=2 is out of range 0..1 (SLURM_NTASKS=2)',
    );
  });
});

function scanData(B: number, L: number, D: number, N: number, seed: number, gated: boolean): ScanInputs {
  const T = B * L;
  return {
    B,
    L,
    D,
    N,
    u: randn(T * D, seed + 1),
    delta: randn(T * D, seed + 2, 0.7).map((v) => v - 1), // dt ~ 0.3 after softplus
    deltaBias: randn(D, seed + 3, 0.3),
    A: randn(D * N, seed + 4, 0.5).map((v) => -Math.exp(v)),
    Bm: randn(T * N, seed + 5),
    Cm: randn(T * N, seed + 6),
    Dskip: randn(D, seed + 7),
    z: gated ? randn(T * D, seed + 8) : null,
    deltaSoftplus: true,
  };
}

/** The CPU kernel on the whole sequences, f64; B and C as columns of one tensor, as the mixer passes them. */
function kernelScan(x: ScanInputs): { y: Float64Array; last: Float64Array } {
  const T = x.B * x.L;
  const bc = new Float64Array(T * 2 * x.N);
  for (let r = 0; r < T; r++)
    for (let n = 0; n < x.N; n++) {
      bc[r * 2 * x.N + n] = x.Bm[r * x.N + n]!;
      bc[r * 2 * x.N + x.N + n] = x.Cm[r * x.N + n]!;
    }
  const bct = Tensor.from(bc, [T, 2 * x.N]);
  const t = (a: Float64Array, shape: number[]) => Tensor.from(Float64Array.from(a), shape);
  const y = Tensor.zeros([T, x.D], 'f64'),
    last = Tensor.zeros([x.B, x.D, x.N], 'f64');
  selectiveScanForward(
    {
      u: t(x.u, [T, x.D]),
      delta: t(x.delta, [T, x.D]),
      deltaBias: x.deltaBias && t(x.deltaBias, [x.D]),
      A: t(x.A, [x.D, x.N]),
      Bm: columns(bct, 0, x.N),
      Cm: columns(bct, x.N, x.N),
      Dskip: x.Dskip && t(x.Dskip, [x.D]),
      z: x.z && t(x.z, [T, x.D]),
      B: x.B,
      L: x.L,
      deltaSoftplus: x.deltaSoftplus,
    },
    y,
    last,
  );
  return { y: y.toFloat64(), last: last.toFloat64() };
}

describe('context-parallel scan (simulated ranks)', () => {
  it('cuts L into contiguous pieces, the first L % N one longer', () => {
    expect(pieceBounds(10, 3)).toEqual([0, 4, 7, 10]);
    expect(pieceBounds(10, 4)).toEqual([0, 3, 6, 8, 10]);
    expect(() => pieceBounds(3, 4)).toThrow('L=3 is shorter than the number of ranks N=4');
  });

  for (const gated of [false, true])
    it(`equals the CPU kernel on the whole sequence for N = 1..4${gated ? ' with the z gate' : ''}`, () => {
      const x = scanData(2, 37, 3, 4, gated ? 100 : 200, gated); // 37: no N > 1 divides it
      const ref = kernelScan(x);
      for (const N of [1, 2, 3, 4]) {
        const cp = contextParallelScan(x, N);
        expect(relErr(cp.y, ref.y)).toBeLessThan(1e-9);
        expect(relErr(cp.lastState, ref.last)).toBeLessThan(1e-9);
      }
      // lopsided pieces, including a one-token piece
      const odd = contextParallelScan(x, 4, [0, 1, 20, 21, 37]);
      expect(relErr(odd.y, ref.y)).toBeLessThan(1e-9);
    });

  it('the combine is needed: zero entering states give different outputs', () => {
    const x = scanData(1, 24, 2, 3, 300, false);
    const ref = kernelScan(x);
    // rank 1 alone, from a zero state, versus the kernel's rows 12..23
    const alone = contextParallelScan({ ...x, L: 12, ...slice(x, 12, 24) }, 1).y;
    expect(relErr(alone, ref.y.subarray(12 * 2))).toBeGreaterThan(1e-3);
    // while the combined run matches those rows
    expect(relErr(contextParallelScan(x, 2).y.subarray(12 * 2), ref.y.subarray(12 * 2))).toBeLessThan(1e-9);
  });

  it('combineRanks composes (decay, end) pairs in order', () => {
    const p = [
      { decay: Float64Array.of(0.5), end: Float64Array.of(1) },
      { decay: Float64Array.of(0.25), end: Float64Array.of(2) },
      { decay: Float64Array.of(0.1), end: Float64Array.of(3) },
    ];
    const { entering, final } = combineRanks(p);
    expect(entering.map((e) => e[0])).toEqual([0, 1, 0.25 + 2]);
    expect(final[0]).toBeCloseTo(0.1 * 2.25 + 3, 14);
  });

  it('rejects bad piece boundaries', () => {
    const x = scanData(1, 8, 1, 1, 400, false);
    expect(() => contextParallelScan(x, 2, [0, 0, 8])).toThrow(/must rise strictly/);
    expect(() => contextParallelScan(x, 2, [0, 4, 7])).toThrow(/L=8/);
  });
});

/** The per-sequence fields of rows [t0, t1) of a B = 1 input. */
function slice(x: ScanInputs, t0: number, t1: number): Partial<ScanInputs> {
  const { D, N } = x;
  return {
    u: x.u.slice(t0 * D, t1 * D),
    delta: x.delta.slice(t0 * D, t1 * D),
    Bm: x.Bm.slice(t0 * N, t1 * N),
    Cm: x.Cm.slice(t0 * N, t1 * N),
    z: x.z && x.z.slice(t0 * D, t1 * D),
  };
}

describe('conv1d halo', () => {
  const C = 3;
  const conv = (x: Float64Array, w: Tensor, bias: Tensor) => {
    const L = x.length / C;
    const out = Tensor.zeros([L, C], 'f64');
    conv1dForward(Tensor.from(Float64Array.from(x), [L, C]), w, bias, out, 1, L, true);
    return out.toFloat64();
  };

  for (const [K, bounds] of [
    [4, [0, 9, 17, 23]],
    [4, [0, 1, 2, 12, 23]], // pieces shorter than d_conv - 1: the halo reaches back over several ranks
    [1, [0, 11, 23]], // d_conv 1: no halo
  ] as const)
    it(`each rank's halo + piece reproduces the whole causal conv (d_conv ${K}, bounds ${bounds.join(',')})`, () => {
      const L = 23;
      const x = randn(L * C, 500 + K);
      const w = Tensor.from(randn(C * K, 501), [C, K]),
        bias = Tensor.from(randu(C, 502, -0.5, 0.5), [C]);
      const whole = conv(x, w, bias);
      const pieces = bounds.slice(1).map((t1, r) => x.slice(bounds[r]! * C, t1 * C));
      const halos = convHalos(pieces, C, K);
      expect(halos[0]!.every((v) => v === 0)).toBe(true);
      const H = K - 1;
      pieces.forEach((p, r) => {
        expect(halos[r]!.length).toBe(H * C);
        const withHalo = new Float64Array(halos[r]!.length + p.length);
        withHalo.set(halos[r]!);
        withHalo.set(p, halos[r]!.length);
        // the halo rows' own outputs are dropped: only the piece's rows are this rank's
        const mine = conv(withHalo, w, bias).subarray(H * C);
        const want = whole.subarray(bounds[r]! * C, bounds[r + 1]! * C);
        expect(relErr(mine, want)).toBeLessThan(1e-12);
      });
    });
});
