// Backend::block_attention on the GPU (internal to kernels/cuda; semantics in kernels/backend.h,
// reference in kernels/cpu/block_attention.cpp). Three kernels, all on the backend's stream and
// none reading anything back to the host (so that they could be captured in a CUDA graph; the
// backend does not do that yet):
//
//  1. plan (one block): groups the view entries by cache block, picks each block's split into
//     chunks, and writes the list of work items {block, chunk, kv head, query tile}.
//  2. attention (persistent blocks pulling work items): loads each K/V tile of its chunk once
//     into shared memory and applies it to every (entry, query head) of the tile that sees the
//     block: all workers and the whole GQA group. Writes one partial (max, sum, values) each.
//  3. merge (one warp per (row, head)): log-sum-exp merge of the partials over the row's entries
//     and chunks (docs/design.md §4); empty partials (no visible key) are skipped.
//
// The plan depends only on the view tensors, so it is reused while they are unchanged (the layers
// of one step): the backend passes a version that changes whenever an i32 tensor may have changed.
//
// CUDA graphs (CudaBackend::run_step): the workspace (plan, work items, partials) is sized by the
// call's shapes (view entry capacity, blocks, heads), which a graph key fixes; the warm-up run of
// a key grows it, and run() refuses to grow it while the stream is being captured. A capture
// starts with invalidate_plan(), so the first layer's plan kernel is part of the graph and runs
// on every replay with the replay's inputs (later layers reuse it, as eagerly). When the
// workspace moves, workspace_generation() changes: graphs holding the old address are stale.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"

namespace hogwild::cuda {

class BlockAttention {
 public:
  explicit BlockAttention(int device);
  ~BlockAttention();
  BlockAttention(const BlockAttention&) = delete;
  BlockAttention& operator=(const BlockAttention&) = delete;

  void run(const Tensor& q, const Tensor& keys, const Tensor& values, const Tensor& page_table,
           int64_t page_size, const Tensor& view_offsets, const Tensor& view_entries,
           const Tensor& inv_freq, const AttentionShape& shape, const Tensor& out,
           uint64_t inputs_version, int* error_flags, cudaStream_t stream);

  // The next run() launches the plan kernel whatever the version says (captures and replays).
  void invalidate_plan() { plan_valid_ = false; }
  // Changes whenever the workspace is reallocated.
  uint64_t workspace_generation() const { return workspace_generation_; }

 private:
  struct PlanKey {
    const void* offsets = nullptr;
    const void* entries = nullptr;
    int64_t rows = 0, entry_capacity = 0, offsets_stride = 0, entries_stride = 0;
    int64_t blocks = 0, max_pages = 0, page_size = 0, heads = 0, kv_heads = 0, head_dim = 0;
    uint64_t inputs_version = 0;
    const void* workspace = nullptr;
    bool operator==(const PlanKey& other) const;
  };

  int multiprocessors_ = 0;
  size_t shared_memory_optin_ = 0;  // the most dynamic shared memory a block may ask for
  int blocks_per_sm_[3][2] = {};    // occupancy per head dim (64, 128, 256) x K/V (f32, bf16)
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;  // device workspace held now (partials, plan, work items)
  uint64_t workspace_generation_ = 0;
  PlanKey plan_;
  bool plan_valid_ = false;
};

}  // namespace hogwild::cuda
