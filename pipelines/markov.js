// The order-k Markov model the model-free references share (markov-baseline, copy-baseline, substitutions):
// counts of (the k bases before, the base) with add-1/2 smoothing, over base codes 0..3; any other code (N)
// breaks the context.
export class MarkovModel {
  constructor(k) {
    this.k = k;
    this.size = 4 ** k;
    this.counts = new Float64Array(this.size * 4);
  }

  /** Calls fn(i, ctx, b) at every position i of `codes` whose base b and k bases before it are all 0..3. */
  walk(codes, fn) {
    const { k, size } = this;
    let ctx = 0,
      len = 0;
    for (let i = 0; i < codes.length; i++) {
      const b = codes[i];
      if (b > 3) {
        len = 0;
        continue;
      }
      if (len >= k) fn(i, ctx, b);
      ctx = k ? (ctx * 4 + b) % size : 0;
      len++;
    }
  }

  /** Adds the (context, base) counts of `codes`; returns this. */
  train(codes) {
    this.walk(codes, (_, c, b) => this.counts[c * 4 + b]++);
    return this;
  }

  /** log2 P(b | ctx), smoothed. */
  bits(ctx, b) {
    const c = this.counts,
      r = ctx * 4;
    return Math.log2((c[r + b] + 0.5) / (c[r] + c[r + 1] + c[r + 2] + c[r + 3] + 2));
  }
}
