// A worker for test/data/bedgraph-thread.test.ts: the real bedGraph worker (from dist/), which then dies on cue,
// outside its own error handling. MAMBA_TEST_BEDGRAPH_DIES (read from the environment the worker was started
// with) says how: `exit:N` exits with code 3 once N messages are handled, `throw:N` throws an uncaught error
// there instead, `load` exits with code 3 before the real worker has even loaded.
import { parentPort } from 'node:worker_threads';

const [how, after] = (process.env.MAMBA_TEST_BEDGRAPH_DIES ?? '').split(':');
if (how === 'load') process.exit(3);
await import('../../dist/data/dna/bedgraph-thread-worker.js');

let handled = 0;
// added after the real worker's listener, so message N is written and counted before this runs
parentPort.on('message', () => {
  if (++handled < Number(after)) return;
  if (how === 'exit') process.exit(3);
  if (how === 'throw') throw new Error('a test worker dies');
});
