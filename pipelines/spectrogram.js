// A spectrogram picture of a mono recording as PNG (no dependencies): magnitude STFT (Hann window),
// log scale over an 80 dB range, one pixel column per hop, low frequencies at the bottom, and an optional
// white line marking where the prompt ends and the generated continuation begins.
import { crc32, deflateSync } from 'node:zlib';

/** In-place radix-2 FFT of (re, im), length a power of two. */
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k),
          wi = Math.sin(ang * k);
        const a = i + k,
          b = a + len / 2;
        const xr = re[b] * wr - im[b] * wi,
          xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/** dB magnitudes [frame][bin] of `x` (frames of `size` samples every `hop`). */
export function stft(x, { size = 512, hop = 128 } = {}) {
  const win = Float64Array.from({ length: size }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / size));
  const frames = [];
  const re = new Float64Array(size),
    im = new Float64Array(size);
  for (let s = 0; s + size <= x.length; s += hop) {
    for (let i = 0; i < size; i++) {
      re[i] = x[s + i] * win[i];
      im[i] = 0;
    }
    fft(re, im);
    const db = new Float32Array(size / 2);
    for (let k = 0; k < size / 2; k++) db[k] = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-12);
    frames.push(db);
  }
  return frames;
}

// a dark-to-bright colour map (black, purple, red, orange, pale yellow)
const STOPS = [
  [0, 0, 4],
  [80, 18, 123],
  [182, 54, 121],
  [251, 136, 97],
  [252, 253, 191],
];
function colour(t) {
  const u = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(u)),
    f = u - i;
  return STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * f));
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** An RGB PNG of width x height from rgb (Uint8Array, 3 bytes per pixel, rows top to bottom). */
export function encodePng(width, height, rgb) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = 0; // 8-bit RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Spectrogram PNG of samples (float, mono); `markAt`: sample index of a vertical marker line. */
export function spectrogramPng(samples, { size = 512, hop = 128, markAt, rangeDb = 80 } = {}) {
  const frames = stft(samples, { size, hop });
  if (frames.length === 0) throw new Error(`spectrogram: need at least ${size} samples, got ${samples.length}`);
  const bins = size / 2;
  let top = -Infinity;
  for (const f of frames) for (const v of f) top = Math.max(top, v);
  const w = frames.length,
    h = bins;
  const rgb = new Uint8Array(w * h * 3);
  const mark = markAt === undefined ? -1 : Math.round((markAt - size / 2) / hop);
  for (let x = 0; x < w; x++) {
    for (let k = 0; k < bins; k++) {
      const y = h - 1 - k;
      const c = x === mark ? [255, 255, 255] : colour((frames[x][k] - (top - rangeDb)) / rangeDb);
      rgb.set(c, (y * w + x) * 3);
    }
  }
  return encodePng(w, h, rgb);
}
