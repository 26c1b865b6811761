// SwiGLU's elementwise step on the CPU: out = silu(gate) * up, silu(g) = g / (1 + e^-g).
#pragma once

#include <cstdint>

#include "kernels/cpu/small_gemm.h"

namespace hogwild::cpu {

// out[j] = silu(gate[j]) * up[j] for j in [0, n). kAvx2: eight lanes at a time with exp_avx2.h's
// exponential of -|g| (never overflows; within 2 ulp of std::exp), silu = g / (1 + t) for g >= 0
// and g t / (1 + t) below, every element (the tail too) through the same vector code, so the
// result does not depend on where a row is split. kScalar: the formula with std::exp.
void swiglu_row(const float* gate, const float* up, float* out, int64_t n,
                SimdLevel level = best_simd_level());

}  // namespace hogwild::cpu
