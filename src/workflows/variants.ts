// Zero-shot variant effect scores: the log-likelihood ratio of a reference window with the alternative
// allele spliced in against the reference window itself.
//
// Alleles are first trimmed of the bases REF and ALT share at the start and then at the end (the VCF
// anchor base of an indel goes), leaving a change at a 0-based start: ref bases r (maybe empty) become
// alt bases a (maybe empty). With H = floor(N / 2), the window is
//   left = the H reference bases before the change, then the allele (r or a), then right = the H reference
//   bases after r.
// The score of a window is the sum of log2 P over the allele and the first S bases of right (S = span,
// H by default: every base whose prefix the change alters; the shared left flank would cancel), and
// LLR = score(alt window) - score(ref window), in bits. Bases of right past S are left out of the window.
// With strand 'both' the same is done on the reverse complement of both windows (there the context is the
// reverse of right and the sum runs over the allele and the reverse of the last S bases of left), and the
// two LLRs are averaged. Flanks are cut at the record ends.
import { encodeString, reverseComplement } from '../data/dna/tokenizer.js';
import type { MambaLM } from '../model/model.js';
import { windowLogProbSums, type LikelihoodWindow } from './likelihood.js';

export interface AlleleChange {
  /** 0-based start of the changed reference bases */
  start: number;
  ref: string;
  alt: string;
}

/** Trims the shared leading, then trailing, bases of a VCF REF/ALT pair at 1-based pos. */
export function trimAlleles(pos: number, ref: string, alt: string): AlleleChange {
  const R = ref.toUpperCase(),
    A = alt.toUpperCase();
  let p = 0;
  while (p < R.length && p < A.length && R[p] === A[p]) p++;
  let s = 0;
  while (s < R.length - p && s < A.length - p && R[R.length - 1 - s] === A[A.length - 1 - s]) s++;
  return { start: pos - 1 + p, ref: R.slice(p, R.length - s), alt: A.slice(p, A.length - s) };
}

export interface VariantScoreOptions {
  context: number;
  strand: 'forward' | 'both';
  /** bases after the change (before it, on the reverse strand) whose log-probabilities are summed; default N/2 */
  span?: number;
  batchTokens: number;
  onPass?: (tokens: number) => void;
}

/** A record to read flank tokens from: its length and tokens [start, end). */
export interface VariantSequence {
  length: number;
  read(start: number, end: number): Uint8Array;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** LLRs in bits of changes on one record (see the header), in the order given. */
export function alleleLLRs(
  model: MambaLM,
  seq: VariantSequence,
  changes: readonly AlleleChange[],
  o: VariantScoreOptions,
): number[] {
  const H = Math.floor(o.context / 2),
    S = Math.min(H, o.span ?? H);
  const windows: LikelihoodWindow[] = [];
  // a window's index in `windows` (ref windows shared by the ALTs of one site), per change and strand
  const refIndex = new Map<string, number[]>();
  const jobs: { ref: number[]; alt: number[] }[] = [];
  const strands = o.strand === 'both' ? [false, true] : [false];
  for (const c of changes) {
    if (!c.ref.length && !c.alt.length) {
      jobs.push({ ref: [], alt: [] });
      continue;
    }
    const leftStart = Math.max(0, c.start - H),
      refEnd = c.start + c.ref.length;
    const rightEnd = Math.min(seq.length, refEnd + H);
    const left = seq.read(leftStart, c.start),
      right = seq.read(refEnd, rightEnd);
    const add = (allele: Uint8Array): number[] =>
      strands.map((rc) => {
        windows.push(
          rc
            ? {
                tokens: reverseComplement(concat(left.subarray(Math.max(0, left.length - S)), allele, right)),
                from: Math.max(1, right.length),
              }
            : { tokens: concat(left, allele, right.subarray(0, S)), from: Math.max(1, left.length) },
        );
        return windows.length - 1;
      });
    const key = `${c.start}:${c.ref.length}`;
    let ref = refIndex.get(key);
    if (!ref) refIndex.set(key, (ref = add(seq.read(c.start, refEnd))));
    jobs.push({ ref, alt: add(encodeString(c.alt)) });
  }
  const sums = windowLogProbSums(model, windows, { batchTokens: o.batchTokens, onPass: (_, t) => o.onPass?.(t) });
  const sum = (i: number) => sums[i]!;
  return jobs.map((j) => {
    if (!j.alt.length) return 0;
    let llr = 0;
    for (let s = 0; s < j.alt.length; s++) llr += sum(j.alt[s]!) - sum(j.ref[s]!);
    return llr / j.alt.length;
  });
}
