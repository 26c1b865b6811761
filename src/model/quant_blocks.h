// Pieces of GGML's block layouts shared by the dequantizer (model/quant.cpp) and the CPU matmul
// kernels (kernels/cpu/quant_*). Self-contained and `static`: a translation unit compiled for
// another instruction set (the AVX2 kernels) keeps its own copy instead of sharing an inline
// definition the linker could take from either.
#pragma once

#include <cstdint>
#include <cstring>

namespace hogwild::ggml_blocks {

// A little-endian 16-bit field (an fp16 or bf16 scale) at an unaligned address.
static inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A little-endian 32-bit field at an unaligned address.
static inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The 6-bit scale and minimum of sub-block j (of 32 elements) in the 12 packed bytes of Q4_K /
// Q5_K: the low 6 bits of bytes j and j+4 for j < 4; else a nibble of byte j+4 and the top 2 bits
// of bytes j-4 and j.
static inline void k_scale_min(int64_t j, const uint8_t* packed, int& scale, int& minimum) {
  if (j < 4) {
    scale = packed[j] & 63;
    minimum = packed[j + 4] & 63;
  } else {
    scale = (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4);
    minimum = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
  }
}

}  // namespace hogwild::ggml_blocks
