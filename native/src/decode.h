// Sizes shared by the fused decoding ops (native/cuda/decode.cu and their CPU twins in native/cpu/decode.cc).
#pragma once
#include <algorithm>
#include <cstdint>

namespace mamba {

// decodeIn hands x_proj to decodeSsm as partial sums, one per run of this many channels of xc
// ([ceil(E / kDecodeChunk), B, R + 2N]): it is the in_proj rows per CUDA block, and the CPU twin sums the
// same runs so the two are comparable partial by partial.
constexpr int kDecodeChunk = 32;
// the CUDA kernels keep one accumulator per sequence in registers for a group of up to kDecodeGroup sequences
// and run the groups of a batch side by side (a grid dimension; one layer's weights stay in L2 while they read
// them); the fused ops take batches up to kDecodeMaxB
constexpr int kDecodeGroup = 8;
constexpr int kDecodeMaxB = 4096;
// CUDA: threads per block of decodeIn and decodeSsm, and the dynamic shared memory a block may take (48 KiB
// without an opt-in, less the static arrays); d_state and d_conv the kernels hold in registers
constexpr int kDecodeThreads = 256;
constexpr int kDecodeSharedBytes = 44 * 1024;
constexpr int kDecodeMaxState = 16;
constexpr int kDecodeMaxConv = 8;

inline int decode_parts(int64_t E) { return (int)((E + kDecodeChunk - 1) / kDecodeChunk); }

// Sequences of the largest group of a batch of B.
inline int64_t decode_group(int64_t B) { return std::min<int64_t>(B, kDecodeGroup); }
// Shared memory of a decodeIn block: its group's normalised rows of D values (elem_bytes each, the activation dtype).
inline int64_t decode_in_smem(int64_t B, int64_t D, int64_t elem_bytes) { return decode_group(B) * D * elem_bytes; }
// Shared memory of a decodeSsm block: its group's x_proj rows of J = R + 2N floats, and S slices of partial sums.
inline int64_t decode_ssm_smem(int64_t B, int64_t J, int64_t E) {
  const int64_t NO = decode_group(B) * J;
  const int64_t S = std::max<int64_t>(1, std::min<int64_t>(kDecodeThreads / NO, decode_parts(E)));
  return 4 * (NO + S * NO);
}

// Whether the CUDA fused decoding ops take these sizes (activations of act_bytes bytes): what their bindings
// check, for callers that pick the unfused step otherwise (exported as addon.limits.decodeFits).
inline bool decode_fits(int64_t B, int64_t D, int64_t E, int64_t R, int64_t N, int64_t K, int64_t act_bytes) {
  const bool sizes = B >= 1 && B <= kDecodeMaxB && N >= 1 && N <= kDecodeMaxState && K >= 1 && K <= kDecodeMaxConv &&
                     D >= 1 && E >= 1 && R >= 1;
  return sizes && decode_in_smem(B, D, act_bytes) <= kDecodeSharedBytes &&
         decode_ssm_smem(B, R + 2 * N, E) <= kDecodeSharedBytes;
}

// decodeInProj (CUDA, bf16 tensor cores): a block computes 16 or 32 rows (sequences) by kDecodeChunk (32) columns of
// xz, its 8 warps splitting the reduction over D; it stages the rows (as bf16 r * normW) and its Win rows in shared
// memory, rows padded to a stride of 32 mod 64 elements (conflict-free 16-byte reads), and reuses that memory for the
// warps' partial sums. Up to 227 KiB.
constexpr int64_t kInProjMaxShared = 227 * 1024;
inline int64_t in_proj_stride(int64_t D) { return D + ((32 - D % 64) + 64) % 64; }
inline int64_t in_proj_smem(int mt, int64_t D) {
  const int64_t rows = 16 * mt, cols = kDecodeChunk;
  return std::max<int64_t>((rows + cols) * in_proj_stride(D) * 2, 8 * rows * cols * 4);
}
// Rows (sequences) of a block: 16 up to 16 sequences, else 32 (more blocks along y). Tiles of 64 sequences by 64
// columns (48 blocks at the 130m shape) took 17.4 us per call at B = 64, 32 by 32 tiles 11.4
// (bench/results/decode-h200/10-residual-form.txt).
inline int decode_in_proj_rows(int64_t B) { return B <= 16 ? 16 : 32; }
// Whether decodeInProj takes these sizes (bf16 activations; exported as addon.limits.decodeInProjFits).
inline bool decode_in_proj_fits(int64_t B, int64_t D, int64_t E, int64_t K) {
  return B >= 1 && B <= kDecodeMaxB && D >= 8 && D % 8 == 0 && E >= 1 && K >= 1 && K <= kDecodeMaxConv &&
         in_proj_smem(decode_in_proj_rows(B) / 16, D) <= kInProjMaxShared;
}

// convXProj (CUDA, bf16 tensor cores): the unfused step's conv step and x_proj in one kernel, for the batches past the
// residual form (the conv step and the cuBLAS x_proj were two dependent kernels, 2.0 + 4.2 us at B = 64 on an H200).
// A cluster of kConvXProjCluster blocks serves kConvXProjRows sequences: block r takes a run of conv_x_proj_run(E)
// channels, makes their conv step, multiplies them into its partial x_proj [rows, J] (mma.sync, fp32), and the
// cluster adds its partials through distributed shared memory, each block a share of the outputs. Its xc and Wx
// columns are staged with in_proj_stride rows; J up to kConvXProjMaxJ (16 n8 tiles).
constexpr int kConvXProjCluster = 16;
constexpr int kConvXProjRows = 8;
constexpr int64_t kConvXProjMaxJ = 128;
inline int64_t conv_x_proj_run(int64_t E) { return ((E + kConvXProjCluster - 1) / kConvXProjCluster + 31) / 32 * 32; }
// Outputs (of the group's kConvXProjRows x J) each block of a cluster adds up.
inline int64_t conv_x_proj_share(int64_t J) { return (kConvXProjRows * J + kConvXProjCluster - 1) / kConvXProjCluster; }
// Shared memory of a block: its xc tile, its Wx columns (J rounded up to 8) and the cluster's partials of its share.
inline int64_t conv_x_proj_smem(int64_t E, int64_t J) {
  const int64_t sa = in_proj_stride(conv_x_proj_run(E)), jp = (J + 7) / 8 * 8;
  return (kConvXProjRows + jp) * sa * 2 + kConvXProjCluster * conv_x_proj_share(J) * 4;
}
// Whether convXProj takes these sizes (bf16 activations; exported as addon.limits.convXProjFits): E a multiple of 8
// (16-byte rows of Wx), K <= kDecodeMaxConv, J <= kConvXProjMaxJ, its tiles within shared memory.
inline bool conv_x_proj_fits(int64_t B, int64_t E, int64_t K, int64_t J) {
  return B >= 1 && B <= kDecodeMaxB && E >= 8 && E % 8 == 0 && K >= 1 && K <= kDecodeMaxConv && J >= 1 &&
         J <= kConvXProjMaxJ && conv_x_proj_smem(E, J) <= kInProjMaxShared;
}

}  // namespace mamba
