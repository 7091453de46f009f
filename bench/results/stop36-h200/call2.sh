#!/usr/bin/env bash
# stop 36 call 2: convXProj with one cluster barrier (partials pushed to their owners), clusters of 16 vs 8
set -u
t0=$(date +%s)
bash scripts/device-unpack.sh
L=$OUT/call2-log.txt
for cl in 16 8; do
  MAMBA_CONVX_CLUSTER=$cl node node_modules/vitest/vitest.mjs run test/kernels/cuda-decode.test.ts -t convXProj > $OUT/call2-suites-$cl.txt 2>&1
  echo "cluster $cl: convXProj suite exit $? at $(( $(date +%s) - t0 )) s" >> $L
  grep -a "Tests \|FAIL\|×\|relative error" $OUT/call2-suites-$cl.txt | head -20 >> $L
done
node node_modules/vitest/vitest.mjs run test/kernels/cuda-decode.test.ts test/model/cuda.test.ts test/generate > $OUT/call2-suites.txt 2>&1
echo "suites exit $? at $(( $(date +%s) - t0 )) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call2-suites.txt | head -20 >> $L
for r in 1 2; do
  for cl in 16 8; do
    echo "== decode-ops cluster $cl round $r" >> $L
    MAMBA_CONVX_CLUSTER=$cl node bench/decode-ops.js --batch 64 2>&1 | grep -a "conv1dStep\|x_proj gemm\|convXProj\|block step, unfused\|whole step" >> $L
  done
done
echo "== decode-ops MAMBA_DECODE_CONVX=0" >> $L
MAMBA_DECODE_CONVX=0 node bench/decode-ops.js --batch 64 2>&1 | grep -a "block step, unfused\|whole step" >> $L
for r in 1 2; do
  for v in 16 8 off; do
    echo "== generate $v round $r" >> $L
    if [ $v = off ]; then e=MAMBA_DECODE_CONVX=0; else e=MAMBA_CONVX_CLUSTER=$v; fi
    env $e node bench/generate.js --device cuda --runs 3 --no-write 2>&1 | grep -a "B=64 prompt 16" >> $L
  done
done
echo "end at $(( $(date +%s) - t0 )) s" >> $L
