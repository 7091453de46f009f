#!/usr/bin/env node
// Long fuzzing run: `npm run fuzz -- --minutes N [--seed S] [--targets fasta,bgzf] [--timeout-ms T] [--memory-mb M]`.
// Writes bench/results/fuzz-<date>.json and .md (inputs per parser and outcome, every finding with the
// run seed and index that reproduce it) and exits 1 if any finding is in a parser that is not report-only.
// Needs dist/ (npm run build or npx tsc).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failing, reportMarkdown, runFuzz, writeReport } from '../test/fuzz/harness.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const minutes = Number(opt('minutes', '1'));
if (!(minutes > 0)) {
  console.error('fuzz: --minutes must be a positive number');
  process.exit(2);
}
const targets = opt('targets');
const report = await runFuzz({
  minutes,
  seed: Number(opt('seed', String(Date.now() % 1e9))),
  timeoutMs: Number(opt('timeout-ms', '3000')),
  memoryMb: Number(opt('memory-mb', '512')),
  ...(targets ? { targets: targets.split(',') } : {}),
  log: (l) => console.error(l),
});
const base = writeReport(report, join(dirname(fileURLToPath(import.meta.url)), 'results'));
console.log(reportMarkdown(report));
console.error(`wrote ${base}.json and ${base}.md`);
process.exit(failing(report).length ? 1 : 0);
