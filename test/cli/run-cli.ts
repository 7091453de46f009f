// Running the CLIs as child processes, as users do: one command, or a shell pipeline of them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(__dirname, '..', '..');
export const bin = (cli: 'dna' | 'audio') => join(root, 'bin', `mamba-${cli}.js`);
const env = { ...process.env, MAMBA_NUM_THREADS: '1' };

export function requireDist(): void {
  if (!existsSync(join(root, 'dist', 'cli', 'dna.js')))
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
}

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
  bytes: Buffer;
}

/** Runs `mamba-<cli> args...` with optional stdin bytes. */
export function cli(
  which: 'dna' | 'audio',
  args: string[],
  opts: { cwd?: string; input?: Uint8Array | string } = {},
): CliResult {
  const r = spawnSync(process.execPath, [bin(which), ...args], {
    cwd: opts.cwd,
    input: opts.input,
    env,
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout.toString('latin1'), err: r.stderr.toString(), bytes: r.stdout };
}

/** Runs a shell pipeline; `mamba-dna` and `mamba-audio` in it are this checkout's CLIs. */
export function sh(script: string, cwd?: string): CliResult {
  const prelude = `mamba_dna() { "${process.execPath}" "${bin('dna')}" "$@"; }; mamba_audio() { "${process.execPath}" "${bin('audio')}" "$@"; }; set -o pipefail; `;
  const text = script.replace(/\bmamba-(dna|audio)\b/g, 'mamba_$1');
  const r = spawnSync('bash', ['-c', prelude + text], { cwd, env, timeout: 120_000 });
  return { code: r.status, out: r.stdout.toString('latin1'), err: r.stderr.toString(), bytes: r.stdout };
}
