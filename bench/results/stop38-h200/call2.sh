#!/usr/bin/env bash
# stop 38 call 2: the 4-channel conv kernels and tuned products: cuBLASLt's ABI values checked against its header,
# the GPU suites, and the 130m step A/B (stop 37's addon / this one untuned / this one tuned), three rounds
set -u
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
bash scripts/device-unpack.sh
L=$OUT/call2-log.txt
cat > /tmp/lt-abi.cu <<'C'
#include <cublasLt.h>
#include <cstdio>
static_assert(CUBLASLT_MATMUL_DESC_TRANSA == 3 && CUBLASLT_MATMUL_DESC_TRANSB == 4, "desc");
static_assert(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES == 1, "ws");
static_assert(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES == 5 && CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES == 6 &&
              CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES == 7 && CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES == 8, "al");
static_assert(sizeof(cublasLtMatmulAlgo_t) == 64 && sizeof(cublasLtMatmulHeuristicResult_t) == 96, "sizes");
static_assert(offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize) == 64 &&
              offsetof(cublasLtMatmulHeuristicResult_t, state) == 72 && offsetof(cublasLtMatmulHeuristicResult_t, wavesCount) == 76, "fields");
static_assert(CUBLAS_COMPUTE_32F == 68, "compute");
int main() { std::printf("cublasLt ABI values as declared in native/cuda/dynlibs.h\n"); }
C
nvcc -std=c++17 /tmp/lt-abi.cu -o /tmp/lt-abi >> $L 2>&1 && /tmp/lt-abi >> $L 2>&1
echo "abi check exit $? at $(el) s" >> $L
node node_modules/vitest/vitest.mjs run test/kernels test/model/cuda.test.ts test/model/no-grad-forward.test.ts test/generate test/train/trainer.test.ts > $OUT/call2-suites.txt 2>&1
echo "suites exit $? at $(el) s" >> $L
grep -a "Tests \|Test Files\|FAIL\|×" $OUT/call2-suites.txt | head -30 >> $L
mkdir -p /tmp/base && xz -dc .carry/addon-base.xz > /tmp/base/mamba_native.node
for r in 1 2 3; do
  echo "== round $r" >> $L
  MAMBA_NATIVE_PATH=/tmp/base/mamba_native.node node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write --untuned 2>&1 | grep -a "ms/step" | sed 's/^/base untuned: /' >> $L
  node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write --untuned 2>&1 | grep -a "ms/step" | sed 's/^/new untuned: /' >> $L
  node bench/model-train.js --device cuda --shape 130m:8x2048:bf16 --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step\|^| 130m" | sed 's/^/new tuned: /' >> $L
done
echo "at $(el) s" >> $L
node bench/model-train.js --device cuda --shape small:1x1048576:bf16:recompute --runs 5 --no-decode --no-write 2>&1 | grep -a "ms/step\|^| small" >> $L
MAMBA_OP_PROFILE=1 node bench/profile-ops.js --steps 5 --top 40 > $OUT/call2-profile.txt 2>&1
MAMBA_OP_PROFILE=1 node bench/profile-ops.js --steps 5 --top 40 --untuned > $OUT/call2-profile-untuned.txt 2>&1
MAMBA_OP_PROFILE=1 MAMBA_NATIVE_PATH=/tmp/base/mamba_native.node node bench/profile-ops.js --steps 5 --top 40 --untuned > $OUT/call2-profile-base.txt 2>&1
echo "end at $(el) s" >> $L
