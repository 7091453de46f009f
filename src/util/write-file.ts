// The one way the toolkit writes a file (indexes, checkpoints, tokens, WAV, FASTA): a regular file or a new
// path is written through a temp file in the same folder and renamed over it, so a crash never leaves it
// half-written; an existing symlink is followed and its target replaced (the link stays a link); a FIFO,
// a device or a socket is written in place, never replaced by a regular file. Errors name the given path,
// never the temp file.
import {
  closeSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readlinkSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** A path that cannot be written (a folder, a missing parent folder, no permission); the message names it. */
export class OutputError extends Error {
  override name = 'OutputError';
}

/** Where bytes for a path go: replaced by rename (regular or new file) or written in place (FIFO, device). */
export interface OutputTarget {
  kind: 'new' | 'regular' | 'special';
  /** the file actually written: the path itself, or the end of its symlink chain */
  path: string;
  /** stats of the existing file (regular or special) */
  stats?: Stats;
}

const MAX_LINKS = 40; // as the kernel's ELOOP limit

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** The reason a path cannot be written, in words, from a file-system error code. */
export function describeWriteError(path: string, e: unknown): string {
  const dir = dirname(resolve(path));
  switch (code(e)) {
    case 'EACCES':
    case 'EPERM':
      return `${path}: cannot write it (permission denied in ${dir})`;
    case 'EROFS':
      return `${path}: cannot write it (read-only file system)`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `${path}: cannot write it (no space left on the device)`;
    case 'EISDIR':
      return `${path} is a folder; give a file name`;
    case 'ENOTDIR':
    case 'ENOENT':
      return missingFolder(path) ?? `${path}: cannot write it (${code(e)})`;
    default:
      return `${path}: cannot write it (${(e as Error)?.message ?? String(e)})`;
  }
}

/** Why the folder of `path` cannot hold it (missing, or a file), or undefined when it is a folder. */
function missingFolder(path: string): string | undefined {
  const dir = dirname(resolve(path));
  try {
    if (!statSync(dir).isDirectory()) return `${path}: ${dir} is not a folder`;
    return undefined;
  } catch (e) {
    if (code(e) === 'ENOTDIR') return `${path}: a part of ${dir} is a file, not a folder`;
    return `${path}: the folder ${dir} does not exist`;
  }
}

/** Resolves what writing `path` would touch, or throws OutputError saying why it cannot be written. */
export function outputTarget(path: string): OutputTarget {
  let p = path;
  for (let hops = 0; hops <= MAX_LINKS; hops++) {
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch (e) {
      if (code(e) !== 'ENOENT' && code(e) !== 'ENOTDIR') throw new OutputError(describeWriteError(path, e));
      const why = missingFolder(p);
      if (why) throw new OutputError(p === path ? why : `${path} links to ${p}; ${why}`);
      return { kind: 'new', path: p };
    }
    if (st.isSymbolicLink()) {
      let followed: Stats | undefined;
      try {
        followed = statSync(p);
      } catch {
        // a dangling link: create what it points to
        p = resolve(dirname(p), readlinkSync(p));
        continue;
      }
      if (followed.isFile()) return { kind: 'regular', path: realpathSync(p), stats: followed };
      if (followed.isDirectory()) throw new OutputError(`${path} is a folder (through a symlink); give a file name`);
      // a link to a FIFO, device or socket, e.g. /dev/stdout -> /proc/self/fd/1: write through the link
      return { kind: 'special', path: p, stats: followed };
    }
    if (st.isDirectory()) {
      throw new OutputError(`${path} is a folder; give a file name${p === path ? '' : ` (it links to ${p})`}`);
    }
    if (st.isFile()) return { kind: 'regular', path: p, stats: st };
    return { kind: 'special', path: p, stats: st };
  }
  throw new OutputError(`${path}: too many levels of symbolic links`);
}

function writeAll(fd: number, data: Uint8Array): void {
  let at = 0;
  while (at < data.length) at += writeSync(fd, data, at, data.length - at);
}

/**
 * Writes `data` to `path` (see the file comment): atomically for regular files and new paths, in place
 * for FIFOs and devices. Throws OutputError naming `path` when it cannot be written.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const target = outputTarget(path);
  if (target.kind === 'special') {
    let fd: number;
    try {
      fd = openSync(target.path, 'w');
    } catch (e) {
      throw new OutputError(describeWriteError(path, e));
    }
    try {
      writeAll(fd, bytes);
    } catch (e) {
      throw new OutputError(describeWriteError(path, e));
    } finally {
      closeSync(fd);
    }
    return;
  }
  const tmp = resolve(dirname(target.path), `.${basename(target.path)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    // keep the permission bits of the file being replaced (new files get the usual 0666 & ~umask)
    fd = openSync(tmp, 'wx', target.stats ? target.stats.mode & 0o7777 : 0o666);
    writeAll(fd, bytes);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target.path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw new OutputError(describeWriteError(path, e));
  }
}

/** True when `path` is the same open file as file descriptor `fd` (e.g. /dev/stdout, /proc/self/fd/1). */
export function isSameFileAs(path: string, fd: number): boolean {
  try {
    const a = statSync(path),
      b = fstatSync(fd);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}
