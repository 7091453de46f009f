// A BedGraphWriter on a worker thread: the caller (score's chunk loop, which keeps the GPU busy) hands each
// chunk of values over by transfer, no copy, and the worker formats it and writes it to a file descriptor.
// The caller's loop is synchronous (it blocks on the device), so it cannot take messages: the worker counts
// the messages it has handled in shared memory, the caller waits on that counter with Atomics.wait when
// MAX_IN_FLIGHT chunks are out (back-pressure from a slow disk or a slow stdout reader), and a worker error
// is read synchronously from a reply port and rethrown on the caller's thread as the error it was.
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

export class BedGraphThread {
  readonly #worker: Worker;
  readonly #progress: Int32Array;
  readonly #replies: MessagePort;
  #sent = 0;
  #stopped = false;

  private constructor(worker: Worker, progress: Int32Array, replies: MessagePort) {
    this.#worker = worker;
    this.#progress = progress;
    this.#replies = replies;
  }

  /** Starts the worker writing to `fd` (the caller keeps it: it closes, renames or aborts the output). */
  static async start(fd: number, opts: BedGraphThreadOptions): Promise<BedGraphThread> {
    const progress = new Int32Array(new SharedArrayBuffer(8));
    const { port1, port2 } = new MessageChannel();
    const data: BedGraphWorkerData = { ...opts, fd, progress, replies: port2 };
    const worker = new Worker(new URL('./bedgraph-thread-worker.js', import.meta.url), {
      workerData: data,
      transferList: [port2],
    });
    // the worker says it is ready once its modules are loaded; a load failure comes as 'error'
    await once(worker, 'message');
    return new BedGraphThread(worker, progress, port1);
  }

  /** Hands over values of positions start, start + 1, ... of chrom; `values` is detached (transferred). */
  add(chrom: string, start: number, values: Float64Array): void {
    this.#waitUntilInFlight(MAX_IN_FLIGHT - 1);
    // a view of part of a buffer cannot be transferred without detaching the rest: copy it
    const own = values.byteOffset === 0 && values.byteLength === values.buffer.byteLength ? values : values.slice();
    this.#post({ chrom, start, values: own }, [own.buffer as ArrayBuffer]);
  }

  /** Writes the pending line and blocks until every byte is written (then the caller closes the output). */
  finish(): void {
    this.#post({ finish: true });
    this.#waitUntilInFlight(0);
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

  /** Blocks until at most `n` messages are unhandled; throws the worker's error if it failed. */
  #waitUntilInFlight(n: number): void {
    for (;;) {
      if (Atomics.load(this.#progress, FAILED)) throw workerError(receiveMessageOnPort(this.#replies)?.message);
      const handled = Atomics.load(this.#progress, HANDLED);
      if (this.#sent - handled <= n) return;
      Atomics.wait(this.#progress, HANDLED, handled);
    }
  }
}

/** The worker's error rebuilt on this thread: the same message and code (ENOSPC, EPIPE), its stack kept. */
function workerError(f: WorkerFailure | undefined): Error {
  if (!f) return new Error('the bedGraph writer thread failed without saying why');
  const e = Object.assign(new Error(f.message), f.code === undefined ? {} : { code: f.code });
  e.name = f.name;
  if (f.stack) e.stack = f.stack;
  return e;
}
