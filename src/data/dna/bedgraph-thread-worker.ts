// The worker side of BedGraphThread (bedgraph-thread.ts): formats each chunk with BedGraphWriter and writes it
// to the caller's file descriptor. After an error it reports once and then only counts messages, so the
// caller, waiting on the counter, wakes and rethrows the error.
import { parentPort, workerData } from 'node:worker_threads';
import { writeAll } from '../../util/text-output.js';
import { BedGraphWriter } from './bedgraph.js';
import {
  FAILED,
  HANDLED,
  type BedGraphMessage,
  type BedGraphWorkerData,
  type WorkerFailure,
} from './bedgraph-thread.js';

const { fd, decimals, perBase, header, progress, replies } = workerData as BedGraphWorkerData;
const port = parentPort!;
const bg = new BedGraphWriter({ writeBytes: (b) => writeAll(fd, b) }, { decimals, perBase });
let failed = false;

function handle(m: BedGraphMessage | 'header'): void {
  if (m === 'header') writeAll(fd, Buffer.from(header, 'utf8'));
  else if ('finish' in m) bg.finish();
  else bg.add(m.chrom, m.start, m.values);
}

function run(m: BedGraphMessage | 'header'): void {
  if (!failed) {
    try {
      handle(m);
    } catch (e) {
      failed = true;
      const err = e as NodeJS.ErrnoException;
      const failure: WorkerFailure = {
        name: err?.name ?? 'Error',
        message: err?.message ?? String(e),
        stack: err?.stack,
      };
      if (typeof err?.code === 'string') failure.code = err.code;
      // the reply first: the caller reads it as soon as it sees FAILED
      replies.postMessage(failure);
      Atomics.store(progress, FAILED, 1);
    }
  }
  // counted after an error too, so a caller waiting on the counter wakes
  if (m !== 'header') {
    Atomics.add(progress, HANDLED, 1);
    Atomics.notify(progress, HANDLED);
  }
}

run('header');
port.on('message', run);
port.postMessage('ready');
