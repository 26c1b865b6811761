// Applies a history merge's plan (cache/kv_cache.h) to the K/V pools with the backend: the only
// place where a merge computes. RoPE details (frequencies, head size) stay in the engine.
#pragma once

#include <cstdint>

#include "cache/kv_cache.h"
#include "kernels/backend.h"

namespace hogwild {

class CacheMerger {
 public:
  // `inv_freq`: the model's RoPE frequencies [1, head_dim/2] on `backend`. Scratch is sized for
  // the cache's longest block, so applying a plan allocates nothing.
  CacheMerger(Backend& backend, KvCache& cache, const Tensor& inv_freq, int64_t head_dim);
  ~CacheMerger();
  CacheMerger(const CacheMerger&) = delete;
  CacheMerger& operator=(const CacheMerger&) = delete;

  // Scratch bytes for a cache whose longest block holds `rows` tokens of `width` values.
  static size_t scratch_bytes(int64_t rows, int64_t width, DType dtype) {
    return static_cast<size_t>(rows) *
           (3 * dtype_size(DType::I32) + static_cast<size_t>(width) * dtype_size(dtype));
  }
  size_t bytes() const { return scratch_bytes(from_.rows, scratch_.cols, scratch_.dtype); }

  // Every layer: keys of rows plan.from rotated by plan.rotation into rows plan.to; values copied
  // when the rows move.
  void apply(const MergePlan& plan);

 private:
  Backend& backend_;
  KvCache& cache_;
  Tensor inv_freq_;
  int64_t head_dim_;
  Tensor from_, to_, rotation_, scratch_;
};

}  // namespace hogwild
