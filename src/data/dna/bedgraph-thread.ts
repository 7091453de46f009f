// A BedGraphWriter on a worker thread: the caller (score's chunk loop, which keeps the GPU busy) hands each
// chunk of values over by transfer, no copy, and the worker formats it and writes it to a file descriptor.
// The worker counts the messages it has handled in shared memory. While fewer than MAX_IN_FLIGHT chunks are
// out, add() posts and returns a settled promise without a trip through the event loop, so the caller's loop
// (which blocks on the device between chunks) loses no time; past that (back-pressure from a slow disk or a
// slow stdout reader) it awaits the counter with Atomics.waitAsync, raced against the worker's 'exit' and
// 'error' events. So a worker that dies outside its own error handling (process.exit, an uncaught error, out
// of memory, terminated) makes add() or finish() reject instead of leaving the caller waiting forever. Posts
// to a worker that has died are dropped, but never silently: the counter does not count them, so the next
// wait, at the latest finish()'s, sees the death. A failure the worker catches itself (a write error) is read
// synchronously from a reply port and rethrown on the caller's thread as the error it was, with its code.
// Atomics.waitAsync (Node 16 and later) is typed from ES2024, above this project's target
/// <reference lib="es2024.sharedmemory" />
import { once } from 'node:events';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

/** Chunks handed over but not yet written: enough to cover one being written while the next is produced. */
const MAX_IN_FLIGHT = 3;

/** Slots of the shared counter: messages the worker has handled, and whether it failed. */
export const HANDLED = 0;
export const FAILED = 1;

export interface BedGraphThreadOptions {
  decimals: number;
  perBase: boolean;
  /** text written before the lines (the track line) */
  header: string;
}

/** What the worker receives at start (workerData). */
export interface BedGraphWorkerData extends BedGraphThreadOptions {
  fd: number;
  progress: Int32Array;
  replies: MessagePort;
}

/** What the worker receives per message. */
export type BedGraphMessage = { chrom: string; start: number; values: Float64Array } | { finish: true };

/** A worker error as it crosses threads: enough to rebuild the message and code the CLI maps to an exit. */
export interface WorkerFailure {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

const WORKER = new URL('./bedgraph-thread-worker.js', import.meta.url);

export class BedGraphThread {
  readonly #worker: Worker;
  readonly #progress: Int32Array;
  readonly #replies: MessagePort;
  /** Resolves (never rejects) when the worker exits or errs; #death then says how, unless stop() ended it. */
  readonly #gone: Promise<void>;
  #death?: Error;
  /** The error the worker reported itself, once read from the reply port (it holds one message). */
  #failure?: Error;
  #sent = 0;
  #stopped = false;

  private constructor(worker: Worker, progress: Int32Array, replies: MessagePort) {
    this.#worker = worker;
    this.#progress = progress;
    this.#replies = replies;
    let gone!: () => void;
    this.#gone = new Promise((resolve) => (gone = resolve));
    // listening for 'error' also keeps an uncaught error in the worker from being thrown on this thread
    worker.on('error', (e: Error) => {
      this.#death ??= died(`failed (${String(e?.message ?? e).split('\n')[0]})`, e);
      gone();
    });
    worker.on('exit', (code: number) => {
      if (!this.#stopped) this.#death ??= died(`exited (code ${code})`);
      gone();
      // releases a waitAsync that lost the race to #gone
      Atomics.notify(progress, HANDLED);
    });
  }

  /**
   * Starts the worker writing to `fd` (the caller keeps it: it closes, renames or aborts the output).
   * `script` is for tests only: a worker module that runs bedgraph-thread-worker.js and then dies on cue.
   */
  static async start(fd: number, opts: BedGraphThreadOptions, script: URL = WORKER): Promise<BedGraphThread> {
    const progress = new Int32Array(new SharedArrayBuffer(8));
    const { port1, port2 } = new MessageChannel();
    const data: BedGraphWorkerData = { ...opts, fd, progress, replies: port2 };
    const worker = new Worker(script, { workerData: data, transferList: [port2] });
    const t = new BedGraphThread(worker, progress, port1);
    // the worker says it is ready once its modules are loaded; a load failure or an early exit settles #gone
    await Promise.race([once(worker, 'message'), t.#gone]).catch(() => undefined);
    if (t.#death) {
      port1.close();
      throw t.#death;
    }
    return t;
  }

  /**
   * Hands over values of positions start, start + 1, ... of chrom; `values` is detached (transferred).
   * Settles at once unless MAX_IN_FLIGHT chunks are out; rejects if the worker failed or died.
   */
  async add(chrom: string, start: number, values: Float64Array): Promise<void> {
    this.#check();
    // the common case has no await: no trip through the event loop per chunk
    if (this.#sent - Atomics.load(this.#progress, HANDLED) >= MAX_IN_FLIGHT) {
      await this.#waitUntilInFlight(MAX_IN_FLIGHT - 1);
      this.#check();
    }
    // a view of part of a buffer cannot be transferred without detaching the rest: copy it
    const own = values.byteOffset === 0 && values.byteLength === values.buffer.byteLength ? values : values.slice();
    this.#post({ chrom, start, values: own }, [own.buffer as ArrayBuffer]);
  }

  /**
   * Writes the pending line and resolves once every byte is written (then the caller closes the output);
   * rejects, never resolves, if some chunk handed over was not written.
   */
  async finish(): Promise<void> {
    this.#check();
    this.#post({ finish: true });
    await this.#waitUntilInFlight(0);
  }

  /** Ends the worker; after an error, nothing more is written once this resolves. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#replies.close();
    await this.#worker.terminate();
  }

  #post(m: BedGraphMessage, transfer: ArrayBuffer[] = []): void {
    this.#worker.postMessage(m, transfer);
    this.#sent++;
  }

  /** Throws the worker's own error, its death, or use after stop(). */
  #check(): void {
    this.#checkFailed();
    this.#checkEnded();
  }

  #checkFailed(): void {
    if (Atomics.load(this.#progress, FAILED))
      throw (this.#failure ??= workerError(receiveMessageOnPort(this.#replies)?.message));
  }

  #checkEnded(): void {
    if (this.#death) throw this.#death;
    if (this.#stopped) throw new Error('the bedGraph writer thread was stopped');
  }

  /** Resolves once at most `n` messages are unhandled; rejects with the worker's error or its death. */
  async #waitUntilInFlight(n: number): Promise<void> {
    for (;;) {
      this.#checkFailed();
      const handled = Atomics.load(this.#progress, HANDLED);
      // before the death check: a worker that died after handling everything has written everything
      if (this.#sent - handled <= n) return;
      // a dead worker counts nothing more: what it was sent since is lost
      this.#checkEnded();
      const w = Atomics.waitAsync(this.#progress, HANDLED, handled);
      if (w.async) await Promise.race([w.value, this.#gone]);
    }
  }
}

/** The error for a worker that ended outside its own error handling. */
function died(how: string, cause?: Error): Error {
  const message = `the bedGraph writer thread ${how} before finishing: the output is incomplete`;
  return cause ? new Error(message, { cause }) : new Error(message);
}

/** The worker's error rebuilt on this thread: the same message and code (ENOSPC, EPIPE), its stack kept. */
function workerError(f: WorkerFailure | undefined): Error {
  if (!f) return new Error('the bedGraph writer thread failed without saying why');
  const e = Object.assign(new Error(f.message), f.code === undefined ? {} : { code: f.code });
  e.name = f.name;
  if (f.stack) e.stack = f.stack;
  return e;
}
