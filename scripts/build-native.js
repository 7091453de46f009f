#!/usr/bin/env node
// Builds the native addon with cmake-js into build/ (build/Release/mamba_native.node).
// Environment:
//   MAMBA_CUDA=AUTO|ON|OFF   AUTO (default) builds the CUDA kernels when nvcc is found; ON makes a missing nvcc an error
//   MAMBA_CUDA_ARCHS="90-real;90-virtual"   CUDA architectures (add "80-real" for A100, ...)
//   MAMBA_CPU_ARCH=x86-64-v3 -march of the CPU kernels ("native" for this machine only)
//   MAMBA_SKIP_NATIVE=1      skip the build (the bundle ships a prebuilt addon)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.MAMBA_SKIP_NATIVE === '1') {
  console.log('mamba: MAMBA_SKIP_NATIVE=1, native build skipped');
  process.exit(0);
}
const require = createRequire(import.meta.url);
let cmakeJs;
try {
  cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
} catch {
  console.error('mamba: cmake-js is not installed; run `npm install` first');
  process.exit(1);
}
const cuda = (process.env.MAMBA_CUDA ?? 'AUTO').toUpperCase();
if (!['AUTO', 'ON', 'OFF'].includes(cuda)) {
  console.error(`mamba: MAMBA_CUDA must be AUTO, ON or OFF, not "${process.env.MAMBA_CUDA}"`);
  process.exit(2);
}
const args = [
  cmakeJs,
  'compile',
  '--directory',
  join(root, 'native'),
  '--out',
  join(root, 'build'),
  '--parallel',
  String(Math.max(1, availableParallelism())),
  `--CDMAMBA_CUDA=${cuda}`,
];
if (process.env.MAMBA_CUDA_ARCHS) args.push(`--CDMAMBA_CUDA_ARCHS=${process.env.MAMBA_CUDA_ARCHS}`);
if (process.env.MAMBA_CPU_ARCH !== undefined) args.push(`--CDMAMBA_CPU_ARCH=${process.env.MAMBA_CPU_ARCH}`);
const t0 = Date.now();
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('mamba: native build failed (see the compiler output above)');
  process.exit(r.status ?? 1);
}
if (!existsSync(join(root, 'build', 'Release', 'mamba_native.node'))) {
  console.error('mamba: native build finished but build/Release/mamba_native.node is missing');
  process.exit(1);
}
console.log(`mamba: native addon built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
