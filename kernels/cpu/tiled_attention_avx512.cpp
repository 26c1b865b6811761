// attend_tile_work_avx512 (tile_kernels.h): the prefill tile as register-tiled AVX-512 microkernels
// that read the K and V rows where they lie in the page pool. The BLAS tile packs each K/V tile
// (12% of a 6k prefill) and hands OpenBLAS GEMMs too small for its blocking; here the queries are
// transposed once per call (tiled_attention.cpp) and every key tile is used as it is:
//   scoresᵀ[j][i] = Σ_c k_j[c] · qᵀ[c][i]   8 keys (broadcast) × 32 queries (two vectors)
//   softmax down each column (one query per lane), masked by the query's visible count
//   outᵀ[c][i] += Σ_j v_j[c] · p[j][i]         8 columns (broadcast) × 32 queries (two vectors)
// Compiled for AVX-512 alone (kernels/cpu/CMakeLists.txt); chosen at run time. No standard
// library headers: see tile_kernels.h.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/exp_avx512.h"
#include "kernels/cpu/tile_kernels.h"

namespace hogwild::cpu {
namespace {

inline int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

constexpr int64_t kLanes = 16;
constexpr int64_t kChunk = kTileChunkAvx512;  // queries per pass over a key tile: two vectors
constexpr int64_t kScoreKeys = 8;             // keys per scores microkernel
constexpr int64_t kValueColumns = 8;          // value columns per values microkernel
constexpr int64_t kValueKeys = 32;            // keys per pass of the column blocks

// scores[j][0 .. 16·W) for R keys: their rows `keys[j]` against the transposed queries
// (qt[c * qt_stride + lane]).
template <int R, int W>
void score_block(const float* const* keys, const float* qt, int64_t qt_stride, int64_t d,
                 float* scores) {
  __m512 acc[R][W];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w) acc[r][w] = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    __m512 q[W];
    for (int w = 0; w < W; ++w) q[w] = _mm512_loadu_ps(qt + c * qt_stride + w * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512 k = _mm512_set1_ps(keys[r][c]);
      for (int w = 0; w < W; ++w) acc[r][w] = _mm512_fmadd_ps(k, q[w], acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w) _mm512_storeu_ps(scores + r * kChunk + w * kLanes, acc[r][w]);
}

template <int W>
void score_keys(const float* const* keys, int64_t n, const float* qt, int64_t qt_stride, int64_t d,
                float* scores) {
  int64_t j = 0;
  for (; j + kScoreKeys <= n; j += kScoreKeys)
    score_block<kScoreKeys, W>(keys + j, qt, qt_stride, d, scores + j * kChunk);
  float* s = scores + j * kChunk;
  switch (n - j) {
    case 7:
      score_block<7, W>(keys + j, qt, qt_stride, d, s);
      break;
    case 6:
      score_block<6, W>(keys + j, qt, qt_stride, d, s);
      break;
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

// The values, transposed like the queries: outᵀ[c][lane] for C columns from `column` and 16·W
// queries, := outᵀ · scale[lane] + Σ_j weights[j][lane] · values[j][c]. Each value is broadcast
// once per chunk, so a key tile's V rows are read once for all its 32 queries.
template <int W>
void value_columns(const float* weights, const float* const* values, int64_t n, int64_t column,
                   float* out_t, int64_t out_stride, const float* scale) {
  constexpr int C = kValueColumns;
  __m512 acc[C][W];
  for (int w = 0; w < W; ++w) {
    const __m512 s = scale != nullptr ? _mm512_loadu_ps(scale + w * kLanes) : _mm512_set1_ps(1.0f);
    for (int c = 0; c < C; ++c) {
      const __m512 o = _mm512_loadu_ps(out_t + c * out_stride + w * kLanes);
      acc[c][w] = scale != nullptr ? _mm512_mul_ps(o, s) : o;
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    __m512 p[W];
    for (int w = 0; w < W; ++w) p[w] = _mm512_loadu_ps(weights + j * kChunk + w * kLanes);
    const float* value = values[j] + column;
    for (int c = 0; c < C; ++c) {
      const __m512 x = _mm512_set1_ps(value[c]);
      for (int w = 0; w < W; ++w) acc[c][w] = _mm512_fmadd_ps(x, p[w], acc[c][w]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int w = 0; w < W; ++w) _mm512_storeu_ps(out_t + c * out_stride + w * kLanes, acc[c][w]);
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

// Online softmax of 16 queries over keys [first, first + n) of the block: scores (column `lane0`
// of the chunk) become weights exp(score - new maximum), zero where the query does not see the
// key; the running maximum and sum move on, and `scale` gets exp(old - new maximum), by which
// the values so far are multiplied.
void softmax_lanes(float* scores, int64_t n, int64_t first, const int32_t* visible, float* maximum,
                   float* sum, float* scale) {
  const __m512i seen = _mm512_loadu_si512(visible);
  const __m512 negative_infinity = _mm512_set1_ps(-__builtin_inff());
  __m512 tile_max = negative_infinity;
  for (int64_t j = 0; j < n; ++j) {
    const __mmask16 sees =
        _mm512_cmplt_epi32_mask(_mm512_set1_epi32(static_cast<int32_t>(first + j)), seen);
    tile_max = _mm512_mask_max_ps(tile_max, sees, tile_max, _mm512_loadu_ps(scores + j * kChunk));
  }
  const __m512 old_max = _mm512_loadu_ps(maximum);
  const __m512 new_max = _mm512_max_ps(old_max, tile_max);
  // A query that has seen no key yet keeps -inf; its shift is 0 so no lane computes inf - inf.
  const __mmask16 empty = _mm512_cmp_ps_mask(new_max, negative_infinity, _CMP_EQ_OQ);
  const __m512 shift = _mm512_mask_mov_ps(new_max, empty, _mm512_setzero_ps());
  const __m512 rescale = exp512(_mm512_sub_ps(old_max, shift));
  __m512 total = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    const __mmask16 sees =
        _mm512_cmplt_epi32_mask(_mm512_set1_epi32(static_cast<int32_t>(first + j)), seen);
    const __m512 e = _mm512_maskz_mov_ps(
        sees, exp512(_mm512_sub_ps(_mm512_loadu_ps(scores + j * kChunk), shift)));
    _mm512_storeu_ps(scores + j * kChunk, e);
    total = _mm512_add_ps(total, e);
  }
  _mm512_storeu_ps(sum, _mm512_fmadd_ps(_mm512_loadu_ps(sum), rescale, total));
  _mm512_storeu_ps(maximum, new_max);
  _mm512_storeu_ps(scale, rescale);
}

}  // namespace

void attend_tile_work_avx512(const AttentionTile& tile, const TileWork& work) {
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
