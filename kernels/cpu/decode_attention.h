// The decode kernel of block_attention (kernels/cpu/block_attention.cpp): the few (entry, query
// head) queries that read one chunk of a block's keys for one kv head. With AVX2+FMA: scores for
// four keys and up to three queries at a time (twelve independent FMA chains, one horizontal sum
// per four keys), the same exponential as the tiled kernel (exp_avx2.h), then the weighted values
// with the output rows held in registers. With AVX-512 (decode_attention_avx512.cpp): the same on
// sixteen lanes, scores reduced sixteen at a time. The portable loop in block_attention.cpp does
// the same where the CPU has neither or head_dim is not a multiple of 8.
#pragma once

#include <cstdint>
#include <vector>

namespace hogwild::cpu {

struct DecodeChunk {
  const float* queries;    // [width, head_dim] dense: rotated and multiplied by the scale
  const int32_t* visible;  // [width]: query w sees the chunk's keys with index < visible[w]
  int64_t width;
  int64_t head_dim;     // a multiple of 8
  const int64_t* rows;  // [tokens]: pool row of each key, in order
  int64_t tokens;
  const float* keys;    // the page pool, already offset to the kv head's columns
  const float* values;  // likewise
  int64_t kv_stride;    // floats between consecutive pool rows
};

enum class DecodeIsa { kAvx2, kAvx512 };

// Whether that kernel runs here: built for x86-64, the CPU has the instructions, and head_dim is a
// multiple of its vector (8 floats for AVX2, 16 for AVX-512).
bool decode_isa_available(DecodeIsa isa, int64_t head_dim);

// Whether attend_decode_chunk runs here (either kernel).
bool decode_chunk_supported(int64_t head_dim);

// Per query w: maxima[w] and sums[w] of its softmax over the visible keys of the chunk and the
// unnormalised weighted values out[w * head_dim ..]; a query that sees none of them gets
// {-inf, 0} and zeros. `scores` is scratch (grown as needed). The widest kernel available, or the
// one named (it must be available).
void attend_decode_chunk(const DecodeChunk& chunk, std::vector<float>& scores, float* maxima,
                         float* sums, float* out);
void attend_decode_chunk(const DecodeChunk& chunk, std::vector<float>& scores, float* maxima,
                         float* sums, float* out, DecodeIsa isa);

// The AVX-512 kernel itself (decode_attention_avx512.cpp); fails where the build has none.
void attend_decode_chunk_avx512(const DecodeChunk& chunk, std::vector<float>& scores, float* maxima,
                                float* sums, float* out);

}  // namespace hogwild::cpu
