// attend_tile_work_avx2 (tile_kernels.h): the AVX-512 tile's microkernels
// (tiled_attention_avx512.cpp) on 8 lanes and 16 ymm registers, for CPUs without AVX-512. The BLAS
// tile packs each K/V tile and hands OpenBLAS GEMMs too small for its blocking (on a Zen 3 core:
// 60% of a 6k prefill in sgemm, its copies and its beta pass); here the K and V rows are read in
// place:
//   scoresᵀ[j][i] = Σ_c k_j[c] · qᵀ[c][i]   6 keys (broadcast) × 16 queries (two vectors)
//   softmax down each column (one query per lane), masked by the query's visible count
//   outᵀ[c][i] += Σ_j v_j[c] · p[j][i]         4 columns (broadcast) × 16 queries (two vectors)
// Twelve and eight independent FMA chains: enough for two FMA pipes of latency 4, and with the
// loaded vectors and the broadcast still within 16 registers. Compiled with -mavx2 -mfma alone
// (kernels/cpu/CMakeLists.txt); chosen at run time. No standard library headers: see
// tile_kernels.h.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/exp_avx2.h"
#include "kernels/cpu/tile_kernels.h"

namespace hogwild::cpu {
namespace {

inline int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

constexpr int64_t kLanes = 8;
constexpr int64_t kChunk = kTileChunkAvx2;  // queries per pass over a key tile: two vectors
constexpr int64_t kScoreKeys = 6;           // keys per scores microkernel
constexpr int64_t kValueColumns = 4;        // value columns per values microkernel
constexpr int64_t kValueKeys = 32;          // keys per pass of the column blocks

// scores[j][0 .. 8·W) for R keys: their rows `keys[j]` against the transposed queries
// (qt[c * qt_stride + lane]).
template <int R, int W>
void score_block(const float* const* keys, const float* qt, int64_t qt_stride, int64_t d,
                 float* scores) {
  __m256 acc[R][W];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w) acc[r][w] = _mm256_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    __m256 q[W];
    for (int w = 0; w < W; ++w) q[w] = _mm256_load_ps(qt + c * qt_stride + w * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m256 k = _mm256_broadcast_ss(keys[r] + c);
      for (int w = 0; w < W; ++w) acc[r][w] = _mm256_fmadd_ps(k, q[w], acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w) _mm256_store_ps(scores + r * kChunk + w * kLanes, acc[r][w]);
}

template <int W>
void score_keys(const float* const* keys, int64_t n, const float* qt, int64_t qt_stride, int64_t d,
                float* scores) {
  int64_t j = 0;
  for (; j + kScoreKeys <= n; j += kScoreKeys)
    score_block<kScoreKeys, W>(keys + j, qt, qt_stride, d, scores + j * kChunk);
  float* s = scores + j * kChunk;
  switch (n - j) {
    case 5:
      score_block<5, W>(keys + j, qt, qt_stride, d, s);
      break;
    case 4:
      score_block<4, W>(keys + j, qt, qt_stride, d, s);
      break;
    case 3:
      score_block<3, W>(keys + j, qt, qt_stride, d, s);
      break;
    case 2:
      score_block<2, W>(keys + j, qt, qt_stride, d, s);
      break;
    case 1:
      score_block<1, W>(keys + j, qt, qt_stride, d, s);
      break;
    default:
      break;
  }
}

// The values, transposed like the queries: outᵀ[c][lane] for C columns from `column` and 8·W
// queries, := outᵀ · scale[lane] + Σ_j weights[j][lane] · values[j][c]. Each value is broadcast
// once per chunk, so a key tile's V rows are read once for all its 16 queries.
template <int W>
void value_columns(const float* weights, const float* const* values, int64_t n, int64_t column,
                   float* out_t, int64_t out_stride, const float* scale) {
  constexpr int C = kValueColumns;
  __m256 acc[C][W];
  for (int w = 0; w < W; ++w) {
    const __m256 s = scale != nullptr ? _mm256_load_ps(scale + w * kLanes) : _mm256_set1_ps(1.0f);
    for (int c = 0; c < C; ++c) {
      const __m256 o = _mm256_load_ps(out_t + c * out_stride + w * kLanes);
      acc[c][w] = scale != nullptr ? _mm256_mul_ps(o, s) : o;
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    __m256 p[W];
    for (int w = 0; w < W; ++w) {
      p[w] = _mm256_load_ps(weights + j * kChunk + w * kLanes);
      // Kept in a register: GCC would otherwise fold this load into each of the C multiply-adds,
      // and 13 loads per 8 of them made the loop load-bound (Zen 3: 40% of the FMA peak).
      __asm__("" : "+x"(p[w]));
    }
    const float* value = values[j] + column;
    for (int c = 0; c < C; ++c) {
      const __m256 x = _mm256_broadcast_ss(value + c);
      for (int w = 0; w < W; ++w) acc[c][w] = _mm256_fmadd_ps(x, p[w], acc[c][w]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int w = 0; w < W; ++w) _mm256_store_ps(out_t + c * out_stride + w * kLanes, acc[c][w]);
}

// The keys in groups of kValueKeys, whose V rows (8 KiB at head_dim 64) stay in L1 while every
// column block passes over them; the rescale comes with the first group. Each accumulator still
// sums its keys in order, so the grouping does not change a bit.
template <int W>
void value_all_columns(const float* weights, const float* const* values, int64_t n, int64_t d,
                       float* out_t, int64_t out_stride, const float* scale) {
  for (int64_t j = 0; j < n; j += kValueKeys) {
    const int64_t count = smaller(kValueKeys, n - j);
    for (int64_t c = 0; c < d; c += kValueColumns)
      value_columns<W>(weights + j * kChunk, values + j, count, c, out_t + c * out_stride,
                       out_stride, j == 0 ? scale : nullptr);
  }
}

// Online softmax of 8 queries over keys [first, first + n) of the block: scores (column `lane0`
// of the chunk) become weights exp(score - new maximum), zero where the query does not see the
// key; the running maximum and sum move on, and `scale` gets exp(old - new maximum), by which
// the values so far are multiplied. A key a query does not see is masked out of the maximum and
// its weight is cleared after the exponential (whatever that gave for it).
void softmax_lanes(float* scores, int64_t n, int64_t first, const int32_t* visible, float* maximum,
                   float* sum, float* scale) {
  const __m256i seen = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(visible));
  const __m256 negative_infinity = _mm256_set1_ps(-__builtin_inff());
  auto sees = [&](int64_t j) {
    return _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(seen, _mm256_set1_epi32(static_cast<int32_t>(first + j))));
  };
  __m256 tile_max = negative_infinity;
  for (int64_t j = 0; j < n; ++j)
    tile_max = _mm256_max_ps(
        tile_max,
        _mm256_blendv_ps(negative_infinity, _mm256_load_ps(scores + j * kChunk), sees(j)));
  const __m256 old_max = _mm256_load_ps(maximum);
  const __m256 new_max = _mm256_max_ps(old_max, tile_max);
  // A query that has seen no key yet keeps -inf; its shift is 0 so no lane computes inf - inf.
  const __m256 empty = _mm256_cmp_ps(new_max, negative_infinity, _CMP_EQ_OQ);
  const __m256 shift = _mm256_andnot_ps(empty, new_max);
  const __m256 rescale = exp_avx2(_mm256_sub_ps(old_max, shift));
  __m256 total = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    const __m256 e =
        _mm256_and_ps(exp_avx2(_mm256_sub_ps(_mm256_load_ps(scores + j * kChunk), shift)), sees(j));
    _mm256_store_ps(scores + j * kChunk, e);
    total = _mm256_add_ps(total, e);
  }
  _mm256_store_ps(sum, _mm256_fmadd_ps(_mm256_load_ps(sum), rescale, total));
  _mm256_store_ps(maximum, new_max);
  _mm256_store_ps(scale, rescale);
}

}  // namespace

void attend_tile_work_avx2(const AttentionTile& tile, const TileWork& work) {
  const int64_t m = tile.count, d = tile.head_dim;
  const int32_t* visible = work.visible;
  const float* key_rows[kTileKeys];
  const float* value_rows_of[kTileKeys];
  for (int64_t first = 0; first < work.most_visible; first += kTileKeys) {
    const int64_t n = smaller(kTileKeys, work.most_visible - first);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t key = first + j;
      const int64_t row = static_cast<int64_t>(tile.pages[key / tile.page_size]) * tile.page_size +
                          key % tile.page_size;
      key_rows[j] = tile.keys + row * tile.kv_stride;
      value_rows_of[j] = tile.values + row * tile.kv_stride;
    }
    for (int64_t q0 = 0; q0 < m; q0 += kChunk) {
      const int64_t rows = smaller(kChunk, m - q0);
      int32_t chunk_visible = 0;
      for (int64_t i = q0; i < q0 + rows; ++i)
        chunk_visible = visible[i] > chunk_visible ? visible[i] : chunk_visible;
      if (chunk_visible <= first) continue;  // no query here sees this tile: nothing changes
      // Keys past the chunk's last visible one are skipped (the causal diagonal).
      const int64_t keys = smaller(n, chunk_visible - first);
      const int vectors = rows > kLanes ? 2 : 1;
      const float* qt = work.qt + q0 * d;  // the chunk's panel
      float* out_t = work.out_t + q0 * d;
      if (vectors == 2)
        score_keys<2>(key_rows, keys, qt, kChunk, d, work.scores);
      else
        score_keys<1>(key_rows, keys, qt, kChunk, d, work.scores);
      for (int v = 0; v < vectors; ++v)
        softmax_lanes(work.scores + v * kLanes, keys, first, visible + q0 + v * kLanes,
                      work.maximum + q0 + v * kLanes, work.sum + q0 + v * kLanes,
                      work.scale + q0 + v * kLanes);
      if (vectors == 2)
        value_all_columns<2>(work.scores, value_rows_of, keys, d, out_t, kChunk, work.scale + q0);
      else
        value_all_columns<1>(work.scores, value_rows_of, keys, d, out_t, kChunk, work.scale + q0);
    }
  }
}

}  // namespace hogwild::cpu
