#!/usr/bin/env bash
# stop 36 call 1: convXProj (conv step + x_proj in one cluster kernel) for the batched decoding step: suites, A/B
set -u
t0=$(date +%s)
bash scripts/device-unpack.sh
L=$OUT/call1-log.txt
node node_modules/vitest/vitest.mjs run test/kernels/cuda-decode.test.ts test/kernels/cpu-decode.test.ts test/model/cuda.test.ts test/generate > $OUT/call1-suites.txt 2>&1
echo "suites exit $? at $(( $(date +%s) - t0 )) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×\|relative error" $OUT/call1-suites.txt | head -40 >> $L
echo "== decode-ops convXProj on, B=64,32" >> $L
node bench/decode-ops.js --batch 64,32 2>&1 | tail -40 >> $L
echo "== decode-ops MAMBA_DECODE_CONVX=0, B=64" >> $L
MAMBA_DECODE_CONVX=0 node bench/decode-ops.js --batch 64 2>&1 | grep -a "whole step\|block step, unfused" >> $L
for r in 1 2; do
  for side in on off; do
    echo "== generate convXProj $side round $r" >> $L
    v=1; [ $side = off ] && v=0
    MAMBA_DECODE_CONVX=$v node bench/generate.js --device cuda --runs 3 --no-write 2>&1 | grep -a "tokens/s\|^|" | head -12 >> $L
  done
done
echo "end at $(( $(date +%s) - t0 )) s" >> $L
