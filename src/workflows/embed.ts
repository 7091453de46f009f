// Embeddings of records, intervals or recordings from a trained backbone (model.embed: the final normed
// hidden states). An item longer than the window is cut into consecutive windows of at most `window`
// tokens (each a forward pass of its own, no state carried between them); windows of equal length from
// several items share a forward pass.
//   mean: the mean over all positions of the item (each window's mean weighted by its length)
//   last: the hidden state at the last position of the last window
//   none: every position's vector, [length, D]
// strand 'both' (DNA) also embeds the reverse complement and averages: for mean and last the two vectors,
// so embed(x) == embed(RC(x)); for none position p takes the mean of its forward vector and the reverse
// strand's vector of the same base, so embed(RC(x))[p] == embed(x)[length - 1 - p].
import type { MambaModel } from '../model/model.js';

export type Pool = 'mean' | 'last' | 'none';

export interface EmbedItem {
  name: string;
  length: number;
  /** tokens [start, end) */
  read(start: number, end: number): Uint8Array;
}

export interface EmbedOptions {
  pool: Pool;
  strand: 'forward' | 'both';
  window: number;
  batchTokens: number;
  reverseComplement?: (tokens: Uint8Array) => Uint8Array;
  onPass?: (tokens: number) => void;
}

interface Job {
  item: number;
  rc: boolean;
  /** first position of the window in its strand's coordinates */
  start: number;
  tokens: Uint8Array;
}

/**
 * Embeds items in order, yielding one Float32Array per item: [D] pooled, or [length * D] with 'none'.
 * Items are taken in groups of about 4 * batchTokens tokens, so memory stays bounded by the group.
 */
export function* embedItems(model: MambaModel, items: Iterable<EmbedItem>, o: EmbedOptions): Generator<Float32Array> {
  if (o.strand === 'both' && !o.reverseComplement) throw new RangeError('strand both needs a reverse complement');
  let group: EmbedItem[] = [];
  let tokens = 0;
  for (const it of items) {
    if (it.length < 1) throw new RangeError(`${it.name}: nothing to embed (length 0)`);
    group.push(it);
    tokens += it.length;
    if (tokens >= 4 * o.batchTokens || group.length >= 4096) {
      yield* embedGroup(model, group, o);
      group = [];
      tokens = 0;
    }
  }
  if (group.length) yield* embedGroup(model, group, o);
}

function embedGroup(model: MambaModel, items: EmbedItem[], o: EmbedOptions): Float32Array[] {
  const D = model.config.d_model;
  const strands = o.strand === 'both' ? [false, true] : [false];
  const jobs: Job[] = [];
  items.forEach((it, item) => {
    for (const rc of strands) {
      for (let s = 0; s < it.length; s += o.window) {
        const e = Math.min(it.length, s + o.window);
        // reverse strand positions [s, e) are forward positions [len - e, len - s), reversed
        const tokens = rc ? o.reverseComplement!(it.read(it.length - e, it.length - s)) : it.read(s, e);
        jobs.push({ item, rc, start: s, tokens });
      }
    }
  });
  // accumulators: per item and strand, the pooled sum (mean), the last vector (last) or all rows (none)
  const acc = items.map((it) => strands.map(() => new Float64Array(o.pool === 'none' ? it.length * D : D)));
  const byLength = new Map<number, Job[]>();
  for (const j of jobs) {
    const list = byLength.get(j.tokens.length) ?? [];
    list.push(j);
    byLength.set(j.tokens.length, list);
  }
  for (const [L, list] of byLength) {
    const rowsPerPass = Math.max(1, Math.floor(o.batchTokens / L));
    for (let k = 0; k < list.length; k += rowsPerPass) {
      const rows = list.slice(k, k + rowsPerPass);
      const B = rows.length;
      const inputs = new Int32Array(B * L);
      rows.forEach((j, b) => inputs.set(j.tokens, b * L));
      const h = model.embed(inputs, B, L, o.pool);
      o.onPass?.(B * L);
      rows.forEach((j, b) => {
        const a = acc[j.item]![j.rc ? 1 : 0]!;
        if (o.pool === 'mean') {
          for (let d = 0; d < D; d++) a[d]! += h[b * D + d]! * L;
        } else if (o.pool === 'last') {
          // the window that ends the item gives the last position
          if (j.start + L === items[j.item]!.length) for (let d = 0; d < D; d++) a[d] = h[b * D + d]!;
        } else {
          a.set(h.subarray(b * L * D, (b + 1) * L * D), j.start * D);
        }
      });
    }
  }
  return items.map((it, i) => {
    const [f, r] = acc[i]!;
    const n = it.length;
    if (o.pool !== 'none') {
      const scale = o.pool === 'mean' ? 1 / n : 1;
      return Float32Array.from(f!, (v, d) => (r ? (v + r[d]!) / 2 : v) * scale);
    }
    const out = new Float32Array(n * D);
    for (let p = 0; p < n; p++) {
      // reverse-strand row of forward position p: n - 1 - p
      for (let d = 0; d < D; d++) out[p * D + d] = r ? (f![p * D + d]! + r[(n - 1 - p) * D + d]!) / 2 : f![p * D + d]!;
    }
    return out;
  });
}
