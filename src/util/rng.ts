// A seeded, serialisable random generator (xoshiro128**), so training is reproducible and a resumed run
// continues the exact same random stream (the state goes into checkpoints).

export class Rng {
  #s: Uint32Array;

  constructor(seed: number | readonly number[] = 0) {
    this.#s = new Uint32Array(4);
    if (typeof seed === 'number') {
      // splitmix32 expands one seed into the four state words
      let x = seed >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        this.#s[i] = (z ^ (z >>> 16)) >>> 0;
      }
      if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
    } else {
      if (seed.length !== 4) throw new Error('Rng state must have 4 words');
      this.#s.set(seed);
    }
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new Error(`Rng.int: n must be >= 1, got ${n}`);
    if (n <= 4294967296) return Math.floor(this.next() * n);
    return Math.floor(((this.nextU32() * 4294967296 + this.nextU32()) / 2 ** 64) * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** An independent generator derived from this one (advances this one). */
  fork(): Rng {
    return new Rng([this.nextU32() | 1, this.nextU32(), this.nextU32(), this.nextU32()]);
  }

  /** The state, for checkpoints. */
  state(): number[] {
    return Array.from(this.#s);
  }

  static fromState(state: readonly number[]): Rng {
    return new Rng(state);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
