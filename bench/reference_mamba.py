#!/usr/bin/env python3
"""The reference side of issue 17's table, on the GPU machine: state-spaces/mamba (selective_scan_cuda, its Triton
RMSNorm, MambaLMHeadModel, generate(cg=True)) with Dao-AILab/causal-conv1d, JIT-built for sm_90 only from sources
carried by bench/reference-pack.sh, then timed on the rows the toolkit's own benches time (bench/scan-cuda.js,
bench/model-train.js, bench/generate.js). A dev harness: nothing of the reference ships, and this file holds none of
its code, only calls into it.

  tar -xJf .carry/ref.tar.xz -C runs        # the sources, packed here by bench/reference-pack.sh
  python3 bench/reference_mamba.py --src runs/ref --build runs/ref-build --build-only   # ~2.5 + 7 min on 16 cores
  python3 bench/reference_mamba.py --src runs/ref --build runs/ref-build [--rows scan,train,generate] > ref.jsonl

The build directory keeps the compiled extensions; a second run with the same sources loads them without compiling
(the GPU machine keeps ignored paths such as runs/ between calls while it stays warm). One JSON object per line: a
row, its shape and its median time, then a markdown table on stderr. Written at the end of stop 16 with no device time
left: not yet run.
"""
import argparse
import json
import os
import statistics
import sys
import time
import types


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default="runs/ref", help="the unpacked sources, mamba/ and causal-conv1d/")
    p.add_argument("--build", default="runs/ref-build", help="where the compiled extensions are kept")
    p.add_argument("--build-only", action="store_true", help="compile the extensions and stop")
    p.add_argument("--ext", default="selective_scan_cuda,causal_conv1d_cuda",
                   help="which extensions to build or load (comma-separated; two --build-only runs side by side "
                        "with one each finish in about the time of the slower, causal_conv1d)")
    p.add_argument("--rows", default="scan,train,generate", help="which rows to time (comma-separated)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per row after a warm-up (default 5)")
    return p.parse_args()


def build(src, build_dir, name):
    """JIT-builds one extension for sm_90 only (as the toolkit's own build) and registers it under its import name."""
    import torch.utils.cpp_extension as ext

    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 8))
    if name == "selective_scan_cuda":
        root = os.path.join(src, "mamba", "csrc", "selective_scan")
        files = ["selective_scan.cpp"] + [f"selective_scan_fwd_{t}.cu" for t in ("fp32", "fp16", "bf16")]
        files += [f"selective_scan_bwd_{t}_{k}.cu" for t in ("fp32", "fp16", "bf16") for k in ("real", "complex")]
    else:
        root = os.path.join(src, "causal-conv1d", "csrc")
        files = ["causal_conv1d.cpp", "causal_conv1d_fwd.cu", "causal_conv1d_bwd.cu", "causal_conv1d_update.cu"]
    # the flags of the projects' own setup.py, less the other architectures
    nvcc = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "--expt-extended-lambda", "--use_fast_math"]
    nvcc += [f"-U__CUDA_NO_{w}__" for w in ("HALF_OPERATORS", "HALF_CONVERSIONS", "BFLOAT16_OPERATORS",
                                            "BFLOAT16_CONVERSIONS", "BFLOAT162_OPERATORS", "BFLOAT162_CONVERSIONS")]
    nvcc += ["-gencode", "arch=compute_90,code=sm_90", "--threads", "4"]
    out = os.path.join(build_dir, name)
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    mod = ext.load(name=name, sources=[os.path.join(root, f) for f in files], extra_cflags=["-O3", "-std=c++17"],
                   extra_cuda_cflags=nvcc, extra_include_paths=[root], build_directory=out, verbose=False)
    sys.modules[name] = mod
    print(f"reference_mamba: {name} ready in {time.time() - t0:.0f} s", file=sys.stderr)
    return mod


def import_reference(src):
    """The reference's Python side, without running mamba_ssm/__init__.py (it imports every model family)."""
    sys.path.insert(0, os.path.join(src, "causal-conv1d"))
    pkg = types.ModuleType("mamba_ssm")
    pkg.__path__ = [os.path.join(src, "mamba", "mamba_ssm")]
    sys.modules["mamba_ssm"] = pkg
    import causal_conv1d  # noqa: F401 (needs causal_conv1d_cuda registered)
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    return MambaConfig, MambaLMHeadModel, selective_scan_fn


def timed(fn, runs):
    """Median wall ms of fn() over `runs` runs after one warm-up, each ended by a synchronize."""
    import torch

    fn()
    torch.cuda.synchronize()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        t.append((time.perf_counter() - t0) * 1000)
    return statistics.median(t)


def scan_rows(selective_scan_fn, runs):
    """selective_scan_fn at the issue's shapes: D = 1536, N = 16, bf16 u, delta, z, B, C; f32 A, D, delta_bias."""
    import torch

    D, N = 1536, 16
    for B, L in ((1, 2**20), (16, 2**12), (8, 2**11)):
        g = torch.Generator(device="cuda").manual_seed(1)
        r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
        u, z = (r(B, D, L).bfloat16().requires_grad_() for _ in range(2))
        delta = (0.5 * r(B, D, L)).bfloat16().requires_grad_()
        Bm, Cm = (r(B, N, L).bfloat16().requires_grad_() for _ in range(2))
        A = (-torch.exp(0.5 * r(D, N))).requires_grad_()
        Dsk, bias = r(D).requires_grad_(), (-1 + 0.1 * r(D)).requires_grad_()
        args = (u, delta, A, Bm, Cm, Dsk, z, bias, True)
        fwd = lambda: selective_scan_fn(*args)  # noqa: E731
        dy = r(B, D, L).bfloat16()
        both = lambda: selective_scan_fn(*args).backward(dy)  # noqa: E731
        with torch.no_grad():
            f = timed(fwd, runs)
        yield {"row": "scan", "B": B, "L": L, "D": D, "N": N, "forward_ms": f, "fwd_bwd_ms": timed(both, runs)}
        del u, z, delta, Bm, Cm, dy
        torch.cuda.empty_cache()


