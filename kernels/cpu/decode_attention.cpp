#include "kernels/cpu/decode_attention.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "kernels/cpu/exp_avx2.h"
#include "kernels/cpu/quant_matmul.h"
#include "kernels/cpu/small_gemm.h"

namespace hogwild::cpu {
namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

#if defined(__x86_64__)
#define HOGWILD_AVX2 __attribute__((target("avx2,fma")))

// Keys (and values) are prefetched this many tokens ahead: the pool rows of a block's pages are
// strided reads (one kv head's columns of each row) that the hardware prefetcher follows poorly.
constexpr int64_t kPrefetchKeys = 16;

// Prefetches the cache lines of floats [p, p + count).
inline void prefetch_row(const float* p, int64_t count) {
  const auto* bytes = reinterpret_cast<const char*>(p);
  for (int64_t at = 0; at < count * 4; at += 64) __builtin_prefetch(bytes + at, 0, 3);
}

// Sums of the eight lanes of four vectors: {sum(a), sum(b), sum(c), sum(e)}.
HOGWILD_AVX2 inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 e) {
  const __m256 ab = _mm256_hadd_ps(a, b), ce = _mm256_hadd_ps(c, e);
  const __m256 all = _mm256_hadd_ps(ab, ce);
  return _mm_add_ps(_mm256_castps256_ps128(all), _mm256_extractf128_ps(all, 1));
}

// scores[w * stride + j] = q_w · k_j for W queries starting at q (head_dim apart) and the four
// keys at k[0..3].
template <int W>
HOGWILD_AVX2 void scores4(const float* q, int64_t d, const float* const k[4], float* scores,
                          int64_t stride) {
  __m256 acc[W][4];
  for (int w = 0; w < W; ++w)
    for (int j = 0; j < 4; ++j) acc[w][j] = _mm256_setzero_ps();
  for (int64_t c = 0; c < d; c += 8) {
    const __m256 k0 = _mm256_loadu_ps(k[0] + c), k1 = _mm256_loadu_ps(k[1] + c),
                 k2 = _mm256_loadu_ps(k[2] + c), k3 = _mm256_loadu_ps(k[3] + c);
    for (int w = 0; w < W; ++w) {
      const __m256 qv = _mm256_loadu_ps(q + w * d + c);
      acc[w][0] = _mm256_fmadd_ps(qv, k0, acc[w][0]);
      acc[w][1] = _mm256_fmadd_ps(qv, k1, acc[w][1]);
      acc[w][2] = _mm256_fmadd_ps(qv, k2, acc[w][2]);
      acc[w][3] = _mm256_fmadd_ps(qv, k3, acc[w][3]);
    }
  }
  for (int w = 0; w < W; ++w)
    _mm_storeu_ps(scores + w * stride, sum4(acc[w][0], acc[w][1], acc[w][2], acc[w][3]));
}

// out[w * d + c0 .. + 8V] = sum_j weights[w * stride + j] * v_j[c0 ..] for W queries.
template <int W, int V>
HOGWILD_AVX2 void weighted4(const float* weights, int64_t stride, const DecodeChunk& chunk,
                            int64_t c0, float* out) {
  __m256 acc[W][V];
  for (int w = 0; w < W; ++w)
    for (int64_t v = 0; v < V; ++v) acc[w][v] = _mm256_setzero_ps();
  for (int64_t j = 0; j < chunk.tokens; ++j) {
    const float* value = chunk.values + chunk.rows[j] * chunk.kv_stride + c0;
    prefetch_row(chunk.values +
                     chunk.rows[std::min(j + kPrefetchKeys, chunk.tokens - 1)] * chunk.kv_stride +
                     c0,
                 int64_t{8} * V);
    __m256 s[W];  // with the W x V accumulators: 16 registers at W = 3, V = 4
    for (int w = 0; w < W; ++w) s[w] = _mm256_broadcast_ss(weights + w * stride + j);
    for (int64_t v = 0; v < V; ++v) {
      const __m256 vv = _mm256_loadu_ps(value + 8 * v);
      for (int w = 0; w < W; ++w) acc[w][v] = _mm256_fmadd_ps(s[w], vv, acc[w][v]);
    }
  }
  for (int w = 0; w < W; ++w)
    for (int64_t v = 0; v < V; ++v)
      _mm256_storeu_ps(out + w * chunk.head_dim + c0 + 8 * v, acc[w][v]);
}

template <int W>
HOGWILD_AVX2 void weighted(const float* weights, int64_t stride, const DecodeChunk& chunk,
                           float* out) {
  const int64_t d = chunk.head_dim;
  int64_t c0 = 0;
  for (; c0 + 32 <= d; c0 += 32) weighted4<W, 4>(weights, stride, chunk, c0, out);
  switch ((d - c0) / 8) {
    case 3:
      weighted4<W, 3>(weights, stride, chunk, c0, out);
      break;
    case 2:
      weighted4<W, 2>(weights, stride, chunk, c0, out);
      break;
    case 1:
      weighted4<W, 1>(weights, stride, chunk, c0, out);
      break;
    default:
      break;
  }
}

