// Internal to the quantized matmul (quant_matmul.cpp): the activation block layouts and the
// per-instruction-set kernel tables. Includes no standard library header beyond <cstdint>, because
// quant_matmul_avx2.cpp is compiled with -mavx2 and must not instantiate inline library code that
// the linker could pick for callers on CPUs without AVX2.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hogwild::cpu::quant {

// Activations for the 32-element formats: q = round(x / d), |q| <= 127, and sum = d * sum(q) (the
// term that a weight block's minimum or offset multiplies).
struct Act32 {
  float d;
  float sum;
  int8_t q[32];
};
static_assert(sizeof(Act32) == 40);

// Activations for the 256-element K-quants: one scale, and the sums of q over each 16 elements.
struct Act256 {
  float d;
  int16_t sums[16];
  int8_t q[256];
};
static_assert(sizeof(Act256) == 292);

// One kernel: quant_matmul_rows for one weight type, after its checks.
using RowsKernel = void (*)(const uint8_t* w, int64_t k, const void* act, int64_t n,
                            int64_t row_begin, int64_t row_end, float* out, int64_t out_stride);

// Indices of the kernel tables.
enum Format : int {
  kF32,
  kF16,
  kBF16,
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ8_0,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kFormats
};

// Kernels by Format; nullptr where an instruction set has none.
extern const RowsKernel kScalarKernels[kFormats];
extern const RowsKernel kAvx2Kernels[kFormats];

}  // namespace hogwild::cpu::quant

namespace hogwild::cpu::quant {

// The 6-bit scale and minimum of sub-block j (of 32 elements) in the 12 packed bytes of Q4_K /
// Q5_K: the low 6 bits of bytes j and j+4 for j < 4; else a nibble of byte j+4 and the top 2 bits
// of bytes j-4 and j. `static`: each translation unit (compiled for its own instruction set) keeps
// its own copy.
static inline void k_scale_min(int64_t j, const uint8_t* packed, int& scale, int& minimum) {
  if (j < 4) {
    scale = packed[j] & 63;
    minimum = packed[j + 4] & 63;
  } else {
    scale = (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4);
    minimum = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
  }
}

}  // namespace hogwild::cpu::quant
