// Outside tools and data packages the tests compare with (samtools, bgzip, sox, espeak-ng, Debian example
// data): detection, skip titles that name what is missing, and record/replay of tool runs, so that the
// reference checks stay meaningful on a machine without the tools (test/fixtures/README.md).
//
// Environment:
//   MAMBA_REQUIRE_TOOLS=1    a missing tool or data package fails the test instead of skipping or replaying (CI)
//   MAMBA_RECORD_FIXTURES=1  every live tool run also stores its outputs under test/fixtures/tools/
//   MAMBA_CHECK_RECORDINGS=1 a live tool run with no recording fails: a machine without the tool would (CI)
//   MAMBA_TEST_WITHOUT=a,b   treat these tools or data packages as missing (to try a bare machine)
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, delimiter, extname, isAbsolute, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { expect } from 'vitest';

/** Debian package that provides each tool or data set, for the messages. */
export const PROVIDERS: Record<string, string> = {
  samtools: 'samtools',
  bgzip: 'tabix',
  sox: 'sox',
  soxi: 'sox',
  'espeak-ng': 'espeak-ng',
  xz: 'xz-utils',
  'ragout-examples': 'ragout-examples',
  'kleborate-examples': 'kleborate-examples',
};

/** Data packages are found by a file they install (the paths src/data/dna/datasets.ts reads). */
const DATA_FILES: Record<string, string[]> = {
  'ragout-examples': [
    '/usr/share/doc/ragout/examples/H.Pylori/references/G27.fasta.gz',
    '/usr/share/doc/ragout-examples/examples/H.Pylori/references/G27.fasta.gz',
  ],
  'kleborate-examples': ['/usr/share/doc/kleborate/examples/data', '/usr/share/doc/kleborate-examples/examples/data'],
};

const hidden = new Set((process.env.MAMBA_TEST_WITHOUT ?? '').split(',').filter(Boolean));
const requireAll = process.env.MAMBA_REQUIRE_TOOLS === '1';
const recording = process.env.MAMBA_RECORD_FIXTURES === '1';
const checkRecordings = process.env.MAMBA_CHECK_RECORDINGS === '1';
const found = new Map<string, boolean>();

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

/** Whether a tool (on PATH) or a data package (DATA_FILES) is available. */
export function available(name: string): boolean {
  if (hidden.has(name)) return false;
  let ok = found.get(name);
  if (ok === undefined) {
    ok = DATA_FILES[name] ? DATA_FILES[name].some((f) => existsSync(f)) : onPath(name);
    found.set(name, ok);
  }
  return ok;
}

function installHint(missing: string[]): string {
  return `apt-get install ${[...new Set(missing.map((m) => PROVIDERS[m] ?? m))].join(' ')}`;
}

export interface Needs {
  missing: string[];
  skip: boolean;
  /** The suite's title, with "(skipped: needs X, Y)" appended when something is missing. */
  title(name: string): string;
}

/**
 * For `describe.skipIf(n.skip)(n.title('...'), ...)`: what a suite needs that cannot be replayed (a recipe that
 * runs espeak-ng itself, a Debian data package). Under MAMBA_REQUIRE_TOOLS=1 a missing one throws, failing the file.
 */
export function needs(...names: string[]): Needs {
  const missing = names.filter((n) => !available(n));
  if (missing.length > 0 && requireAll) {
    throw new Error(`MAMBA_REQUIRE_TOOLS=1 but ${missing.join(', ')} missing (${installHint(missing)})`);
  }
  const title = (name: string) => (missing.length ? `${name} (skipped: needs ${missing.join(', ')})` : name);
  return { missing, skip: missing.length > 0, title };
}

// ---- record / replay ----------------------------------------------------------------------------------------

export const FIXTURES = join(import.meta.dirname, 'fixtures', 'tools');

/** Outputs larger than this are recorded as a SHA-256 only (compare with expectSameAsTool). */
const MAX_STORED_STDOUT = 1 << 20;

interface Recording {
  command: string; // readable: file arguments by their base names
  inputs: Record<string, string>; // base name -> sha256
  stdout?: string; // file under FIXTURES
  stdoutSha256: string;
  files: (string | null)[]; // the output files in the order of the command's outputs, under FIXTURES
}

export interface ToolRun {
  /** Bytes on standard input. */
  input?: string | Buffer;
  /** Files the tool writes that are not named in args (e.g. the .fai of `samtools faidx f`). */
  outputs?: string[];
  /** Write standard output to this file (as a shell redirect would). */
  stdoutTo?: string;
  /** Run live only if these tools are there too, so that a chain of tools is either all live or all replayed. */
  liveOnlyWith?: string[];
  /** Record only the SHA-256 of standard output (large outputs compared by expectSameAsTool). */
  digestOnly?: boolean;
}

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const isFile = (p: string) => isAbsolute(p) && existsSync(p) && statSync(p).isFile();

