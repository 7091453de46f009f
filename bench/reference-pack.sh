#!/usr/bin/env bash
# Packs the reference's sources for bench/reference_mamba.py into .carry/ref.tar.xz (ignored, never committed):
# state-spaces/mamba v2.3.2 (csrc/selective_scan and the mamba_ssm package) and Dao-AILab/causal-conv1d v1.6.1.post4
# (csrc and the causal_conv1d package), taken from local git clones (the search tool's fetch leaves them under
# /work/.mirror). On the GPU machine: tar -xJf .carry/ref.tar.xz -C runs && python3 bench/reference_mamba.py --src
# runs/ref ...
#   bash bench/reference-pack.sh [MAMBA_GIT_DIR] [CAUSAL_CONV1D_GIT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
mamba=${1:-/work/.mirror/state-spaces+mamba/repo}
conv=${2:-/work/.mirror/Dao-AILab+causal-conv1d/repo}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/ref/mamba" "$tmp/ref/causal-conv1d" .carry
git -C "$mamba" archive v2.3.2 csrc/selective_scan mamba_ssm | tar -x -C "$tmp/ref/mamba"
git -C "$conv" archive v1.6.1.post4 csrc causal_conv1d | tar -x -C "$tmp/ref/causal-conv1d"
echo "state-spaces/mamba v2.3.2 ($(git -C "$mamba" rev-parse 'v2.3.2^{commit}'))" > "$tmp/ref/mamba/VERSION"
echo "Dao-AILab/causal-conv1d v1.6.1.post4 ($(git -C "$conv" rev-parse 'v1.6.1.post4^{commit}'))" > "$tmp/ref/causal-conv1d/VERSION"
tar -C "$tmp" -cJf .carry/ref.tar.xz ref
du -h .carry/ref.tar.xz | sed 's/^/reference-pack: /'
