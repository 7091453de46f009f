// `mamba-dna variants` on G27 with a tiny CPU-trained model: SNVs, an insertion, a deletion, a
// multi-allelic record with a symbolic ALT, a REF mismatch, a contig missing from the FASTA; the LLRs equal
// the stated window rule computed here with the eval forward; everything else passes through; bgzip input
// gives the same output; a malformed line fails with its line number.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgzfWriter, encodeString } from '../../src/data/dna/index.js';
import { loadModel, type MambaLM } from '../../src/model/index.js';
import { trimAlleles } from '../../src/workflows/variants.js';
import { G27, G27_NAME, cli, g27, revcomp, trainTinyDna } from './helpers.js';

let dir: string;
let run: string;
let model: MambaLM;
const N = 64,
  H = 32;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mamba-variants-'));
  run = trainTinyDna(dir);
  model = loadModel(run) as MambaLM;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sum of log2 P over window positions [from, W) from the eval forward on the whole window. */
function logProbSum(seq: string, from: number): number {
  const t = encodeString(seq);
  const L = t.length - 1;
  const r = model.forward({
    B: 1,
    L,
    inputs: Int32Array.from(t.subarray(0, L)),
    targets: Int32Array.from(t.subarray(1)),
  });
  let s = 0;
  for (let i = from; i <= L; i++) s -= r.losses[i - 1]! / Math.LN2;
  return s;
}

/**
 * The rule of the ##INFO header, written out here: H bases before the change, the allele, H after REF, summed over
 * the allele and the first `span` bases after it (on the reverse strand: the last `span` bases before it).
 */
function expectedLlr(pos: number, ref: string, alt: string, strand: 'forward' | 'both', span = H): number {
  const g = g27();
  const c = trimAlleles(pos, ref, alt);
  const left = g.slice(Math.max(0, c.start - H), c.start),
    right = g.slice(c.start + c.ref.length, c.start + c.ref.length + H);
  const r = right.slice(0, span),
    l = left.slice(Math.max(0, left.length - span));
  const fwd = logProbSum(left + c.alt + r, left.length) - logProbSum(left + c.ref + r, left.length);
  if (strand === 'forward') return fwd;
  const rev =
    logProbSum(revcomp(l + c.alt + right), right.length) - logProbSum(revcomp(l + c.ref + right), right.length);
  return (fwd + rev) / 2;
}

const other = (b: string, k = 1) => 'ACGT'[('ACGT'.indexOf(b) + k) % 4]!;

function makeVcf(): { text: string; sites: { pos: number; ref: string; alts: string[] }[] } {
  const g = g27();
  const b = (p: number, n = 1) => g.slice(p - 1, p - 1 + n);
  const sites = [
    { pos: 1001, ref: b(1001), alts: [other(b(1001))], id: 'snv1', filter: 'PASS', info: 'DP=10' },
    { pos: 2001, ref: b(2001), alts: [other(b(2001), 2)], id: 'snv2', filter: '.', info: '.' },
    { pos: 3001, ref: b(3001), alts: [`${b(3001)}GT`], id: 'ins', filter: 'PASS', info: 'SVTYPE=INS;AF=0.5' },
    { pos: 4001, ref: b(4001, 4), alts: [b(4001)], id: 'del', filter: 'q10', info: '.' },
    {
      pos: 5001,
      ref: b(5001),
      alts: [other(b(5001)), other(b(5001), 2), '<DEL>'],
      id: 'multi',
      filter: 'PASS',
      info: 'NS=3',
    },
    { pos: 6001, ref: other(b(6001)), alts: [b(6001)], id: 'mismatch', filter: 'PASS', info: '.' },
  ];
  const lines = [
    '##fileformat=VCFv4.2',
    `##contig=<ID=${G27_NAME},length=1652982>`,
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1',
  ];
  for (const s of sites)
    lines.push([G27_NAME, s.pos, s.id, s.ref, s.alts.join(','), '50', s.filter, s.info, 'GT', '0/1'].join('\t'));
  lines.push(['chrZ', 5, 'nocontig', 'A', 'G', '.', 'PASS', '.', 'GT', '1/1'].join('\t'));
  return { text: `${lines.join('\n')}\n`, sites };
}

