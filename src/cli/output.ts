// Where the CLIs' outputs go: `-` (and /dev/stdout or anything that is our stdout) is standard output,
// anything else a file written by src/util/write-file.ts (atomic for regular files, in place for FIFOs
// and devices, through symlinks). Checks run before the work, so a bad -o fails in a second, not after
// an hour, and the message names the user's path.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { OutputError, isSameFileAs, outputTarget, writeFileAtomic } from '../util/write-file.js';
import { UserError } from './errors.js';

/** The path that means standard input or output. */
export const STDIO = '-';

/** True when writing `path` means writing our standard output. */
export function isStdout(path: string): boolean {
  return path === STDIO || isSameFileAs(path, 1);
}

/** An output path as the commands keep it: `-` stays standard output, anything else is made absolute. */
export function outputPath(path: string): string {
  return path === STDIO ? STDIO : resolve(path);
}

/** How messages name an output. */
export function outputName(path: string): string {
  return path === STDIO ? 'stdout' : path;
}

export interface OutputCheck {
  /** overwrite an existing regular file */
  force?: boolean;
  /** the bytes are binary: refuse a terminal as stdout */
  binary?: boolean;
  /** the flag that named the path, for messages (default -o) */
  flag?: string;
}

/**
 * Checks, before any work, that `path` can be written: its folder exists, it is not a folder, an existing
 * regular file (or a symlink to one) needs --force. FIFOs and devices are written without --force.
 */
export function checkOutput(path: string, opts: OutputCheck = {}): void {
  const flag = opts.flag ?? '-o';
  if (isStdout(path)) {
    if (opts.binary && process.stdout.isTTY) {
      throw new UserError(`refusing to write binary data to a terminal; give ${flag} FILE or redirect stdout`);
    }
    return;
  }
  let kind: string;
  try {
    kind = outputTarget(path).kind;
  } catch (e) {
    if (e instanceof OutputError) throw new UserError(`${flag} ${e.message}`);
    throw e;
  }
  if (kind === 'regular' && !opts.force) {
    throw new UserError(`${flag} ${path} already exists; pass -f/--force to overwrite it`);
  }
}

/** Writes `data` to `path` (stdout for `-`); the file-system errors become one line naming `path`. */
export async function writeOutput(path: string, data: Uint8Array | string): Promise<void> {
  if (isStdout(path)) return writeStdout(data);
  try {
    writeFileAtomic(path, data);
  } catch (e) {
    if (e instanceof OutputError) throw new UserError(e.message);
    throw e;
  }
}

/** Writes to stdout and waits until the bytes are handed to the OS (so a later exit loses nothing). */
export function writeStdout(data: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Checks a folder output (train --out, dataset build --out): an existing path must be a folder. A missing
 * one is made later (with its parents).
 */
export function checkOutputFolder(dir: string, flag = '--out'): void {
  if (dir === STDIO) throw new UserError(`${flag} names a folder; ${STDIO} (stdout) cannot hold one`);
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new UserError(`${flag} ${dir} is a file, not a folder; give a folder`);
  }
}
