// Flash-attention style tile of block_attention for prefill (kernels/cpu/block_attention.cpp): many
// (entry, query head) queries of one block and one kv head at once, over the block's visible keys
// in tiles, with an online softmax. Scores and weighted values are small GEMMs (OpenBLAS, run
// inline on the calling pool thread); the softmax uses an AVX2 exp where the CPU has it. Where the
// CPU has AVX2 or AVX-512, attend_tile_simd does the same with register-tiled microkernels.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/small_gemm.h"
#include "kernels/cpu/tile_kernels.h"

namespace hogwild::cpu {

// Per pool thread: buffers that grow to the largest tile and are reused.
struct TileScratch {
  std::vector<float> scores, keys, values;
  std::vector<int32_t> visible;
};

// Partials of the tile's queries over all their visible keys: partials[i] and
// values[i * head_dim ..] (unnormalised); a query that sees no key gets {-inf, 0} and zeros.
// The same merge rule as the per-row kernel's partials (docs/design.md §4) then combines them.
void attend_tile(const AttentionTile& tile, TileScratch& scratch, SimdLevel level,
                 SoftmaxPartial* partials, float* values);

// The register-tiled kernels (tile_kernels.h), one unit per instruction set, chosen at run time
// like the quantized kernels.
enum class TileIsa { kAvx2, kAvx512 };

// Whether that kernel runs here for this head size: built for x86-64, the CPU has the instructions
// as quant_isa() sees them (so HOGWILD_CPU_FEATURES=scalar gives the BLAS tile, =avx2 the AVX2
// one), and head_dim is a multiple of the vector (8 floats, 16 for AVX-512).
bool tile_isa_available(TileIsa isa, int64_t head_dim);

// attend_tile's result from register-tiled microkernels that read K and V in place (no BLAS, no
// packing copies): the same partials within fp32 reordering. `isa` must be available.
void attend_tile_simd(const AttentionTile& tile, TileScratch& scratch, TileIsa isa,
                      SoftmaxPartial* partials, float* values);

}  // namespace hogwild::cpu
