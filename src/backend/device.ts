// Device discovery: `cuda` when the addon was built with CUDA and a GPU is present, else `cpu`.
import { native } from './native.js';

export type Device = 'cpu' | 'cuda';
export type DeviceRequest = Device | 'auto';

export interface CudaDeviceInfo {
  name: string;
  major: number;
  minor: number;
  multiprocessors: number;
  totalBytes: number;
}

let cudaCount: number | undefined;

/** Number of usable GPUs (0 without a CUDA build, a driver or a GPU). */
export function cudaDeviceCount(): number {
  if (cudaCount === undefined) {
    const c = native().cuda;
    cudaCount = c ? (c.deviceCount() as number) : 0;
  }
  return cudaCount;
}

export function cudaAvailable(): boolean {
  return cudaDeviceCount() > 0;
}

export function cudaDeviceInfo(index = 0): CudaDeviceInfo {
  if (!cudaAvailable()) throw new Error('no CUDA device is available');
  return native().cuda!.deviceInfo(index) as CudaDeviceInfo;
}

/** Resolves `auto` to the best device; asking for `cuda` where there is none is a clear error. */
export function resolveDevice(req: DeviceRequest = 'auto'): Device {
  if (req === 'cpu') return 'cpu';
  if (req === 'cuda') {
    if (!native().build.cuda)
      throw new Error(
        '--device cuda: this build has no CUDA kernels (nvcc was not found at build time); rebuild with MAMBA_CUDA=ON npm run build:native',
      );
    if (!cudaAvailable()) throw new Error('--device cuda: no NVIDIA GPU was found (check nvidia-smi and the driver)');
    return 'cuda';
  }
  if (req === 'auto') return cudaAvailable() ? 'cuda' : 'cpu';
  throw new Error(`unknown device "${String(req)}": use auto, cpu or cuda`);
}
