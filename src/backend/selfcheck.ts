// A quick check that the native backend works on this machine: CPU kernels always; on a GPU also a
// tensor round trip and cuBLAS products (f32 and bf16) compared with the CPU. Used by `doctor`.
import { cudaAvailable, cudaDeviceInfo } from './device.js';
import { native } from './native.js';
import { matmul } from './ops.js';
import { Tensor } from './tensor.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

function seeded(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export function selfCheck(): CheckResult[] {
  const out: CheckResult[] = [];
  const nat = native();
  out.push({
    name: 'addon',
    ok: true,
    detail: `built with ${nat.build.compiler}${nat.build.cuda ? ', CUDA kernels included' : ', CPU only'}; ${nat.cpu.numThreads!()} CPU threads`,
  });
  const M = 193,
    K = 257,
    N = 131;
  const A = Tensor.from(seeded(M * K, 1), [M, K]);
  const B = Tensor.from(seeded(N * K, 2), [N, K]);
  const ref = matmul(Tensor.from(Float64Array.from(A.f32), [M, K]), Tensor.from(Float64Array.from(B.f32), [N, K]), {
    transB: true,
  });
  const cpu = matmul(A, B, { transB: true });
  const eCpu = relErr(cpu.f32, ref.data as Float64Array);
  out.push({
    name: 'cpu gemm',
    ok: eCpu < 1e-5,
    detail: `[${M}x${K}] @ [${N}x${K}]^T, relative error vs float64 ${eCpu.toExponential(2)}`,
  });
  if (!nat.build.cuda) return out;
  if (!cudaAvailable()) {
    out.push({ name: 'cuda', ok: true, detail: 'addon has CUDA kernels but no GPU is visible: using the CPU' });
    return out;
  }
  const info = cudaDeviceInfo(0);
  out.push({
    name: 'cuda device',
    ok: true,
    detail: `${info.name}, sm_${info.major}${info.minor}, ${info.multiprocessors} SMs, ${(info.totalBytes / 2 ** 30).toFixed(1)} GiB`,
  });
  const back = A.to('cuda').to('cpu');
  const same = back.f32.every((v, i) => v === A.f32[i]);
  out.push({
    name: 'tensor round trip',
    ok: same,
    detail: same ? `${A.numel} floats host -> device -> host, bit-identical` : 'values changed on the way',
  });
  const gpu = matmul(A.to('cuda'), B.to('cuda'), { transB: true }).to('cpu');
  const eGpu = relErr(gpu.f32, ref.data as Float64Array);
  out.push({
    name: 'cublas gemm f32',
    ok: eGpu < 1e-3,
    detail: `relative error vs CPU float64 ${eGpu.toExponential(2)} (TF32 not used)`,
  });
  const gb = matmul(A.to('cuda').cast('bf16'), B.to('cuda').cast('bf16'), { transB: true }).to('cpu');
  const eBf = relErr(gb.f32, ref.data as Float64Array);
  out.push({
    name: 'cublas gemm bf16',
    ok: eBf < 1e-2,
    detail: `bf16 inputs, fp32 accumulation: relative error ${eBf.toExponential(2)}`,
  });
  const libs = nat.cuda!.libraries!() as Record<string, unknown>;
  out.push({
    name: 'libraries',
    ok: !libs.cublasError,
    detail: `cuBLAS ${String(libs.cublas ?? libs.cublasError)}; NCCL ${String(libs.nccl ? `${libs.nccl} (${libs.ncclVersion})` : libs.ncclError)}`,
  });
  return out;
}
