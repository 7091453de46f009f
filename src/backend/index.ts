export * from './tensor.js';
export * from './device.js';
export * from './ops.js';
export { native, cpuOp, cudaOp, packageRoot } from './native.js';
export type { DeviceBuffer } from './native.js';
