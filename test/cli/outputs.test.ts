// Outputs as Unix tools treat them: a symlink is written through (the link stays, its target changes),
// a FIFO or device is written in place and never replaced by a regular file, `-` and /dev/stdout are
// stdout, and a path that cannot be written fails in one line naming it (never a temp file).
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/util/write-file.js';
import { bin, cli, requireDist, sh } from './run-cli.js';

let dir: string;
let fa: string;
// the tokens of c1:1-4 (ACGT) and of all of c1
const TOK4 = [4, 5, 6, 7];
beforeAll(() => {
  requireDist();
  dir = mkdtempSync(join(tmpdir(), 'mamba-outputs-'));
  fa = join(dir, 'g.fa');
  writeFileSync(fa, '>c1\nACGTACGTAC\nGTACG\n>c2\nAAAA\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const noTemps = (d: string) => readdirSync(d).filter((n) => n.endsWith('.tmp') || n.includes('.tmp-'));

describe('outputs', () => {
  it('a symlink is written through: the link stays a link and its target gets the bytes (with --force)', () => {
    const tgt = join(dir, 'tgt.tok'),
      link = join(dir, 'link.tok');
    writeFileSync(tgt, 'old');
    symlinkSync('tgt.tok', link);
    const refused = cli('dna', ['tokenize', fa, 'c1:1-4', '-o', link]);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(`mamba-dna: error: -o ${link} already exists; pass -f/--force to overwrite it\n`);
    const r = cli('dna', ['tokenize', fa, 'c1:1-4', '-o', link, '-f']);
    expect(r.code, r.err).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('tgt.tok');
    expect([...readFileSync(tgt)]).toEqual(TOK4);
    // a dangling link: its target is created
    const dangling = join(dir, 'dangling.tok');
    symlinkSync('made-by-link.tok', dangling);
    expect(cli('dna', ['tokenize', fa, 'c1:1-4', '-o', dangling]).code).toBe(0);
    expect(lstatSync(dangling).isSymbolicLink()).toBe(true);
    expect([...readFileSync(join(dir, 'made-by-link.tok'))]).toEqual(TOK4);
    expect(noTemps(dir)).toEqual([]);
  });

  it('a FIFO is written in place and stays a FIFO', async () => {
    const fifo = join(dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo]);
    const got: Buffer[] = [];
    reader.stdout.on('data', (b: Buffer) => got.push(b));
    const done = new Promise((r) => reader.on('close', r));
    const w = spawn(process.execPath, [bin('dna'), 'tokenize', fa, 'c1:1-4', '-o', fifo], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const code = await new Promise((r) => w.on('close', r));
    await done;
    expect(code).toBe(0);
    expect([...Buffer.concat(got)]).toEqual(TOK4);
    expect(statSync(fifo).isFIFO()).toBe(true);
  });

  it('-o -, no -o, /dev/stdout and /dev/null: stdout (or the device) is written, never replaced', () => {
    for (const args of [['-o', '-'], []]) {
      const r = cli('dna', ['tokenize', fa, 'c1:1-4', ...args]);
      expect(r.code, r.err).toBe(0);
      expect([...r.bytes]).toEqual(TOK4);
      expect(r.err).toMatch(/4 tokens -> stdout/);
    }
    const p = sh(`mamba-dna tokenize ${fa} c1:1-4 -o /dev/stdout | od -An -tu1`);
    expect(p.code, p.err).toBe(0);
    expect(p.out.trim().split(/\s+/).map(Number)).toEqual(TOK4);
    // stdout redirected to a file: the shell's file gets the bytes (not a file renamed over it)
    const f = join(dir, 'redirected.tok');
    expect(sh(`mamba-dna tokenize ${fa} c1:1-4 -o /dev/stdout > ${f}`).code).toBe(0);
    expect([...readFileSync(f)]).toEqual(TOK4);
    expect(cli('dna', ['tokenize', fa, 'c1:1-4', '-o', '/dev/null']).code).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    // audio WAV to stdout
    const a = cli('audio', ['detokenize', '--raw', '--rate', '8000', '-', '-o', '-'], {
      input: Buffer.alloc(800, 128),
    });
    expect(a.code, a.err).toBe(0);
    expect(a.bytes.subarray(0, 4).toString()).toBe('RIFF');
    expect(a.bytes.length).toBe(44 + 1600);
  });

  it('a folder, a missing folder, a file as a folder, an unwritable folder: one line naming the path, nothing left', () => {
    const sub = join(dir, 'folder');
    mkdirSync(sub);
    const cases: [string, RegExp][] = [
      [sub, new RegExp(`^mamba-dna: error: -o ${sub} is a folder; give a file name\n$`)],
      [
        join(dir, 'nope', 'x.tok'),
        new RegExp(`^mamba-dna: error: -o ${dir}/nope/x.tok: the folder ${dir}/nope does not exist\n$`),
      ],
      [join(fa, 'x.tok'), new RegExp(`^mamba-dna: error: -o ${fa}/x.tok: ${fa} is not a folder\n$`)],
    ];
    for (const [out, want] of cases) {
      const r = cli('dna', ['tokenize', fa, 'c1', '-o', out]);
      expect(r.code, out).toBe(1);
      expect(r.err).toMatch(want);
    }
    const g = cli('dna', ['region', fa, 'c1', '-o', sub]);
    expect(g.err).toBe(`mamba-dna: error: -o ${sub} is a folder; give a file name\n`);
    const a = cli('audio', ['detokenize', '--raw', '--rate', '8000', '-', '-o', join(dir, 'nope', 'x.wav')], {
      input: Buffer.alloc(8, 128),
    });
    expect(a.code).toBe(1);
    expect(a.err).toBe(`mamba-audio: error: -o ${dir}/nope/x.wav: the folder ${dir}/nope does not exist\n`);
    // --out of a run folder naming a file
    const t = cli('dna', ['train', '--out', fa]);
    expect(t.code).toBe(1);
    expect(t.err).toBe(`mamba-dna: error: --out ${fa} is a file, not a folder; give a folder\n`);
    expect(noTemps(dir)).toEqual([]);
  });

  it('an unwritable folder: permission denied, naming the path', () => {
    // root may write anywhere a mode allows: there, /sys (sysfs refuses new files even to root) stands in
    const root = process.getuid?.() === 0;
    const ro = root ? '/sys' : join(dir, 'ro');
    if (!root) {
      mkdirSync(ro);
      chmodSync(ro, 0o555);
    }
    const r = cli('dna', ['tokenize', fa, 'c1', '-o', join(ro, 'x.tok')]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`mamba-dna: error: ${ro}/x.tok: cannot write it (permission denied in ${ro})\n`);
    if (!root) chmodSync(ro, 0o755);
  });

  it('writeFileAtomic keeps the mode of the file it replaces and leaves no temp file on failure', () => {
    const f = join(dir, 'mode.bin');
    writeFileSync(f, 'x');
    chmodSync(f, 0o640);
    writeFileAtomic(f, Uint8Array.of(1, 2, 3));
    expect(statSync(f).mode & 0o777).toBe(0o640);
    expect([...readFileSync(f)]).toEqual([1, 2, 3]);
    expect(() => writeFileAtomic(join(dir, 'none', 'x'), 'y')).toThrow(/none does not exist/);
    expect(existsSync(join(dir, 'none'))).toBe(false);
  });
});
