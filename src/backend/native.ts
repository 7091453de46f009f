// Loads the native addon (build/Release/mamba_native.node) once. The addon exports `cpu` kernels always
// and `cuda` kernels when it was built with nvcc; each kernel is a plain function over TypedArrays (CPU)
// or device buffers (CUDA). Op signatures are documented next to each binding in native/.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An opaque device buffer handle made by cuda.alloc / cuda.view. */
export type DeviceBuffer = { readonly __deviceBuffer: unique symbol };

// Kernels are looked up by name; each op module declares the signature it relies on.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeFn = (...args: any[]) => any;
export interface NativeAddon {
  cpu: Record<string, NativeFn>;
  cuda?: Record<string, NativeFn>;
  build: { cuda: boolean; compiler: string };
  limits?: NativeLimits;
}

/** Size limits of the kernels (native/src/limits.h), exported by the addon so that no copy of them lives here. */
export interface NativeLimits {
  /** largest d_state of the CUDA selective scan */
  cudaScanMaxState: number;
  /** largest kernel width d_conv of the CUDA causal conv */
  cudaConvMaxTaps: number;
  /** channels per x_proj partial sum of decodeIn: xPart is [ceil(E / decodeChunk), B, R + 2N] */
  decodeChunk: number;
  /** largest batch of the fused decoding ops */
  decodeMaxBatch: number;
  /** sequences a CUDA decoding block serves (a batch runs as groups of this many, side by side) */
  decodeGroup: number;
  decodeThreads: number;
  /** dynamic shared memory a CUDA decoding block may take */
  decodeSharedBytes: number;
  decodeMaxState: number;
  decodeMaxConv: number;
  /** whether the CUDA fused decoding ops take B sequences of these sizes (activations of actBytes bytes) */
  decodeFits(B: number, D: number, E: number, R: number, N: number, K: number, actBytes: number): boolean;
  /** whether the CUDA decodeInProj (bf16 tensor cores) takes B sequences of d_model D, d_inner E, d_conv K */
  decodeInProjFits(B: number, D: number, E: number, K: number): boolean;
  /** whether the CUDA convXProj (bf16 tensor cores) takes B sequences of d_inner E, d_conv K, x_proj width J */
  convXProjFits(B: number, E: number, K: number, J: number): boolean;
}

/** The package root (two levels above src/backend or dist/backend). */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const path = process.env.MAMBA_NATIVE_PATH ?? join(packageRoot, 'build', 'Release', 'mamba_native.node');
  if (!existsSync(path)) {
    throw new Error(
      `the native addon is missing (${path}); build it with \`npm run build:native\` (or \`npm install\`)`,
    );
  }
  const require = createRequire(import.meta.url);
  addon = require(path) as NativeAddon;
  return addon;
}

/** The kernels' size limits; a clear error if the addon predates them. */
export function nativeLimits(): NativeLimits {
  const l = native().limits;
  if (!l) throw new Error('the native addon exports no limits (it predates them); rebuild with `npm run build:native`');
  return l;
}

/** A CPU kernel by name; a clear error if the addon predates it. */
export function cpuOp(name: string): NativeFn {
  const fn = native().cpu[name];
  if (!fn)
    throw new Error(`native CPU kernel "${name}" is missing from the addon; rebuild with \`npm run build:native\``);
  return fn;
}

/** A CUDA kernel by name; a clear error if the addon has no CUDA or lacks the kernel. */
export function cudaOp(name: string): NativeFn {
  const c = native().cuda;
  if (!c) throw new Error('this build of the addon has no CUDA kernels (nvcc was not found when it was built)');
  const fn = c[name];
  if (!fn)
    throw new Error(`native CUDA kernel "${name}" is missing from the addon; rebuild with \`npm run build:native\``);
  return fn;
}
