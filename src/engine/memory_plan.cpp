#include "engine/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>

#include "common/error.h"
#include "engine/cache_merge.h"

namespace hogwild {

namespace {

// Sizes from a config and a model file: a product or sum too large for size_t saturates, so an
// absurd size fails the memory check instead of wrapping round to a small one.
constexpr size_t kSaturated = std::numeric_limits<size_t>::max();

size_t count(int64_t value) { return value < 0 ? kSaturated : static_cast<size_t>(value); }

size_t product(std::initializer_list<size_t> factors) {
  size_t result = 1;
  for (const size_t factor : factors)
    if (__builtin_mul_overflow(result, factor, &result)) return kSaturated;
  return result;
}

size_t sum(std::initializer_list<size_t> terms) {
  size_t result = 0;
  for (const size_t term : terms)
    if (__builtin_add_overflow(result, term, &result)) return kSaturated;
  return result;
}

}  // namespace

size_t MemoryPlan::total() const { return sum({weights, cache, workspace}); }

MemoryPlan plan_memory(const WeightSource& source, const ModelConfig& shard,
                       const CacheOptions& cache, const TransformerOptions& options,
                       size_t bytes_per_value) {
  const ModelConfig& model = source.config();
  const size_t head_dim = count(model.head_dim);
  const size_t kv = product({count(shard.kv_heads), head_dim});
  MemoryPlan plan;
  // The weights as the Transformer keeps them (native formats or fp32), tensor by tensor.
  plan.weights = weight_bytes(source, shard, options);
  plan.cache = product(
      {2, count(model.layers), count(cache.pages), count(cache.page_size), kv, bytes_per_value});
  for (const WorkspaceTensor& t : workspace_tensors(model, shard, options))
    plan.workspace = sum({plan.workspace, t.bytes()});
  plan.workspace =
      sum({plan.workspace, CacheMerger::scratch_bytes(cache.max_pages_per_block * cache.page_size,
                                                      static_cast<int64_t>(kv), DType::F32)});
  return plan;
}

size_t available_host_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1)
      return static_cast<size_t>(kib) * 1024;
  }
  return 0;
}

std::string format_bytes(size_t bytes) {
  char text[32];
  if (bytes >= (size_t{1} << 30)) {
    std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  } else {
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  }
  return text;
}

void check_memory_plan(const MemoryPlan& plan, size_t available, const std::string& where) {
  if (available == 0 || plan.total() <= available) return;
  fail("not enough ", where, ": the run needs ", format_bytes(plan.total()), " (weights ",
       format_bytes(plan.weights), ", KV cache ", format_bytes(plan.cache), ", workspace ",
       format_bytes(plan.workspace), ") but ", format_bytes(available),
       " is available; lower batch_problems or max_tokens_per_problem, or split the model "
       "(parallel.tensor)");
}

}  // namespace hogwild
