// Shared helpers of the pipeline scripts: run the CLIs as a user would, read a run's metrics, and write
// results as JSON, a markdown table and SVG plots (with report.html) into a results folder.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Parses pipeline flags; every pipeline takes --full (GPU scale), --device, --out, --help. */
export function pipelineArgs(name, usage, extra = {}) {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        full: { type: 'boolean', default: false },
        device: { type: 'string', default: 'auto' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        ...extra,
      },
    });
  } catch (e) {
    console.error(`${name}: ${e.message}\n${usage}`);
    process.exit(2);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(usage);
    process.exit(0);
  }
  if (!['auto', 'cpu', 'cuda'].includes(v.device)) {
    console.error(`${name}: --device must be auto, cpu or cuda`);
    process.exit(2);
  }
  v.out = v.out ?? join('runs', 'pipelines', name);
  mkdirSync(v.out, { recursive: true });
  return v;
}

/** Runs a CLI command, streaming its output; exits the pipeline with a clear line if it fails. */
export function cli(tool, args, { quiet = false } = {}) {
  const t0 = Date.now();
  console.log(`$ ${tool} ${args.map((a) => (/[\s|'"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', `${tool}.js`), ...args], {
    stdio: quiet ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    console.error(`pipeline: \`${tool} ${args[0]}\` failed with exit code ${r.status}`);
    process.exit(1);
  }
  return { seconds: (Date.now() - t0) / 1000, stdout: r.stdout ?? '' };
}

export function readMetrics(dir) {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}

/** Summary of a training run: final eval, median throughput (steps after the first 10%), peak memory. */
export function summariseRun(dir) {
  const rows = readMetrics(dir);
  const train = rows.filter((r) => r.split === 'train');
  const evals = rows.filter((r) => r.split === 'eval');
  const last = evals[evals.length - 1];
  const steady = train.slice(Math.floor(train.length / 10));
  return {
    steps: train.length,
    eval_bits_per_token: last?.bits_per_token,
    eval_loss: last?.loss,
    eval_accuracy: last?.accuracy,
    eval_count: last?.count,
    tokens_per_s: median(steady.map((r) => r.tokens_per_s)),
    peak_mem_bytes: Math.max(...train.map((r) => r.peak_mem_bytes ?? 0)),
  };
}

/** The machine a result came from, written beside every result. */
export function machine(device) {
  const cpu = existsSync('/proc/cpuinfo')
    ? (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1]
    : process.arch;
  const out = { cpu, cores: availableParallelism(), node: process.version, device };
  if (device === 'cuda') {
    const r = spawnSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader'], { encoding: 'utf8' });
    if (r.status === 0) out.gpu = r.stdout.trim().split('\n')[0];
  }
  return out;
}

/** Writes results.json, results.md (a table) and SVG plots with report.html into dir; `images`: more picture files (already in dir) for the report. */
export async function writeResults(
  dir,
  { title, command, meta, columns, rows, plots, images = [] },
  { print = true } = {},
) {
  const { lineChart, htmlReport } = await import(join(root, 'dist', 'report', 'svg.js'));
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify({ title, command, ...meta, rows }, null, 2)}\n`);
  const md = [
    `# ${title}`,
    '',
    `Command: \`${command}\``,
    '',
    ...Object.entries(meta).map(([k, v]) => `- ${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`),
    '',
    `| ${columns.map((c) => c.label).join(' | ')} |`,
    `| ${columns.map(() => '---:').join(' | ')} |`,
    ...rows.map((r) => `| ${columns.map((c) => (c.format ? c.format(r[c.key]) : String(r[c.key]))).join(' | ')} |`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'results.md'), md);
  const files = [];
  for (const p of plots) {
    writeFileSync(join(dir, p.file), lineChart(p.series, p.options));
    files.push(p.file);
  }
  writeFileSync(
    join(dir, 'report.html'),
    htmlReport(title, [...files, ...images], {
      header: columns.map((c) => c.label),
      rows: rows.map((r) => columns.map((c) => (c.format ? c.format(r[c.key]) : String(r[c.key])))),
    }),
  );
  if (print)
    console.log(`\n${md}\nresults: ${[join(dir, 'results.json'), 'results.md', ...files, 'report.html'].join(', ')}`);
}

