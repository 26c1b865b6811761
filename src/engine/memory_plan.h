// Memory sized before any work (docs/design.md §7): weights, KV cache pool and workspace, from the
// model and the run's settings. A configuration that cannot fit is a clear error naming the
// numbers, raised after the model's header and tokenizer are read but before any weight is loaded,
// instead of an allocation failure halfway through a run. A host backend's plan is checked against
// host memory; a CUDA one against the device's free memory (with the CUDA backend's own buffers
// added), and what stays on the host against host memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cache/kv_cache.h"
#include "engine/transformer.h"
#include "model/model.h"

namespace hogwild {

struct MemoryPlan {
  size_t weights = 0;    // this rank's shard, in the formats (and dtype) it is kept in
  size_t cache = 0;      // K and V pools of every layer, in CacheOptions::dtype
  size_t workspace = 0;  // activations of one forward, logits, the history merges' scratch
  // The CUDA backend's own buffers (add_cuda_buffers; 0 on the CPU):
  size_t attention = 0;  // the attention kernel's plan and partials, for the largest call
  size_t backend = 0;    // cuBLAS workspace and the bf16 matmul's input scratch
  // CUDA graph buffers (captured steps, their fixed input buffers): a slot for the graphs work,
  // 0 until it sizes them.
  size_t graphs = 0;
  // Saturates (as every part does) instead of wrapping round.
  size_t total() const;
};

// The tensors a Transformer with `options` and a KvCache with `cache` allocate on the backend
// (K/V elements of cache.dtype), the same on every backend.
MemoryPlan plan_memory(const WeightSource& source, const ModelConfig& shard,
                       const CacheOptions& cache, const TransformerOptions& options);

// Adds the CUDA backend's buffers beyond the tensors: an upper bound of BlockAttention's
// workspace (kernels/cuda/block_attention.cu, workspace_layout) for the workspace's largest call,
// the cuBLAS workspace and the scratch that rounds matmul inputs to bf16.
void add_cuda_buffers(MemoryPlan& plan, const ModelConfig& model, const ModelConfig& shard,
                      const CacheOptions& cache, const TransformerOptions& options);

// What a run on a device backend keeps in host memory: while loading, one matrix part in fp32
// and its bf16 rounding (the largest; counted as weights), and the logits' host copy and the
// collectives' staging (workspace). The model file is memory-mapped: not counted. Not counted
// either: the worker exchange's staging of a distributed run (hogwild/worker_exchange.h).
MemoryPlan plan_host_side(const WeightSource& source, const ModelConfig& shard,
                          const TransformerOptions& options);

// Host memory available to this process (MemAvailable of /proc/meminfo; 0 if unknown).
size_t available_host_memory();

// Throws hogwild::Error with the plan's numbers when it needs more than `available` bytes
// (`where`: "host memory", "memory on GPU 0", …). An `available` of 0 means unknown: no check.
void check_memory_plan(const MemoryPlan& plan, size_t available, const std::string& where);

// The whole check of a run about to load (`hogwild run`, `hogwild generate`): on a host backend
// the plan against host memory; on CUDA device `device` the plan with add_cuda_buffers against
// the device's free memory, then plan_host_side against host memory. `weights_loaded`: a sweep's
// next run reuses weights already on the backend (the free memory excludes them): not counted.
void check_run_memory(const WeightSource& source, const ModelConfig& shard,
                      const CacheOptions& cache, const TransformerOptions& options,
                      const Backend& backend, int device, bool weights_loaded = false);

std::string format_bytes(size_t bytes);

}  // namespace hogwild
