#include "engine/memory_plan.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "engine/cache_merge.h"

namespace hogwild {

MemoryPlan plan_memory(const ModelConfig& model, const ModelConfig& shard,
                       const CacheOptions& cache, const TransformerOptions& options,
                       size_t bytes_per_value) {
  const auto values = [&](int64_t count) { return static_cast<size_t>(count) * bytes_per_value; };
  const int64_t q = shard.heads * model.head_dim, kv = shard.kv_heads * model.head_dim;
  // Per layer: two norms, fused QKV (+ bias), q/k norms, output, fused gate/up, down.
  const int64_t per_layer = 2 * model.hidden + model.hidden * (q + 2 * kv) +
                            (model.qkv_bias ? q + 2 * kv : 0) +
                            (model.qk_norm ? 2 * model.head_dim : 0) + q * model.hidden +
                            3 * shard.ffn_hidden * model.hidden;
  MemoryPlan plan;
  plan.weights =
      values(model.layers * per_layer +
             model.vocab * model.hidden * (model.tied_embeddings ? 1 : 2) + model.hidden);
  plan.cache = values(2 * model.layers * cache.pages * cache.page_size * kv);
  for (const WorkspaceTensor& t : workspace_tensors(model, shard, options))
    plan.workspace += t.bytes();
  plan.workspace +=
      CacheMerger::scratch_bytes(cache.max_pages_per_block * cache.page_size, kv, DType::F32);
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
