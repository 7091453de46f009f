// Seeded mutators for the fuzzing harness: bit flips, truncation, splicing, byte runs, insertions and
// deletions, and "header integers" set to the values that break size arithmetic (0, -1, 2^31, 2^32-1,
// 2^53), written either as little-endian binary fields or as decimal numbers in text formats.

/** mulberry32: a small seeded generator; int(n) in [0, n). */
export function makeRng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

/** The integers that break size arithmetic, as the issue lists them (plus 1 and 2^16-1 for 16-bit fields). */
export const SPECIAL_INTS = [0, -1, 2 ** 31, 2 ** 32 - 1, 2 ** 53, 1, 0xffff];
const SPECIAL_TEXT = ['0', '-1', '2147483648', '4294967295', '9007199254740992', '1e308', '1.5', 'NaN', ''];

function writeInt(b, off, width, v) {
  if (off < 0 || off + width > b.length) return;
  if (width === 8) b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), off);
  else if (width === 4) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt16LE(v & 0xffff, off);
}

/** Mutations; each takes (bytes, rng, ctx) and returns new bytes. ctx: { intFields, others, text }. */
export const MUTATORS = {
  bitflip(b, r) {
    const o = Buffer.from(b);
    if (o.length === 0) return o;
    const n = 1 + r.int(8);
    for (let i = 0; i < n; i++) {
      const p = r.int(o.length * 8);
      o[p >> 3] ^= 1 << (p & 7);
    }
    return o;
  },
  truncate(b, r) {
    return Buffer.from(b.subarray(0, r.int(b.length + 1)));
  },
  splice(b, r, ctx) {
    // a slice of another seed file (or of this one) pasted over a random range
    const src = ctx.others.length ? r.pick(ctx.others) : b;
    if (src.length === 0 || b.length === 0) return Buffer.from(b);
    const s = r.int(src.length),
      n = 1 + r.int(Math.min(4096, src.length - s));
    const at = r.int(b.length);
    return Buffer.concat([
      b.subarray(0, at),
      src.subarray(s, s + n),
      b.subarray(Math.min(b.length, at + r.int(2 * n + 1))),
    ]);
  },
  headerInt(b, r, ctx) {
    const o = Buffer.from(b);
    if (ctx.text) {
      // a decimal number in the text replaced by a special value
      const s = o.toString('latin1');
      const nums = [...s.matchAll(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi)];
      if (nums.length === 0) return o;
      const m = r.pick(nums);
      return Buffer.from(s.slice(0, m.index) + r.pick(SPECIAL_TEXT) + s.slice(m.index + m[0].length), 'latin1');
    }
    const f =
      ctx.intFields?.length && r.next() < 0.8
        ? r.pick(ctx.intFields)
        : { offset: r.int(Math.max(1, o.length - 8)), width: r.pick([2, 4, 8]) };
    writeInt(o, f.offset, f.width, r.pick(SPECIAL_INTS));
    return o;
  },
  byteRun(b, r) {
    const o = Buffer.from(b);
    if (o.length === 0) return o;
    const at = r.int(o.length),
      n = 1 + r.int(64);
    o.fill(r.pick([0x00, 0xff, 0x0a, 0x3e, 0x0d, 0x20]), at, Math.min(o.length, at + n));
    return o;
  },
  insertDelete(b, r) {
    const at = r.int(b.length + 1);
    if (r.next() < 0.5) {
      const ins = Buffer.alloc(1 + r.int(32));
      for (let i = 0; i < ins.length; i++)
        ins[i] = r.next() < 0.5 ? r.int(256) : r.pick([0x0a, 0x3e, 0x41, 0x43, 0x00, 0x0d]);
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(64)))]);
  },
};

export const MUTATOR_NAMES = Object.keys(MUTATORS);

/** 1 to 3 mutations in a row; returns the bytes and the names applied. */
export function mutate(bytes, r, ctx) {
  const n = 1 + (r.next() < 0.7 ? 0 : r.int(3));
  let out = bytes;
  const names = [];
  for (let i = 0; i < n; i++) {
    const m = r.pick(MUTATOR_NAMES);
    out = MUTATORS[m](out, r, ctx);
    names.push(m);
  }
  return { bytes: out, names };
}