describe('mamba-dna variants', () => {
  it('adds MAMBA_LLR (one per ALT) by the stated rule, flags a REF mismatch, passes everything else through', () => {
    const { text, sites } = makeVcf();
    const vcf = join(dir, 'in.vcf');
    writeFileSync(vcf, text);
    const out = join(dir, 'out.vcf');
    const r = cli(
      'dna',
      ['variants', '--checkpoint', run, '--fasta', G27, '--vcf', vcf, '--context', String(N), '-o', out],
      dir,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/7 records, 9 ALT alleles: 6 scored/);
    expect(r.err).toMatch(/1 records with a REF that does not match/);
    expect(r.err).toMatch(/1 on contigs not in the FASTA; 1 symbolic or non-base ALTs/);
    const inLines = text.trimEnd().split('\n'),
      outLines = readFileSync(out, 'utf8').trimEnd().split('\n');
    const outHeader = outLines.filter((l) => l.startsWith('##'));
    expect(outHeader).toEqual(expect.arrayContaining(inLines.filter((l) => l.startsWith('##'))));
    expect(outHeader.some((l) => l.startsWith('##INFO=<ID=MAMBA_LLR,Number=A,Type=Float,Description="'))).toBe(true);
    expect(outHeader.some((l) => l.startsWith('##FILTER=<ID=MAMBA_REF_MISMATCH,'))).toBe(true);
    const inRecs = inLines.filter((l) => !l.startsWith('##')),
      outRecs = outLines.filter((l) => !l.startsWith('##'));
    expect(outRecs.length).toBe(inRecs.length);
    expect(outRecs[0]).toBe(inRecs[0]); // #CHROM
    for (let i = 1; i < inRecs.length; i++) {
      const a = inRecs[i]!.split('\t'),
        b = outRecs[i]!.split('\t');
      expect(b.length).toBe(a.length);
      for (const k of [0, 1, 2, 3, 4, 5, 8, 9]) expect(b[k]).toBe(a[k]);
      const kept = a[7] === '.' ? [] : a[7]!.split(';');
      const info = b[7]!.split(';');
      expect(info.slice(0, kept.length)).toEqual(kept);
      expect(info.length).toBe(kept.length + 1);
      const values = info[kept.length]!.replace(/^MAMBA_LLR=/, '').split(',');
      expect(values.length).toBe(a[4]!.split(',').length);
      const site = sites[i - 1];
      if (!site) {
        // the chrZ record
        expect(values).toEqual(['.']);
        expect(b[6]).toBe('PASS');
        continue;
      }
      if (site.id === 'mismatch') {
        expect(b[6]).toBe('MAMBA_REF_MISMATCH');
        expect(values).toEqual(['.']);
        continue;
      }
      expect(b[6]).toBe(a[6]);
      site.alts.forEach((alt, k) => {
        if (alt.startsWith('<')) return expect(values[k]).toBe('.');
        const want = expectedLlr(site.pos, site.ref, alt, 'forward');
        expect(Math.abs(Number(values[k]) - want), `${site.id} ${alt}`).toBeLessThan(2e-4);
      });
    }
    // the LLRs are not all alike (the check is not passing on zeros)
    const scored = outRecs
      .slice(1)
      .flatMap((l) => l.split('\t')[7]!.split('MAMBA_LLR=')[1]!.split(','))
      .filter((v) => v !== '.')
      .map(Number);
    expect(new Set(scored.map((v) => v.toFixed(3))).size).toBeGreaterThan(3);
  });

  it('reads bgzip input through the BGZF reader to the same output; TSV and --strand both follow the rule', () => {
    const { text, sites } = makeVcf();
    const w = new BgzfWriter();
    w.write(Buffer.from(text));
    const gz = join(dir, 'in.vcf.gz');
    writeFileSync(gz, w.finish().data);
    writeFileSync(join(dir, 'plain.vcf'), text);
    const base = ['variants', '--checkpoint', run, '--fasta', G27, '--context', String(N)];
    const a = cli('dna', [...base, '--vcf', gz, '-o', join(dir, 'gz.out.vcf')], dir);
    const b = cli('dna', [...base, '--vcf', join(dir, 'plain.vcf'), '-o', join(dir, 'plain.out.vcf')], dir);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    expect(readFileSync(join(dir, 'gz.out.vcf'), 'utf8')).toBe(readFileSync(join(dir, 'plain.out.vcf'), 'utf8'));
    const t = cli(
      'dna',
      [...base, '--vcf', gz, '--strand', 'both', '--format', 'tsv', '-o', join(dir, 'both.tsv')],
      dir,
    );
    expect(t.code, t.err).toBe(0);
    const rows = readFileSync(join(dir, 'both.tsv'), 'utf8').trimEnd().split('\n');
    expect(rows[0]).toBe('#chrom\tpos\tid\tref\talt\tllr_bits\tstatus');
    expect(rows.length).toBe(1 + 9);
    const snv = rows.find((l) => l.split('\t')[2] === 'snv1')!.split('\t');
    expect(Math.abs(Number(snv[5]) - expectedLlr(1001, sites[0]!.ref, sites[0]!.alts[0]!, 'both'))).toBeLessThan(2e-4);
    const del = rows.find((l) => l.split('\t')[2] === 'del')!.split('\t');
    expect(Math.abs(Number(del[5]) - expectedLlr(4001, sites[3]!.ref, sites[3]!.alts[0]!, 'both'))).toBeLessThan(2e-4);
    expect(rows.filter((l) => l.endsWith('\tref_mismatch')).length).toBe(1);
    expect(rows.filter((l) => l.endsWith('\tnot_sequence')).length).toBe(1);
  });

  it('--span sums the allele and that many bases after it (before it on the reverse strand), as its header says', () => {
    const { text, sites } = makeVcf();
    writeFileSync(join(dir, 'span.vcf'), text);
    const args = [
      'variants',
      '--checkpoint',
      run,
      '--fasta',
      G27,
      '--context',
      String(N),
      '--vcf',
      join(dir, 'span.vcf'),
    ];
    const t = cli(
      'dna',
      [...args, '--span', '1', '--strand', 'both', '--format', 'tsv', '-o', join(dir, 'span.tsv')],
      dir,
    );
    expect(t.code, t.err).toBe(0);
    const rows = readFileSync(join(dir, 'span.tsv'), 'utf8').trimEnd().split('\n');
    const llr = (id: string) => Number(rows.find((l) => l.split('\t')[2] === id)!.split('\t')[5]);
    for (const [id, k] of [
      ['snv1', 0],
      ['ins', 2],
      ['del', 3],
    ] as const) {
      const site = sites[k]!;
      const want = expectedLlr(site.pos, site.ref, site.alts[0]!, 'both', 1);
      expect(Math.abs(llr(id) - want)).toBeLessThan(2e-4);
      // a real difference from the default span, so the test can tell the two apart
      expect(Math.abs(want - expectedLlr(site.pos, site.ref, site.alts[0]!, 'both'))).toBeGreaterThan(5e-4);
    }
    const v = cli('dna', [...args, '--span', '1', '-o', join(dir, 'span.out.vcf')], dir);
    expect(v.code, v.err).toBe(0);
    const header = readFileSync(join(dir, 'span.out.vcf'), 'utf8');
    expect(header).toContain(`${H} reference bases before the change, the allele, 1 reference bases after REF`);
    expect(header).toContain('span=1,');
    // --precision f32 is what the CPU computes anyway; bf16 there is a one-line error
    const f = cli('dna', [...args, '--span', '1', '--precision', 'f32', '--device', 'cpu', '-o', '-'], dir);
    expect(f.code, f.err).toBe(0);
    const b = cli('dna', [...args, '--precision', 'bf16', '--device', 'cpu', '-o', join(dir, 'x.vcf')], dir);
    expect(b.code).not.toBe(0);
    expect(b.err.trim()).toBe('mamba-dna: error: --precision bf16 needs a CUDA device (the CPU computes in f32)');
  });

  it('fails on a malformed line with the file and line number, and writes no output', () => {
    const { text } = makeVcf();
    const lines = text.split('\n');
    lines.splice(6, 0, [G27_NAME, 'x12', '.', 'A', 'G', '.', 'PASS', '.'].join('\t'));
    const vcf = join(dir, 'bad.vcf');
    writeFileSync(vcf, lines.join('\n'));
    const out = join(dir, 'bad.out.vcf');
    const r = cli(
      'dna',
      ['variants', '--checkpoint', run, '--fasta', G27, '--vcf', vcf, '--context', String(N), '-o', out],
      dir,
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.vcf: line 7: POS 'x12' is not a position/);
    expect(r.err.trim().split('\n').length).toBe(1);
    const short = join(dir, 'short.vcf');
    writeFileSync(
      short,
      `##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n${G27_NAME} 5 . A G . . .\n`,
    );
    const s = cli('dna', ['variants', '--checkpoint', run, '--fasta', G27, '--vcf', short, '-o', out], dir);
    expect(s.code).toBe(1);
    expect(s.err).toMatch(
      /short\.vcf: line 3: a VCF record needs 8 tab-separated columns .* \(columns must be separated by tabs\)/,
    );
    expect(() => readFileSync(out)).toThrow();
  });

  it('trims alleles to the changed bases (the VCF anchor base of an indel goes)', () => {
    expect(trimAlleles(10, 'A', 'G')).toEqual({ start: 9, ref: 'A', alt: 'G' });
    expect(trimAlleles(10, 'G', 'GTT')).toEqual({ start: 10, ref: '', alt: 'TT' });
    expect(trimAlleles(10, 'CTT', 'C')).toEqual({ start: 10, ref: 'TT', alt: '' });
    expect(trimAlleles(10, 'CAT', 'CGT')).toEqual({ start: 10, ref: 'A', alt: 'G' });
  });
});
