// Crash-safe checkpoints of a run folder. A save writes one complete folder per step
// (checkpoints/step-N: model.safetensors, config.json, training_state.safetensors, trainer_state.json),
// then commits it by rewriting checkpoint.json atomically (the manifest naming the one step to resume
// from), then publishes the step's files at the top of the run folder as hard links (what eval, info and
// generate read) and deletes older step folders. A kill at any moment leaves checkpoint.json naming a
// complete folder; resume reads only that folder and publishes it again.
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, CONFIG_FILE, MODEL_FILE, writeFileAtomic } from '../model/checkpoint.js';

export const TRAINING_STATE_FILE = 'training_state.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';
/** names the step folder that holds the run's checkpoint */
export const CHECKPOINT_MANIFEST = 'checkpoint.json';
const STEPS_DIR = 'checkpoints';
export const CHECKPOINT_FILES = [MODEL_FILE, CONFIG_FILE, TRAINING_STATE_FILE, TRAINER_STATE_FILE];

interface Manifest {
  version: 1;
  step: number;
  /** the step folder, relative to the run folder */
  dir: string;
}

function stepName(step: number): string {
  return join(STEPS_DIR, `step-${String(step).padStart(8, '0')}`);
}

/**
 * Saves a checkpoint: `write(folder)` writes the step's files into a fresh folder, which is then committed
 * and published. Returns the committed folder.
 */
export function saveCheckpoint(runDir: string, step: number, write: (folder: string) => void): string {
  const name = stepName(step);
  const final = join(runDir, name);
  const partial = `${final}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  write(partial);
  for (const f of CHECKPOINT_FILES) {
    if (!existsSync(join(partial, f))) throw new CheckpointError(`${partial}: the save wrote no ${f}`);
  }
  // a folder of this step left by a run killed before it committed it: never the committed one
  rmSync(final, { recursive: true, force: true });
  renameSync(partial, final);
  const m: Manifest = { version: 1, step, dir: name };
  writeFileAtomic(join(runDir, CHECKPOINT_MANIFEST), `${JSON.stringify(m)}\n`);
  publishCheckpoint(runDir, final);
  prune(runDir, name);
  return final;
}

/** The committed checkpoint of a run folder: its step and folder, or undefined when none was committed. */
export function committedCheckpoint(runDir: string): { step: number; dir: string } | undefined {
  const p = join(runDir, CHECKPOINT_MANIFEST);
  if (!existsSync(p)) return undefined;
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(p, 'utf8')) as Manifest;
  } catch (e) {
    throw new CheckpointError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  if (m.version !== 1 || !Number.isInteger(m.step) || typeof m.dir !== 'string' || m.dir.includes('..')) {
    throw new CheckpointError(`${p}: not a checkpoint manifest of this toolkit`);
  }
  const dir = join(runDir, m.dir);
  for (const f of CHECKPOINT_FILES) {
    if (!existsSync(join(dir, f))) {
      throw new CheckpointError(`${p} names step ${m.step}, but ${join(dir, f)} is missing`);
    }
  }
  return { step: m.step, dir };
}

/** Makes the top-level files of the run folder those of `folder` (each replaced atomically). */
export function publishCheckpoint(runDir: string, folder: string): void {
  // temp files of saves killed before their rename
  // temp files of saves killed before their rename: ours (<file>.tmp-<pid>) and writeFileAtomic's (.<file>.*.tmp)
  const names = [...CHECKPOINT_FILES, CHECKPOINT_MANIFEST];
  const isStale = (e: string) =>
    names.some((f) => e.startsWith(`${f}.tmp-`) || (e.startsWith(`.${f}.`) && e.endsWith('.tmp')));
  for (const e of readdirSync(runDir)) if (isStale(e)) rmSync(join(runDir, e), { force: true });
  for (const f of CHECKPOINT_FILES) {
    const tmp = join(runDir, `${f}.tmp-${process.pid}`);
    rmSync(tmp, { force: true });
    try {
      linkSync(join(folder, f), tmp);
    } catch {
      copyFileSync(join(folder, f), tmp); // a file system without hard links
    }
    renameSync(tmp, join(runDir, f));
  }
}

/** Deletes step folders (and partial ones) other than `keep`. */
function prune(runDir: string, keep: string): void {
  const root = join(runDir, STEPS_DIR);
  for (const e of readdirSync(root)) {
    const p = join(root, e);
    if (join(STEPS_DIR, e) !== keep && statSync(p).isDirectory()) rmSync(p, { recursive: true, force: true });
  }
}
