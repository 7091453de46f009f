#!/usr/bin/env bash
# stop 37 call 4: the three tests that failed on the GPU machine in call 3 (two runs of one computation compared
# exactly), with and without programmatic dependent launch, twice each
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call4-log.txt
for r in 1 2; do
  for p in 0 1; do
    MAMBA_PDL=$p node node_modules/vitest/vitest.mjs run test/cli/pipes.test.ts test/cli/train-run.test.ts test/workflows/score.test.ts > $OUT/call4-suites-$p-$r.txt 2>&1
    echo "MAMBA_PDL=$p round $r: exit $? at $(el) s" >> $L
    grep -a "Tests \|FAIL" $OUT/call4-suites-$p-$r.txt | head -8 >> $L
  done
done
echo "end at $(el) s" >> $L
