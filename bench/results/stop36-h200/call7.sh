#!/usr/bin/env bash
# stop 36 call 7: the one-pass tile loads shared by scan_fwd_single and chunk_state_adj_lanes (load_tile): suites, times
set -u
t0=$(date +%s)
bash scripts/device-unpack.sh
L=$OUT/call7-log.txt
node node_modules/vitest/vitest.mjs run test/kernels/cuda-scan.test.ts test/model/cuda.test.ts test/model/no-grad-forward.test.ts > $OUT/call7-suites.txt 2>&1
echo "suites exit $? at $(( $(date +%s) - t0 )) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call7-suites.txt | head -10 >> $L
for r in 1 2; do MAMBA_SCAN_PROFILE=1 SCAN_ONCE_REPS=5 node bench/scan-once.js 11 8 2>&1 | grep -a "scan profile\|median" | tail -2 >> $L; done
node bench/scan-cuda.js --no-torch --row 8:11 --row 16:12 --row 1:20 --runs 5 2>&1 | grep -a "^row" >> $L
for r in 1 2 3; do node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step" >> $L; done
echo "end at $(( $(date +%s) - t0 )) s" >> $L
