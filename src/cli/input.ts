// Inputs that are streams: `-` is standard input, and /dev/stdin, /dev/fd/N (a shell's <(...)) or a FIFO
// are streams too. Commands that read an input once (predict, tokenize, detokenize, generate --prompt)
// copy the stream into a temp file (gunzipped when it is gzip or bgzip) and read that; commands that need
// random access to an indexed file (region, index, train, eval) say so instead.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from './errors.js';
import { STDIO } from './output.js';

/** True for `-` and for paths that are not regular files or folders (pipes, terminals, sockets). */
export function isStreamInput(path: string): boolean {
  if (path === STDIO) return true;
  try {
    const st = statSync(path);
    return !st.isFile() && !st.isDirectory();
  } catch {
    return false;
  }
}

/** How messages name an input. */
export function inputName(path: string): string {
  return path === STDIO ? 'stdin' : path;
}

/**
 * Refuses a stream where a command needs random access. `need` says what, e.g. "region needs an indexed
 * FASTA"; the message adds what to do.
 */
export function refuseStreamInput(path: string, need: string): void {
  if (isStreamInput(path)) {
    throw new UserError(`${inputName(path)}: ${need}, and a stream cannot be indexed: save it to a file first`);
  }
}

/** Reads all of a stream input (stdin for `-`). */
export async function readStream(path: string): Promise<Buffer> {
  const src = path === STDIO ? process.stdin : createReadStream(path);
  const chunks: Buffer[] = [];
  try {
    for await (const c of src) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  } catch (e) {
    throw new UserError(`${inputName(path)}: cannot read (${(e as Error).message})`);
  }
  return Buffer.concat(chunks);
}

const spools: string[] = [];
process.on('exit', () => {
  for (const d of spools) rmSync(d, { recursive: true, force: true });
});

export interface SpoolOptions {
  /** gunzip gzip or bgzip input (FASTA); WAV and token files are taken as they are */
  gunzip?: boolean;
  /** the temp file's name (its suffix tells readers what it holds, e.g. stdin.fa) */
  name: string;
}

/**
 * A path that reads like `path`: the path itself for files and folders; for a stream, a temp file holding
 * all of it (removed at exit). The stream must end (a terminal needs Ctrl-D).
 */
export async function localInput(path: string, opts: SpoolOptions): Promise<string> {
  if (!isStreamInput(path)) return path;
  let bytes = await readStream(path);
  if (bytes.length === 0) throw new UserError(`${inputName(path)}: empty input`);
  if (opts.gunzip && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes); // one or many members: plain gzip and bgzip alike
    } catch (e) {
      throw new UserError(`${inputName(path)}: gzip data is corrupt (${(e as Error).message})`);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'mamba-stdin-'));
  spools.push(dir);
  const file = join(dir, opts.name);
  writeFileSync(file, bytes);
  return file;
}

/** All bytes of a file or stream input. */
export async function readInput(path: string): Promise<Uint8Array> {
  if (isStreamInput(path)) return new Uint8Array(await readStream(path));
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a folder, not a file'
          : `cannot read (${code ?? (e as Error).message})`;
    throw new UserError(`${path}: ${why}`);
  }
}