// row[0, n) (n a multiple of 8, keys from `seen` on masked) := the softmax weights
// exp(row - maximum), zero from `seen` on; returns their sum (lanes summed pairwise, as the tiled
// kernel does) and sets `maximum`. seen >= 1.
HOGWILD_AVX2 float softmax_weights(float* row, int64_t n, int64_t seen, float& maximum) {
  std::fill(row + seen, row + n, kNegativeInfinity);
  __m256 m = _mm256_set1_ps(kNegativeInfinity);
  for (int64_t j = 0; j < n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + j));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  maximum = kNegativeInfinity;
  for (float lane : lanes) maximum = std::max(maximum, lane);
  const __m256 shift = _mm256_set1_ps(maximum);
  for (int64_t j = 0; j < n; j += 8)
    _mm256_storeu_ps(row + j, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + j), shift)));
  std::fill(row + seen, row + n, 0.0f);  // exp_avx2 clamps, so masked keys would get e^-87
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j += 8) sum = _mm256_add_ps(sum, _mm256_loadu_ps(row + j));
  _mm256_store_ps(lanes, sum);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

HOGWILD_AVX2 void attend_avx2(const DecodeChunk& chunk, std::vector<float>& scratch, float* maxima,
                              float* sums, float* out) {
  const int64_t d = chunk.head_dim, n = chunk.tokens, width = chunk.width;
  // Rows of scores padded to a multiple of 8 keys (computed four at a time, a tail against the
  // last key again; masked below).
  const int64_t stride = (n + 7) / 8 * 8;
  scratch.resize(static_cast<size_t>(width * stride));
  float* scores = scratch.data();
  for (int64_t j0 = 0; j0 < n; j0 += 4) {
    const float* k[4];
    for (int64_t j = 0; j < 4; ++j) {
      k[j] = chunk.keys + chunk.rows[std::min(j0 + j, n - 1)] * chunk.kv_stride;
      prefetch_row(
          chunk.keys + chunk.rows[std::min(j0 + j + kPrefetchKeys, n - 1)] * chunk.kv_stride, d);
    }
    int64_t w = 0;
    for (; w + 3 <= width; w += 3)
      scores4<3>(chunk.queries + w * d, d, k, scores + w * stride + j0, stride);
    if (width - w == 2) scores4<2>(chunk.queries + w * d, d, k, scores + w * stride + j0, stride);
    if (width - w == 1) scores4<1>(chunk.queries + w * d, d, k, scores + w * stride + j0, stride);
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
  int64_t w = 0;
  for (; w + 3 <= width; w += 3) weighted<3>(scores + w * stride, stride, chunk, out + w * d);
  if (width - w == 2) weighted<2>(scores + w * stride, stride, chunk, out + w * d);
  if (width - w == 1) weighted<1>(scores + w * stride, stride, chunk, out + w * d);
}
#endif

}  // namespace

bool decode_isa_available(DecodeIsa isa, int64_t head_dim) {
  if (head_dim <= 0) return false;
  switch (isa) {
    case DecodeIsa::kAvx2:
#if defined(__x86_64__)
      return head_dim % 8 == 0 && best_simd_level() == SimdLevel::kAvx2;
#else
      return false;
#endif
    case DecodeIsa::kAvx512:
#if HOGWILD_DECODE_AVX512
      return head_dim % 16 == 0 && quant_isa() >= QuantIsa::Avx512;
#else
      return false;
#endif
  }
  return false;
}

bool decode_chunk_supported(int64_t head_dim) {
  return decode_isa_available(DecodeIsa::kAvx2, head_dim) ||
         decode_isa_available(DecodeIsa::kAvx512, head_dim);
}

void attend_decode_chunk(const DecodeChunk& chunk, std::vector<float>& scores, float* maxima,
                         float* sums, float* out) {
  const DecodeIsa isa = decode_isa_available(DecodeIsa::kAvx512, chunk.head_dim)
                            ? DecodeIsa::kAvx512
                            : DecodeIsa::kAvx2;
  attend_decode_chunk(chunk, scores, maxima, sums, out, isa);
}

void attend_decode_chunk(const DecodeChunk& chunk, std::vector<float>& scores, float* maxima,
                         float* sums, float* out, DecodeIsa isa) {
  HOGWILD_ASSERT(decode_isa_available(isa, chunk.head_dim) && chunk.tokens > 0);
  if (isa == DecodeIsa::kAvx512) {
    attend_decode_chunk_avx512(chunk, scores, maxima, sums, out);
    return;
  }
#if defined(__x86_64__)
  attend_avx2(chunk, scores, maxima, sums, out);
#else
  (void)scores, (void)maxima, (void)sums, (void)out;
#endif
}

#if !HOGWILD_DECODE_AVX512
void attend_decode_chunk_avx512(const DecodeChunk&, std::vector<float>&, float*, float*, float*) {
  fail("attend_decode_chunk_avx512: this build has no AVX-512 decode kernel");
}
#endif

}  // namespace hogwild::cpu
