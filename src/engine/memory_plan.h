// Memory sized before any work (docs/design.md §7): weights, KV cache pool and workspace, from the
// model and the run's settings. A configuration that cannot fit is a clear error naming the
// numbers, raised after the model's header and tokenizer are read but before any weight is loaded,
// instead of an allocation failure halfway through a run. Today the runner checks host memory
// only, also with `backend: cuda`, and the CUDA attention kernel's own plan buffers are not
// counted (the GPU issue adds device memory planning).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/kv_cache.h"
#include "engine/transformer.h"
#include "model/model.h"

namespace hogwild {

struct MemoryPlan {
  size_t weights = 0;    // this rank's shard, in the formats it is kept in
  size_t cache = 0;      // K and V pools of every layer
  size_t workspace = 0;  // activations of one forward and logits
  // Saturates (as every part does) instead of wrapping round.
  size_t total() const;
};

// `bytes_per_value`: of the KV cache's elements.
MemoryPlan plan_memory(const WeightSource& source, const ModelConfig& shard,
                       const CacheOptions& cache, const TransformerOptions& options,
                       size_t bytes_per_value = sizeof(float));

// Host memory available to this process (MemAvailable of /proc/meminfo; 0 if unknown).
size_t available_host_memory();

// Throws hogwild::Error with the plan's numbers when it needs more than `available` bytes
// (`where`: "host memory", "GPU 0", …). An `available` of 0 means unknown: no check.
void check_memory_plan(const MemoryPlan& plan, size_t available, const std::string& where);

std::string format_bytes(size_t bytes);

}  // namespace hogwild
