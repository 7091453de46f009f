#!/usr/bin/env bash
# stop 37 call 1: programmatic dependent launch for the decoding step's kernels (and the norms, embedding, conv
# step): GPU suites on it, then A/B against MAMBA_PDL=0 in the same build, alternating
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call1-log.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> $L
node node_modules/vitest/vitest.mjs run test/kernels test/model/cuda.test.ts test/model/no-grad-forward.test.ts test/generate test/train/trainer.test.ts > $OUT/call1-suites.txt 2>&1
echo "suites exit $? at $(el) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call1-suites.txt | head -20 >> $L
for r in 1 2; do
  for p in 1 0; do
    echo "== decode-ops B=64 MAMBA_PDL=$p round $r at $(el) s" >> $L
    MAMBA_PDL=$p node bench/decode-ops.js --batch 64 2>&1 | grep -a "rmsnorm with\|in_proj gemm\|convXProj\|decodeSsm on\|^| 64 | out_proj gemm |\|block step, unfused\|head gemm\|whole step" >> $L
  done
done
for p in 1 0; do
  echo "== decode-ops B=1 MAMBA_PDL=$p at $(el) s" >> $L
  MAMBA_PDL=$p node bench/decode-ops.js --batch 1 2>&1 | grep -a "block step, fused\|whole step" >> $L
done
for r in 1 2; do
  for p in 1 0; do
    echo "== generate MAMBA_PDL=$p round $r at $(el) s" >> $L
    MAMBA_PDL=$p node bench/generate.js --device cuda --runs 3 --no-write 2>&1 | grep -a "tokens/s" >> $L
  done
done
for p in 1 0; do
  echo "== train 130m MAMBA_PDL=$p at $(el) s" >> $L
  MAMBA_PDL=$p node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step" >> $L
done
echo "end at $(el) s" >> $L
