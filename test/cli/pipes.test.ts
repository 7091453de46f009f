// Pipes: `-` (and /dev/stdin) is standard input wherever a command reads its input once (predict,
// tokenize, detokenize, generate --prompt), plain, gzip or bgzip; commands that need random access say so;
// `-o -` and no -o write standard output. A tiny classifier per domain is trained on the CPU here.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../../src/data/audio/wav.js';
import { hasTool } from '../data/dna/helpers.js';
import { cli, requireDist, sh } from './run-cli.js';
import { rng } from '../helpers.js';

let dir: string;
const hasBgzip = hasTool('bgzip');
const hasSox = hasTool('sox');

/** Two "species" told apart by their alphabet: AC-rich and GT-rich, one FASTA per split and species. */
function toySet(d: string): string {
  const r = rng(7);
  const sources: { path: string; label: string; split: string }[] = [];
  for (const sp of ['ac', 'gt']) {
    for (const split of ['train', 'valid', 'test']) {
      const seq = Array.from({ length: 600 }, () => sp[Math.floor(r() * 2)]!.toUpperCase()).join('');
      const path = join(d, `${sp}-${split}.fa`);
      writeFileSync(path, `>${sp}_${split}\n${seq.match(/.{1,60}/g)!.join('\n')}\n`);
      sources.push({ path, label: sp, split });
    }
  }
  const m = join(d, 'set.json');
  writeFileSync(m, JSON.stringify({ name: 'toy', classes: ['ac', 'gt'], sources }));
  return m;
}

