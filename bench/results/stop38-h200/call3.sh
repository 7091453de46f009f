#!/usr/bin/env bash
# stop 38 call 3 (final tree: 4-channel conv kernels, tuned products in training): the reference built beside the suites; then both sides' rows of issue 17
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call3-log.txt
mkdir -p runs && tar -xJf .carry/ref.tar.xz -C runs
for e in selective_scan_cuda causal_conv1d_cuda; do
  MAX_JOBS=8 setsid nohup python3 bench/reference_mamba.py --src runs/ref --build runs/ref-build --build-only --ext $e > $OUT/call3-build-$e.txt 2>&1 &
done
node node_modules/vitest/vitest.mjs run test/kernels test/model/cuda.test.ts test/model/no-grad-forward.test.ts test/generate test/train/trainer.test.ts > $OUT/call3-suites.txt 2>&1
echo "suites exit $? at $(el) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call3-suites.txt | head -20 >> $L
echo "== ours, build beside, at $(el) s" >> $L
node bench/decode-ops.js --batch 64,1 2>&1 | tail -40 >> $L
MAMBA_SCAN_PROFILE=1 SCAN_ONCE_REPS=5 node bench/scan-once.js 11 8 2>&1 | grep -a "scan profile\|median" | tail -2 >> $L
MAMBA_OP_PROFILE=1 node bench/profile-ops.js --steps 5 --top 40 > $OUT/call3-profile.txt 2>&1
while pgrep -f "reference_mamba.py" > /dev/null; do sleep 5; done
echo "build done at $(el) s" >> $L
python3 bench/reference_mamba.py --src runs/ref --build runs/ref-build > $OUT/call3-reference.jsonl 2> $OUT/call3-reference.err
echo "reference exit $? at $(el) s" >> $L
echo "== ours, same call as the reference" >> $L
node bench/scan-cuda.js --no-torch --row 8:11 --row 16:12 --row 1:20 --runs 5 2>&1 | grep -a "^row" >> $L
for r in 1 2 3; do
  node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step\|^| 130m" >> $L
done
node bench/model-train.js --device cuda --shape small:1x1048576:bf16:recompute --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step\|^| small" >> $L
echo "at $(el) s" >> $L
for r in 1 2; do
  node bench/generate.js --device cuda --runs 3 --no-write 2>&1 | grep -a "tokens/s" >> $L
done
echo "end at $(el) s" >> $L
