#include "engine/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "common/error.h"
#include "common/saturating.h"
#include "engine/cache_merge.h"

namespace hogwild {

size_t MemoryPlan::total() const { return saturating_sum({weights, cache, workspace}); }

MemoryPlan plan_memory(const WeightSource& source, const ModelConfig& shard,
                       const CacheOptions& cache, const TransformerOptions& options,
                       size_t bytes_per_value) {
  const ModelConfig& model = source.config();
  const size_t head_dim = saturating_count(model.head_dim);
  const size_t kv = saturating_product({saturating_count(shard.kv_heads), head_dim});
  MemoryPlan plan;
  // The weights as the Transformer keeps them (native formats or fp32), tensor by tensor.
  plan.weights = weight_bytes(source, shard, options);
  plan.cache = saturating_product({2, saturating_count(model.layers), saturating_count(cache.pages),
                                   saturating_count(cache.page_size), kv, bytes_per_value});
  for (const WorkspaceTensor& t : workspace_tensors(model, shard, options))
    plan.workspace = saturating_sum({plan.workspace, t.bytes()});
  plan.workspace = saturating_sum(
      {plan.workspace, CacheMerger::scratch_bytes(cache.max_pages_per_block * cache.page_size,
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
