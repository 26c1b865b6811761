#include "kernels/cpu/small_gemm.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#define HOGWILD_X86 1
#endif

namespace hogwild::cpu {
namespace {

// Weight rows per chunk of the pool: enough that a chunk is tens of kilobytes of weights.
constexpr int64_t kRowsPerChunkAtLeast = 16;

void rows_scalar(const GemmArgs& a, int64_t first, int64_t last) {
  for (int64_t r = first; r < last; ++r) {
    const float* w = a.w + r * a.w_stride;
    for (int64_t i = 0; i < a.n; ++i) {
      const float* x = a.x + i * a.x_stride;
      // Four partial sums: independent chains, as the vector path has lanes.
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t c = 0;
      for (; c + 4 <= a.k; c += 4) {
        s0 += x[c] * w[c];
        s1 += x[c + 1] * w[c + 1];
        s2 += x[c + 2] * w[c + 2];
        s3 += x[c + 3] * w[c + 3];
      }
      for (; c < a.k; ++c) s0 += x[c] * w[c];
      const float sum = (s0 + s1) + (s2 + s3);
      a.out[i * a.out_stride + r] = a.bias != nullptr ? sum + a.bias[r] : sum;
    }
  }
}

#ifdef HOGWILD_X86
__attribute__((target("avx2,fma"))) inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// R weight rows times C rows of x: R*C vector accumulators, each weight vector loaded once and
// used for the C rows of x.
template <int R, int C>
__attribute__((target("avx2,fma"))) void tile_avx2(const GemmArgs& a, int64_t r, int64_t i) {
  __m256 acc[R][C];
  for (int p = 0; p < R; ++p)
    for (int q = 0; q < C; ++q) acc[p][q] = _mm256_setzero_ps();
  const float* w[R];
  const float* x[C];
  for (int p = 0; p < R; ++p) w[p] = a.w + (r + p) * a.w_stride;
  for (int q = 0; q < C; ++q) x[q] = a.x + (i + q) * a.x_stride;
  int64_t c = 0;
  for (; c + 8 <= a.k; c += 8) {
    __m256 wv[R];
    for (int p = 0; p < R; ++p) wv[p] = _mm256_loadu_ps(w[p] + c);
    for (int q = 0; q < C; ++q) {
      const __m256 xv = _mm256_loadu_ps(x[q] + c);
      for (int p = 0; p < R; ++p) acc[p][q] = _mm256_fmadd_ps(wv[p], xv, acc[p][q]);
    }
  }
  for (int p = 0; p < R; ++p)
    for (int q = 0; q < C; ++q) {
      float sum = horizontal_sum(acc[p][q]);
      for (int64_t t = c; t < a.k; ++t) sum += w[p][t] * x[q][t];
      a.out[(i + q) * a.out_stride + r + p] = a.bias != nullptr ? sum + a.bias[r + p] : sum;
    }
}

template <int R>
__attribute__((target("avx2,fma"))) void row_group_avx2(const GemmArgs& a, int64_t r) {
  int64_t i = 0;
  for (; i + 2 <= a.n; i += 2) tile_avx2<R, 2>(a, r, i);
  if (i < a.n) tile_avx2<R, 1>(a, r, i);
}

__attribute__((target("avx2,fma"))) void rows_avx2(const GemmArgs& a, int64_t first, int64_t last) {
  int64_t r = first;
  for (; r + 4 <= last; r += 4) row_group_avx2<4>(a, r);
  for (; r < last; ++r) row_group_avx2<1>(a, r);
}
#endif

}  // namespace

SimdLevel best_simd_level() {
#ifdef HOGWILD_X86
  static const SimdLevel level = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                                     ? SimdLevel::kAvx2
                                     : SimdLevel::kScalar;
  return level;
#else
  return SimdLevel::kScalar;
#endif
}

void small_gemm_rows(const GemmArgs& args, int64_t first, int64_t last, SimdLevel level) {
#ifdef HOGWILD_X86
  if (level == SimdLevel::kAvx2) {
    rows_avx2(args, first, last);
    return;
  }
#endif
  (void)level;
  rows_scalar(args, first, last);
}

void small_gemm(const GemmArgs& args, ThreadPool& pool, SimdLevel level) {
  if (args.n == 0 || args.m == 0) return;
  // Chunks of whole groups of 4 rows (the vector tile), so that only the last one has a tail.
  pool.parallel_for((args.m + 3) / 4, kRowsPerChunkAtLeast / 4,
                    [&](int64_t begin, int64_t end, int) {
                      small_gemm_rows(args, begin * 4, std::min(args.m, end * 4), level);
                    });
}

}  // namespace hogwild::cpu
