// GGML tensor element types: sizes and dequantization to fp32 (the CPU backend computes in fp32).
// Block layouts follow the GGUF specification (ggml's docs/gguf.md and ggml-common.h).
#pragma once

#include <cstdint>
#include <string>

namespace hogwild {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeTraits {
  const char* name = nullptr;  // nullptr: unknown type
  int64_t block_elements = 0;  // elements per block
  int64_t block_bytes = 0;     // bytes per block
  bool can_dequantize = false;
};

GgmlTypeTraits ggml_type_traits(uint32_t type);
std::string ggml_type_name(uint32_t type);

// Bytes taken by `elements` values of `type`; throws if `elements` is not a whole number of blocks.
uint64_t ggml_row_bytes(GgmlType type, int64_t elements);

// Converts `elements` values (a whole number of blocks) of `type` at `src` to fp32.
// Throws hogwild::Error for types that cannot be dequantized.
void dequantize(GgmlType type, const void* src, float* dst, int64_t elements);

}  // namespace hogwild
