// The prefill attention tile's data (tiled_attention.h) and the interface of its register-tiled
// microkernels, one translation unit per instruction set (tiled_attention_avx2.cpp, _avx512.cpp).
// Includes only <cstdint>: those units are compiled with -mavx2 / -mavx512* and must not
// instantiate inline library code that the linker could then pick for callers on other CPUs, so
// tiled_attention.cpp (compiled for any x86-64) sizes and fills every buffer they use.
#pragma once

#include <cstdint>

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

// A register-tiled call's working set, transposed so that one vector holds one column for
// consecutive queries, in panels of one chunk of queries: element c of query i is at
// qt[(i / chunk) * head_dim * chunk + c * chunk + i % chunk], and out_t holds the weighted values
// so far likewise. A panel is contiguous: with the queries' columns `padded` floats apart, a
// power-of-two stride put all of a chunk's columns in a few L1 sets (8 of 64 at 128 queries),
// and the K rows evicted them. `padded` is the query count rounded up to the chunk; the padding
// queries are zero and see no key (visible 0). maximum, sum and scale hold one float per padded
// query (-inf, 0 and 1 at the start); scores holds kTileKeys x chunk floats. Every buffer starts
// on a 64-byte line.
struct TileWork {
  int64_t padded;
  int32_t most_visible;    // the largest visible count: keys past it are never read
  const int32_t* visible;  // [padded]
  const float* qt;         // [padded / chunk][head_dim][chunk]
  float* out_t;            // [padded / chunk][head_dim][chunk], zero at the start
  float* scores;
  float* maximum;
  float* sum;
  float* scale;
};

// Queries per pass over a key tile: two vectors of each instruction set.
constexpr int64_t kTileChunkAvx2 = 16;
constexpr int64_t kTileChunkAvx512 = 32;

// Every key tile of `tile` into `work`: the online softmax's maxima and sums, and out_t.
void attend_tile_work_avx2(const AttentionTile& tile, const TileWork& work);
void attend_tile_work_avx512(const AttentionTile& tile, const TileWork& work);

}  // namespace hogwild::cpu
