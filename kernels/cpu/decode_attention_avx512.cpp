// attend_decode_chunk_avx512 (decode_attention.h): the decode chunk on sixteen lanes, half the
// instructions of the AVX2 kernel for the same partials:
//   scores   one vector per (query, key) summed over the head's columns, sixteen of them reduced
//            at once by a transpose-and-add tree (16 keys x 1 query, 8 x 2 or 4 x 4)
//   softmax  exp512, the AVX2 kernel's exponential bit for bit
//   values   up to 4 queries x 64 columns of output in registers, one pass over the value rows
// Compiled for AVX-512 alone (kernels/cpu/CMakeLists.txt); chosen at run time.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/decode_attention.h"
#include "kernels/cpu/exp_avx512.h"

namespace hogwild::cpu {
namespace {

constexpr int64_t kLanes = 16;
constexpr int64_t kQueriesPerPass = 4;   // value pass: 4 queries x 4 column vectors = 16 registers
constexpr int64_t kColumnsPerPass = 64;  // (of 32; the broadcasts and a value row take 5 more)
// Rows are prefetched this many keys ahead: the rows of a block's pages are strided reads (one kv
// head's columns of each pool row) that the hardware prefetcher follows poorly.
constexpr int64_t kPrefetchKeys = 32;
constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

// Prefetches the cache lines of floats [p, p + count).
inline void prefetch_row(const float* p, int64_t count) {
  const auto* bytes = reinterpret_cast<const char*>(p);
  for (int64_t at = 0; at < count * 4; at += 64) _mm_prefetch(bytes + at, _MM_HINT_T0);
}

// Lane L of the result: the sum of the sixteen lanes of v[L]. Each level halves the vectors and
// the lanes they hold (45 shuffles and adds for sixteen sums, against 16 x 4 for one at a time).
inline __m512 sum16(const __m512 v[16]) {
  __m512 x[8], y[4], z[2];
  for (int i = 0; i < 8; ++i)  // x[i]: two 128-bit sums of v[i], then two of v[i + 8]
    x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[i], v[i + 8], 0x44),
                         _mm512_shuffle_f32x4(v[i], v[i + 8], 0xEE));
  for (int i = 0; i < 4; ++i)  // y[i]: one 128-bit sum each of v[i], v[i + 8], v[i + 4], v[i + 12]
    y[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x[i], x[i + 4], 0x88),
                         _mm512_shuffle_f32x4(x[i], x[i + 4], 0xDD));
  for (int i = 0; i < 2; ++i)  // within each 128-bit block: pairs of y[i], then of y[i + 2]
    z[i] = _mm512_add_ps(_mm512_shuffle_ps(y[i], y[i + 2], 0x44),
                         _mm512_shuffle_ps(y[i], y[i + 2], 0xEE));
  const __m512 r =
      _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x88), _mm512_shuffle_ps(z[0], z[1], 0xDD));
  // Lane 4b + m of r holds v[{0, 2, 1, 3}[m] + {0, 8, 4, 12}[b]]: a map that is its own inverse.
  const __m512i order = _mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15);
  return _mm512_permutexvar_ps(order, r);
}

// scores[w * stride + j] = q[w] · k[j] for the first `rows` of QW queries and the 16 / QW keys k.
template <int QW>
inline void scores16(const float* const* q, const float* const* k, int64_t d, int64_t rows,
                     float* scores, int64_t stride) {
  constexpr int KW = kLanes / QW;
  __m512 acc[kLanes];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; c += kLanes) {
    __m512 qv[QW];
    for (int w = 0; w < QW; ++w) qv[w] = _mm512_loadu_ps(q[w] + c);
    for (int j = 0; j < KW; ++j) {
      const __m512 kv = _mm512_loadu_ps(k[j] + c);
      for (int w = 0; w < QW; ++w) acc[w * KW + j] = _mm512_fmadd_ps(qv[w], kv, acc[w * KW + j]);
    }
  }
  alignas(64) float lanes[kLanes];
  _mm512_store_ps(lanes, sum16(acc));
  for (int64_t w = 0; w < rows; ++w) std::copy_n(lanes + w * KW, KW, scores + w * stride);
}

// out[w * d + c0 + ..16V) = Σ_j weights[w * stride + j] · v_j[c0 + ..16V) for QW queries.
template <int QW, int V>
void weighted16(const float* weights, int64_t stride, const DecodeChunk& chunk, int64_t c0,
                bool prefetch, float* out) {
  __m512 acc[QW][V];
  for (int w = 0; w < QW; ++w)
    for (int v = 0; v < V; ++v) acc[w][v] = _mm512_setzero_ps();
  const int64_t n = chunk.tokens;
  for (int64_t j = 0; j < n; ++j) {
    const float* value = chunk.values + chunk.rows[j] * chunk.kv_stride + c0;
    if (prefetch)
      prefetch_row(
          chunk.values + chunk.rows[std::min(j + kPrefetchKeys, n - 1)] * chunk.kv_stride + c0,
          kLanes * V);
    __m512 s[QW];
    for (int w = 0; w < QW; ++w) s[w] = _mm512_set1_ps(weights[w * stride + j]);
    for (int v = 0; v < V; ++v) {
      const __m512 vv = _mm512_loadu_ps(value + kLanes * v);
      for (int w = 0; w < QW; ++w) acc[w][v] = _mm512_fmadd_ps(s[w], vv, acc[w][v]);
    }
  }
  for (int w = 0; w < QW; ++w)
    for (int v = 0; v < V; ++v)
      _mm512_storeu_ps(out + w * chunk.head_dim + c0 + kLanes * v, acc[w][v]);
}

