// Sizes shared by the fused decoding ops (native/cuda/decode.cu and their CPU twins in native/cpu/decode.cc).
#pragma once
#include <cstdint>

namespace mamba {

// decodeIn hands x_proj to decodeSsm as partial sums, one per run of this many channels of xc
// ([ceil(E / kDecodeChunk), B, R + 2N]): it is the in_proj rows per CUDA block, and the CPU twin sums the
// same runs so the two are comparable partial by partial.
constexpr int kDecodeChunk = 32;
// the fused path is for small batches: the kernels keep one accumulator per sequence in registers
constexpr int kDecodeMaxB = 8;

inline int decode_parts(int64_t E) { return (int)((E + kDecodeChunk - 1) / kDecodeChunk); }

}  // namespace mamba
