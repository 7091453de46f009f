#!/usr/bin/env python3
"""Loads a run folder written by `mamba-dna train` with transformers, unchanged, and compares its logits with ours.

    python3 scripts/hf-roundtrip.py RUN_DIR

RUN_DIR holds config.json, model.safetensors, tokenizer.json and our-logits.safetensors (written here by
scripts/dump-logits.js: input_ids, our f32 CPU logits, and a DNA text with the ids our tokenizer gives it).
Prints the relative error ||hf - ours|| / ||ours|| of the logits on the CPU and, where there is one, on CUDA
(both f32, TF32 off), every key transformers reported missing or unexpected, and whether AutoTokenizer
gives our ids. Exits 1 if a check fails (relative error >= 1e-5, a missing weight, other token ids).
"""
import json
import os
import sys

import torch
import transformers
from safetensors import safe_open
from transformers import AutoTokenizer, MambaForCausalLM

TOLERANCE = 1e-5


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    run = sys.argv[1]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with safe_open(os.path.join(run, "our-logits.safetensors"), "pt") as f:
        ids = f.get_tensor("input_ids").long()
        ours = f.get_tensor("logits").double()
        meta = f.metadata()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}; input {tuple(ids.shape)}")
    ok = True

    model, info = MambaForCausalLM.from_pretrained(run, dtype=torch.float32, output_loading_info=True)
    model.eval()
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(k):
            print(f"  {k}: {info[k]}")
            ok = ok and k == "unexpected_keys"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        m = model.to(dev)
        with torch.no_grad():
            hf = m(input_ids=ids.to(dev), use_cache=False).logits.double().cpu()
        if hf.shape != ours.shape:
            print(f"  {dev}: logits shape {tuple(hf.shape)}, ours {tuple(ours.shape)}")
            ok = False
            continue
        rel = ((hf - ours).norm() / ours.norm()).item()
        mx = (hf - ours).abs().max().item()
        passed = rel < TOLERANCE
        ok = ok and passed
        verdict = "PASS" if passed else "FAIL"
        print(f"  {dev} f32: relative error {rel:.3e} (max abs {mx:.3e}) {verdict} (< {TOLERANCE:g})")

    text, want = meta.get("tokenizer_text"), json.loads(meta.get("tokenizer_ids", "[]"))
    if text is not None:
        tok = AutoTokenizer.from_pretrained(run)
        got = tok(text, add_special_tokens=False)["input_ids"]
        same = got == want
        ok = ok and same
        print(f"  AutoTokenizer({text!r}) -> {got}: {'PASS (our ids)' if same else f'FAIL, ours {want}'}")
        print(f"  decode: {tok.decode(got)!r}; <bos> is {tok.convert_tokens_to_ids('<bos>')}, vocab {len(tok)}")
    print("round trip:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
