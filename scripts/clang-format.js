#!/usr/bin/env node
// clang-format over the C++ and CUDA sources under native/ and the CUDA dev harnesses in bench/ (the style is in
// .clang-format).
//   node scripts/clang-format.js --check   lists files that are not formatted and exits 1 (npm run lint)
//   node scripts/clang-format.js           formats them in place (npm run format)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const check = process.argv.includes('--check');
const sources = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(cc|h|cu|cuh)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
const files = [...sources(join(root, 'native')), ...sources(join(root, 'bench'))].map((f) => relative(root, f)).sort();
const args = check ? ['--dry-run', '-Werror', ...files] : ['-i', ...files];
const r = spawnSync(process.env.CLANG_FORMAT ?? 'clang-format', args, { cwd: root, stdio: 'inherit' });
if (r.error) {
  console.error(`clang-format: ${r.error.message} (apt-get install clang-format)`);
  process.exit(1);
}
if (r.status !== 0 && check) console.error('clang-format: files above differ from .clang-format: npm run format');
process.exit(r.status ?? 1);
