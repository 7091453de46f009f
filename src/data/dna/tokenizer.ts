// One token per base over a fixed vocabulary shared by every DNA model:
//   0 PAD, 1 BOS, 2 EOS, 3 MASK (specials), 4 A, 5 C, 6 G, 7 T, 8 N,
//   and with keepCase: 9 a, 10 c, 11 g, 12 t, 13 n (soft-masked bases). vocabSize 16 (14, 15 unused).
// Other IUPAC codes (R Y S W K M B D H V) map to N (n when keeping case); U is not DNA and is rejected.
// Encoding goes through a 256-entry lookup table where invalid bytes map to INVALID (0xff), so a window
// is encoded with one table load per byte and a single OR-accumulated check at the end.
import { DnaDataError } from './errors.js';

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
export const MASK = 3;
export const TOKEN_A = 4;
export const TOKEN_C = 5;
export const TOKEN_G = 6;
export const TOKEN_T = 7;
export const TOKEN_N = 8;
export const DNA_VOCAB_SIZE = 16;
/** The lookup-table value of a byte that is not a base. */
export const INVALID = 0xff;

/** Token id -> printable symbol (specials in angle brackets). */
export const DNA_VOCAB: readonly string[] = [
  '<pad>',
  '<bos>',
  '<eos>',
  '<mask>',
  'A',
  'C',
  'G',
  'T',
  'N',
  'a',
  'c',
  'g',
  't',
  'n',
  '<unused14>',
  '<unused15>',
];

export interface TokenizeOptions {
  /** keep soft-masked lowercase bases as their own tokens (9..13) instead of folding them to upper case */
  keepCase?: boolean;
}

const IUPAC_OTHER = 'RYSWKMBDHV';

function makeLut(keepCase: boolean): Uint8Array {
  const lut = new Uint8Array(256).fill(INVALID);
  const upper: Record<string, number> = { A: TOKEN_A, C: TOKEN_C, G: TOKEN_G, T: TOKEN_T, N: TOKEN_N };
  for (const c of IUPAC_OTHER) upper[c] = TOKEN_N;
  for (const [c, t] of Object.entries(upper)) {
    lut[c.charCodeAt(0)] = t;
    // lowercase: the same token, or the soft-masked twin (upper token + 5: A 4 -> a 9 ... N 8 -> n 13)
    lut[c.toLowerCase().charCodeAt(0)] = keepCase ? t + 5 : t;
  }
  return lut;
}

const LUT_FOLD = makeLut(false);
const LUT_KEEP = makeLut(true);

/** The byte -> token lookup table (INVALID = 0xff for bytes that are not bases). Do not modify. */
export function baseLut(keepCase = false): Uint8Array {
  return keepCase ? LUT_KEEP : LUT_FOLD;
}

/**
 * Encodes base letters (no newlines) to tokens. `where` names the input in errors (a file), and
 * `byteOffset` is the offset of bytes[0] in it, so an error can say exactly where the bad byte is.
 */
export function encodeBases(
  bytes: Uint8Array,
  opts: TokenizeOptions = {},
  where = 'input',
  byteOffset = 0,
  out: Uint8Array = new Uint8Array(bytes.length),
): Uint8Array {
  const lut = opts.keepCase ? LUT_KEEP : LUT_FOLD;
  const n = bytes.length;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const v = lut[bytes[i]!]!;
    out[i] = v;
    acc |= v;
  }
  if (acc & 0x80) {
    const i = out.indexOf(INVALID);
    throw invalidByteError(bytes[i]!, where, byteOffset + i);
  }
  return out;
}

/** Encodes a string of bases (a convenience for tests and the CLI). */
export function encodeString(seq: string, opts: TokenizeOptions = {}): Uint8Array {
  return encodeBases(Buffer.from(seq, 'latin1'), opts, 'string');
}

export function invalidByteError(byte: number, where: string, offset: number): DnaDataError {
  const shown =
    byte >= 0x21 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `0x${byte.toString(16).padStart(2, '0')}`;
  return new DnaDataError(
    `${where}: byte ${shown} at byte offset ${offset} is not a DNA base (A C G T N or an IUPAC code)`,
  );
}

const DECODE: string[] = DNA_VOCAB.map((s, i) => (i >= 4 && i <= 13 ? s : '?'));

/** Tokens back to text: bases as letters, specials and unused ids as '?' unless `specials` is set. */
export function decodeTokens(tokens: Uint8Array, opts: { specials?: boolean } = {}): string {
  const parts = new Array<string>(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t >= DNA_VOCAB_SIZE)
      throw new DnaDataError(
        `decodeTokens: token ${t} at index ${i} is outside the DNA vocabulary (0..${DNA_VOCAB_SIZE - 1})`,
      );
    parts[i] = opts.specials ? DNA_VOCAB[t]! : DECODE[t]!;
  }
  return parts.join('');
}

// complement on token ids: A<->T, C<->G, N->N, same for soft-masked; specials stay themselves
const COMPLEMENT = new Uint8Array(256);
for (let i = 0; i < 256; i++) COMPLEMENT[i] = i;
COMPLEMENT[TOKEN_A] = TOKEN_T;
COMPLEMENT[TOKEN_T] = TOKEN_A;
COMPLEMENT[TOKEN_C] = TOKEN_G;
COMPLEMENT[TOKEN_G] = TOKEN_C;
COMPLEMENT[9] = 12;
COMPLEMENT[12] = 9;
COMPLEMENT[10] = 11;
COMPLEMENT[11] = 10;

/** Reverse complement of a token sequence (into `out`, which may be `tokens` itself). */
export function reverseComplement(tokens: Uint8Array, out: Uint8Array = new Uint8Array(tokens.length)): Uint8Array {
  const n = tokens.length;
  if (out.length < n) throw new Error('reverseComplement: output too short');
  for (let i = 0, j = n - 1; i <= j; i++, j--) {
    const a = COMPLEMENT[tokens[i]!]!,
      b = COMPLEMENT[tokens[j]!]!;
    out[i] = b;
    out[j] = a;
  }
  return out;
}
