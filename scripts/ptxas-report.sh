#!/usr/bin/env bash
# Registers, stack frame and spills of every kernel in a CUDA source, as ptxas reports them for sm_90
# (no GPU needed): bash scripts/ptxas-report.sh native/cuda/scan.cu
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-native/cuda/scan.cu}
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
inc=$(node -p "require('node-addon-api').include" | tr -d '"')
"$nvcc" -O3 --use_fast_math --expt-relaxed-constexpr -std=c++17 -arch=sm_90 -Xptxas -v -I/usr/include/node -I"$inc" -Inative \
  -DNAPI_VERSION=8 -DNODE_ADDON_API_CPP_EXCEPTIONS -c "$src" -o /dev/null 2>&1 |
  awk '/Compiling entry function/ { match($0, /_Z[^ '"'"']*/); name = substr($0, RSTART, RLENGTH) }
       /stack frame/ { stack = $0; sub(/.*: */, "", stack) }
       /Used [0-9]+ registers/ { match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15); print regs " regs | " stack " | " name }' |
  while IFS= read -r line; do
    mangled=${line##*| }
    printf '%s | %s\n' "${line% | *}" "$(echo "$mangled" | c++filt | sed -E 's/\(anonymous namespace\):://g; s/mamba:://g' | cut -c1-90)"
  done