template <int V>
void weighted16_rows(int64_t rows, const float* weights, int64_t stride, const DecodeChunk& chunk,
                     int64_t c0, bool prefetch, float* out) {
  switch (rows) {
    case 1:
      weighted16<1, V>(weights, stride, chunk, c0, prefetch, out);
      break;
    case 2:
      weighted16<2, V>(weights, stride, chunk, c0, prefetch, out);
      break;
    case 3:
      weighted16<3, V>(weights, stride, chunk, c0, prefetch, out);
      break;
    default:
      weighted16<4, V>(weights, stride, chunk, c0, prefetch, out);
      break;
  }
}

// row[0, n) (n a multiple of 16, keys from `seen` on masked) := the softmax weights
// exp(row - maximum), zero from `seen` on; returns their sum and sets `maximum`. seen >= 1.
float softmax_weights(float* row, int64_t n, int64_t seen, float& maximum) {
  std::fill(row + seen, row + n, kNegativeInfinity);
  __m512 m = _mm512_set1_ps(kNegativeInfinity);
  for (int64_t j = 0; j < n; j += kLanes) m = _mm512_max_ps(m, _mm512_loadu_ps(row + j));
  maximum = _mm512_reduce_max_ps(m);
  const __m512 shift = _mm512_set1_ps(maximum);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += kLanes) {
    // exp512 clamps, so masked keys would get e^-87: zero them by the mask instead.
    const __mmask16 seen_lanes =
        j + kLanes <= seen ? __mmask16{0xFFFF}
                           : static_cast<__mmask16>((1u << std::max<int64_t>(seen - j, 0)) - 1);
    const __m512 weight =
        _mm512_maskz_mov_ps(seen_lanes, exp512(_mm512_sub_ps(_mm512_loadu_ps(row + j), shift)));
    _mm512_storeu_ps(row + j, weight);
    sum = _mm512_add_ps(sum, weight);
  }
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

void attend_decode_chunk_avx512(const DecodeChunk& chunk, std::vector<float>& scratch,
                                float* maxima, float* sums, float* out) {
  const int64_t d = chunk.head_dim, n = chunk.tokens, width = chunk.width;
  // Rows of scores padded to whole vectors of keys (a tail scored against the last key again,
  // masked below).
  const int64_t stride = (n + kLanes - 1) / kLanes * kLanes;
  scratch.resize(static_cast<size_t>(width * stride));
  float* scores = scratch.data();
  const auto key_row = [&](int64_t j) {
    return chunk.keys + chunk.rows[std::min(j, n - 1)] * chunk.kv_stride;
  };
  for (int64_t j0 = 0; j0 < n; j0 += kLanes) {
    const float* k[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) {
      k[j] = key_row(j0 + j);
      prefetch_row(key_row(j0 + j + kPrefetchKeys), d);
    }
    // Queries four at a time (a group of three repeats its last query and drops its scores).
    for (int64_t w = 0; w < width; w += 4) {
      const int64_t rows = std::min<int64_t>(4, width - w);
      const float* q[4];
      for (int64_t i = 0; i < 4; ++i) q[i] = chunk.queries + std::min(w + i, width - 1) * d;
      float* s = scores + w * stride + j0;
      if (rows == 1) {
        scores16<1>(q, k, d, 1, s, stride);
      } else if (rows == 2) {
        for (int64_t half = 0; half < 2; ++half)
          scores16<2>(q, k + 8 * half, d, 2, s + 8 * half, stride);
      } else {
        for (int64_t quarter = 0; quarter < 4; ++quarter)
          scores16<4>(q, k + 4 * quarter, d, rows, s + 4 * quarter, stride);
      }
    }
  }
  for (int64_t w = 0; w < width; ++w) {
    float* row = scores + w * stride;
    const int64_t seen = std::clamp<int64_t>(chunk.visible[w], 0, n);
    if (seen == 0) {
      std::fill(row, row + stride, 0.0f);
      maxima[w] = kNegativeInfinity;
      sums[w] = 0.0f;
      continue;
    }
    sums[w] = softmax_weights(row, stride, seen, maxima[w]);
  }
  for (int64_t c0 = 0; c0 < d; c0 += kColumnsPerPass) {
    const int64_t vectors = std::min(kColumnsPerPass, d - c0) / kLanes;
    for (int64_t w = 0; w < width; w += kQueriesPerPass) {
      const int64_t rows = std::min(kQueriesPerPass, width - w);
      const float* weights = scores + w * stride;
      float* o = out + w * d;
      const bool prefetch = w == 0;  // later passes find the rows in cache
      switch (vectors) {
        case 1:
          weighted16_rows<1>(rows, weights, stride, chunk, c0, prefetch, o);
          break;
        case 2:
          weighted16_rows<2>(rows, weights, stride, chunk, c0, prefetch, o);
          break;
        case 3:
          weighted16_rows<3>(rows, weights, stride, chunk, c0, prefetch, o);
          break;
        default:
          weighted16_rows<4>(rows, weights, stride, chunk, c0, prefetch, o);
          break;
      }
    }
  }
}

}  // namespace hogwild::cpu
