// The seam between the forward pass and distributed worker groups (docs/design.md §6).
#pragma once

#include <cstdint>

#include "cache/kv_cache.h"
#include "kernels/backend.h"

namespace hogwild {

// In every layer, once this rank's new keys (rotated) and values are in the cache, the exchange
// brings the other groups' new K/V of the same step into the cache before any attention, so
// every worker sees every token at once. It only queues work on the backend (device collectives
// are stream-ordered, comm/communicator.h) and never makes the host wait: the caller waits where
// it reads the step's results.
class KvExchange {
 public:
  virtual ~KvExchange() = default;
  virtual void exchange(int64_t layer, const Tensor& new_keys, const Tensor& new_values,
                        KvCache& cache) = 0;
};

}  // namespace hogwild
