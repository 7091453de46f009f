// VCF (1-based POS): line-by-line reading of plain, gzip or bgzip files (bgzip through the BGZF reader),
// the eight fixed columns of a record checked with the line number, and the edits `variants` makes:
// a header line inserted before #CHROM, one INFO key set, a FILTER flag added. Everything else passes
// through byte for byte.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { BgzfReader, scanBgzf, sniffFile } from './bgzf.js';
import { DnaDataError } from './errors.js';
import { fileBytes } from './stream.js';

export interface VcfLine {
  /** 1-based line number */
  lineNo: number;
  text: string;
}

/** The bytes of a file in order: BGZF blocks through BgzfReader, other gzip through zlib, plain as is. */
async function* vcfBytes(path: string): AsyncGenerator<Buffer> {
  if (!existsSync(path)) throw new DnaDataError(`${path}: no such file`);
  if (statSync(path).isDirectory()) throw new DnaDataError(`${path}: is a folder, not a VCF file`);
  const c = sniffFile(path);
  if (c === 'bgzf') {
    const reader = new BgzfReader(path, scanBgzf(path), { cacheBlocks: 1 });
    try {
      const step = 1 << 20;
      for (let p = 0; p < reader.usize; p += step) yield Buffer.from(reader.read(p, Math.min(reader.usize, p + step)));
    } finally {
      reader.close();
    }
  } else if (c === 'none') {
    yield* createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  } else {
    yield* fileBytes(path);
  }
}

/** Yields the lines of a VCF (line ends removed, a trailing CR too), numbered from 1. */
export async function* readVcfLines(path: string): AsyncGenerator<VcfLine> {
  let rest = '';
  let lineNo = 0;
  for await (const chunk of vcfBytes(path)) {
    const text = rest + chunk.toString('latin1');
    const lines = text.split('\n');
    rest = lines.pop()!;
    for (const l of lines) yield { lineNo: ++lineNo, text: l.endsWith('\r') ? l.slice(0, -1) : l };
  }
  if (rest.length) yield { lineNo: ++lineNo, text: rest.endsWith('\r') ? rest.slice(0, -1) : rest };
}

export interface VcfRecord {
  lineNo: number;
  chrom: string;
  /** 1-based position of REF's first base */
  pos: number;
  id: string;
  ref: string;
  alts: string[];
  filter: string;
  info: string;
  /** all tab-separated columns as read */
  fields: string[];
}

/** Parses a data line; a malformed one is an error naming the file, line and column. */
export function parseVcfRecord(line: VcfLine, path: string): VcfRecord {
  const f = line.text.split('\t');
  const where = `${path}: line ${line.lineNo}`;
  if (f.length < 8) {
    const hint = f.length === 1 && / /.test(line.text) ? ' (columns must be separated by tabs)' : '';
    throw new DnaDataError(
      `${where}: a VCF record needs 8 tab-separated columns (CHROM POS ID REF ALT QUAL FILTER INFO), got ${f.length}${hint}`,
    );
  }
  const [chrom, posText, id, ref, alt, , filter, info] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!chrom) throw new DnaDataError(`${where}: CHROM is empty`);
  if (!/^\d+$/.test(posText) || Number(posText) < 1 || !Number.isSafeInteger(Number(posText))) {
    throw new DnaDataError(`${where}: POS '${posText}' is not a position (a whole number >= 1; VCF is 1-based)`);
  }
  if (!/^[ACGTNacgtn]+$/.test(ref)) throw new DnaDataError(`${where}: REF '${ref}' is not a sequence of A, C, G, T, N`);
  if (!alt) throw new DnaDataError(`${where}: ALT is empty (use '.' for no alternative)`);
  const alts = alt.split(',');
  if (alts.some((a) => a === '')) throw new DnaDataError(`${where}: ALT '${alt}' has an empty allele`);
  if (!filter) throw new DnaDataError(`${where}: FILTER is empty (use '.' or PASS)`);
  if (!info) throw new DnaDataError(`${where}: INFO is empty (use '.')`);
  return { lineNo: line.lineNo, chrom, pos: Number(posText), id, ref, alts, filter, info, fields: f };
}

/** An ALT that is a plain sequence of bases (not symbolic <...>, a breakend, '*' or '.'). */
export function isSequenceAllele(a: string): boolean {
  return /^[ACGTNacgtn]+$/.test(a);
}

/** The record line with INFO key set to value (replacing an existing key) and, when given, a FILTER flag added. */
export function formatVcfRecord(r: VcfRecord, key: string, value: string, filterFlag?: string): string {
  const f = r.fields.slice();
  const items = r.info === '.' ? [] : r.info.split(';');
  const at = items.findIndex((it) => it === key || it.startsWith(`${key}=`));
  if (at >= 0) items[at] = `${key}=${value}`;
  else items.push(`${key}=${value}`);
  f[7] = items.join(';');
  if (filterFlag) {
    f[6] =
      r.filter === '.' || r.filter === 'PASS'
        ? filterFlag
        : r.filter.split(';').includes(filterFlag)
          ? r.filter
          : `${r.filter};${filterFlag}`;
  }
  return f.join('\t');
}
