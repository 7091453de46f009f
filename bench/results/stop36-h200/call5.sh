#!/usr/bin/env bash
# stop 36 call 5: the backward's two combines in one kernel: suites, pass times, training step, scan rows
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call5-log.txt
node node_modules/vitest/vitest.mjs run test/kernels/cuda-scan.test.ts test/model/cuda.test.ts test/train/trainer.test.ts > $OUT/call5-suites.txt 2>&1
echo "suites exit $? at $(el) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call5-suites.txt | head -20 >> $L
for r in 1 2; do
  MAMBA_SCAN_PROFILE=1 SCAN_ONCE_REPS=5 node bench/scan-once.js 11 8 2>&1 | grep -a "scan profile\|median" | tail -2 >> $L
done
node bench/scan-cuda.js --no-torch --row 8:11 --row 16:12 --row 1:20 --runs 5 2>&1 | grep -a "^row" >> $L
for r in 1 2 3; do
  node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step" >> $L
done
node bench/model-train.js --device cuda --shape small:1x1048576:bf16:recompute --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step\|^| small" >> $L
MAMBA_OP_PROFILE=1 node bench/profile-ops.js --steps 5 --top 40 > $OUT/call5-profile.txt 2>&1
echo "end at $(el) s" >> $L
