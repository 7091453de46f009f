#!/usr/bin/env bash
# Nsight Compute on one kernel of a bench run, on the GPU machine (ncu is /usr/local/cuda/bin/ncu there): the
# sections that say what bounds a kernel (throughput against peak, pipe use, warp stall reasons, occupancy).
#   bash bench/ncu-kernel.sh scan_fwd_single node bench/profile-ops.js --preset small --eval --batch 64 --seq-len 16384 --steps 1 > $OUT/ncu.txt
# Used on the H200 in stops 15 and 16 (bench/results/scan-h200/ncu-one-pass-5-blocks.txt).
set -uo pipefail
kernel=${1:?usage: bash bench/ncu-kernel.sh KERNEL_NAME_REGEX COMMAND...}
shift
[ $# -gt 0 ] || { echo "ncu-kernel: give the command that launches the kernel" >&2; exit 2; }
# the first launch warms caches and clocks; profile the second, one launch in all
ncu --target-processes all --kernel-name "regex:$kernel" --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section InstructionStats --section WarpStateStats \
  --section SchedulerStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis "$@"
