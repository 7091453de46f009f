// MAF (Multiple Alignment Format, UCSC) reading: alignment blocks of 'a' and 's' lines, streamed from
// plain or gzip/bgzip files. 'i', 'e' and 'q' lines (synteny, empty rows, qualities) are skipped.
// Coordinates are as in the file: 0-based start on the row's strand, size = bases without gaps.
import { fileBytes } from './stream.js';
import { DnaDataError } from './errors.js';

export interface MafRow {
  /** sequence name as written, e.g. Hsap.22 */
  src: string;
  /** the part of src before the first '.' (the whole name when it has none) */
  species: string;
  /** the part of src after the first '.' ('' when it has none) */
  chrom: string;
  /** 0-based start of the aligned part, on `strand` (for '-': counted from the end of the source) */
  start: number;
  /** bases in the aligned part (the text without '-') */
  size: number;
  strand: '+' | '-';
  /** length of the whole source sequence */
  srcSize: number;
  /** the aligned text, with '-' for gaps */
  text: string;
}

export interface MafBlock {
  score?: number;
  rows: MafRow[];
  /** 1-based line of the block's 'a' line */
  line: number;
}

/** The species and chromosome of a MAF source name (species.chrom; the chrom may itself hold dots). */
export function splitMafSrc(src: string): { species: string; chrom: string } {
  const i = src.indexOf('.');
  return i < 0 ? { species: src, chrom: '' } : { species: src.slice(0, i), chrom: src.slice(i + 1) };
}

/** The bases of a row without its gaps. */
export function ungapped(row: MafRow): string {
  return row.text.replace(/-/g, '');
}

const NUM = /^\d+$/;

/** Parses one 's' line; throws with the file and line number on anything malformed. */
function parseS(line: string, where: string): MafRow {
  const f = line.trim().split(/\s+/);
  if (f.length !== 7) {
    throw new DnaDataError(
      `${where}: an 's' line needs 7 fields (s src start size strand srcSize text), got ${f.length}`,
    );
  }
  const [, src, startS, sizeS, strand, srcSizeS, text] = f as [string, string, string, string, string, string, string];
  for (const [name, v] of [
    ['start', startS],
    ['size', sizeS],
    ['srcSize', srcSizeS],
  ] as const) {
    if (!NUM.test(v)) throw new DnaDataError(`${where}: field ${name} must be a whole number >= 0, got '${v}'`);
  }
  if (strand !== '+' && strand !== '-') throw new DnaDataError(`${where}: strand must be + or -, got '${strand}'`);
  const start = Number(startS),
    size = Number(sizeS),
    srcSize = Number(srcSizeS);
  if (start + size > srcSize) {
    throw new DnaDataError(`${where}: start + size = ${start + size} is beyond srcSize ${srcSize}`);
  }
  let bases = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== 45) bases++;
  if (bases !== size) {
    throw new DnaDataError(`${where}: size is ${size} but the text holds ${bases} bases (without '-')`);
  }
  return { src, ...splitMafSrc(src), start, size, strand, srcSize, text };
}

function finishBlock(b: MafBlock, path: string): MafBlock {
  if (b.rows.length === 0) throw new DnaDataError(`${path}: line ${b.line}: alignment block has no 's' lines`);
  const cols = b.rows[0]!.text.length;
  for (const r of b.rows) {
    if (r.text.length !== cols) {
      const why = `row ${r.src} has ${r.text.length} alignment columns, the first row has ${cols}`;
      throw new DnaDataError(`${path}: block at line ${b.line}: ${why}`);
    }
  }
  return b;
}

/**
 * Streams the alignment blocks of a MAF file (plain, gzip or bgzip). Lines starting with '#' are header
 * or comments; a block starts at an 'a' line and ends at a blank line or the next 'a'.
 */
export async function* readMafBlocks(path: string): AsyncGenerator<MafBlock> {
  let block: MafBlock | null = null;
  let lineNo = 0;
  let rest = '';
  const handle = (raw: string): MafBlock | null => {
    lineNo++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith('#')) return null;
    if (line.trim() === '') {
      const done = block;
      block = null;
      return done ? finishBlock(done, path) : null;
    }
    const kind = line[0];
    const where = `${path}: line ${lineNo}`;
    if (kind === 'a') {
      const done = block;
      block = { rows: [], line: lineNo };
      const m = /(?:^|\s)score=(\S+)/.exec(line);
      if (m) {
        const score = Number(m[1]);
        if (!Number.isFinite(score)) throw new DnaDataError(`${where}: score must be a number, got '${m[1]}'`);
        block.score = score;
      }
      return done ? finishBlock(done, path) : null;
    }
    if (kind === 's' || kind === 'i' || kind === 'e' || kind === 'q') {
      if (!block) throw new DnaDataError(`${where}: '${kind}' line outside an alignment block (no 'a' line before it)`);
      if (kind === 's') block.rows.push(parseS(line, where));
      return null;
    }
    throw new DnaDataError(`${where}: unknown MAF line type '${line.slice(0, 20)}' (expected a, s, i, e, q or #)`);
  };
  for await (const chunk of fileBytes(path)) {
    const text = rest + chunk.toString('latin1');
    const lines = text.split('\n');
    rest = lines.pop()!;
    for (const l of lines) {
      const b = handle(l);
      if (b) yield b;
    }
  }
  if (rest) {
    const b = handle(rest);
    if (b) yield b;
  }
  if (block) yield finishBlock(block, path);
  if (lineNo === 0) throw new DnaDataError(`${path}: empty file (not MAF)`);
}