/** The run's key: tool, arguments with input files by extension and content, outputs by extension, and stdin. */
function describeRun(tool: string, args: string[], opts: ToolRun) {
  const outputs = new Set([...(opts.outputs ?? []), ...(opts.stdoutTo ? [opts.stdoutTo] : [])]);
  const inputs: Record<string, string> = {};
  const keyArgs: string[] = [];
  const shown: string[] = [];
  for (const a of args) {
    if (!outputs.has(a) && isFile(a)) {
      const h = sha256(readFileSync(a));
      inputs[basename(a)] = h;
      keyArgs.push(`<in${extname(a)}:${h}>`); // the extension too: sox picks formats by it
      shown.push(basename(a));
    } else if (isAbsolute(a)) {
      outputs.add(a); // an absolute path that is not there yet: the tool writes it
      keyArgs.push(`<out${extname(a)}>`);
      shown.push(basename(a));
    } else {
      keyArgs.push(a);
      shown.push(/^[\w.,:/=+-]+$/.test(a) ? a : `'${a}'`);
    }
  }
  const extra = (opts.outputs ?? []).filter((o) => !args.includes(o)).map((o) => extname(o));
  const stdin = opts.input === undefined ? '' : sha256(opts.input);
  const key = sha256(JSON.stringify([tool, keyArgs, extra, stdin])).slice(0, 16);
  let command = [tool, ...shown].join(' ');
  if (opts.input !== undefined) command += ' < stdin';
  if (opts.stdoutTo) command += ` > ${basename(opts.stdoutTo)}`;
  return { key, command, inputs, outputs: [...outputs] };
}

/** Whether runTool(tool, ...) runs the tool itself (true) or replays a recording (false). */
export function isLive(tool: string, opts: ToolRun = {}): boolean {
  return [tool, ...(opts.liveOnlyWith ?? [])].every(available);
}

/**
 * Runs an outside tool and returns its standard output. Where the tool is missing, the recorded run with the
 * same arguments and the same input bytes is replayed instead: its output files are written where the tool
 * would write them. A run with no recording fails with the command that would record it.
 */
export function runTool(tool: string, args: string[], opts: ToolRun = {}): Buffer {
  const run = describeRun(tool, args, opts);
  const recFile = join(FIXTURES, `${run.key}.json`);
  if (isLive(tool, opts)) {
    const out = execFileSync(tool, args, { input: opts.input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });
    if (opts.stdoutTo) writeFileSync(opts.stdoutTo, out);
    if (recording) record(run, recFile, out, opts);
    else if (checkRecordings && !existsSync(recFile)) {
      throw new Error(
        `no recording of \`${run.command}\` for these inputs, so the test fails where ${tool} is missing; ` +
          'record it (test/fixtures/README.md)',
      );
    }
    return out;
  }
  const missing = [tool, ...(opts.liveOnlyWith ?? [])].filter((t) => !available(t));
  if (requireAll) throw new Error(`MAMBA_REQUIRE_TOOLS=1 but ${missing.join(', ')} missing (${installHint(missing)})`);
  if (!existsSync(recFile)) {
    throw new Error(
      `${missing.join(', ')} not installed and no recording of \`${run.command}\` with these inputs ` +
        `(record it where the tool is installed: MAMBA_RECORD_FIXTURES=1 npx vitest run <this test file>)`,
    );
  }
  const rec = JSON.parse(readFileSync(recFile, 'utf8')) as Recording;
  run.outputs.forEach((o, i) => {
    const stored = rec.files[i];
    if (stored) writeFileSync(o, load(stored));
  });
  if (opts.stdoutTo) return readFileSync(opts.stdoutTo);
  if (rec.stdout === undefined && rec.stdoutSha256 !== sha256('')) {
    throw new Error(`the recording of \`${run.command}\` keeps only a digest of its output: use expectSameAsTool`);
  }
  return rec.stdout === undefined ? Buffer.alloc(0) : load(rec.stdout);
}

/** SHA-256 of the tool's standard output (live, or from its recording, which may keep only the digest). */
export function toolOutputSha256(tool: string, args: string[], opts: ToolRun = {}): string {
  const run = describeRun(tool, args, opts);
  const recFile = join(FIXTURES, `${run.key}.json`);
  if (isLive(tool, opts) || !existsSync(recFile)) return sha256(runTool(tool, args, opts));
  return (JSON.parse(readFileSync(recFile, 'utf8')) as Recording).stdoutSha256;
}

/** Expects text (latin1) equal to a tool's output: in full where the tool runs, by SHA-256 where it is replayed. */
export function expectSameAsTool(actual: string, tool: string, args: string[], opts: ToolRun = {}): void {
  const o = { ...opts, digestOnly: true };
  if (isLive(tool, o)) expect(actual).toBe(runTool(tool, args, o).toString('latin1'));
  else expect(sha256(Buffer.from(actual, 'latin1'))).toBe(toolOutputSha256(tool, args, o));
}

/** Recorded bytes are stored gzip-compressed (NAME.gz) where that makes them smaller, else as they are (NAME.raw). */
function store(name: string, data: Buffer): string {
  const z = gzipSync(data, { level: 9 });
  const small = z.length < 0.9 * data.length;
  const file = small ? `${name}.gz` : `${name}.raw`;
  writeFileSync(join(FIXTURES, file), small ? z : data);
  return file;
}

function load(file: string): Buffer {
  const data = readFileSync(join(FIXTURES, file));
  return file.endsWith('.gz') ? gunzipSync(data) : data;
}

function record(run: ReturnType<typeof describeRun>, recFile: string, out: Buffer, opts: ToolRun): void {
  mkdirSync(FIXTURES, { recursive: true });
  const rec: Recording = { command: run.command, inputs: run.inputs, stdoutSha256: sha256(out), files: [] };
  if (out.length > 0 && out.length <= MAX_STORED_STDOUT && !opts.stdoutTo && !opts.digestOnly) {
    rec.stdout = store(`${run.key}.stdout`, out);
  }
  rec.files = run.outputs.map((o, i) =>
    existsSync(o) ? store(`${run.key}-${i}-${basename(o)}`, readFileSync(o)) : null,
  );
  writeFileSync(recFile, JSON.stringify(rec, null, 1) + '\n');
}
