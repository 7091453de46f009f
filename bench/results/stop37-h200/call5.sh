#!/usr/bin/env bash
# stop 37 call 5: the whole test suite on the GPU machine again, after the mean pool without atomics and the score
# and resume tests pinned to the device of the run they compare with
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call5-log.txt
timeout 400 node node_modules/vitest/vitest.mjs run > $OUT/call5-suites.txt 2>&1
echo "whole suite exit $? at $(el) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call5-suites.txt | head -30 >> $L
node node_modules/vitest/vitest.mjs run test/cli/pipes.test.ts -t "predict -" > $OUT/call5-predict.txt 2>&1
echo "predict test again: exit $? at $(el) s" >> $L
