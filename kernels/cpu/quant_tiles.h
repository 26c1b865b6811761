// Internal to the SIMD quantized-matmul kernels (quant_matmul_avx2.cpp, quant_matmul_avx512.cpp):
// the driver that walks a batch of input rows over a range of weight rows. No intrinsics and no
// library headers (see quant_kernels.h): each kernel unit instantiates it with a lambda of its
// own, so every instantiation has internal linkage and is compiled with that unit's flags.
#pragma once

#include <cstdint>

namespace hogwild::cpu::quant {

// Input rows in groups of kGroupRows; for each weight row, a group's rows in tiles of 8 or 4
// (then 4, 2, 1). A weight row is read from memory once per group and from L1 for its other tiles,
// and a group's activations stay in L1/L2 while the caller's weight rows pass over them. A tile
// kernel must give each row the same bits in every tile size (batch invariance, quant_matmul.h), so
// that tiling only decides which rows share a decoded weight block.
constexpr int64_t kGroupRows = 16;

// Weight bytes are prefetched this far ahead of the kernels' reads: the weights of a decode step
// stream from memory (or a large L3) once, and the hardware prefetcher alone left a kernel at
// 70-75% of a plain streaming read (bench_quant_matmul; with it, Q4_1 at batch 1 7.3 -> 9.4
// GB/s and at batch 4 4.2 -> 7.4 GB/s on a Sapphire Rapids-class core; 4-8 KiB ahead did no
// better). Prefetches never fault, so running past the matrix is harmless.
constexpr int64_t kPrefetchAhead = 2048;

// Prefetches the cache lines of [p, p + Bytes) kPrefetchAhead ahead.
template <int64_t Bytes>
inline void prefetch_ahead(const uint8_t* p) {
  for (int64_t at = 0; at < Bytes; at += 64) __builtin_prefetch(p + kPrefetchAhead + at, 0, 3);
}

// tile.operator()<R>(row, i, result) computes input rows i..i+R-1 against one weight row; R is
// MaxTile (4, or 8 where a unit has the registers for it), then 4, 2 and 1 for the rest of a group.
template <int MaxTile = 4, typename Tile>
void over_rows(const uint8_t* w, int64_t row_bytes, int64_t n, int64_t row_begin, int64_t row_end,
               float* out, int64_t out_stride, const Tile& tile) {
  static_assert(MaxTile == 4 || MaxTile == 8);
  for (int64_t i0 = 0; i0 < n; i0 += kGroupRows) {
    const int64_t group_end = i0 + kGroupRows < n ? i0 + kGroupRows : n;
    for (int64_t j = row_begin; j < row_end; ++j) {
      const uint8_t* row = w + j * row_bytes;
      int64_t i = i0;
      float result[MaxTile];
      if constexpr (MaxTile == 8) {
        for (; i + 8 <= group_end; i += 8) {
          tile.template operator()<8>(row, i, result);
          for (int64_t r = 0; r < 8; ++r) out[(i + r) * out_stride + j] = result[r];
        }
      }
      for (; i + 4 <= group_end; i += 4) {
        tile.template operator()<4>(row, i, result);
        for (int64_t r = 0; r < 4; ++r) out[(i + r) * out_stride + j] = result[r];
      }
      if (group_end - i >= 2) {
        tile.template operator()<2>(row, i, result);
        for (int64_t r = 0; r < 2; ++r) out[(i + r) * out_stride + j] = result[r];
        i += 2;
      }
      if (i < group_end) {
        tile.template operator()<1>(row, i, result);
        out[i * out_stride + j] = result[0];
      }
    }
  }
}

}  // namespace hogwild::cpu::quant