export const fmt = {
  bits: (v) => (v === undefined ? '-' : v.toFixed(4)),
  acc: (v) => (v === undefined ? '-' : v.toFixed(3)),
  int: (v) => (v === undefined || !Number.isFinite(v) ? '-' : Math.round(v).toLocaleString('en-US')),
  mib: (v) => (v === undefined || !Number.isFinite(v) ? '-' : `${(v / 2 ** 20).toFixed(0)} MiB`),
  pow2: (v) => `2^${Math.round(Math.log2(v))}`,
};

/** Wilson score interval for k successes in n trials (z = 1.96: 95%). */
export function wilson(k, n, z = 1.96) {
  if (!(n > 0)) return [NaN, NaN];
  const p = k / n,
    z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** The step a run folder's last complete checkpoint is at (0 when there is none). */
export function checkpointStep(dir) {
  const p = join(dir, 'trainer_state.json');
  if (!existsSync(p)) return 0;
  try {
    return JSON.parse(readFileSync(p, 'utf8')).step ?? 0;
  } catch {
    return 0;
  }
}

/**
 * The test-split evaluation of a classifier run (`mamba-dna eval --split test --json`), kept in the run's
 * test-eval.json with `extra` beside it, and made again only when the run's checkpoint has moved on.
 */
export function testEval(dir, { windows, batch, device, extra = {} }) {
  const file = join(dir, 'test-eval.json');
  if (!existsSync(file) || JSON.parse(readFileSync(file, 'utf8')).step !== checkpointStep(dir)) {
    const args = ['eval', '--checkpoint', dir, '--split', 'test', '--windows', String(windows)];
    args.push('--batch', String(batch), '--device', device, '--json');
    const { stdout } = cli('mamba-dna', args, { quiet: true });
    writeFileSync(file, JSON.stringify({ step: checkpointStep(dir), ...extra, ...JSON.parse(stdout) }, null, 1));
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

/**
 * Trains into `dir` so a cut pipeline can go on where it stopped: a run already at `steps` is kept, a run
 * with an earlier checkpoint is resumed (`train --resume`), anything else starts afresh (`--force`).
 * Returns the wall seconds spent now (0 when the run was already complete).
 */
export function trainResumable(tool, dir, steps, args, device) {
  const at = checkpointStep(dir);
  if (at >= steps) {
    console.log(`(${dir}: already trained to step ${at}, kept)`);
    return 0;
  }
  if (at > 0)
    return cli(tool, ['train', '--out', dir, '--resume', '--steps', String(steps), '--device', device]).seconds;
  return cli(tool, ['train', ...args, '--steps', String(steps), '--device', device, '--out', dir, '--force']).seconds;
}

/** Runs another pipeline script (e.g. position-eval.js) as its own process; exits on failure. */
export function nodeScript(script, args) {
  const t0 = Date.now();
  console.log(`$ node pipelines/${script} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'pipelines', script), ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`pipeline: ${script} failed with exit code ${r.status}`);
    process.exit(1);
  }
  return (Date.now() - t0) / 1000;
}

/** The results' note on the lengths a time budget left out (`skipped` of timeBudget().skipRest): none, nothing. */
/**
 * Whether a sweep's budget let its shortest model stop improving (issue 14's rule for the scaling runs): the held-out
 * bits of the run folder of the shortest length `L` (rows sorted by length) at each evaluation, and what its last
 * quarter of steps gained against the quarter before, as the `budget_check` line of results.md.
 */
export function budgetCheckMeta(out, rows, unit = 'bits') {
  if (!rows.length) return {};
  const e = Math.round(Math.log2(rows[0].seq_len));
  const evals = readMetrics(join(out, `L${e}`)).filter((r) => r.split === 'eval');
  if (evals.length < 3) return {};
  const at = (i) => evals[evals.length - 1 - i];
  const last = at(1).bits_per_token - at(0).bits_per_token,
    before = at(2).bits_per_token - at(1).bits_per_token;
  return {
    budget_check:
      `L = 2^${e}: valid ${unit} ${evals.map((r) => r.bits_per_token.toFixed(4)).join(', ')} at steps ${evals.map((r) => r.step).join(', ')};` +
      ` the last ${at(0).step - at(1).step} steps gained ${last.toFixed(4)} (${((100 * last) / at(1).bits_per_token).toFixed(2)}%),` +
      ` the ${at(1).step - at(2).step} before them ${before.toFixed(4)}`,
  };
}

export function notRunMeta(skipped, unfinished = []) {
  const pows = (es) => es.map((e) => `2^${e}`).join(', ');
  const why = [
    ...(skipped.length ? [`time limit reached before L = ${pows(skipped)}`] : []),
    ...(unfinished.length ? [`no finished run folder for L = ${pows(unfinished)} (--report-only)`] : []),
  ];
  return why.length ? { not_run: why.join('; ') } : {};
}

/**
 * A wall-clock budget for a pipeline (limitS 0: none). `over(s)`: fewer than s seconds remain. `fits(e)`
 * guesses whether the next length fits: the last length's wall time times `growth`, the factor between
 * consecutive lengths (about 1 at equal tokens per length, more when tokens grow with the length).
 */
export function timeBudget(limitS, growth = 1) {
  const t0 = Date.now();
  let last = 0;
  const elapsed = () => (Date.now() - t0) / 1000;
  const left = () => (limitS ? limitS - elapsed() : Infinity);
  return {
    elapsed,
    left,
    over: (s = 0) => left() < s,
    /** records that a length took `s` seconds */
    took: (s) => {
      last = s;
    },
    /** whether `needS` seconds (default: the last length's time times `growth`) are left */
    fits: (needS) => left() >= Math.max(20, needS ?? last * growth),
    /**
     * Ends a sweep over `exps` at length 2^e when it no longer fits (`needS`: the seconds it will take, when
     * the pipeline knows better than `growth`): adds it and the rest to `skipped`, says so on stdout as
     * `name`, and returns true.
     */
    skipRest(name, exps, e, skipped, needS) {
      if (this.fits(needS)) return false;
      skipped.push(...exps.slice(exps.indexOf(e)));
      const rest = skipped.map((x) => `2^${x}`).join(', ');
      console.log(`${name}: time limit: ${elapsed().toFixed(0)} s used, not running L = ${rest}`);
      return true;
    },
  };
}

/** Sequences per optimizer step as forward passes of at most `microTokens` tokens of length L: batch x accum. */
export function stepShape(seqsPerStep, microTokens, L) {
  const batch = Math.max(1, Math.min(seqsPerStep, Math.floor(microTokens / L)));
  return { batch, accum: Math.ceil(seqsPerStep / batch) };
}

/**
 * The per-length training flags of the next-token scaling sweeps (DNA and music), so both follow one schedule:
 * lr warmup over a tenth of the steps, four evaluations on max(1, evalTokens / L) windows, recomputation from
 * 2^16, and a sequence-length warmup from `warmupFrom` tokens over the first `warmupShare` of the steps (the
 * trainer grows the batch as the length shrinks, so every step of every L holds the same tokens).
 */
export function lmLengthArgs({ L, batch, accum, steps, evalTokens, warmupFrom = 0, warmupShare = 0 }) {
  const warmupSteps = Math.floor(steps * warmupShare);
  return [
    '--seq-len',
    String(L),
    '--batch',
    String(batch),
    '--accum',
    String(accum),
    '--warmup',
    String(Math.max(1, Math.floor(steps / 10))),
    '--eval-every',
    String(Math.max(1, Math.floor(steps / 4))),
    '--eval-windows',
    String(Math.max(1, Math.floor(evalTokens / L))),
    ...(L >= 2 ** 16 ? ['--recompute'] : []),
    ...(warmupFrom > 0 && warmupFrom < L && warmupSteps > 0
      ? ['--seq-len-warmup', String(warmupFrom), '--seq-len-warmup-steps', String(warmupSteps)]
      : []),
  ];
}

/** A row's warmup: "1024 x 2^10 for 2 steps, then ... 1 x 2^20 from step 25", or "none". */
export function lmWarmupText({ L, batch, steps, warmupFrom, warmupShare }) {
  const warmupSteps = Math.floor(steps * warmupShare);
  if (!(warmupFrom > 0 && warmupFrom < L && warmupSteps > 0)) return 'none';
  const pow = (x) => `2^${Math.log2(x)}`;
  return `${(batch * L) / warmupFrom} x ${pow(warmupFrom)} at step 1 ... ${batch} x ${pow(L)} from step ${warmupSteps + 1}`;
}

/** The schedule line of a scaling sweep's results (see lmLengthArgs). */
export function lmScheduleText({ steps, warmupFrom, warmupShare }) {
  const lrWarmup = Math.max(1, Math.floor(steps / 10));
  const seq =
    warmupFrom > 0 && warmupShare > 0
      ? `; sequence-length warmup at every L above ${warmupFrom}: ${warmupFrom} tokens at first, doubled in equal stages over the first ${Math.floor(steps * warmupShare)} steps up to L, the batch grown as the length shrinks (the same tokens in every step)`
      : '; no sequence-length warmup';
  return `AdamW, lr warmup ${lrWarmup} steps then cosine to 10%, the same ${steps} steps at every L${seq}`;
}

/** The lengths of a sweep as given (--lengths 10,20,...), else the defaults: the far ends first, so a cut sweep still compares them. */
export function sweepLengths(given, defaults) {
  return given ? given.split(',').map(Number) : defaults;
}

/** A log-x line chart of one position curve per model (bits per token against position in the window). */
export function positionSeries(rows) {
  return rows
    .filter((r) => r.position_curve)
    .map((r) => ({
      name: `L = 2^${Math.round(Math.log2(r.seq_len))}`,
      // geometric centre of each octave bin
      points: r.position_curve.map((b) => [Math.sqrt(b.from * b.to), b.bits]),
    }));
}

/**
 * Position bins as the current positionBins makes them: older curves ended in a bin of the lone position
 * L (one prediction per window); it is merged into the bin before it, weighting by counts (exact).
 */
export function normaliseCurve(bins) {
  const last = bins[bins.length - 1],
    prev = bins[bins.length - 2];
  if (!prev || last.from !== last.to) return bins;
  const count = prev.count + last.count;
  return [
    ...bins.slice(0, -2),
    { from: prev.from, to: last.to, bits: (prev.bits * prev.count + last.bits * last.count) / count, count },
  ];
}

/**
 * The position curve of a next-token run on `data` at its length L (pipelines/position-eval.js over
 * max(8, evalTokens / L) windows), kept in the run's position-curve.json and made again only when the run's
 * checkpoint has moved on; returned with its bins normalised.
 */
export function positionCurve(dir, { data, L, evalTokens, device }) {
  const file = join(dir, 'position-curve.json');
  if (!existsSync(file) || JSON.parse(readFileSync(file, 'utf8')).step !== checkpointStep(dir)) {
    const windows = String(Math.max(8, Math.floor(evalTokens / L)));
    const args = ['--checkpoint', dir, '--data', data, '--seq-len', String(L), '--windows', windows];
    nodeScript('position-eval.js', [...args, '--device', device, '--out', file]);
  }
  const curve = JSON.parse(readFileSync(file, 'utf8'));
  curve.bins = normaliseCurve(curve.bins);
  return curve;
}

/** The columns every row of a next-token scaling sweep has: the step shape, the run's summary, its curve. */
export function lmRowFields({ dir, L, batch, accum, steps, stepTokens, warmupFrom, warmupShare, curve }) {
  const s = summariseRun(dir);
  return {
    batch,
    accum,
    seq_warmup: lmWarmupText({ L, batch, steps, warmupFrom, warmupShare }),
    steps: s.steps,
    train_tokens: s.steps * stepTokens,
    valid_bits: s.eval_bits_per_token,
    test_bits: curve.bitsPerToken,
    tail_bits: curve.bins[curve.bins.length - 1].bits,
    test_windows: curve.windows,
    tokens_per_s: s.tokens_per_s,
    peak_mem_bytes: s.peak_mem_bytes,
    position_curve: curve.bins,
  };
}

/** Training seconds of a run folder (from its trainer state), or undefined. */
export function trainSeconds(dir) {
  const p = join(dir, 'trainer_state.json');
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')).elapsedS : undefined;
}

/**
 * --report-only: rewrite a results folder from its finished run folders without computing anything; the
 * command and machine stay those of the run that made them (from the results.json already there).
 */
export function reportOrigin(dir, reportOnly, command, device) {
  const p = join(dir, 'results.json');
  if (reportOnly) {
    if (!existsSync(p)) {
      console.error(`--report-only: ${p} does not exist (nothing to rewrite)`);
      process.exit(2);
    }
    const r = JSON.parse(readFileSync(p, 'utf8'));
    return { command: r.command, machine: r.machine, previous: r };
  }
  return { command, machine: machine(device), previous: undefined };
}

/** A plot series of one column of the rows against their sequence length. */
export function seriesOf(rows, key, name) {
  return { name, points: rows.map((r) => [r.seq_len, r[key]]) };
}

/** Wall seconds of a length: measured now, or (--report-only) the value the original run recorded. */
export function wallSeconds(origin, L, t0) {
  if (!origin.previous) return (Date.now() - t0) / 1000;
  return origin.previous.rows?.find((r) => r.seq_len === L)?.wall_s;
}
