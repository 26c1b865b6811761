// out = x · wᵀ (+ bias) for few rows of x (the decode case): the weight rows are split across the
// pool, and each weight row is read from memory once for all the rows of x, so a step costs one
// pass over the weights. AVX2+FMA when the CPU has them (chosen at run time: the build does not
// assume them), plain C++ otherwise. Sums are fp32, in a different order than BLAS.
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace hogwild::cpu {

// Up to this many rows of x the matmul takes small_gemm; above it, BLAS on slices of the weights.
constexpr int64_t kSmallGemmRows = 16;

struct GemmArgs {
  const float* x;  // [n, k], row stride x_stride
  int64_t x_stride;
  int64_t n;
  const float* w;  // [m, k], row stride w_stride
  int64_t w_stride;
  int64_t m;
  int64_t k;
  const float* bias;  // [m] or nullptr
  float* out;         // [n, m], row stride out_stride
  int64_t out_stride;
};

enum class SimdLevel { kScalar, kAvx2 };

// The best level this CPU runs (checked once).
SimdLevel best_simd_level();

// Rows [first, last) of w into out, on the calling thread.
void small_gemm_rows(const GemmArgs& args, int64_t first, int64_t last, SimdLevel level);

// The whole product, weight rows split across the pool.
void small_gemm(const GemmArgs& args, ThreadPool& pool, SimdLevel level = best_simd_level());

}  // namespace hogwild::cpu
