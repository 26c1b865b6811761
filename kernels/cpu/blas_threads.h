// The CPU backend's large GEMMs (prefill matmuls, tiled attention): OpenBLAS where the build has
// it (HOGWILD_CPU_BLAS, the HOGWILD_BLAS option), run inline on the pool thread that calls it;
// else a plain kernel of our own, so that a machine without OpenBLAS (the GPU image that
// benchmarks/device_check.sh builds on) still has a whole CPU backend to test against. Both sum
// in fp32, in different orders.
#pragma once

#include <cstdint>

#ifdef HOGWILD_CPU_BLAS
#include <cblas.h>
#include <omp.h>
#endif

namespace hogwild::cpu {

// OpenBLAS's OpenMP build sizes its own threads from omp_get_max_threads() of the calling thread,
// so each of our threads sets its own to 1 once before its first BLAS call: OpenBLAS then runs
// inline, inside our pool, and no second set of threads competes for the cores.
inline void make_blas_single_threaded() {
#ifdef HOGWILD_CPU_BLAS
  thread_local bool done = false;
  if (done) return;
  omp_set_num_threads(1);
  openblas_set_num_threads(1);
  done = true;
#endif
}

// Row-major c[m, n] = alpha * a[m, k] · op(b) + beta * c, op(b) = bᵀ with b [n, k] when
// `transpose_b`, else b [k, n]: cblas_sgemm(CblasRowMajor, CblasNoTrans, ...).
inline void sgemm(bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifdef HOGWILD_CPU_BLAS
  cblas_sgemm(CblasRowMajor, CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
#else
  for (int64_t i = 0; i < m; ++i) {
    const float* a_row = a + i * lda;
    float* c_row = c + i * ldc;
    // beta == 0 overwrites (as BLAS does: NaN in c must not survive)
    for (int64_t j = 0; j < n; ++j) c_row[j] = beta == 0.0f ? 0.0f : beta * c_row[j];
    if (transpose_b) {
      for (int64_t j = 0; j < n; ++j) {
        const float* b_row = b + j * ldb;
        float sum = 0.0f;
        for (int64_t p = 0; p < k; ++p) sum += a_row[p] * b_row[p];
        c_row[j] += alpha * sum;
      }
    } else {
      // i-p-j order: rows of b stream contiguously into the row of c
      for (int64_t p = 0; p < k; ++p) {
        const float scale = alpha * a_row[p];
        const float* b_row = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) c_row[j] += scale * b_row[j];
      }
    }
  }
#endif
}

}  // namespace hogwild::cpu
