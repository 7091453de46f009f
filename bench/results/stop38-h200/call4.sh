#!/usr/bin/env bash
# stop 38 call 4: the whole test suite on the GPU machine (training steps now tune their products; the conv kernels
# are new), twice, so that tests comparing runs across processes meet two tunings
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call4-log.txt
for r in 1 2; do
  timeout 250 node node_modules/vitest/vitest.mjs run > $OUT/call4-suites-$r.txt 2>&1
  echo "whole suite round $r exit $? at $(el) s" >> $L
  grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call4-suites-$r.txt | head -30 >> $L
done
