// kill -9 at randomised moments of real training runs (the CLI as a child process), including between
// any two file operations of a checkpoint save: `train --resume` must always reach the bit-identical end
// state of an uninterrupted run (model, optimizer state, best model, one metrics row per step).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.js';

const root = join(__dirname, '..', '..');
const killer = join(__dirname, 'fixtures', 'kill-at-fs-op.mjs');
const env = { ...process.env, MAMBA_NUM_THREADS: '1' };
let dir: string;
let fasta: string;

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'dna.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  dir = mkdtempSync(join(tmpdir(), 'mamba-sigkill-'));
  const r = new Rng(1);
  let prev = 0,
    seq = '';
  for (let i = 0; i < 20000; i++) {
    prev = r.next() < 0.7 ? (prev + 1) % 4 : r.int(4);
    seq += 'ACGT'[prev];
  }
  fasta = join(dir, 'g.fa');
  writeFileSync(fasta, `>g\n${seq.match(/.{1,60}/g)!.join('\n')}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settings = [
  '--seq-len',
  '32',
  '--batch',
  '2',
  '--steps',
  '16',
  '--eval-every',
  '4',
  '--eval-windows',
  '2',
  '--preset',
  'tiny',
  '--seed',
  '5',
  // a sequence-length warmup over most of the run, so the kills below fall inside it: 8 x 8 tokens, then
  // 4 x 16 from step 7, then 2 x 32 from step 13 (64 tokens every step)
  '--seq-len-warmup',
  '8',
  '--seq-len-warmup-steps',
  '12',
];
const common = ['--device', 'cpu', '--threads', '1'];
const TRAINING = 'training_state.safetensors';
const fresh = (out: string) => ['train', '--data', fasta, ...settings, ...common, '--out', out];
const resume = (out: string) => ['train', '--out', out, '--resume', ...common];

let spawned = 0;
/** Runs the CLI; killAtOp > 0 kills it at that file operation, killAfterMs > 0 after that many ms. */
function child(
  args: string[],
  o: { killAtOp?: number; killAfterMs?: number; opsReport?: string; opsLog?: string } = {},
) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string }>((res) => {
    const e: NodeJS.ProcessEnv = { ...env, MAMBA_KILL_AT_FS_OP: String(o.killAtOp ?? 0) };
    if (o.opsReport) e.MAMBA_FS_OPS_REPORT = o.opsReport;
    if (o.opsLog) e.MAMBA_FS_OPS_LOG = o.opsLog;
    spawned++;
    const c = spawn(process.execPath, ['--import', killer, join(root, 'bin', 'mamba-dna.js'), ...args], {
      cwd: dir,
      env: e,
    });
    let err = '';
    c.stderr.on('data', (d) => {
      err += String(d);
    });
    c.stdout.resume();
    const t = o.killAfterMs ? setTimeout(() => c.kill('SIGKILL'), o.killAfterMs) : undefined;
    c.on('exit', (code, signal) => {
      if (t) clearTimeout(t);
      res({ code, signal, err });
    });
  });
}

/** The end state that must match: file bytes and the (step, loss) of every train row. */
function endState(out: string) {
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const sha = (f: string) =>
    createHash('sha256')
      .update(readFileSync(join(out, f)))
      .digest('hex');
  return {
    model: sha('model.safetensors'),
    optimizer: sha('training_state.safetensors'),
    best: sha(join('best', 'model.safetensors')),
    step: JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8')).step,
    train: rows.filter((r) => r.split === 'train').map((r) => [r.step, r.loss]),
    evals: rows.filter((r) => r.split === 'eval').map((r) => [r.step, r.loss]),
  };
}

/** A save cut short leaves a partial step folder or a temp file beside the published ones. */
function leftASaveHalfDone(out: string): boolean {
  if (!existsSync(out)) return false;
  const steps = join(out, 'checkpoints');
  const partial = existsSync(steps) && readdirSync(steps).some((e) => e.includes('.partial-'));
  // temp files: publishing's <file>.tmp-<pid>, writeFileAtomic's .<file>.<pid>.<time>.tmp
  return partial || readdirSync(out).some((e) => e.includes('.tmp-') || (e.startsWith('.') && e.endsWith('.tmp')));
}

// the kill points are injected by a module preloaded with `node --import` (Node 20.6+)
const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
const canPreload = major > 20 || (major === 20 && minor >= 6);
if (!canPreload) console.warn(`skipped: the SIGKILL test needs node --import (Node 20.6+), this is ${process.version}`);

describe.skipIf(!canPreload)('SIGKILL during training', () => {
  it('resumes to the bit-identical end state of an uninterrupted run, whatever the moment of the kill', async () => {
    const refDir = join(dir, 'reference');
    const opsFile = join(dir, 'ops');
    const ref = await child(fresh(refDir), { opsReport: opsFile });
    expect(ref.code, ref.err).toBe(0);
    const want = endState(refDir);
    expect(want.train.map((r) => r[0])).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const shapes = readFileSync(join(refDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.split === 'train')
      .map((r) => `${r.batch}x${r.seq_len}`);
    expect(shapes).toEqual([...Array(6).fill('8x8'), ...Array(6).fill('4x16'), ...Array(4).fill('2x32')]);
    const totalOps = Number(readFileSync(opsFile, 'utf8'));
    expect(totalOps).toBeGreaterThan(100);

    // Kill points chosen inside the second save (step 8) of a fresh run: while its step folder is being
    // written, just before checkpoint.json commits it, and while the top-level files are being replaced
    const opsLog = join(dir, 'ops.log');
    expect((await child(fresh(join(dir, 'probe')), { opsLog })).code).toBe(0);
    const ops = readFileSync(opsLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('\t') as [string, string, string]);
    const in8 = ops.filter(([, , path]) => path.includes('step-00000008') || path.includes('checkpoint.json'));
    const firstOf8 = ops.findIndex(([, , path]) => path.includes('step-00000008'));
    const after = (pred: (op: [string, string, string]) => boolean) => Number(ops.slice(firstOf8).find(pred)![0]);
    const targeted = [
      after(
        ([, name, path]) => name === 'openSync' && path.includes('step-00000008.partial-') && path.includes(TRAINING),
      ),
      // writeFileAtomic's temp file: .checkpoint.json.<pid>.<time>.tmp
      after(([, name, path]) => name === 'renameSync' && path.includes('checkpoint.json.') && path.endsWith('.tmp')),
      // model.safetensors and config.json already of step 8, the optimizer state still of step 4
      after(
        ([, name, path]) => name === 'renameSync' && path.includes(`${TRAINING}.tmp-`) && !path.includes('checkpoints'),
      ),
    ];
    expect(in8.length).toBeGreaterThan(10);
    let kills = 0,
      midSave = 0,
      runs = 0,
      attempt = 0;
    const log: string[] = [];
    // cut short before the commit: resume from step 4; after it: from step 8
    const resumedAt = [4, 4, 8];
    for (const [i, op] of targeted.entries()) {
      const out = join(dir, `run-${runs}`);
      const k = await child(fresh(out), { killAtOp: op });
      expect(k.signal).toBe('SIGKILL');
      expect(leftASaveHalfDone(out), `kill at op ${op}: ${JSON.stringify(ops[op - 1])}`).toBe(true);
      kills++;
      midSave++;
      const r = await child(resume(out));
      expect(r.code, r.err).toBe(0);
      expect(r.err).toContain(`at step ${resumedAt[i]} of 16`);
      log.push(
        `run ${runs}: killed at op ${op} ${JSON.stringify(ops[op - 1])}, then ${r.err.match(/resuming.*/)?.[0]}`,
      );
      expect(endState(out), log.join('\n')).toEqual(want);
      runs++;
    }

    // then at random moments: a random file operation, or a random time
    const rng = new Rng(Number(process.env.MAMBA_KILL_SEED ?? 7));
    const wantKills = 15;
    while (kills < wantKills) {
      const out = join(dir, `run-${runs}`);
      // kill this run again and again until one attempt gets through to the end
      for (;;) {
        const args = existsSync(out) ? resume(out) : fresh(out);
        const byTimer = attempt++ % 3 === 2;
        const how = byTimer ? { killAfterMs: 100 + rng.int(900) } : { killAtOp: 1 + rng.int(totalOps) };
        const r = await child(args, how);
        log.push(
          `run ${runs} ${args.includes('--resume') ? 'resume' : 'fresh'} ${JSON.stringify(how)}: ${r.signal ?? r.code} ${r.err.match(/resuming.*|has no checkpoint yet.*/)?.[0] ?? ''}`,
        );
        if (r.signal === 'SIGKILL') {
          kills++;
          if (leftASaveHalfDone(out)) midSave++;
          continue;
        }
        expect(r.code, r.err).toBe(0);
        expect(r.err).not.toMatch(/error/i);
        break;
      }
      expect(endState(out), log.join('\n')).toEqual(want);
      runs++;
    }
    console.log(`${kills} kills (${midSave} inside a save) over ${runs} runs, ${spawned} processes`);
    expect(kills).toBeGreaterThanOrEqual(wantKills);
  }, 120_000);
});
