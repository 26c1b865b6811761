// The shared KV cache (docs/design.md §2-§3): a preallocated pool of fixed-size pages for every
// layer, and blocks, each an ordered list of pages plus a length. The cache keeps the books (pages,
// lengths, rows, the page table); it never computes: what a history merge does to the K/V pools
// comes back as a MergePlan that the engine applies with the backend (engine/cache_merge.h). A
// block's keys are stored rotated to block-local positions 0..length-1 and its values raw, so a
// block can appear at any offset of any worker's view without recomputing a key; the query is
// rotated instead (block_attention). Pages hold rows of kv_heads*head_dim contiguous values, one
// row per token, the same row index in every layer's pool: a block's page table serves all layers,
// and the CUDA backend reads the same layout.
#pragma once

#include <cstdint>
#include <vector>

#include "cache/cache_options.h"
#include "kernels/backend.h"
#include "model/model.h"

namespace hogwild {

using BlockId = int32_t;

// A history merge's work on the pools: in every layer, rows `from` move to rows `to` and their keys
// rotate by `rotation` positions. When the pages were reused in place, from == to and only the
// keys rotate. Apply it before the cache hands out rows again (the next extend), since `from` may
// lie in pages the merge has just returned to the pool.
struct MergePlan {
  std::vector<int32_t> from, to;
  int32_t rotation = 0;
  bool empty() const { return from.empty(); }
  bool moves_rows() const { return from != to; }
};

class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& config, const CacheOptions& options);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t page_size() const { return options_.page_size; }
  int64_t layers() const { return layers_; }
  int64_t max_rows_per_block() const { return options_.max_pages_per_block * options_.page_size; }
  int64_t free_pages() const { return static_cast<int64_t>(free_pages_.size()); }

  BlockId create_block();             // an empty block; throws when max_blocks exist
  void release_block(BlockId block);  // returns the block's pages to the pool
  int64_t length(BlockId block) const;
  const std::vector<int32_t>& pages(BlockId block) const;
  // Grows the block by `count` tokens (taking pages from the pool as needed) and appends the pool
  // rows of the new tokens to `rows`. Throws a clear error when the pool or the block is full.
  void extend(BlockId block, int64_t count, std::vector<int32_t>& rows);
  // Undoes extends: shrinks the block to `length` tokens, returning pages it no longer needs to
  // the pool in the reverse order they were taken (so the pool is as it was).
  void truncate(BlockId block, int64_t length);
  int32_t row(BlockId block, int64_t index) const;

  // History merge (docs/design.md §2): appends every token of `source` to the end of `target` and
  // releases `source`. The keys must rotate by target's old length L (rotations compose:
  // rot(rot(k, j), L) = rot(k, j + L)): the returned plan says which rows, by how much. When L is
  // a whole number of pages, source's pages join target in place.
  [[nodiscard]] MergePlan append_block(BlockId target, BlockId source);

  const Tensor& keys(int64_t layer) const { return keys_[static_cast<size_t>(layer)]; }
  const Tensor& values(int64_t layer) const { return values_[static_cast<size_t>(layer)]; }
  // [max_blocks, max_pages_per_block] I32 on the backend; uploaded here if blocks changed.
  const Tensor& page_table();
  size_t bytes() const;

 private:
  struct Block {
    std::vector<int32_t> pages;
    int64_t length = 0;
    bool live = false;
  };
  Block& live_block(BlockId block);
  const Block& live_block(BlockId block) const;

  Backend& backend_;
  CacheOptions options_;
  int64_t layers_;
  std::vector<Tensor> keys_, values_;
  std::vector<int32_t> free_pages_;  // a stack: the most recently freed page is reused first
  std::vector<Block> blocks_;
  std::vector<int32_t> host_table_;
  Tensor table_;
  bool table_dirty_ = true;
};

}  // namespace hogwild