beforeAll(() => {
  requireDist();
  dir = mkdtempSync(join(tmpdir(), 'mamba-pipes-'));
  const set = toySet(dir);
  const t = cli('dna', [
    'train',
    '--task',
    'classify',
    '--data',
    set,
    '--seq-len',
    '64',
    '--batch',
    '2',
    '--steps',
    '2',
    '--eval-windows',
    '1',
    '--device',
    'cpu',
    '--out',
    join(dir, 'cls'),
  ]);
  if (t.code !== 0) throw new Error(t.err);
  writeFileSync(join(dir, 'g.fa'), readFileSync(join(dir, 'ac-test.fa')));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rows = (tsv: string) =>
  tsv
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'));

describe('DNA pipes', () => {
  it('region | predict -: the same probabilities as predict on the file holding the region', () => {
    const file = join(dir, 'piece.fa');
    expect(sh(`mamba-dna region ${dir}/g.fa ac_test:1-300 > ${file}`).code).toBe(0);
    const direct = cli('dna', ['predict', '--checkpoint', join(dir, 'cls'), file]);
    const piped = sh(`mamba-dna region ${dir}/g.fa ac_test:1-300 | mamba-dna predict --checkpoint ${dir}/cls -`);
    expect(piped.code, piped.err).toBe(0);
    expect(rows(piped.out)).toHaveLength(1);
    expect(rows(piped.out)[0]![0]).toBe('stdin:ac_test:1-300');
    expect(rows(piped.out)[0]!.slice(1)).toEqual(rows(direct.out)[0]!.slice(1));
  });

  it('stdin may be gzip or bgzip (and /dev/stdin works: no ESPIPE)', () => {
    const want = rows(cli('dna', ['predict', '--checkpoint', join(dir, 'cls'), join(dir, 'g.fa')]).out)[0]!.slice(1);
    const gz = cli('dna', ['predict', '--checkpoint', join(dir, 'cls'), '-'], {
      input: gzipSync(readFileSync(join(dir, 'g.fa'))),
    });
    expect(gz.code, gz.err).toBe(0);
    expect(rows(gz.out)[0]!.slice(1)).toEqual(want);
    const dev = sh(`cat ${dir}/g.fa | mamba-dna predict --checkpoint ${dir}/cls /dev/stdin`);
    expect(dev.code, dev.err).toBe(0);
    expect(rows(dev.out)[0]!.slice(1)).toEqual(want);
    if (hasBgzip) {
      const bg = sh(`bgzip -c ${dir}/g.fa | mamba-dna predict --checkpoint ${dir}/cls -`);
      expect(bg.code, bg.err).toBe(0);
      expect(rows(bg.out)[0]!.slice(1)).toEqual(want);
    }
  });

  it('predict takes a folder of FASTA files', () => {
    const r = cli('dna', ['predict', '--checkpoint', join(dir, 'cls'), dir]);
    expect(r.code, r.err).toBe(0);
    expect(rows(r.out).map((x) => x[0]!.replace(`${dir}/`, ''))).toEqual([
      'ac-test.fa:ac_test',
      'ac-train.fa:ac_train',
      'ac-valid.fa:ac_valid',
      'g.fa:ac_test',
      'gt-test.fa:gt_test',
      'gt-train.fa:gt_train',
      'gt-valid.fa:gt_valid',
      'piece.fa:ac_test:1-300',
    ]);
  });

  it('tokenize reads stdin and writes stdout; the bytes equal those of the file', () => {
    const file = cli('dna', ['tokenize', join(dir, 'g.fa'), 'ac_test:11-70', '-o', join(dir, 'x.tok')]);
    expect(file.code, file.err).toBe(0);
    const piped = cli('dna', ['tokenize', '-', 'ac_test:11-70'], { input: gzipSync(readFileSync(join(dir, 'g.fa'))) });
    expect(piped.code, piped.err).toBe(0);
    expect(Buffer.compare(piped.bytes, readFileSync(join(dir, 'x.tok')))).toBe(0);
    expect(piped.err).toMatch(/^stdin ac_test:11-70: 60 tokens -> stdout\n$/);
  });

  it('commands that need random access refuse a stream in one line saying what to do', () => {
    const fa = readFileSync(join(dir, 'g.fa'));
    const region = cli('dna', ['region', '-', 'ac_test:1-10'], { input: fa });
    expect(region.code).toBe(1);
    expect(region.err).toBe(
      'mamba-dna: error: stdin: region needs an indexed FASTA (it reads parts of it through its .fai), ' +
        'and a stream cannot be indexed: save it to a file first\n',
    );
    const index = cli('dna', ['index', '-'], { input: fa });
    expect(index.code).toBe(1);
    expect(index.err).toMatch(
      /^mamba-dna: error: stdin: index writes FILE.fai next to a FASTA file, and a stream cannot be indexed/,
    );
    const train = cli('dna', ['train', '--data', '-', '--out', join(dir, 'never')], { input: fa });
    expect(train.code).toBe(1);
    expect(train.err).toMatch(
      /^mamba-dna: error: stdin: training and evaluation read random windows of the data.*save it to a file first\n$/,
    );
    const ev = cli('dna', ['eval', '--checkpoint', join(dir, 'cls'), '--data', '-'], { input: fa });
    expect(ev.code).toBe(1);
    expect(ev.err).toMatch(/^mamba-dna: error: stdin: training and evaluation read random windows/);
  });

  it('a reader that stops early ends the writer quietly', () => {
    const names = Array.from({ length: 2000 }, () => 'ac_test').join(' ');
    const r = sh(
      `set +o pipefail; mamba-dna region ${dir}/g.fa ${names} | head -c 10; echo " status \${PIPESTATUS[0]}"`,
    );
    expect(r.out).toMatch(/^>ac_test\n[AC] status (0|141)\n$/);
    expect(r.err).toBe('');
  });
});

describe('audio pipes', () => {
  let cls = '';
  const wavAt = (rate: number, seconds: number, hz = 440) =>
    encodeWav(
      Float32Array.from(
        { length: Math.round(rate * seconds) },
        (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / rate),
      ),
      rate,
      16,
    );
  beforeAll(() => {
    cls = join(dir, 'audio-cls');
    const t = cli('audio', [
      'train',
      '--seq-len',
      '1000',
      '--batch',
      '2',
      '--steps',
      '1',
      '--eval-windows',
      '1',
      '--device',
      'cpu',
      '--out',
      cls,
    ]);
    if (t.code !== 0) throw new Error(t.err);
  });

  it('tokenize - | detokenize -: a WAV through two pipes comes back at its rate', () => {
    writeFileSync(join(dir, 'tone8k.wav'), wavAt(8000, 0.5));
    const r = sh(
      `cat ${dir}/tone8k.wav | mamba-audio tokenize - --rate 8000 | mamba-audio detokenize - > ${dir}/back.wav`,
    );
    expect(r.code, r.err).toBe(0);
    const back = readFileSync(join(dir, 'back.wav'));
    expect(back.readUInt32LE(24)).toBe(8000); // the fmt chunk's rate
    expect(back.length).toBe(44 + 2 * 4000);
  });

  it('predict - reads a WAV from stdin; a long WAV gets --windows windows', () => {
    const long = join(dir, 'long.wav');
    writeFileSync(long, wavAt(16000, 10));
    const direct = cli('audio', ['predict', '--checkpoint', cls, long, '--windows', '5', '--format', 'json']);
    expect(direct.code, direct.err).toBe(0);
    const d = JSON.parse(direct.out) as { item: string; windows: number; probabilities: Record<string, number> }[];
    expect(d[0]!.windows).toBe(5);
    const piped = cli('audio', ['predict', '--checkpoint', cls, '-', '--windows', '5', '--format', 'json'], {
      input: readFileSync(long),
    });
    expect(piped.code, piped.err).toBe(0);
    const p = JSON.parse(piped.out) as typeof d;
    expect(p[0]!.item).toBe('stdin');
    expect(p[0]!.probabilities).toEqual(d[0]!.probabilities);
    const three = JSON.parse(
      cli('audio', ['predict', '--checkpoint', cls, long, '--windows', '3', '--format', 'json']).out,
    ) as typeof d;
    expect(three[0]!.windows).toBe(3);
  });

  it.skipIf(!hasSox)('a WAV streamed by sox (no length in its header) and a FLAC file (needs sox)', () => {
    const wav = join(dir, 'tone16k.wav');
    writeFileSync(wav, wavAt(16000, 1.5));
    const want = cli('audio', ['predict', '--checkpoint', cls, wav, '--format', 'json']);
    const streamed = sh(`sox ${wav} -t wav - | mamba-audio predict --checkpoint ${cls} - --format json`);
    expect(streamed.code, streamed.err).toBe(0);
    expect(JSON.parse(streamed.out)[0].probabilities).toEqual(JSON.parse(want.out)[0].probabilities);
    const flac = join(dir, 'tone16k.flac');
    expect(sh(`sox ${wav} ${flac}`).code).toBe(0);
    const f = cli('audio', ['predict', '--checkpoint', cls, flac, '--format', 'json']);
    expect(f.code, f.err).toBe(0);
    expect(JSON.parse(f.out)[0].probabilities).toEqual(JSON.parse(want.out)[0].probabilities);
  });

  it('train --data - is refused: it needs random access', () => {
    const r = cli('audio', ['train', '--task', 'lm', '--data', '-', '--out', join(dir, 'never')], {
      input: wavAt(16000, 0.1),
    });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/stdin: training and evaluation read random windows/);
  });
});
