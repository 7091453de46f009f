// Sequential FASTA reading, record by record, for plain, gzip (including bgzip) and xz files: no index,
// no random access, memory for one record at a time. Same validation as indexing (FaiBuilder).
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { sniffFile } from './bgzf.js';
import { DnaDataError } from './errors.js';
import { FaiBuilder } from './fai.js';

export interface FastaRecord {
  name: string;
  description: string;
  /** the bases as written (letters, line ends removed) */
  bases: Buffer;
}

/** Yields the decompressed bytes of a file, whatever its compression. */
export async function* fileBytes(path: string): AsyncGenerator<Buffer> {
  if (!existsSync(path)) throw new DnaDataError(`${path}: no such file`);
  const c = sniffFile(path);
  if (c === 'none') {
    yield* createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  } else if (c === 'gzip' || c === 'bgzf') {
    // node's gunzip reads concatenated members, so bgzip files stream too
    const s = createReadStream(path).pipe(createGunzip());
    try {
      yield* s as AsyncIterable<Buffer>;
    } catch (e) {
      throw new DnaDataError(`${path}: cannot decompress (truncated or corrupt gzip file?): ${(e as Error).message}`);
    }
  } else if (c === 'xz' || c === 'bzip2' || c === 'zstd') {
    const tool = { xz: 'xz', bzip2: 'bzip2', zstd: 'zstd' }[c];
    const child = spawn(tool, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number>((res, rej) => {
      child.on('error', (e) =>
        rej(
          new DnaDataError(
            `${path}: is ${c}-compressed and \`${tool}\` could not be run (${e.message}); install it or decompress the file first`,
          ),
        ),
      );
      child.on('close', (code) => res(code ?? 1));
    });
    exited.catch(() => undefined);
    yield* child.stdout as AsyncIterable<Buffer>;
    const code = await exited;
    if (code !== 0) throw new DnaDataError(`${path}: \`${tool} -dc\` failed: ${err.trim().split('\n')[0]}`);
  }
}

/** Streams the records of a FASTA file (plain, gzip, bgzip or xz). */
export async function* streamFasta(path: string): AsyncGenerator<FastaRecord> {
  let parts: Buffer[] = [];
  const done: FastaRecord[] = [];
  const b = new FaiBuilder(path, {
    onSeqLine: (bases) => parts.push(Buffer.from(bases)),
    onRecord: (rec, header) => {
      done.push({ name: rec.name, description: header.description, bases: Buffer.concat(parts) });
      parts = [];
    },
  });
  for await (const chunk of fileBytes(path)) {
    b.push(chunk);
    while (done.length) yield done.shift()!;
  }
  b.finish();
  while (done.length) yield done.shift()!;
}
