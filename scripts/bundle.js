#!/usr/bin/env node
// npm run bundle: a self-contained offline tarball for air-gapped Linux x86-64 (GPU) machines.
// It holds the Node runtime running this script, the compiled JS (dist/), the production dependencies,
// the native addon as built here (build/Release), the CLIs and the shipped datasets. Unpack it and run
// ./bin/mamba-dna with nothing else installed:
//   tar -xJf mamba-seq-0.1.0-linux-x64.tar.xz && mamba-seq-0.1.0-linux-x64/bin/mamba-dna doctor
// Options: --out DIR (default bundle/), --no-compress (leave the folder only), --no-node (skip the runtime).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (f) => args.includes(f);
const outIdx = args.indexOf('--out');
const outDir = outIdx >= 0 ? args[outIdx + 1] : join(root, 'bundle');
if (flag('--help') || flag('-h')) {
  console.log('usage: npm run bundle -- [--out DIR] [--no-compress] [--no-node]');
  process.exit(0);
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const name = `${pkg.name}-${pkg.version}-linux-x64`;
const stage = join(outDir, name);

function fail(msg) {
  console.error(`bundle: ${msg}`);
  process.exit(1);
}
const addon = join(root, 'build', 'Release', 'mamba_native.node');
if (!existsSync(addon)) fail('build/Release/mamba_native.node is missing: run `npm run build:native` first');
if (!existsSync(join(root, 'dist', 'cli', 'dna.js'))) fail('dist/ is missing: run `npm run build` first');

rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'build', 'Release'), { recursive: true });
copyFileSync(addon, join(stage, 'build', 'Release', 'mamba_native.node'));
cpSync(join(root, 'dist'), join(stage, 'dist'), { recursive: true, filter: (p) => !p.endsWith('.map') });
for (const d of ['bin', 'datasets', 'pipelines', 'bench']) {
  if (existsSync(join(root, d)))
    cpSync(join(root, d), join(stage, d), {
      recursive: true,
      filter: (p) => !p.startsWith(join(root, 'datasets', 'build')),
    });
}
copyFileSync(join(root, 'README.md'), join(stage, 'README.md'));
// package.json without install scripts: the addon is prebuilt
const runtimePkg = { ...pkg, scripts: {}, devDependencies: {} };
for (const d of ['cmake-js', 'node-addon-api', 'node-api-headers']) delete runtimePkg.dependencies[d];
writeFileSync(join(stage, 'package.json'), JSON.stringify(runtimePkg, null, 2));

// production dependency closure, resolved the way Node resolves it (hoisted node_modules)
const seen = new Set();
function copyDep(depName, fromDir) {
  // look in fromDir/node_modules, then in each ancestor's node_modules up to the package root
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const cand = join(dir, 'node_modules', depName);
    if (existsSync(join(cand, 'package.json'))) {
      const rel = cand.slice(root.length + 1);
      if (seen.has(rel)) return;
      seen.add(rel);
      cpSync(cand, join(stage, rel), { recursive: true, dereference: true });
      const dp = JSON.parse(readFileSync(join(cand, 'package.json'), 'utf8'));
      for (const d of Object.keys({ ...dp.dependencies, ...dp.optionalDependencies })) copyDep(d, cand);
      return;
    }
    if (dir === root || dir.length <= root.length) break;
  }
  if (fromDir === root) fail(`dependency ${depName} is not installed: run npm install`);
  // else: an optional dependency that is not installed here
}
for (const d of Object.keys(runtimePkg.dependencies)) copyDep(d, root);

// the Node runtime: this very binary, stripped
if (!flag('--no-node')) {
  mkdirSync(join(stage, 'node', 'bin'), { recursive: true });
  const nodeDst = join(stage, 'node', 'bin', 'node');
  copyFileSync(process.execPath, nodeDst);
  chmodSync(nodeDst, 0o755);
  spawnSync('strip', [nodeDst], { stdio: 'ignore' });
}

// launchers: bin/mamba-dna and bin/mamba-audio use the bundled node when present
for (const cli of ['mamba-dna', 'mamba-audio']) {
  const sh = `#!/bin/sh
# ${cli} launcher: runs the CLI with the bundled Node runtime (or node on PATH if the bundle has none)
HERE="$(cd "$(dirname "$0")/.." && pwd)"
NODE="$HERE/node/bin/node"
[ -x "$NODE" ] || NODE=node
exec "$NODE" "$HERE/bin/${cli}.js" "$@"
`;
  writeFileSync(join(stage, 'bin', cli), sh);
  chmodSync(join(stage, 'bin', cli), 0o755);
}

let size = 0;
if (!flag('--no-compress')) {
  const tarball = join(outDir, `${name}.tar.xz`);
  const r = spawnSync('tar', ['-C', outDir, '-cJf', tarball, name], {
    stdio: 'inherit',
    env: { ...process.env, XZ_OPT: '-6 -T0' },
  });
  if (r.status !== 0) fail('tar failed');
  size = statSync(tarball).size;
  console.log(`bundle: ${tarball} (${(size / 2 ** 20).toFixed(1)} MiB)`);
} else {
  console.log(`bundle: ${stage}`);
}
