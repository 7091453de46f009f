// The parsers under fuzzing, one entry each in TARGETS. An entry has:
//   name, about     what it parses
//   seeds()         valid inputs: [{ name, files: { fileName: Buffer }, mutate: fileName, intFields?, text? }]
//                   (intFields: [{ offset, width }] of binary header integers; text: the mutated file is text)
//   run(dir, seed)  parses the files (written into dir) as the toolkit does; resolves to a summary
//   check(dir, seed, summary)  optional: compares an accepted input with a reference decoder or with the
//                   toolkit's other reader; returns a string describing a disagreement, or null
//   reportOnly      findings are reported but do not fail the test (parsers another engineer is changing)
// Runs in the worker (test/fuzz/worker.mjs) and builds seeds in the main thread; both import dist/.
// Adding a parser: one more entry below (MAF, VCF, BED and regions are the last four).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { makeRng } from './mutators.mjs';

const DIST = new URL('../../dist/', import.meta.url);
const dna = await import(new URL('data/dna/index.js', DIST).href);
const vcf = await import(new URL('data/dna/vcf.js', DIST).href);
const wav = await import(new URL('data/audio/wav.js', DIST).href);
const { AudioDataError } = await import(new URL('data/audio/errors.js', DIST).href);
const ckpt = await import(new URL('model/checkpoint.js', DIST).href);
const cfg = await import(new URL('model/config.js', DIST).href);
const hfConfig = await import(new URL('model/hf-config.js', DIST).href);
const cliErrors = await import(new URL('cli/errors.js', DIST).href);

/** The project's own error classes: an input refused with one of these is a clean refusal. */
export const PROJECT_ERRORS = [
  dna.DnaDataError,
  AudioDataError,
  ckpt.CheckpointError,
  cfg.ConfigError,
  cliErrors.UserError,
  cliErrors.UsageError,
];

const hasSamtools = spawnSync('sh', ['-c', 'command -v samtools'], { stdio: 'ignore' }).status === 0;
export const TOOLS = { samtools: hasSamtools };

/** A small multi-record FASTA: several line widths, a CR LF record, soft-masked and IUPAC letters. */
function fastaText(seed, sizes = [700, 333, 90]) {
  const r = makeRng(seed);
  const letters = 'ACGTACGTACGTacgtNRYK';
  const widths = [60, 17, 80];
  let s = '';
  sizes.forEach((n, i) => {
    const nl = i === 1 ? '\r\n' : '\n';
    s += `>rec${i} seed ${seed}${nl}`;
    let seq = '';
    for (let k = 0; k < n; k++) seq += letters[r.int(letters.length)];
    for (let p = 0; p < n; p += widths[i]) s += seq.slice(p, p + widths[i]) + nl;
  });
  return s;
}

function bgzip(text, level = 1) {
  const w = new dna.BgzfWriter({ level });
  w.write(Buffer.from(text, 'latin1'));
  return w.finish();
}

/** Every record's bases through the synchronous reader (tokens too: that is what checks each byte). */
function readAllSync(path) {
  const fa = dna.IndexedFasta.open(path, { writeIndex: false });
  try {
    const out = [];
    for (const r of fa.records) {
      out.push([r.name, fa.bases(r, 0, r.length).toString('latin1'), r.offset]);
      fa.tokens(r, 0, r.length);
    }
    return out;
  } finally {
    fa.close();
  }
}

