// e^x for x <= 0 on eight lanes (scores minus their maximum), shared by the attention kernels so
// that the tiled (prefill) and the decode kernels weight keys with the same exponential. Internal
// to kernels/cpu; callers compile it with target("avx2,fma") (no global -mavx2).
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

namespace hogwild::cpu {

// e^x = 2^k · e^r with k = round(x / ln 2) and |r| <= ln2 / 2, e^r by its Taylor series to degree
// 7 (truncation < 6e-9 relative, below fp32's rounding). x below -87 is clamped there: e^-87 ~
// 1.6e-38 is nothing beside the row's maximum term (1), and 2^k stays a normal float.
__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 in two parts: k * high is exact for |k| < 2^11, so r keeps its low bits.
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // 2^k through the exponent bits (k in [-126, 0] here).
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

}  // namespace hogwild::cpu
#endif
