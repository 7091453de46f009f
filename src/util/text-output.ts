// An output file written through a buffer into a temp file beside it and renamed into place on close(),
// so a failed or interrupted command never leaves a half-written result under the requested name.
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

export class AtomicOutput {
  readonly path: string;
  readonly #tmp: string;
  #fd: number;
  #parts: string[] = [];
  #pending = 0;

  constructor(path: string) {
    this.path = path;
    this.#tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
    this.#fd = openSync(this.#tmp, 'w');
  }

  write(text: string): void {
    this.#parts.push(text);
    this.#pending += text.length;
    if (this.#pending >= 1 << 20) this.flush();
  }

  writeBytes(bytes: Uint8Array): void {
    this.flush();
    let off = 0;
    while (off < bytes.length) off += writeSync(this.#fd, bytes, off, bytes.length - off);
  }

  flush(): void {
    if (!this.#parts.length) return;
    this.#pending = 0;
    const b = Buffer.from(this.#parts.join(''), 'utf8');
    this.#parts = [];
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off);
  }

  close(): void {
    this.flush();
    closeSync(this.#fd);
    renameSync(this.#tmp, this.path);
  }

  /** Drops the temp file (after an error). */
  abort(): void {
    try {
      closeSync(this.#fd);
    } catch {
      /* closed already */
    }
    try {
      unlinkSync(this.#tmp);
    } catch {
      /* gone already */
    }
  }
}
