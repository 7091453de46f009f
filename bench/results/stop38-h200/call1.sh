#!/usr/bin/env bash
# stop 38 call 1: the conv layouts and cuBLAS's algorithms at the 130m training shape (standalone harnesses)
set -u
L=$OUT/call1-log.txt
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv > $L 2>&1
ls /usr/local/cuda/include/cublasLt.h >> $L 2>&1
nvcc -O3 -std=c++17 -arch=sm_90 bench/conv-tune.cu -o /tmp/conv-tune >> $L 2>&1 && /tmp/conv-tune > $OUT/call1-conv.txt 2>&1
echo "conv exit $?" >> $L
nvcc -O3 -std=c++17 -arch=sm_90 bench/gemm-algos.cu -o /tmp/gemm-algos -lcublasLt -lcublas >> $L 2>&1 && /tmp/gemm-algos > $OUT/call1-gemm.txt 2>&1
echo "gemm exit $?" >> $L
