// One fuzzing worker, a child process: receives inputs one at a time, writes their files into a scratch
// folder, runs the target's parser and its reference check, and answers with the outcome. The harness
// enforces the time limit (it kills a worker that does not answer) and the memory limit (the child's
// --max-old-space-size). A child process, not a worker thread: a worker thread that makes one huge
// allocation takes the whole process down with it (V8's fatal out-of-memory), a child only itself.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ERRORS, TARGETS, writeInput } from './targets.mjs';

// extra targets (the harness's own self-test) come as a module URL
const extra = process.env.MAMBA_FUZZ_EXTRA_TARGETS ? (await import(process.env.MAMBA_FUZZ_EXTRA_TARGETS)).TARGETS : [];
const byName = new Map([...TARGETS, ...extra].map((t) => [t.name, t]));
const scratch = mkdtempSync(join(tmpdir(), 'mamba-fuzz-'));
const firstLine = (s) =>
  String(s ?? '')
    .split('\n')[0]
    .slice(0, 300);

process.on('message', async (msg) => {
  if (msg.type === 'exit') {
    rmSync(scratch, { recursive: true, force: true });
    process.exit(0);
  }
  const { id, target, seed, bytes, withReference } = msg;
  const t = byName.get(target);
  for (const n of readdirSync(scratch)) rmSync(join(scratch, n), { recursive: true, force: true });
  const s = { ...seed, files: Object.fromEntries(Object.entries(seed.files).map(([k, v]) => [k, Buffer.from(v)])) };
  writeInput(scratch, s, Buffer.from(bytes));
  let out;
  try {
    const summary = await t.run(scratch, s);
    const why = withReference && t.check ? t.check(scratch, s, summary) : null;
    out = why ? { outcome: 'disagreement', message: why } : { outcome: 'accepted' };
  } catch (e) {
    const clean = PROJECT_ERRORS.some((C) => e instanceof C);
    const message = firstLine(e?.message ?? e);
    // a project error must be one line (the CLI prints it as is)
    if (clean && String(e.message).includes('\n'))
      out = { outcome: 'unexpected', message: `multi-line project error: ${message}` };
    else
      out = clean
        ? { outcome: 'clean-error', message }
        : {
            outcome: 'unexpected',
            message: `${e?.name ?? typeof e}: ${message}`,
            stack: String(e?.stack ?? '')
              .split('\n')
              .slice(0, 6)
              .join('\n'),
          };
  }
  process.send({ id, ...out });
});
process.on('disconnect', () => {
  rmSync(scratch, { recursive: true, force: true });
  process.exit(0);
});
process.send({ type: 'ready' });
