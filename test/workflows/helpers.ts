// Shared pieces of the workflow tests: the CLIs as child processes, a tiny model trained on the CPU,
// small FASTA files cut from the shipped G27 genome, and independent readers of the outputs.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const root = join(__dirname, '..', '..');
export const G27 = join(root, 'datasets', 'dna', 'h_pylori', 'G27.fa.gz');
export const G27_NAME = 'gi|208433976|ref|NC_011333.1|';

export function cli(tool: 'dna' | 'audio', args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [join(root, 'bin', `mamba-${tool}.js`), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, MAMBA_NUM_THREADS: '1' },
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A next-token model trained for a few steps on G27 on the CPU (enough that context changes predictions). */
export function trainTinyDna(dir: string): string {
  const out = join(dir, 'run');
  const r = cli(
    'dna',
    [
      'train',
      '--preset',
      'tiny',
      '--seq-len',
      '128',
      '--batch',
      '4',
      '--steps',
      '30',
      '--eval-windows',
      '2',
      '--eval-every',
      '30',
      '--device',
      'cpu',
      '--out',
      out,
    ],
    dir,
  );
  if (r.code !== 0) throw new Error(`train failed: ${r.err}`);
  return out;
}

let g27Seq: string | undefined;
/** The G27 chromosome as one upper-case string. */
export function g27(): string {
  if (!g27Seq) {
    const text = gunzipSync(readFileSync(G27)).toString('latin1');
    g27Seq = text
      .slice(text.indexOf('\n') + 1)
      .replace(/\n/g, '')
      .toUpperCase();
  }
  return g27Seq;
}

export function writeFasta(path: string, records: { name: string; seq: string }[], width = 60): void {
  const parts: string[] = [];
  for (const r of records) {
    parts.push(`>${r.name}\n`);
    for (let i = 0; i < r.seq.length; i += width) parts.push(`${r.seq.slice(i, i + width)}\n`);
  }
  writeFileSync(path, parts.join(''));
}

export function revcomp(s: string): string {
  const c: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A', N: 'N' };
  return [...s]
    .reverse()
    .map((b) => c[b]!)
    .join('');
}

export interface BedGraphLine {
  chrom: string;
  start: number;
  end: number;
  value: number;
}

/** A strict bedGraph parser: one track line first, then 4 tab-separated columns, integer coordinates. */
export function parseBedGraph(text: string): { track: string; lines: BedGraphLine[] } {
  const rows = text.split('\n');
  if (rows[rows.length - 1] === '') rows.pop();
  const track = rows.shift() ?? '';
  if (!/^track type=bedGraph( |$)/.test(track)) throw new Error(`first line is not a bedGraph track line: ${track}`);
  const lines = rows.map((l, i) => {
    const f = l.split('\t');
    if (f.length !== 4) throw new Error(`line ${i + 2}: ${f.length} columns`);
    if (!/^\d+$/.test(f[1]!) || !/^\d+$/.test(f[2]!)) throw new Error(`line ${i + 2}: coordinates are not integers`);
    const v = Number(f[3]);
    if (!Number.isFinite(v)) throw new Error(`line ${i + 2}: value ${f[3]} is not a number`);
    const start = Number(f[1]),
      end = Number(f[2]);
    if (!(end > start)) throw new Error(`line ${i + 2}: empty interval`);
    return { chrom: f[0]!, start, end, value: v };
  });
  return { track, lines };
}

/** The per-base values of a bedGraph: chrom -> position -> value. */
export function perBase(lines: BedGraphLine[]): Map<string, Map<number, number>> {
  const m = new Map<string, Map<number, number>>();
  for (const l of lines) {
    const c = m.get(l.chrom) ?? new Map<number, number>();
    for (let p = l.start; p < l.end; p++) c.set(p, l.value);
    m.set(l.chrom, c);
  }
  return m;
}

/** An independent .npy reader (format 1.0/2.0, '<f4', C order). */
export function readNpy(path: string): { shape: number[]; data: Float32Array } {
  const b = readFileSync(path);
  if (b.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error('not npy');
  const major = b[6]!;
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.subarray(start, start + hlen).toString('latin1');
  if ((start + hlen) % 64 !== 0) throw new Error('data not 64-byte aligned');
  if (!/'descr': '<f4'/.test(header) || !/'fortran_order': False/.test(header))
    throw new Error(`unexpected header ${header}`);
  const m = /'shape': \(([^)]*)\)/.exec(header);
  if (!m) throw new Error('no shape');
  const shape = m[1]!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const n = shape.reduce((a, c) => a * c, 1);
  const bytes = b.subarray(start + hlen);
  if (bytes.length !== 4 * n) throw new Error(`${bytes.length} data bytes for ${n} values`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = bytes.readFloatLE(4 * i);
  return { shape, data };
}
