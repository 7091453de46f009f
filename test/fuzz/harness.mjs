// The fuzzing harness: mutated seed inputs for every parser in TARGETS, each run in a worker (a child
// process, reused from input to input until it fails) with a time limit and a memory limit, each outcome
// classified:
//   accepted       parsed (and, where the target has a reference, agreeing with it)
//   clean-error    refused with one of the project's error classes, in one line
//   unexpected     any other exception (a raw RangeError, a TypeError...), or a multi-line project error
//   hang           no answer within the time limit (the worker is terminated and replaced)
//   crash          the worker died (out of memory under its heap limit, an abort, a signal)
//   disagreement   accepted, but the reference decoder (zlib, samtools) or the toolkit's other reader
//                  says something else: the silent-corruption class
// Every input is reproducible from (run seed, target, index): inputRng() derives its generator.
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeRng, mutate } from './mutators.mjs';
import { TARGETS, TOOLS } from './targets.mjs';

export const OUTCOMES = ['accepted', 'clean-error', 'unexpected', 'hang', 'crash', 'disagreement'];
export const BAD = ['unexpected', 'hang', 'crash', 'disagreement'];

/** The generator of input `index` of `target` in run `seed`. */
export function inputRng(seed, target, index) {
  let h = seed >>> 0;
  for (const c of `${target}#${index}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return makeRng(h);
}

/** The bytes of one input, and which seed file and mutations made it. */
export function makeInput(target, seeds, seed, index) {
  const r = inputRng(seed, target.name, index);
  const s = seeds[r.int(seeds.length)];
  const others = seeds.map((x) => x.files[x.mutate]).filter((b) => b !== s.files[s.mutate]);
  const { bytes, names } = mutate(s.files[s.mutate], r, { intFields: s.intFields, text: s.text, others });
  return { seed: s, bytes, mutators: names };
}

class Runner {
  #worker = null;
  #pending = null;
  constructor(opts) {
    this.opts = opts;
  }
  async #spawn() {
    const w = fork(fileURLToPath(new URL('./worker.mjs', import.meta.url)), [], {
      execArgv: [`--max-old-space-size=${this.opts.memoryMb}`, '--stack-size=4000'],
      env: { ...process.env, MAMBA_FUZZ_EXTRA_TARGETS: this.opts.extraTargets ?? '' },
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    w.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
    await new Promise((res, rej) => {
      w.once('message', (m) => (m?.type === 'ready' ? res() : rej(new Error('fuzz worker did not start'))));
      w.once('exit', (code) => rej(new Error(`fuzz worker exited with ${code} before it started: ${stderr}`)));
    });
    w.on('message', (m) => this.#pending?.resolve(m));
    w.on('exit', (code, signal) => {
      if (this.#worker === w) this.#worker = null;
      const why = /heap out of memory|Reached heap limit/.test(stderr)
        ? 'out of memory'
        : stderr.trim().split('\n').pop();
      this.#pending?.resolve({ outcome: 'crash', message: `worker died (${signal ?? `exit ${code}`}): ${why}` });
    });
    this.#worker = w;
  }
  async run(msg) {
    if (!this.#worker) await this.#spawn();
    const w = this.#worker;
    const answer = await new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve({ outcome: 'hang', message: `no answer in ${this.opts.timeoutMs} ms` }),
        this.opts.timeoutMs,
      );
      this.#pending = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      w.send(msg);
    });
    this.#pending = null;
    if (answer.outcome === 'hang' || answer.outcome === 'crash') {
      this.#worker = null;
      w.removeAllListeners('exit');
      w.kill('SIGKILL');
    }
    return answer;
  }
  async close() {
    if (this.#worker) this.#worker.disconnect();
    this.#worker = null;
  }
}

/**
 * Runs the fuzzer. Stops after `inputsPerTarget` inputs per target, or at `minutes`, whichever is given.
 * `extraTargets`: the URL of a module exporting more TARGETS (used by the harness's self-test).
 * Returns the report: counts per target and outcome, and the findings (every bad outcome, reproducible).
 */
export async function runFuzz(opts = {}) {
  const extra = opts.extraTargets ? (await import(opts.extraTargets)).TARGETS : [];
  const all = [...TARGETS, ...extra];
  const o = {
    seed: 1,
    timeoutMs: 3000,
    memoryMb: 512,
    targets: all.map((t) => t.name),
    log: () => undefined,
    maxFindings: 25,
    ...opts,
  };
  const targets = all.filter((t) => o.targets.includes(t.name));
  const seeds = new Map(targets.map((t) => [t.name, t.seeds()]));
  const counts = Object.fromEntries(targets.map((t) => [t.name, Object.fromEntries(OUTCOMES.map((k) => [k, 0]))]));
  const inputs = Object.fromEntries(targets.map((t) => [t.name, 0]));
  const findings = [];
  const started = Date.now();
  const deadline = o.minutes ? started + o.minutes * 60000 : Infinity;
  const runner = new Runner(o);
  let lastLog = started;
  try {
    for (let i = 0; ; i++) {
      if (o.inputsPerTarget !== undefined && i >= o.inputsPerTarget) break;
      if (Date.now() >= deadline) break;
      for (const t of targets) {
        const { seed, bytes, mutators } = makeInput(t, seeds.get(t.name), o.seed, i);
        const withReference = !t.referenceEvery || i % t.referenceEvery === 0;
        const files = Object.fromEntries(Object.entries(seed.files).map(([k, v]) => [k, new Uint8Array(v)]));
        const ans = await runner.run({
          id: i,
          target: t.name,
          seed: { ...seed, files },
          bytes: new Uint8Array(bytes),
          withReference,
        });
        inputs[t.name]++;
        counts[t.name][ans.outcome]++;
        if (BAD.includes(ans.outcome) && findings.filter((f) => f.target === t.name).length < o.maxFindings) {
          findings.push({
            target: t.name,
            reportOnly: !!t.reportOnly,
            outcome: ans.outcome,
            message: ans.message,
            stack: ans.stack,
            seed: o.seed,
            index: i,
            seedFile: seed.name,
            mutators,
            size: bytes.length,
            input: bytes.length <= 4096 ? Buffer.from(bytes).toString('base64') : undefined,
          });
        }
      }
      if (Date.now() - lastLog > 15000) {
        lastLog = Date.now();
        const n = Object.values(inputs).reduce((a, b) => a + b, 0);
        o.log(`${((lastLog - started) / 1000).toFixed(0)} s: ${n} inputs, ${findings.length} findings`);
      }
    }
  } finally {
    await runner.close();
  }
  return {
    seed: o.seed,
    started: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    limits: { timeoutMs: o.timeoutMs, memoryMb: o.memoryMb },
    machine: `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, node ${process.version}`,
    tools: TOOLS,
    targets: targets.map((t) => ({
      name: t.name,
      about: t.about,
      reportOnly: !!t.reportOnly,
      inputs: inputs[t.name],
      outcomes: counts[t.name],
    })),
    findings,
  };
}

/** The findings that count (not in a report-only target). */
export const failing = (report) => report.findings.filter((f) => !f.reportOnly);

export function reportMarkdown(r) {
  const total = r.targets.reduce((a, t) => a + t.inputs, 0);
  const lines = [
    `# Fuzzing report, ${r.started.slice(0, 10)}`,
    '',
    `${total.toLocaleString('en-US')} inputs in ${r.seconds.toFixed(0)} s (run seed ${r.seed}) on ${r.machine}; each input in a worker process with a ${r.limits.timeoutMs} ms time limit and a ${r.limits.memoryMb} MB heap limit. samtools reference: ${r.tools.samtools ? 'yes' : 'not installed, skipped'}. Command: \`npm run fuzz -- --minutes N\` (harness in test/fuzz/).`,
    '',
    `| parser | inputs | ${OUTCOMES.join(' | ')} |`,
    `|---|---:|${OUTCOMES.map(() => '---:').join('|')}|`,
    ...r.targets.map(
      (t) =>
        `| ${t.name}${t.reportOnly ? ' (report only)' : ''} | ${t.inputs.toLocaleString('en-US')} | ${OUTCOMES.map((k) => t.outcomes[k].toLocaleString('en-US')).join(' | ')} |`,
    ),
    '',
    'Outcomes: accepted (parsed; where the parser has a reference - zlib for BGZF, samtools for FASTA on every 8th input, the other reader for FASTA/WAV, the true bases for .fai/.gzi, its own rewrite by `variants` for VCF, the record lengths for BED - it agreed), clean-error (refused with a project error class in one line), unexpected (any other exception), hang (no answer in time), crash (the worker died), disagreement (accepted but the reference says otherwise).',
    '',
  ];
  if (r.findings.length === 0)
    lines.push('No findings: 0 unexpected exceptions, 0 hangs, 0 crashes, 0 disagreements.', '');
  else {
    lines.push(
      '## Findings',
      '',
      '| parser | outcome | input (seed, index, seed file, mutators) | message |',
      '|---|---|---|---|',
    );
    for (const f of r.findings)
      lines.push(
        `| ${f.target}${f.reportOnly ? ' (report only)' : ''} | ${f.outcome} | ${f.seed}, ${f.index}, ${f.seedFile}, ${f.mutators.join('+')} | ${String(f.message).replace(/\|/g, '\\|').slice(0, 200)} |`,
      );
    lines.push('');
  }
  return lines.join('\n');
}

export function writeReport(r, dir) {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `fuzz-${r.started.slice(0, 10)}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(r, null, 1)}\n`);
  writeFileSync(`${base}.md`, reportMarkdown(r));
  return base;
}
