#!/usr/bin/env bash
# stop 36 call 3: chunk_state_adj on lanes (bit check, suites, pass times, training step A/B), convXProj final code
set -u
t0=$(date +%s)
bash scripts/device-unpack.sh
L=$OUT/call3-log.txt
node .carry/adjcheck.mjs >> $L 2>&1
echo "adjcheck exit $? at $(( $(date +%s) - t0 )) s" >> $L
node node_modules/vitest/vitest.mjs run test/kernels/cuda-scan.test.ts test/kernels/cuda-decode.test.ts test/model/cuda.test.ts test/train/trainer.test.ts > $OUT/call3-suites.txt 2>&1
echo "suites exit $? at $(( $(date +%s) - t0 )) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call3-suites.txt | head -20 >> $L
for r in 1 2; do
  for m in old 5 6; do
    echo "== scan passes $m round $r" >> $L
    MAMBA_SCAN_ADJ=$m MAMBA_SCAN_PROFILE=1 SCAN_ONCE_REPS=5 node bench/scan-once.js 11 8 2>&1 | grep -a "scan profile\|median" | tail -2 >> $L
  done
done
for r in 1 2; do
  for m in old 5 6; do
    echo "== train $m round $r" >> $L
    MAMBA_SCAN_ADJ=$m node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step\|^| 130m" >> $L
  done
done
echo "at $(( $(date +%s) - t0 )) s" >> $L
for m in old 5; do
  echo "== scan rows $m" >> $L
  MAMBA_SCAN_ADJ=$m node bench/scan-cuda.js --no-torch --row 8:11 --row 16:12 --row 1:20 --runs 5 2>&1 | grep -a "^row" >> $L
done
echo "== decode-ops B=64" >> $L
node bench/decode-ops.js --batch 64 2>&1 | grep -a "convXProj\|block step, unfused\|whole step" >> $L
echo "end at $(( $(date +%s) - t0 )) s" >> $L
