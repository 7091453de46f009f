// Size limits of the kernels that callers must respect, in one place: the kernels check them, and addon.cc
// exports them as `addon.limits` so the TypeScript side reads them instead of keeping copies.
#pragma once
#include "decode.h"

namespace mamba {

// d_state of the CUDA selective scan (its states live in registers, 16 per channel at most)
constexpr int kCudaScanMaxState = 16;
// taps K of the CUDA causal conv (unrolled per K)
constexpr int kCudaConvMaxTaps = 8;

}  // namespace mamba
