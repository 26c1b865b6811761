// Internal to the quantized matmul (quant_matmul.cpp): the activation block layouts and the
// per-instruction-set kernel tables. Includes no standard library header beyond <cstdint> (and
// model/quant_blocks.h's <cstring>, for memcpy, a compiler builtin), because
// the kernel units (quant_matmul_avx2.cpp, _avx512.cpp) are compiled with -mavx2 / -mavx512* and
// must not instantiate inline library code that the linker could pick for callers on CPUs without
// AVX2.
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/quant_blocks.h"

namespace hogwild::cpu::quant {

// Activations for the 32-element formats, per input row of B blocks: B pairs [d, sum], then B
// blocks of 32 quants. q = round(x / d), |q| <= 127, and sum = d * sum(q) (the term that a weight
// block's minimum or offset multiplies). Pairs and quants are each contiguous, so that a SIMD
// kernel loads several blocks' scales, or two blocks' quants, at once.
constexpr int64_t kAct32BlockBytes = 40;

struct Act32Row {
  const float* scales;  // [d, sum] of block b at scales + 2 b
  const int8_t* q;      // block b at q + 32 b
};

inline Act32Row act32_row(const void* act, int64_t blocks, int64_t row) {
  const auto* base = static_cast<const uint8_t*>(act) + row * blocks * kAct32BlockBytes;
  return {reinterpret_cast<const float*>(base), reinterpret_cast<const int8_t*>(base + 8 * blocks)};
}

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

// Bytes of a Q4_K, Q5_K or Q6_K super-block of 256 elements.
constexpr int64_t k_quant_block_bytes(Format f) {
  return f == kQ4_K ? 144 : f == kQ5_K ? 176 : 210;
}

// One row of k fp32 values into the Act32Row layout (quant_matmul.cpp's quantize_row32, the
// same bits), with AVX-512 or AVX2; nullptr where the build has none.
using Row32Quantizer = void (*)(const float* x, int64_t k, uint8_t* out);
extern const Row32Quantizer kAvx512QuantizeRow32;
extern const Row32Quantizer kAvx2QuantizeRow32;

// The lane layout of Q4_0 / Q4_1 (quant_matmul.h): per group of 16 rows and block, the 16 rows'
// fp16 d, Q4_1's 16 fp16 m, then at this offset the rows' 16 nibble bytes as four dwords, dword j
// of row l at 64 j + 4 l: 16 blocks' bytes, so a group of 16 rows takes 16 rows' bytes.
constexpr int64_t lane_group_quants(bool has_min) { return has_min ? 64 : 32; }

// A plain Q4_0 / Q4_1 block as the lane kernels read it: its bytes, and where its 16 nibble bytes
// start (after d, and Q4_1's m).
template <Format F>
struct Q4Block;
template <>
struct Q4Block<kQ4_0> {
  static constexpr int64_t bytes = 18, quants = 2;
  static constexpr bool has_min = false;
};
template <>
struct Q4Block<kQ4_1> {
  static constexpr int64_t bytes = 20, quants = 4;
  static constexpr bool has_min = true;
};

// The lanes [low, high) of group g (rows 16g..16g+15) inside rows [begin, end).
static inline void group_lane_range(int64_t g, int64_t begin, int64_t end, int64_t& low,
                                    int64_t& high) {
  low = begin > 16 * g ? begin - 16 * g : 0;
  high = end < 16 * g + 16 ? end - 16 * g : 16;
}

// quant_matmul_lane_rows for Q4_0 ([0]) and Q4_1 ([1]), after its checks.
using LaneGroupsKernel = void (*)(const uint8_t* base, int64_t first, int64_t k, const void* act,
                                  int64_t n, int64_t row_begin, int64_t row_end, float* out,
                                  int64_t out_stride);
extern const LaneGroupsKernel kAvx512LaneGroups[2];
// The same on 8-lane AVX2 (the same bits as the AVX-512 one).
extern const LaneGroupsKernel kAvx2LaneGroups[2];
// The same with AMX-INT8 tiles, for a multiple of 16 input rows.
extern const LaneGroupsKernel kAmxLaneGroups[2];

// Kernels by Format; nullptr where an instruction set has none.
extern const RowsKernel kScalarKernels[kFormats];
extern const RowsKernel kAvx2Kernels[kFormats];
extern const RowsKernel kAvx512Kernels[kFormats];

using ggml_blocks::k_scale_min;  // Q4_K / Q5_K sub-block scales (model/quant_blocks.h)
using ggml_blocks::load_u32;

}  // namespace hogwild::cpu::quant
