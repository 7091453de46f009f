#!/usr/bin/env bash
# GPU hand-off check of the kernel clean-up (issue 12): the GPU test suites, then the scan table's B = 1,
# L = 2^20 row (forward and forward+backward) and the 130m training row (bf16, 8 x 2048 tokens), each timed
# in two separate processes (medians of 9 calls / 9 steps each), against the figures before the change:
# forward 23.5 ms, fwd+bwd 113.5 ms, 207k tokens/s. Under 5 minutes on one H200.
# On the GPU machine, in a checkout carried with scripts/device-pack.sh (carry .carry, build/Release, dist):
#   bash scripts/device-unpack.sh && bash bench/gpu-check.sh
# Logs go to $OUT (default /tmp/gpu-check): gpu-tests.log, scan-row.log, train-row.log, summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
t0=$(date +%s)

say "gpu-check: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), node $(node --version)"
say "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# 1. the GPU suites (test/generate also holds CPU tests); vitest is run with node: the machine has no npm
timeout 200 node node_modules/vitest/vitest.mjs run test/kernels/cuda-scan.test.ts test/kernels/cuda-ops.test.ts \
  test/kernels/cuda-decode.test.ts test/model/cuda.test.ts test/generate > "$out/gpu-tests.log" 2>&1
tests_rc=$?
say "GPU suites: exit $tests_rc; $(sed 's/\x1b\[[0-9;]*m//g' "$out/gpu-tests.log" | grep -E '^ *Tests ' | tr -s ' ' | head -1)"
grep -q 'skipped' "$out/gpu-tests.log" && say "  (skips: $(sed 's/\x1b\[[0-9;]*m//g' "$out/gpu-tests.log" | grep -cE '↓') files with skipped tests; see gpu-tests.log)"

# 2. the scan row, twice
: > "$out/scan-row.log"
for run in 1 2; do
  timeout 60 node bench/scan-cuda.js --row 1:20 --runs 9 >> "$out/scan-row.log" 2>&1 || say "scan row run $run failed (exit $?)"
done
grep '^row ' "$out/scan-row.log" | sed 's/^/scan: /' | tee -a "$summary"

# 3. the 130m training row, twice
: > "$out/train-row.log"
for run in 1 2; do
  timeout 90 node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 9 --no-decode --no-write >> "$out/train-row.log" 2>&1 ||
    say "training row run $run failed (exit $?)"
done
grep -E '^130m bf16 B=8 L=2048' "$out/train-row.log" | sed 's/^/train: /' | tee -a "$summary"

say "before: forward 23.5 ms, fwd+bwd 113.5 ms, 207k tokens/s (130m bf16 8 x 2048)"
say "wall time: $(( $(date +%s) - t0 )) s"
exit $tests_rc
