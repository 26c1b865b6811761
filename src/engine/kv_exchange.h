// The seam between the forward pass and distributed worker groups (docs/design.md §6).
#pragma once

#include <cstdint>

#include "cache/kv_cache.h"
#include "kernels/backend.h"

namespace hogwild {

// In every layer, once this rank's new keys (rotated) and values are in the cache, the exchange
// brings the other groups' new K/V of the same step into the cache before any attention, so
// every worker sees every token at once.
class KvExchange {
 public:
  virtual ~KvExchange() = default;
  virtual void exchange(int64_t layer, const Tensor& new_keys, const Tensor& new_values,
                        KvCache& cache) = 0;
};

}  // namespace hogwild
