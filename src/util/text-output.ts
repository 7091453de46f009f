// A streamed output file, by the rules of src/util/write-file.ts: a regular file or a new path is written
// through a temp file beside it and renamed into place on close(), so a failed or interrupted command never
// leaves a half-written result under the requested name; a symlink is followed (its target replaced); a FIFO
// or device is written in place; `-` is stdout.
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { OutputError, describeWriteError, outputTarget } from './write-file.js';

export class AtomicOutput {
  readonly path: string;
  /** the temp file renamed over the target on close(); undefined when writing in place (stdout, FIFO, device) */
  readonly #tmp?: string;
  readonly #target: string;
  #fd: number;
  #parts: string[] = [];
  #pending = 0;

  constructor(path: string) {
    this.path = path;
    if (path === '-') {
      this.#target = path;
      this.#fd = 1;
      return;
    }
    const t = outputTarget(path);
    this.#target = t.path;
    try {
      if (t.kind === 'special') {
        this.#fd = openSync(t.path, 'w');
      } else {
        this.#tmp = join(dirname(t.path), `.${basename(t.path)}.${process.pid}.${Date.now()}.tmp`);
        this.#fd = openSync(this.#tmp, 'w');
      }
    } catch (e) {
      throw new OutputError(describeWriteError(path, e));
    }
  }

  write(text: string): void {
    this.#parts.push(text);
    this.#pending += text.length;
    if (this.#pending >= 1 << 20) this.flush();
  }

  /** The descriptor written (1 for stdout), for a writer on another thread; close() and abort() stay here. */
  get fd(): number {
    return this.#fd;
  }

  writeBytes(bytes: Uint8Array): void {
    this.flush();
    writeAll(this.#fd, bytes);
  }

  flush(): void {
    if (!this.#parts.length) return;
    this.#pending = 0;
    const b = Buffer.from(this.#parts.join(''), 'utf8');
    this.#parts = [];
    writeAll(this.#fd, b);
  }

  close(): void {
    this.flush();
    if (this.#fd === 1) return;
    closeSync(this.#fd);
    if (this.#tmp) renameSync(this.#tmp, this.#target);
  }

  /** Drops the temp file (after an error). */
  abort(): void {
    if (this.#fd === 1) return;
    try {
      closeSync(this.#fd);
    } catch {
      /* closed already */
    }
    if (!this.#tmp) return;
    try {
      unlinkSync(this.#tmp);
    } catch {
      /* gone already */
    }
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes every byte of `b` to `fd`. Standard output may be a pipe that Node has made non-blocking: a write
 * the reader is not ready for fails with EAGAIN, so wait a millisecond and go on (EPIPE, a reader gone, is
 * thrown: the CLI exits quietly with 141).
 */
export function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) {
    try {
      off += writeSync(fd, b, off, b.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(PAUSE, 0, 0, 1);
    }
  }
}
