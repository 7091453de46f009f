export * from './tensor.js';
export * from './device.js';
export * from './ops.js';
export { native, nativeLimits, cpuOp, cudaOp, packageRoot } from './native.js';
export type { DeviceBuffer, NativeLimits } from './native.js';
