// Regions in samtools syntax (`chr`, `chr:start-end`, `chr:start`, 1-based inclusive, commas allowed)
// and BED intervals (0-based, half-open). Both resolve to 0-based half-open ranges of one record.
import { readFileSync } from 'node:fs';
import { DnaDataError } from './errors.js';
import type { FaiRecord } from './fai.js';

export interface Region {
  name: string;
  /** 0-based first base */
  start: number;
  /** 0-based end, exclusive */
  end: number;
  /** the region as samtools names it in a FASTA header: the text given, or chr:start+1-end for BED */
  label: string;
  /** with parseRegion's clip: the region ran past the record's end (cut there) or started past it (empty) */
  clipped?: 'truncated' | 'empty';
}

type RecordLookup = { path: string; has(name: string): boolean; record(name: string): FaiRecord };

function parseNum(s: string, text: string): number {
  const n = Number(s.replace(/,/g, ''));
  if (!/^[0-9][0-9,]*$/.test(s) || !Number.isSafeInteger(n))
    throw new DnaDataError(`bad region '${text}': '${s}' is not a position`);
  return n;
}

/**
 * Parses a samtools region against a file's records (a whole name wins over a name:range reading). A
 * region past the record's end is an error, or with `clip` cut at the end as samtools faidx does.
 */
export function parseRegion(text: string, fasta: RecordLookup, opts: { clip?: boolean } = {}): Region {
  if (fasta.has(text)) {
    const r = fasta.record(text);
    return { name: text, start: 0, end: r.length, label: text };
  }
  const colon = text.lastIndexOf(':');
  const m = colon >= 0 ? /^([0-9][0-9,]*)(?:-([0-9][0-9,]*))?$/.exec(text.slice(colon + 1)) : null;
  if (!m) throw new DnaDataError(`${fasta.path}: no record named '${text}' (and it is not a name:start-end region)`);
  const name = text.slice(0, colon);
  if (!fasta.has(name)) throw new DnaDataError(`${fasta.path}: unknown record name '${name}' in region '${text}'`);
  const rec = fasta.record(name);
  const start1 = parseNum(m[1]!, text);
  const end1 = m[2] !== undefined ? parseNum(m[2], text) : rec.length;
  if (start1 < 1)
    throw new DnaDataError(`${fasta.path}: region '${text}': positions are 1-based, start must be at least 1`);
  if (m[2] !== undefined && end1 < start1)
    throw new DnaDataError(`${fasta.path}: region '${text}': end ${end1} is before start ${start1}`);
  if (start1 > rec.length || end1 > rec.length) {
    if (!opts.clip)
      throw new DnaDataError(`${fasta.path}: region '${text}' is outside record '${name}' (length ${rec.length})`);
    // as samtools faidx: cut at the record's end; a start past it gives an empty sequence
    const start = Math.min(start1 - 1, rec.length);
    return { name, start, end: rec.length, label: text, clipped: start === rec.length ? 'empty' : 'truncated' };
  }
  return { name, start: start1 - 1, end: end1, label: text };
}

/** Reads a BED file's intervals (columns chrom, start, end; track/browser/# lines skipped), checked against the records. */
export function readBed(bedPath: string, fasta: RecordLookup): Region[] {
  let text: string;
  try {
    text = readFileSync(bedPath, 'utf8');
  } catch (e) {
    throw new DnaDataError(`${bedPath}: cannot read: ${(e as Error).message}`);
  }
  return parseBed(text, bedPath, fasta);
}

export function parseBed(text: string, bedPath: string, fasta: RecordLookup): Region[] {
  const out: Region[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (!line.trim() || line.startsWith('#') || line.startsWith('track') || line.startsWith('browser')) continue;
    const f = line.split(/\t| +/);
    const where = `${bedPath}: line ${i + 1}`;
    if (f.length < 3) throw new DnaDataError(`${where}: a BED line needs chrom, start and end`);
    const [name, s, e] = f as [string, string, string];
    if (!/^\d+$/.test(s) || !/^\d+$/.test(e))
      throw new DnaDataError(`${where}: start and end must be whole numbers, got '${s}' '${e}'`);
    const start = Number(s),
      end = Number(e);
    if (end <= start)
      throw new DnaDataError(`${where}: empty or reversed interval ${start}-${end} (BED is 0-based, half-open)`);
    if (!fasta.has(name)) throw new DnaDataError(`${where}: unknown record name '${name}' in ${fasta.path}`);
    const rec = fasta.record(name);
    if (end > rec.length)
      throw new DnaDataError(`${where}: interval ${start}-${end} is outside record '${name}' (length ${rec.length})`);
    out.push({ name, start, end, label: `${name}:${start + 1}-${end}` });
  }
  return out;
}

/** FASTA text of one region as `samtools faidx` prints it: >label, then the bases wrapped at `width`. */
export function formatFastaRecord(label: string, bases: Uint8Array, width = 60): string {
  const b = Buffer.from(bases.buffer, bases.byteOffset, bases.byteLength);
  const parts: string[] = [`>${label}\n`];
  for (let p = 0; p < b.length; p += width) parts.push(b.toString('latin1', p, Math.min(b.length, p + width)), '\n');
  return parts.join('');
}
