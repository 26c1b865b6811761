#include "kernels/cpu/tiled_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "kernels/cpu/blas_threads.h"
#include "kernels/cpu/exp_avx2.h"
#include "kernels/cpu/quant_matmul.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HOGWILD_X86 1
#endif

namespace hogwild::cpu {
namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

// s[0, n) := exp(s - maximum), returns their sum (plain C++).
float exp_shifted_scalar(float* s, int64_t n, float maximum) {
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - maximum));
  return sum;
}

float max_scalar(const float* s, int64_t n) {
  float maximum = kNegativeInfinity;
  for (int64_t j = 0; j < n; ++j) maximum = std::max(maximum, s[j]);
  return maximum;
}

#ifdef HOGWILD_X86
__attribute__((target("avx2,fma"))) float exp_shifted_avx2(float* s, int64_t n, float maximum) {
  const __m256 m = _mm256_set1_ps(maximum);
  __m256 sum = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
                ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  return total + exp_shifted_scalar(s + j, n - j, maximum);
}

__attribute__((target("avx2,fma"))) float max_avx2(const float* s, int64_t n) {
  __m256 m = _mm256_set1_ps(kNegativeInfinity);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  return std::max(max_scalar(lanes, 8), max_scalar(s + j, n - j));
}
#endif

float exp_shifted(float* s, int64_t n, float maximum, SimdLevel level) {
#ifdef HOGWILD_X86
  if (level == SimdLevel::kAvx2) return exp_shifted_avx2(s, n, maximum);
#endif
  (void)level;
  return exp_shifted_scalar(s, n, maximum);
}

float row_max(const float* s, int64_t n, SimdLevel level) {
#ifdef HOGWILD_X86
  if (level == SimdLevel::kAvx2) return max_avx2(s, n);
#endif
  (void)level;
  return max_scalar(s, n);
}

}  // namespace

void attend_tile(const AttentionTile& tile, TileScratch& scratch, SimdLevel level,
                 SoftmaxPartial* partials, float* values) {
  const int64_t m = tile.count, d = tile.head_dim;
  int32_t most_visible = 0;
  for (int64_t i = 0; i < m; ++i) most_visible = std::max(most_visible, tile.visible[i]);
  for (int64_t i = 0; i < m; ++i) partials[i] = {kNegativeInfinity, 0.0f};
  std::fill(values, values + m * d, 0.0f);
  if (m == 0 || most_visible == 0) return;
  scratch.scores.resize(static_cast<size_t>(m * kTileKeys));
  scratch.keys.resize(static_cast<size_t>(kTileKeys * d));
  scratch.values.resize(static_cast<size_t>(kTileKeys * d));
  float* scores = scratch.scores.data();
  make_blas_single_threaded();
  const auto row_bytes = static_cast<size_t>(d) * sizeof(float);
  for (int64_t first = 0; first < most_visible; first += kTileKeys) {
    const int64_t n = std::min<int64_t>(kTileKeys, most_visible - first);
    // The tile's K and V rows: read in place when its pages are adjacent in the pool (a fresh
    // cache hands them out in order), else copied dense.
    const int64_t first_page = first / tile.page_size, last_page = (first + n - 1) / tile.page_size;
    bool adjacent = true;
    for (int64_t p = first_page + 1; p <= last_page && adjacent; ++p)
      adjacent = tile.pages[p] == tile.pages[p - 1] + 1;
    const float* k_rows = scratch.keys.data();
    const float* v_rows = scratch.values.data();
    int64_t kv_stride = d;
    if (adjacent) {
      const int64_t pool_row = tile.pages[first_page] * tile.page_size + first % tile.page_size;
      k_rows = tile.keys + pool_row * tile.kv_stride;
      v_rows = tile.values + pool_row * tile.kv_stride;
      kv_stride = tile.kv_stride;
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const int64_t key = first + j;
        const int64_t pool_row =
            tile.pages[key / tile.page_size] * tile.page_size + key % tile.page_size;
        std::memcpy(scratch.keys.data() + j * d, tile.keys + pool_row * tile.kv_stride, row_bytes);
        std::memcpy(scratch.values.data() + j * d, tile.values + pool_row * tile.kv_stride,
                    row_bytes);
      }
    }
    // scores = queries · keysᵀ  [m, n]
    sgemm(true, m, n, d, 1.0f, tile.queries, d, k_rows, kv_stride, 0.0f, scores, kTileKeys);
    // Online softmax, row by row: the row's running maximum moves up to this tile's, the values
    // so far are rescaled by exp(old - new), and the scores become weights exp(score - new).
    for (int64_t i = 0; i < m; ++i) {
      float* row = scores + i * kTileKeys;
      // Causal / visibility mask: keys from `visible` on get no weight.
      const int64_t seen = std::clamp<int64_t>(tile.visible[i] - first, 0, n);
      if (seen == 0) {
        std::fill(row, row + n, 0.0f);
        continue;
      }
      SoftmaxPartial& partial = partials[i];
      const float maximum = std::max(partial.maximum, row_max(row, seen, level));
      const float sum = exp_shifted(row, seen, maximum, level);
      std::fill(row + seen, row + n, 0.0f);
      if (partial.maximum != maximum && partial.sum != 0.0f) {
        const float rescale = std::exp(partial.maximum - maximum);
        float* o = values + i * d;
        for (int64_t c = 0; c < d; ++c) o[c] *= rescale;
        partial.sum *= rescale;
      }
      partial.sum += sum;
      partial.maximum = maximum;
    }
    // values += weights · V  [m, d]
    sgemm(false, m, d, n, 1.0f, scores, kTileKeys, v_rows, kv_stride, 1.0f, values, d);
  }
}