def lm(MambaConfig, MambaLMHeadModel, d_model, n_layer, vocab):
    import torch

    cfg = MambaConfig(d_model=d_model, n_layer=n_layer, vocab_size=vocab, ssm_cfg={"layer": "Mamba1"},
                      rms_norm=True, residual_in_fp32=True, fused_add_norm=True)
    torch.manual_seed(1)
    return MambaLMHeadModel(cfg, device="cuda", dtype=torch.float32)


def train_rows(MambaConfig, MambaLMHeadModel, runs):
    """One training step (zero_grad, bf16 autocast forward, cross-entropy, backward, clip 1.0, fused AdamW), as
    bench/model-train.js times the toolkit's: 130m at 8 x 2048, small on one 2^20 sequence with and without each
    block checkpointed. Tokens/s from the median step; memory the caching allocator's peak."""
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    # vocabulary 16 for both, as bench/model-train.js (the DNA tokens): stops 17 to 32 gave the reference's 130m
    # row GPT-NeoX's 50,280 (17.7 GiB, a 50k-wide head and its f32 cross-entropy), which the toolkit's row lacks
    for name, (d, n, V), (B, L), ckpt in (("130m", (768, 24, 16), (8, 2048), False),
                                         ("small", (256, 8, 16), (1, 2**20), False),
                                         ("small", (256, 8, 16), (1, 2**20), True)):
        model = lm(MambaConfig, MambaLMHeadModel, d, n, V)
        if ckpt:  # each block recomputed in the backward (the reference has no switch of its own)
            for blk in model.backbone.layers:
                fwd = blk.forward
                blk.forward = lambda h, r=None, inference_params=None, _f=fwd, **kw: checkpoint(
                    _f, h, r, use_reentrant=False)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        ids = torch.randint(0, V, (B, L + 1), device="cuda")

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(ids[:, :-1]).logits
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        torch.cuda.reset_peak_memory_stats()
        ms = timed(step, runs)
        yield {"row": "train", "model": name, "B": B, "L": L, "checkpoint_blocks": ckpt, "ms_per_step": ms,
               "tokens_per_s": B * L / ms * 1000, "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
        del model, opt
        torch.cuda.empty_cache()


def generate_rows(MambaConfig, MambaLMHeadModel, runs):
    """generate(cg=True), greedy (top_k = 1), bf16 weights: prefill plus every step, as bench/generate.js times it."""
    import torch

    model = lm(MambaConfig, MambaLMHeadModel, 768, 24, 50280).to(torch.bfloat16).eval()
    for B, prompt, new in ((1, 16, 256), (64, 16, 256), (16, 8192, 128)):
        ids = torch.randint(0, 50280, (B, prompt), device="cuda")
        run = lambda: model.generate(ids, max_length=prompt + new, cg=True, top_k=1)  # noqa: E731
        ms = timed(run, runs)
        yield {"row": "generate", "model": "130m", "B": B, "prompt": prompt, "new": new, "total_ms": ms,
               "tokens_per_s": B * new / ms * 1000}


def main():
    a = parse_args()
    import torch

    for name in a.ext.split(","):
        build(a.src, a.build, name)
    if a.build_only:
        return
    MambaConfig, MambaLMHeadModel, selective_scan_fn = import_reference(a.src)
    meta = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(),
            "mamba": open(os.path.join(a.src, "mamba", "VERSION")).read().strip(),
            "causal_conv1d": open(os.path.join(a.src, "causal-conv1d", "VERSION")).read().strip()}
    print(json.dumps({"row": "versions", **meta}), flush=True)
    rows = set(a.rows.split(","))
    table = []
    if "scan" in rows:
        for r in scan_rows(selective_scan_fn, a.runs):
            print(json.dumps(r), flush=True)
            table.append(f"| scan fwd / fwd+bwd, B={r['B']} L={r['L']} | {r['forward_ms']:.3f} / "
                         f"{r['fwd_bwd_ms']:.3f} ms |")
    if "train" in rows:
        for r in train_rows(MambaConfig, MambaLMHeadModel, a.runs):
            print(json.dumps(r), flush=True)
            ck = " (blocks checkpointed)" if r["checkpoint_blocks"] else ""
            table.append(f"| train {r['model']} {r['B']} x {r['L']}{ck} | {r['tokens_per_s']:,.0f} tokens/s at "
                         f"{r['peak_gib']:.1f} GiB |")
    if "generate" in rows:
        for r in generate_rows(MambaConfig, MambaLMHeadModel, a.runs):
            print(json.dumps(r), flush=True)
            table.append(f"| generate 130m, B={r['B']}, {r['prompt']} + {r['new']} | {r['tokens_per_s']:,.0f} "
                         f"tokens/s |")
    print(f"reference ({meta['mamba']}, causal-conv1d {meta['causal_conv1d']}, torch {meta['torch']}, {meta['gpu']})",
          file=sys.stderr)
    print("| work | reference |\n| --- | --- |\n" + "\n".join(table), file=sys.stderr)


if __name__ == "__main__":
    main()
