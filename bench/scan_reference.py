#!/usr/bin/env python3
"""PyTorch reference points for bench/scan-cuda.js (run on the GPU machine; prints one JSON object per line).

1. A selective scan written with plain PyTorch ops (no custom kernels): the sequence is cut into blocks of
   `block` steps; inside a block a Hillis-Steele associative scan over (decay, input) pairs runs in
   log2(block) tensor steps on (B, block, D, N); the state is carried from block to block. Same maths as
   the CUDA kernel (softplus(delta + bias), A = -exp(A_log), D skip, SiLU(z) gate), bf16 inputs, fp32 state.
2. torch.nn.functional.scaled_dot_product_attention, causal, bf16, at the same width (12 heads x 128 = 1536)
   and length, to show where the linear-time scan overtakes quadratic attention.
Usage: scan_reference.py '{"D":1536,"N":16,"scan":[[B,L],...],"attn":[[B,L],...],"max_seconds":20}'
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def median_time(fn, runs, budget):
    fn()  # warm-up (and compile/alloc)
    torch.cuda.synchronize()
    times = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    times.sort()
    return times[len(times) // 2], len(times)


def torch_scan(u, delta, dbias, A, Bm, Cm, Dskip, z, block):
    Bsz, L, D = u.shape
    N = A.shape[1]
    h = torch.zeros(Bsz, D, N, device=u.device, dtype=torch.float32)
    ys = []
    for s in range(0, L, block):
        e = min(L, s + block)
        dt = F.softplus(delta[:, s:e].float() + dbias)                       # (B, l, D)
        a = torch.exp(dt.unsqueeze(-1) * A)                                  # (B, l, D, N)
        x = (dt * u[:, s:e].float()).unsqueeze(-1) * Bm[:, s:e].float().unsqueeze(2)
        k = 1
        while k < e - s:                                                     # inclusive scan over time
            x = torch.cat([x[:, :k], a[:, k:] * x[:, :-k] + x[:, k:]], dim=1)
            a = torch.cat([a[:, :k], a[:, k:] * a[:, :-k]], dim=1)
            k *= 2
        hs = x + a * h.unsqueeze(1)                                          # carry the state in
        h = hs[:, -1]
        y = torch.einsum('bldn,bln->bld', hs, Cm[:, s:e].float()) + Dskip * u[:, s:e].float()
        ys.append((y * F.silu(z[:, s:e].float())).to(u.dtype))
    return torch.cat(ys, dim=1)


def main():
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    D, N = cfg.get('D', 1536), cfg.get('N', 16)
    budget = cfg.get('max_seconds', 20)
    dev = torch.device('cuda')
    print(json.dumps({'kind': 'env', 'torch': torch.__version__, 'gpu': torch.cuda.get_device_name(0)}), flush=True)
    torch.manual_seed(0)
    for Bsz, L in cfg.get('scan', []):
        try:
            bf = torch.bfloat16
            u = torch.randn(Bsz, L, D, device=dev, dtype=bf)
            delta = (torch.randn(Bsz, L, D, device=dev) * 0.7 - 1.2).to(bf)
            z = torch.randn(Bsz, L, D, device=dev, dtype=bf)
            Bm = torch.randn(Bsz, L, N, device=dev, dtype=bf)
            Cm = torch.randn(Bsz, L, N, device=dev, dtype=bf)
            A = -torch.exp(torch.rand(D, N, device=dev) * 3 - 1.5)
            dbias = torch.rand(D, device=dev) - 0.5
            Dskip = torch.randn(D, device=dev)
            block = 1024
            with torch.no_grad():
                t, n = median_time(lambda: torch_scan(u, delta, dbias, A, Bm, Cm, Dskip, z, block), 3, budget)
            print(json.dumps({'kind': 'torch_scan', 'B': Bsz, 'L': L, 'ms': t * 1e3, 'runs': n, 'block': block}), flush=True)
            del u, delta, z, Bm, Cm
        except torch.cuda.OutOfMemoryError:
            print(json.dumps({'kind': 'torch_scan', 'B': Bsz, 'L': L, 'error': 'out of memory'}), flush=True)
        torch.cuda.empty_cache()
    H = 12
    hd = D // H
    for Bsz, L in cfg.get('attn', []):
        try:
            q = torch.randn(Bsz, H, L, hd, device=dev, dtype=torch.bfloat16)
            k = torch.randn_like(q)
            v = torch.randn_like(q)
            with torch.no_grad():
                t, n = median_time(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), 3, budget)
            print(json.dumps({'kind': 'sdpa', 'B': Bsz, 'L': L, 'ms': t * 1e3, 'runs': n,
                              'tflops': 2 * 2 * Bsz * H * L * L * hd / 2 / t / 1e12}), flush=True)
            del q, k, v
        except torch.cuda.OutOfMemoryError:
            print(json.dumps({'kind': 'sdpa', 'B': Bsz, 'L': L, 'error': 'out of memory'}), flush=True)
        torch.cuda.empty_cache()


if __name__ == '__main__':
    main()
