// Data-parallel bookkeeping that needs no GPU: which windows each rank draws, which slice of a global
// batch it owns, and where its rank and rendezvous point come from (torchrun or Slurm environment).
import { Rng } from '../../util/rng.js';

function needIndex(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new Error(`${name} must be an integer in 0..2^32-1, got ${value}`);
}

function needRank(rank: number, worldSize: number): void {
  if (!Number.isInteger(worldSize) || worldSize < 1)
    throw new Error(`worldSize must be an integer >= 1, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new Error(`rank ${rank} is out of range 0..${worldSize - 1} (worldSize ${worldSize})`);
}

// A bijection on 32-bit words (murmur3's finaliser): distinct inputs stay distinct, nearby ones spread out.
function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * The generator for one rank's draws at one (step, micro-batch). Stateless in the step, so a resumed run
 * (or any rank) can rebuild it without replaying earlier steps. Each coordinate fills its own state word
 * through a bijection, so distinct (seed, rank, step, micro) tuples always give distinct generator states.
 */
export function shardRng(seed: number, rank: number, worldSize: number, step: number, micro: number): Rng {
  needIndex(seed, 'seed');
  needRank(rank, worldSize);
  needIndex(step, 'step');
  needIndex(micro, 'micro');
  const words = [mix32(seed), mix32(rank ^ 0x243f6a88), mix32(step ^ 0x85a308d3), mix32(micro ^ 0x13198a2e)];
  if (!words.some((w) => w !== 0)) words[0] = 1; // xoshiro's one forbidden state
  const rng = new Rng(words);
  // structured states (small counters) give correlated first outputs; a short warm-up decorrelates them
  for (let i = 0; i < 16; i++) rng.nextU32();
  return rng;
}

/** count window start offsets in [0, maxStart] for this rank's micro-batch at this step. */
export function shardWindowStarts(
  seed: number,
  rank: number,
  worldSize: number,
  step: number,
  micro: number,
  count: number,
  maxStart: number,
): number[] {
  if (!Number.isInteger(count) || count < 0) throw new Error(`count must be an integer >= 0: ${count}`);
  if (!Number.isInteger(maxStart) || maxStart < 0) throw new Error(`maxStart must be an integer >= 0: ${maxStart}`);
  const rng = shardRng(seed, rank, worldSize, step, micro);
  return Array.from({ length: count }, () => rng.int(maxStart + 1));
}

/** The contiguous [start, start + count) slice of a global batch of B sequences that rank owns. */
export function batchSlice(B: number, rank: number, worldSize: number): { start: number; count: number } {
  needRank(rank, worldSize);
  // equal slices keep every rank's loss on the same number of sequences, so the mean of means is the mean
  if (!Number.isInteger(B) || B < 1 || B % worldSize !== 0)
    throw new Error(`global batch B=${B} is not divisible by the number of ranks N=${worldSize}`);
  const count = B / worldSize;
  return { start: rank * count, count };
}

/** rank's part of a global batch (see batchSlice). */
export function splitBatch<T>(batch: readonly T[], rank: number, worldSize: number): T[] {
  const { start, count } = batchSlice(batch.length, rank, worldSize);
  return batch.slice(start, start + count);
}

export interface Rendezvous {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** where the values came from */
  source: 'torchrun' | 'slurm' | 'single';
}

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_MASTER_ADDR = '127.0.0.1';
export const DEFAULT_MASTER_PORT = 29500; // torchrun's default

function envInt(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\s*\d+\s*$/.test(raw)) throw new Error(`${name}=${JSON.stringify(raw)} is not a non-negative integer`);
  return Number(raw);
}

function inRange(env: Env, name: string, v: number, lo: number, hi: number, why = ''): void {
  if (v < lo || v > hi) throw new Error(`${name}=${env[name]} is out of range ${lo}..${hi}${why}`);
}

/**
 * Rank, world size and rendezvous point from torchrun's variables (WORLD_SIZE, RANK, LOCAL_RANK,
 * MASTER_ADDR, MASTER_PORT) or else Slurm's (SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID); a lone process
 * when neither is set. torchrun wins when both are present, since torchrun under Slurm sets its own.
 */
export function parseRendezvousEnv(env: Env): Rendezvous {
  const torchrun = env.WORLD_SIZE !== undefined || env.RANK !== undefined;
  const slurm = !torchrun && (env.SLURM_NTASKS !== undefined || env.SLURM_PROCID !== undefined);
  const [wsName, rankName, localName] = slurm
    ? ['SLURM_NTASKS', 'SLURM_PROCID', 'SLURM_LOCALID']
    : ['WORLD_SIZE', 'RANK', 'LOCAL_RANK'];
  const worldSize = envInt(env, wsName) ?? 1;
  inRange(env, wsName, worldSize, 1, Number.MAX_SAFE_INTEGER);
  const rank = envInt(env, rankName);
  // a missing rank in a job of several would make every process rank 0: refuse instead of guessing
  if (rank === undefined && worldSize > 1) throw new Error(`${rankName} is not set (${wsName}=${worldSize})`);
  const r = rank ?? 0;
  inRange(env, rankName, r, 0, worldSize - 1, ` (${wsName}=${worldSize})`);
  const localRank = envInt(env, localName) ?? (worldSize === 1 ? 0 : r);
  inRange(env, localName, localRank, 0, worldSize - 1, ` (${wsName}=${worldSize})`);
  const masterPort = envInt(env, 'MASTER_PORT') ?? DEFAULT_MASTER_PORT;
  inRange(env, 'MASTER_PORT', masterPort, 1, 65535);
  const addr = env.MASTER_ADDR?.trim();
  return {
    rank: r,
    worldSize,
    localRank,
    masterAddr: addr ? addr : DEFAULT_MASTER_ADDR,
    masterPort,
    source: torchrun ? 'torchrun' : slurm ? 'slurm' : 'single',
  };
}