async function streamAll(path) {
  const out = [];
  const fa = dna.IndexedFasta.open(path, { writeIndex: false });
  const offsets = new Map(fa.records.map((r) => [r.name, r.offset]));
  fa.close();
  for await (const r of dna.streamFasta(path)) out.push([r.name, r.bases.toString('latin1'), offsets.get(r.name)]);
  return out;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export const TARGETS = [
  {
    name: 'fasta',
    about: 'FASTA indexing and reading (FaiBuilder, IndexedFasta, streamFasta)',
    seeds: () =>
      [1, 2]
        .map((k) => ({
          name: `synthetic-${k}`,
          files: { 'in.fa': Buffer.from(fastaText(k), 'latin1') },
          mutate: 'in.fa',
        }))
        .concat([
          {
            name: 'edges',
            files: { 'in.fa': Buffer.from('\n>a d\nACGT\nAC\n>e\n>b\nA\n\n>c\nGGGG\nGG\n') },
            mutate: 'in.fa',
          },
        ]),
    async run(dir) {
      const f = join(dir, 'in.fa');
      return { sync: readAllSync(f), stream: await streamAll(f) };
    },
    check(dir, seed, got) {
      if (!same(got.sync, got.stream)) return 'the indexed and the streaming readers return different records';
      if (!TOOLS.samtools) return null;
      // samtools must accept what we accept, with the same .fai (we are stricter: it may accept more)
      const f = join(dir, 'in.fa');
      const s = spawnSync('samtools', ['faidx', f], { encoding: 'latin1' });
      if (s.status !== 0) return `we accept a FASTA samtools refuses (${s.stderr.trim().split('\n')[0]})`;
      const ours = dna.formatFai(dna.IndexedFasta.open(f, { writeIndex: false }).records);
      const theirs = readFileSync(`${f}.fai`, 'latin1');
      return ours === theirs
        ? null
        : `.fai differs from samtools: ours ${JSON.stringify(ours.slice(0, 120))} samtools ${JSON.stringify(theirs.slice(0, 120))}`;
    },
    referenceEvery: 8, // samtools is a process start: check every 8th accepted input
  },
  {
    name: 'fai',
    about: '.fai parsing and its checks against the FASTA (parseFai, IndexedFasta.open)',
    seeds: () =>
      [3].map((k) => {
        const text = fastaText(k);
        const b = new dna.FaiBuilder('seed');
        b.push(Buffer.from(text, 'latin1'));
        return {
          name: `synthetic-${k}`,
          files: { 'in.fa': Buffer.from(text, 'latin1'), 'in.fa.fai': Buffer.from(dna.formatFai(b.finish())) },
          mutate: 'in.fa.fai',
          text: true,
        };
      }),
    async run(dir) {
      return { sync: readAllSync(join(dir, 'in.fa')) };
    },
    check(dir, seed, got) {
      // an accepted .fai may rename or shorten a record (samtools cannot tell either), but every record it
      // names must start at a true record's first base and read that record's bases: no silent shift
      const truth = new Map(readAllSyncFromText(seed.files['in.fa']).map((t) => [t.offset, t]));
      for (const [name, bases, offset] of got.sync) {
        const t = truth.get(offset);
        if (!t)
          return `record '${name}' of an accepted .fai starts at byte ${offset}, where no record starts (silently shifted bases)`;
        if (!t.bases.startsWith(bases))
          return `record '${name}' read through the .fai gives other bases than record '${t.name}' holds`;
      }
      return null;
    },
  },
  {
    name: 'bgzf',
    about: 'BGZF blocks: header, BSIZE, deflate payload, CRC32, ISIZE, EOF marker (scanBgzf, BgzfReader)',
    seeds: () => {
      const text = fastaText(4, [60000, 20000, 4000]); // four 64 KiB blocks
      const { data, gzi } = bgzip(text);
      // every block's XLEN (offset 10), BSIZE (16), CRC32 (end - 8) and ISIZE (end - 4)
      const fields = [];
      for (let p = 0; p < data.length;) {
        const bsize = data.readUInt16LE(p + 16) + 1;
        fields.push(
          { offset: p + 16, width: 2 },
          { offset: p + bsize - 8, width: 4 },
          { offset: p + bsize - 4, width: 4 },
          { offset: p + 10, width: 2 },
        );
        p += bsize;
      }
      return [
        { name: 'scan', files: { 'in.fa.gz': data }, mutate: 'in.fa.gz', intFields: fields },
        { name: 'with-gzi', files: { 'in.fa.gz': data, 'in.fa.gz.gzi': gzi }, mutate: 'in.fa.gz', intFields: fields },
      ];
    },
    async run(dir) {
      const f = join(dir, 'in.fa.gz');
      const idx = existsSync(`${f}.gzi`) ? dna.parseGzi(readFileSync(`${f}.gzi`), `${f}.gzi`) : dna.scanBgzf(f);
      const r = new dna.BgzfReader(f, idx, { cacheBlocks: 0 });
      try {
        return { bytes: Buffer.from(r.read(0, r.usize)) };
      } finally {
        r.close();
      }
    },
    check(dir, seed, got) {
      // zlib's gunzip checks every member's CRC32 and ISIZE: what we accept it must accept, byte for byte
      let ref;
      try {
        ref = gunzipSync(readFileSync(join(dir, 'in.fa.gz')));
      } catch (e) {
        return `we accept a bgzip file zlib rejects (${e.message})`;
      }
      return Buffer.compare(ref, got.bytes) === 0
        ? null
        : `our bytes differ from zlib's (${got.bytes.length} vs ${ref.length})`;
    },
  },
  {
    name: 'gzi',
    about: '.gzi index parsing and its use (parseGzi, BgzfReader)',
    seeds: () => {
      const { data, gzi } = bgzip(fastaText(5, [60000, 20000, 4000]));
      const n = gzi.length;
      const fields = [{ offset: 0, width: 8 }];
      for (let o = 8; o < n; o += 8) fields.push({ offset: o, width: 8 });
      return [
        {
          name: 'synthetic',
          files: { 'in.fa.gz': data, 'in.fa.gz.gzi': gzi },
          mutate: 'in.fa.gz.gzi',
          intFields: fields,
        },
      ];
    },
    async run(dir) {
      const f = join(dir, 'in.fa.gz');
      return { sync: readAllSync(f) };
    },
    check(dir, seed, got) {
      const truth = readAllSyncFromText(gunzipSync(seed.files['in.fa.gz'])).map((t) => [t.name, t.bases, t.offset]);
      return same(got.sync, truth) ? null : 'bases read through an accepted .gzi differ from the file';
    },
  },
  {
    name: 'wav',
    about: 'WAV header bounds and both decoders (readWavInfo, readWavMono via wavefile, readWavBlocks)',
    seeds: () => {
      const r = makeRng(6);
      const noise = (n) => Float32Array.from({ length: n }, () => r.next() * 1.6 - 0.8);
      const fields = [4, 16, 24, 28, 40]
        .map((offset) => ({ offset, width: 4 }))
        .concat([20, 22, 32, 34].map((offset) => ({ offset, width: 2 })));
      return [
        {
          name: 'mono16',
          files: { 'in.wav': Buffer.from(wav.encodeWav(noise(800), 16000, 16)) },
          mutate: 'in.wav',
          intFields: fields,
        },
        {
          name: 'stereo8-odd',
          files: { 'in.wav': Buffer.from(wav.encodeWav([noise(301), noise(301)], 22050, 8)) },
          mutate: 'in.wav',
          intFields: fields,
        },
      ];
    },
    async run(dir) {
      const f = join(dir, 'in.wav');
      const info = wav.readWavInfo(f);
      const mono = wav.readWavMono(f).samples;
      const parts = [...wav.readWavBlocks(info, 256)];
      return { mono, blocks: parts };
    },
    check(dir, seed, got) {
      let n = 0;
      for (const p of got.blocks) n += p.length;
      if (n !== got.mono.length) return `wavefile gives ${got.mono.length} frames, the streaming decoder ${n}`;
      let i = 0;
      for (const p of got.blocks)
        for (const x of p) if (!Object.is(x, got.mono[i++])) return `the two WAV decoders differ at frame ${i - 1}`;
      return null;
    },
  },
  {
    name: 'safetensors',
    about: 'safetensors reading (decodeSafetensors in src/model/checkpoint.ts)',
    seeds: () => {
      const r = makeRng(7);
      const t = new Map([
        ['a.weight', { dtype: 'F32', shape: [3, 4], data: Float32Array.from({ length: 12 }, () => r.next() - 0.5) }],
        ['b.bias', { dtype: 'BF16', shape: [5], data: Uint16Array.from({ length: 5 }, () => r.int(65536)) }],
        ['c.index', { dtype: 'I32', shape: [2, 2], data: Int32Array.from([1, -2, 3, -4]) }],
      ]);
      const data = ckpt.encodeSafetensors(t, { format: 'pt', note: 'seed' });
      return [
        {
          name: 'three-tensors',
          files: { 'model.safetensors': data },
          mutate: 'model.safetensors',
          intFields: [
            { offset: 0, width: 8 },
            { offset: 0, width: 4 },
          ],
        },
        { name: 'three-tensors-text', files: { 'model.safetensors': data }, mutate: 'model.safetensors', text: true },
      ];
    },
    async run(dir) {
      const { tensors } = ckpt.readSafetensors(join(dir, 'model.safetensors'));
      // what a loader does next: every tensor's values as float64
      let n = 0;
      for (const t of tensors.values()) n += ckpt.safeToFloat64(t).length;
      return { n };
    },
  },
  {
    name: 'config',
    about: 'config.json parsing (readConfig: every layout, every field bounded, src/model/config.ts and hf-config.ts)',
    seeds: () => [
      {
        name: 'tiny',
        files: { 'config.json': Buffer.from(JSON.stringify(hfConfig.configToJSON(cfg.makeConfig('tiny')), null, 2)) },
        mutate: 'config.json',
        text: true,
      },
      {
        name: 'classify',
        files: {
          'config.json': Buffer.from(
            JSON.stringify(hfConfig.configToJSON(cfg.makeConfig('tiny', { task: 'classify', num_classes: 4 }))),
          ),
        },
        mutate: 'config.json',
        text: true,
      },
    ],
    async run(dir) {
      const c = ckpt.readConfig(dir);
      const d = cfg.derived(c);
      // parameters of the model it describes, roughly: per layer the in/out projections (3 d_model x d_inner),
      // conv, x/dt projections, A and D; plus the embedding
      const per =
        3 * c.d_model * d.dInner +
        d.dInner * (c.d_conv + 1) +
        d.dInner * (d.dtRank + 2 * c.d_state) +
        d.dtRank * d.dInner +
        d.dInner * (c.d_state + 2);
      return { params: d.paddedVocab * c.d_model + c.n_layer * per };
    },
    check(dir, seed, got) {
      // an accepted config must describe a model some machine could hold: under 2^40 parameters
      return Number.isFinite(got.params) && got.params < 2 ** 40
        ? null
        : `accepted a config of ${got.params} parameters (no upper bounds)`;
    },
  },
  {
    name: 'maf',
    about: 'MAF alignment blocks (readMafBlocks in src/data/dna/maf.ts), plain text',
    seeds: () => {
      // the first blocks of the real great-apes alignment where maffilter-examples is installed, else a small
      // hand-made two-block alignment
      const real =
        '/usr/share/doc/maffilter/examples/Gorilla/Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz';
      let text;
      if (existsSync(real)) {
        const all = gunzipSync(readFileSync(real)).toString('latin1');
        let end = 0;
        for (let k = 0; k < 4; k++) end = all.indexOf('\n\n', end + 1);
        text = all.slice(0, end + 2);
      } else {
        text =
          '##maf version=1\n\na score=10.0\ns Hsap.22 100 8 + 5000 ACGT-ACGT\ns Ptro.22 90 9 - 4000 ACGTTACGT\n\n' +
          'a\ns Hsap.22 108 4 + 5000 GG-CA\ns Ggor.22 50 5 + 3000 GGTCA\ni Ggor.22 C 0 C 0\n\n';
      }
      return [{ name: 'blocks', files: { 'in.maf': Buffer.from(text, 'latin1') }, mutate: 'in.maf', text: true }];
    },
    async run(dir) {
      let blocks = 0,
        rows = 0;
      for await (const b of dna.readMafBlocks(join(dir, 'in.maf'))) {
        blocks++;
        rows += b.rows.length;
      }
      return { blocks, rows };
    },
  },
  {
    name: 'vcf',
    about:
      'VCF records, plain and bgzip (readVcfLines, parseVcfRecord in src/data/dna/vcf.ts, as `variants` reads them)',
    seeds: () => {
      const text =
        '##fileformat=VCFv4.2\n##contig=<ID=chr1,length=5000>\n' +
        '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n' +
        'chr1\t100\trs1\tA\tG\t50\tPASS\tDP=10\n' +
        'chr1\t200\t.\tAC\tA\t.\t.\t.\n' +
        'chr1\t300\t.\tG\tGTT,C\t9\tq10\tAF=0.1,0.2;DB\n' +
        'chr2\t5\tid2\tN\t<DEL>\t.\tPASS\tSVTYPE=DEL\tGT\t0/1\n';
      return [
        { name: 'plain', files: { 'in.vcf': Buffer.from(text, 'latin1') }, mutate: 'in.vcf', text: true },
        // the BGZF path (vcfBytes through BgzfReader) under byte mutations
        { name: 'bgzip', files: { 'in.vcf': bgzip(text).data }, mutate: 'in.vcf' },
      ];
    },
    async run(dir) {
      const records = [];
      for await (const line of vcf.readVcfLines(join(dir, 'in.vcf')))
        if (!line.text.startsWith('#')) records.push(vcf.parseVcfRecord(line, 'in.vcf'));
      return { records };
    },
    check(dir, seed, got) {
      // what `variants` writes for an accepted record (one INFO key set, a FILTER flag) must read back as the same
      // variant, with the other columns unchanged
      for (const r of got.records) {
        const line = vcf.formatVcfRecord(r, 'MAMBA_LLR', '-1.5', 'MAMBA_REF_MISMATCH');
        let back;
        try {
          back = vcf.parseVcfRecord({ lineNo: r.lineNo, text: line }, 'out.vcf');
        } catch (e) {
          return `line ${r.lineNo}: variants' rewrite of an accepted record is refused (${e.message})`;
        }
        const same3 = (a, b) => a.chrom === b.chrom && a.pos === b.pos && a.ref === b.ref && a.id === b.id;
        if (!same3(r, back) || back.alts.join(',') !== r.alts.join(','))
          return `line ${r.lineNo}: variants' rewrite changes the variant: ${JSON.stringify(line.slice(0, 120))}`;
        if (back.fields.length !== r.fields.length || back.fields[5] !== r.fields[5])
          return `line ${r.lineNo}: variants' rewrite changes columns it should pass through`;
      }
      return null;
    },
  },
  {
    name: 'bed',
    about: "BED intervals checked against a FASTA's records (readBed in src/data/dna/regions.ts)",
    seeds: () => [
      {
        name: 'intervals',
        files: {
          'in.bed': Buffer.from(
            'track name=t\n# a comment\nchr1\t0\t100\tname1\t0\t+\nchr1 250 4000\r\nchr2\t10\t11\nbrowser x\n\nchrM\t0\t16569\n',
          ),
        },
        mutate: 'in.bed',
        text: true,
      },
    ],
    async run(dir) {
      return { regions: dna.readBed(join(dir, 'in.bed'), BED_RECORDS) };
    },
    check(dir, seed, got) {
      for (const r of got.regions) {
        const rec = BED_RECORDS.record(r.name);
        if (!(Number.isSafeInteger(r.start) && r.start >= 0 && r.start < r.end && r.end <= rec.length))
          return `accepted interval ${r.name}:${r.start}-${r.end} is not inside its record (length ${rec.length})`;
      }
      return null;
    },
  },
  {
    name: 'region',
    about: 'samtools regions, one per line (parseRegion in src/data/dna/regions.ts; --clip as `region --clip`)',
    seeds: () => [
      {
        name: 'regions',
        files: {
          'in.txt': Buffer.from('chr1\nchr1:100\nchr1:1,000-2,000\nchr2:5-5\nchrM:16000-16569\nchr1:4990-6000\n'),
        },
        mutate: 'in.txt',
        text: true,
      },
    ],
    async run(dir) {
      const lines = readFileSync(join(dir, 'in.txt'), 'latin1').split('\n').filter(Boolean);
      return { regions: lines.map((t, i) => dna.parseRegion(t, BED_RECORDS, { clip: i % 2 === 1 })) };
    },
    check(dir, seed, got) {
      for (const r of got.regions) {
        const rec = BED_RECORDS.record(r.name);
        if (!(Number.isSafeInteger(r.start) && r.start >= 0 && r.start <= r.end && r.end <= rec.length))
          return `region '${r.label}' accepted as ${r.name}:${r.start}-${r.end}, not inside its record (length ${rec.length})`;
        if (r.start === r.end && r.clipped !== 'empty') return `region '${r.label}' is empty without being clipped`;
      }
      return null;
    },
  },
];

/** The records a fuzzed BED or region is checked against (names and lengths, as an IndexedFasta answers them). */
const BED_RECORDS = (() => {
  const recs = new Map(
    [
      ['chr1', 5000],
      ['chr2', 300],
      ['chrM', 16569],
    ].map(([name, length]) => [name, { name, length }]),
  );
  return { path: 'ref.fa', has: (n) => recs.has(n), record: (n) => recs.get(n) };
})();

/** [name, bases] of every record of an unmutated FASTA, from the scanner alone (the truth for checks). */
function readAllSyncFromText(bytes) {
  const recs = [];
  let parts = [];
  const b = new dna.FaiBuilder('truth', {
    onSeqLine: (x) => parts.push(Buffer.from(x)),
    onRecord: (rec) => {
      recs.push({ name: rec.name, bases: Buffer.concat(parts).toString('latin1'), offset: rec.offset });
      parts = [];
    },
  });
  b.push(Buffer.from(bytes));
  b.finish();
  return recs;
}

/** Writes an input's files into dir (the mutated one replaced by `bytes`). */
export function writeInput(dir, seed, bytes) {
  for (const [name, data] of Object.entries(seed.files))
    writeFileSync(join(dir, name), name === seed.mutate ? bytes : data);
}
