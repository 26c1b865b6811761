#include "engine/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "common/error.h"
#include "common/saturating.h"
#include "engine/cache_merge.h"
#include "kernels/device_memory.h"

namespace hogwild {

size_t MemoryPlan::total() const {
  return saturating_sum({weights, cache, workspace, attention, backend, graphs});
}

MemoryPlan plan_memory(const WeightSource& source, const ModelConfig& shard,
                       const CacheOptions& cache, const TransformerOptions& options) {
  const ModelConfig& model = source.config();
  const size_t head_dim = saturating_count(model.head_dim);
  const size_t kv = saturating_product({saturating_count(shard.kv_heads), head_dim});
  MemoryPlan plan;
  // The weights as the Transformer keeps them (native formats, fp32 or bf16), tensor by tensor.
  plan.weights = weight_bytes(source, shard, options);
  plan.cache = saturating_product({2, saturating_count(model.layers), saturating_count(cache.pages),
                                   saturating_count(cache.page_size), kv, dtype_size(cache.dtype)});
  for (const WorkspaceTensor& t : workspace_tensors(model, shard, options))
    plan.workspace = saturating_sum({plan.workspace, t.bytes()});
  plan.workspace = saturating_sum(
      {plan.workspace, CacheMerger::scratch_bytes(cache.max_pages_per_block * cache.page_size,
                                                  static_cast<int64_t>(kv), cache.dtype)});
  return plan;
}

void add_cuda_buffers(MemoryPlan& plan, const ModelConfig& model, const ModelConfig& shard,
                      const CacheOptions& cache, const TransformerOptions& options) {
  // BlockAttention::run for the largest call (every row of the batch, every view entry), as
  // workspace_layout lays it out, each array rounded up to 256 bytes; the constants are the
  // kernel's (kMaxSplits 64, kPartialBudget 64 MiB, 16 or 32 query slots per work item).
  const int64_t rows = options.max_batch_tokens;
  const int64_t capacity = rows * options.max_view_entries, blocks = cache.max_blocks;
  const int64_t heads = shard.heads, kv_heads = shard.kv_heads, d = model.head_dim;
  const int64_t group = heads / std::max<int64_t>(1, kv_heads);
  const int64_t slots = d >= 256 ? 16 : 32;
  const int64_t bytes_per_split = std::max<int64_t>(1, capacity * heads * (d + 2) * 4);
  const int64_t splits = std::clamp<int64_t>((int64_t{64} << 20) / bytes_per_split, 1, 64);
  const int64_t items =
      splits * kv_heads * ((capacity * group + slots - 1) / slots + std::min(blocks, capacity));
  auto aligned = [](int64_t bytes) { return static_cast<size_t>((bytes + 255) / 256 * 256); };
  const int64_t partials = capacity * splits * heads;
  plan.attention =
      saturating_sum({2 * aligned(4), 6 * aligned(blocks * 4), 3 * aligned(capacity * 4),
                      aligned(items * 16), aligned(partials * 8), aligned(partials * d * 4)});
  // bf16 weights: cublasGemmEx multiplies bf16 by bf16, so the backend rounds each fp32 input
  // ([rows, hidden | heads*head_dim | ffn units]) into a scratch of 2 bytes an element.
  const int64_t widest_input =
      std::max({model.hidden, shard.heads * model.head_dim, shard.ffn_hidden});
  const size_t matmul_scratch =
      options.dtype == DType::BF16 ? static_cast<size_t>(rows * widest_input) * 2 : 0;
  // The cuBLAS workspace is allocated with the backend, so a backend made before the check has
  // already taken it from the free memory: counting it again errs on the safe side.
  plan.backend = saturating_sum({kCudaCublasWorkspaceBytes, matmul_scratch});
  plan.graphs = 0;  // CUDA graphs (issue 13, item 3): their buffers go here once sized.
}

MemoryPlan plan_host_side(const WeightSource& source, const ModelConfig& shard,
                          const TransformerOptions& options) {
  const ModelConfig& c = source.config();
  const auto f32 = sizeof(float);
  MemoryPlan plan;
  // The largest part loaded as fp32 at once (the embedding or lm_head, or one projection), and
  // the bf16 copy the CUDA backend's upload_f32 rounds it into.
  const int64_t largest = std::max(
      {c.vocab * c.hidden, shard.ffn_hidden * c.hidden, shard.heads * c.head_dim * c.hidden});
  const size_t per_value = f32 + (options.dtype == DType::BF16 ? 2 : 0);
  plan.weights = saturating_product({saturating_count(largest), per_value});
  // forward()'s host logits (every row of a batch at most) and reduce_across_shards' staging.
  plan.workspace = saturating_product(
      {saturating_count(options.max_batch_tokens), saturating_count(c.vocab + c.hidden), f32});
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
  std::string device_parts;
  if (plan.attention > 0) device_parts += ", attention buffers " + format_bytes(plan.attention);
  if (plan.backend > 0) device_parts += ", cuBLAS and matmul scratch " + format_bytes(plan.backend);
  if (plan.graphs > 0) device_parts += ", CUDA graphs " + format_bytes(plan.graphs);
  fail("not enough ", where, ": the run needs ", format_bytes(plan.total()), " (weights ",
       format_bytes(plan.weights), ", KV cache ", format_bytes(plan.cache), ", workspace ",
       format_bytes(plan.workspace), device_parts, ") but ", format_bytes(available),
       " is available; lower batch_problems or max_tokens_per_problem, use dtype bf16, or split "
       "the model (parallel.tensor)");
}

void check_run_memory(const WeightSource& source, const ModelConfig& shard,
                      const CacheOptions& cache, const TransformerOptions& options,
                      const Backend& backend, int device, bool weights_loaded) {
  MemoryPlan plan = plan_memory(source, shard, cache, options);
  if (weights_loaded) plan.weights = 0;
  if (backend.host_memory()) {
    check_memory_plan(plan, available_host_memory(), "host memory");
    return;
  }
  add_cuda_buffers(plan, source.config(), shard, cache, options);
  check_memory_plan(plan, device_free_memory(backend.name(), device),
                    cat("memory on GPU ", device));
  MemoryPlan host = plan_host_side(source, shard, options);
  if (weights_loaded) host.weights = 0;
  check_memory_plan(host, available_host_memory(), "host memory");
}

}  // namespace hogwild
