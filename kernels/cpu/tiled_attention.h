// Flash-attention style tile of block_attention for prefill (kernels/cpu/block_attention.cpp): many
// (entry, query head) queries of one block and one kv head at once, over the block's visible keys
// in tiles, with an online softmax. Scores and weighted values are small GEMMs (OpenBLAS, run
// inline on the calling pool thread); the softmax uses an AVX2 exp where the CPU has it. On
// AVX-512 CPUs attend_tile_avx512 does the same with its own microkernels.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/small_gemm.h"

namespace hogwild::cpu {

// Keys per tile: scores [queries x kTileKeys] and the K/V tile stay in L2 with the queries.
constexpr int64_t kTileKeys = 128;

// Running softmax state of one (query, head) over some keys: the maximum score and the sum of
// exp(score - maximum); the unnormalised weighted values are kept beside it.
struct SoftmaxPartial {
  float maximum;
  float sum;
};

// One tile of queries against one block's keys of one kv head.
struct AttentionTile {
  const float* queries;    // [count, head_dim] dense: rotated and multiplied by the scale
  const int32_t* visible;  // [count]: query i sees keys 0 .. visible[i]-1 of the block
  int64_t count;
  int64_t head_dim;
  const float* keys;     // the page pool, already offset to the kv head's columns
  const float* values;   // likewise
  int64_t kv_stride;     // floats between consecutive pool rows
  const int32_t* pages;  // the block's pages in order
  int64_t page_size;
};

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

// Whether attend_tile_avx512 runs here for this head size: built for x86-64, the CPU has the
// AVX-512 the quantized kernels use (quant_isa(), so HOGWILD_CPU_FEATURES=avx2 turns it off too),
// and head_dim is a multiple of 16.
bool tile_avx512_available(int64_t head_dim);

// attend_tile's result from AVX-512 microkernels that read K and V in place (no BLAS, no packing
// copies): the same partials within fp32 reordering (tiled_attention_avx512.cpp).
void attend_tile_avx512(const AttentionTile& tile, TileScratch& scratch, SoftmaxPartial* partials,
                        float* values);

}  // namespace hogwild::cpu