bool tile_isa_available(TileIsa isa, int64_t head_dim) {
  if (head_dim <= 0) return false;
  switch (isa) {
    case TileIsa::kAvx2:
#if HOGWILD_TILE_AVX2
      return head_dim % 8 == 0 && quant_isa() >= QuantIsa::Avx2;
#else
      return false;
#endif
    case TileIsa::kAvx512:
#if HOGWILD_TILE_AVX512
      return head_dim % 16 == 0 && quant_isa() >= QuantIsa::Avx512;
#else
      return false;
#endif
  }
  return false;
}

namespace {

// A float buffer of `size` from `storage`, its start on a 64-byte line.
float* aligned(std::vector<float>& storage, int64_t size) {
  storage.resize(static_cast<size_t>(size + 16));
  const auto address = reinterpret_cast<uintptr_t>(storage.data());
  return storage.data() + ((64 - address % 64) % 64) / sizeof(float);
}

}  // namespace

void attend_tile_simd(const AttentionTile& tile, TileScratch& scratch, TileIsa isa,
                      SoftmaxPartial* partials, float* values) {
  HOGWILD_ASSERT(tile_isa_available(isa, tile.head_dim));
  const int64_t m = tile.count, d = tile.head_dim;
  int32_t most_visible = 0;
  for (int64_t i = 0; i < m; ++i) most_visible = std::max(most_visible, tile.visible[i]);
  for (int64_t i = 0; i < m; ++i) partials[i] = {kNegativeInfinity, 0.0f};
  std::fill(values, values + m * d, 0.0f);
  if (m == 0 || most_visible == 0) return;

  // The queries transposed in panels of the kernel's chunk (tile_kernels.h); the padding queries
  // see no key.
  const int64_t chunk = isa == TileIsa::kAvx512 ? kTileChunkAvx512 : kTileChunkAvx2;
  const int64_t padded = (m + chunk - 1) / chunk * chunk;
  float* qt = aligned(scratch.keys, d * padded);
  float* out_t = aligned(scratch.values, d * padded);
  // scores, then maximum, sum and scale: each a multiple of 16 floats, so each on a line.
  float* scores = aligned(scratch.scores, kTileKeys * chunk + 3 * padded);
  float* maximum = scores + kTileKeys * chunk;
  float* sum = maximum + padded;
  float* scale = sum + padded;
  scratch.visible.assign(static_cast<size_t>(padded), 0);
  std::copy_n(tile.visible, m, scratch.visible.data());
  std::fill(qt, qt + d * padded, 0.0f);
  auto at = [&](int64_t i, int64_t c) { return (i / chunk) * d * chunk + c * chunk + i % chunk; };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < d; ++c) qt[at(i, c)] = tile.queries[i * d + c];
  std::fill(out_t, out_t + d * padded, 0.0f);
  std::fill(maximum, maximum + padded, kNegativeInfinity);
  std::fill(sum, sum + padded, 0.0f);
  std::fill(scale, scale + padded, 1.0f);
  const TileWork work{padded, most_visible, scratch.visible.data(), qt, out_t, scores, maximum,
                      sum,    scale};
  if (isa == TileIsa::kAvx512) {
#if HOGWILD_TILE_AVX512
    attend_tile_work_avx512(tile, work);
#endif
  } else {
#if HOGWILD_TILE_AVX2
    attend_tile_work_avx2(tile, work);
#endif
  }
  for (int64_t i = 0; i < m; ++i) {
    if (sum[i] == 0.0f) continue;  // saw nothing: {-inf, 0} and zeros
    partials[i] = {maximum[i], sum[i]};
    for (int64_t c = 0; c < d; ++c) values[i * d + c] = out_t[at(i, c)];
  }
}

}  // namespace hogwild::cpu
