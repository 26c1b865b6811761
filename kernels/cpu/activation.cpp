#include "kernels/cpu/activation.h"

#include <cmath>

#include "kernels/cpu/exp_avx2.h"

namespace hogwild::cpu {
namespace {

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) inline __m256 swiglu8(__m256 g, __m256 u) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = exp_avx2(_mm256_or_ps(g, sign));  // e^-|g| in (0, 1]
  const __m256 negative = _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 numerator = _mm256_blendv_ps(g, _mm256_mul_ps(g, t), negative);
  return _mm256_mul_ps(_mm256_div_ps(numerator, _mm256_add_ps(_mm256_set1_ps(1.0f), t)), u);
}

__attribute__((target("avx2,fma"))) void swiglu_avx2(const float* gate, const float* up, float* out,
                                                     int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(out + j, swiglu8(_mm256_loadu_ps(gate + j), _mm256_loadu_ps(up + j)));
  if (j == n) return;
  float g[8] = {}, u[8] = {}, o[8];
  for (int64_t i = 0; i < n - j; ++i) {
    g[i] = gate[j + i];
    u[i] = up[j + i];
  }
  _mm256_storeu_ps(o, swiglu8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
  for (int64_t i = 0; i < n - j; ++i) out[j + i] = o[i];
}
#endif

}  // namespace

void swiglu_row(const float* gate, const float* up, float* out, int64_t n, SimdLevel level) {
#if defined(__x86_64__)
  if (level == SimdLevel::kAvx2) {
    swiglu_avx2(gate, up, out, n);
    return;
  }
#else
  (void)level;
#endif
  for (int64_t j = 0; j < n; ++j) out[j] = gate[j] / (1.0f + std::exp(-gate[j])) * up[j];
}

}  // namespace hogwild::cpu
