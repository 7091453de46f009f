#!/usr/bin/env bash
# stop 37 call 3: the whole test suite on the GPU machine with programmatic dependent launch on (the default), and
# the 130m training step with and without it, alternating
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call3-log.txt
timeout 420 node node_modules/vitest/vitest.mjs run > $OUT/call3-suites.txt 2>&1
echo "whole suite exit $? at $(el) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call3-suites.txt | head -30 >> $L
for r in 1 2 3; do
  for p in 1 0; do
    echo "== train 130m MAMBA_PDL=$p round $r at $(el) s" >> $L
    MAMBA_PDL=$p node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step" >> $L
  done
done
echo "end at $(el) s" >> $L
