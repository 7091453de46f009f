#!/usr/bin/env node
// npm run bench [-- NAME...]: runs the benchmarks in bench/ (all of them, or those named), each in its
// own process. Shapes, medians and floors are printed by each benchmark and kept in bench/README.md.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && f !== 'readme.js')
  .map((f) => f.slice(0, -3))
  .sort();
const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`usage: npm run bench [-- NAME...]\nbenchmarks: ${all.join(', ')}`);
  process.exit(0);
}
const unknown = asked.filter((a) => !all.includes(a));
if (unknown.length) {
  console.error(`bench: unknown benchmark(s) ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of asked.length ? asked : all) {
  console.log(`\n=== bench/${name}.js ===`);
  const r = spawnSync(process.execPath, [join(here, `${name}.js`)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
