#!/usr/bin/env python3
"""Tiny Hugging Face / mamba_ssm checkpoint fixtures, each with HF's own logits on a fixed input.

Run once on a machine with torch + transformers (the CPU is enough, well under a minute):

    python3 scripts/hf-fixtures.py      # writes $OUT/hf-fixtures.tar.gz (./hf-fixtures.tar.gz without $OUT)

Unpack into test/fixtures/hf/; test/model/hf-fixtures.test.ts loads every folder with our reader and
compares our logits with the ones saved here. Every fixture folder holds what save_pretrained wrote plus
logits.safetensors: input_ids (I32 [B, L]), logits (F32 [B, L, V], HF's forward in f32) and, for the
bf16 fixture, logits_bf16 (HF's forward computed in bf16).
"""
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import MambaConfig, MambaForCausalLM

B, L, VOCAB = 2, 48, 16
OUT = os.environ.get("OUT", ".")
# the folders are built in a scratch directory: only the tarball goes to $OUT
ROOT = os.path.join(tempfile.mkdtemp(prefix="hf-fixtures-"), "hf-fixtures")


def randomised_model(seed: int, tie: bool, **cfg) -> MambaForCausalLM:
    """A MambaForCausalLM whose every tensor is moved off its init (biases, norms, A and D included)."""
    torch.manual_seed(seed)
    base = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, state_size=16, conv_kernel=4, expand=2,
                use_bias=False, use_conv_bias=True, tie_word_embeddings=tie)
    base.update(cfg)
    model = MambaForCausalLM(MambaConfig(**base)).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.add_(0.2 * torch.randn_like(p))
            elif name.endswith(".D") or name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.add_(0.05 * torch.randn_like(p))
        if not tie:
            model.lm_head.weight.copy_(0.1 * torch.randn_like(model.lm_head.weight))
    return model


def fixed_input() -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, VOCAB, (B, L), generator=g)


def logits_of(model: MambaForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float().contiguous()


def write_logits(folder: str, ids: torch.Tensor, tensors: dict) -> None:
    out = {"input_ids": ids.to(torch.int32).contiguous()}
    out.update({k: v.float().contiguous() for k, v in tensors.items()})
    save_file(out, os.path.join(folder, "logits.safetensors"), metadata={"format": "pt"})


def hf_fixture(name: str, model: MambaForCausalLM, ids: torch.Tensor, note: str, **save_kw) -> dict:
    folder = os.path.join(ROOT, name)
    model.save_pretrained(folder, **save_kw)
    # HF's logits of the weights as saved (a bf16/f16 folder is read back and run in f32 as well)
    reloaded = MambaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    write_logits(folder, ids, {"logits": logits_of(reloaded, ids)})
    return {"name": name, "note": note, "files": sorted(os.listdir(folder))}


def main() -> None:
    t0 = time.time()
    if os.path.exists(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    ids = fixed_input()
    made = []

    tied = randomised_model(1, tie=True)
    made.append(hf_fixture("tied", tied, ids, "tied embeddings: no lm_head.weight in the file"))

    head = randomised_model(2, tie=False, state_size=8, time_step_rank=6, layer_norm_epsilon=1e-6)
    made.append(hf_fixture("lm-head", head, ids, "untied lm_head.weight; state_size 8, time_step_rank 6, eps 1e-6"))

    sharded = randomised_model(3, tie=False)
    made.append(hf_fixture("sharded", sharded, ids, "model-0000x-of-0000y.safetensors + index",
                           max_shard_size="60KB"))

    bf = randomised_model(4, tie=True).to(torch.bfloat16)
    made.append(hf_fixture("bf16", bf, ids, "BF16 tensors; logits: f32 forward of them, logits_bf16: bf16 forward"))
    # HF's forward in bf16 (what a bf16 user sees), next to the f32 forward of the same weights
    bf_folder = os.path.join(ROOT, "bf16")
    in_bf16 = MambaForCausalLM.from_pretrained(bf_folder, dtype=torch.bfloat16).eval()
    saved = load_file(os.path.join(bf_folder, "logits.safetensors"))
    saved["logits_bf16"] = logits_of(in_bf16, ids)
    save_file({k: v.contiguous() for k, v in saved.items()}, os.path.join(bf_folder, "logits.safetensors"),
              metadata={"format": "pt"})

    f16 = randomised_model(5, tie=True).to(torch.float16)
    made.append(hf_fixture("f16", f16, ids, "F16 tensors; logits: f32 forward of them"))

    made.append(mamba_ssm_fixture(randomised_model(6, tie=True), ids))

    manifest = {"torch": torch.__version__, "transformers": transformers.__version__, "input": [B, L],
                "made_by": "scripts/hf-fixtures.py", "fixtures": made}
    with open(os.path.join(ROOT, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    tarball = os.path.join(OUT, "hf-fixtures.tar.gz")
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(ROOT, arcname="hf-fixtures")
    size = os.path.getsize(tarball)
    print(f"wrote {tarball} ({size / 1024:.1f} KiB) with {len(made)} fixtures in {time.time() - t0:.1f} s")
    for m in made:
        print(f"  {m['name']}: {', '.join(m['files'])}")
    if size > 16 * 2**20:
        sys.exit("the tarball is over 16 MiB")


def mamba_ssm_fixture(model: MambaForCausalLM, ids: torch.Tensor) -> dict:
    """The folder mamba_ssm's MambaLMHeadModel.save_pretrained writes (its config.json and key names), with
    the weights as safetensors (mamba_ssm itself pickles them to pytorch_model.bin). Its config.json has the
    unpadded vocab_size 13 with pad_vocab_size_multiple 8: the embedding keeps 16 rows."""
    folder = os.path.join(ROOT, "mamba-ssm")
    os.makedirs(folder)
    sd = model.state_dict()
    renamed = {}
    for k, v in sd.items():
        renamed[k.replace("backbone.embeddings.", "backbone.embedding.")] = v.detach().clone().contiguous()
    # mamba_ssm's state_dict holds the tied head as its own entry
    renamed["lm_head.weight"] = sd["backbone.embeddings.weight"].detach().clone().contiguous()
    save_file(renamed, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    config = {"d_model": 64, "d_intermediate": 0, "n_layer": 2, "vocab_size": 13,
              "ssm_cfg": {"layer": "Mamba1"}, "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True,
              "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
              "tie_embeddings": True}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=4)
    ids = ids % 13  # tokens the unpadded vocabulary knows
    write_logits(folder, ids, {"logits": logits_of(model, ids)})
    return {"name": "mamba-ssm", "note": "mamba_ssm config and key names (backbone.embedding.weight, lm_head.weight "
            "kept), vocab_size 13 padded to 16", "files": sorted(os.listdir(folder))}


if __name__ == "__main__":
    main()
