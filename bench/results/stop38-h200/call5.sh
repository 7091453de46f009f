#!/usr/bin/env bash
# stop 38 call 5: after the review's mends (conv kernels' shared tap, halo and row loads; one current_device();
# the tuned products' workspace test): the CUDA kernel, gemm, model and trainer suites, and the 130m and small rows
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call5-log.txt
node node_modules/vitest/vitest.mjs run test/kernels test/model/cuda.test.ts test/train/trainer.test.ts > $OUT/call5-suites.txt 2>&1
echo "suites exit $? at $(el) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call5-suites.txt | head -20 >> $L
for r in 1 2; do
  node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step" >> $L
done
node bench/model-train.js --device cuda --shape small:1x1048576:bf16:recompute --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step" >> $L
echo "end at $(el) s" >> $L
