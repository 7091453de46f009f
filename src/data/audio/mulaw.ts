// Audio tokens: 256 levels per sample, one byte each.
// mu-law (mu = 255, the WaveNet/SaShiMi convention): F(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu), then F is
// quantised uniformly over [-1, 1]: token = floor((F(x) + 1) / 2 * 255 + 0.5), clamped to 0..255.
// linear: the same uniform quantiser applied to x itself.
// Decoding maps a token to the centre value of its level and inverts the companding.

export type AudioEncoding = 'mulaw' | 'linear';
export const AUDIO_ENCODINGS: readonly AudioEncoding[] = ['mulaw', 'linear'];
export const AUDIO_VOCAB_SIZE = 256;
export const MU = 255;
const LOG1P_MU = Math.log1p(MU);

/** F(x), the mu-law compander, for x in [-1, 1] (values outside are clipped). */
export function muLawCompress(x: number): number {
  const a = Math.min(1, Math.abs(x));
  const f = Math.log1p(MU * a) / LOG1P_MU;
  return x < 0 ? -f : f;
}

/** The inverse compander: x = sign(y) ((1 + mu)^|y| - 1) / mu. */
export function muLawExpand(y: number): number {
  const a = Math.min(1, Math.abs(y));
  const x = Math.expm1(a * LOG1P_MU) / MU;
  return y < 0 ? -x : x;
}

function quantise(y: number): number {
  const t = Math.floor(((y + 1) / 2) * 255 + 0.5);
  return t < 0 ? 0 : t > 255 ? 255 : t;
}

/** Encodes samples in [-1, 1] to tokens 0..255. NaN encodes as silence. */
export function encodeSamples(
  x: Float32Array | Float64Array,
  encoding: AudioEncoding = 'mulaw',
  out?: Uint8Array,
): Uint8Array {
  const res = out ?? new Uint8Array(x.length);
  const n = x.length;
  if (encoding === 'mulaw') {
    const k = 1 / LOG1P_MU;
    for (let i = 0; i < n; i++) {
      let v = x[i]!;
      if (!(v === v)) v = 0;
      const a = v < 0 ? -v : v;
      const f = Math.log1p(MU * (a > 1 ? 1 : a)) * k;
      const t = Math.floor(((v < 0 ? -f : f) + 1) * 127.5 + 0.5);
      res[i] = t < 0 ? 0 : t > 255 ? 255 : t;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      res[i] = v === v ? quantise(v) : quantise(0);
    }
  }
  return res;
}

/** The float value of every token (a 256-entry table). */
export function tokenTable(encoding: AudioEncoding = 'mulaw'): Float32Array {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    const y = (i / 255) * 2 - 1;
    t[i] = encoding === 'mulaw' ? muLawExpand(y) : y;
  }
  return t;
}

/** Decodes tokens back to float samples in [-1, 1]. */
export function decodeTokens(tokens: Uint8Array, encoding: AudioEncoding = 'mulaw'): Float32Array {
  const t = tokenTable(encoding);
  const out = new Float32Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) out[i] = t[tokens[i]!]!;
  return out;
}

/** The token of 0.0 (silence), used to pad clips: 128 in both encodings. */
export function silenceToken(encoding: AudioEncoding = 'mulaw'): number {
  return encodeSamples(new Float32Array(1), encoding)[0]!;
}
