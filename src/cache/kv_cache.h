// The shared KV cache (DESIGN §2-§3): a preallocated pool of fixed-size pages for every layer, and
// blocks, each an ordered list of pages plus a length. A block's keys are stored rotated to
// block-local positions 0..length-1 and its values raw, so a block can appear at any offset of
// any worker's view without recomputing a key; the query is rotated instead (block_attention).
// Pages hold rows of kv_heads*head_dim contiguous values, one row per token, the same row index
// in every layer's pool: a block's page table serves all layers, and the CUDA backend reads the
// same layout.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "model/model.h"

namespace hogwild {

using BlockId = int32_t;

struct CacheOptions {
  int64_t pages = 0;                // pages in the pool (per layer)
  int64_t page_size = 32;           // tokens per page
  int64_t max_blocks = 0;           // blocks that can exist at once
  int64_t max_pages_per_block = 0;  // the longest block, in pages
};

// Options sized for `blocks` blocks of up to `tokens_per_block` tokens each.
CacheOptions cache_options_for(int64_t blocks, int64_t tokens_per_block, int64_t page_size);

class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& config, const CacheOptions& options);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t page_size() const { return options_.page_size; }
  int64_t free_pages() const { return static_cast<int64_t>(free_pages_.size()); }
  int64_t live_blocks() const { return live_blocks_; }

  BlockId create_block();           // an empty block; throws when max_blocks exist
  void release_block(BlockId block);  // returns the block's pages to the pool
  int64_t length(BlockId block) const;
  const std::vector<int32_t>& pages(BlockId block) const;
  // Grows the block by `count` tokens (taking pages from the pool as needed) and appends the pool
  // rows of the new tokens to `rows`. Throws a clear error when the pool or the block is full.
  void extend(BlockId block, int64_t count, std::vector<int32_t>& rows);
  int32_t row(BlockId block, int64_t index) const;

  // History merge (DESIGN §2): appends every token of `source` to the end of `target`, rotating
  // the keys by target's old length L (rotations compose: rot(rot(k, j), L) = rot(k, j + L)),
  // then releases `source`. When L is a whole number of pages, source's pages are reused in place.
  void append_block(BlockId target, BlockId source, const Tensor& inv_freq, int64_t head_dim);

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
  int64_t live_blocks_ = 0;
  std::vector<int32_t> host_table_;
  Tensor table_;
  bool table_dirty_ = true;
  // Scratch for merges, sized for the longest block: no allocation after construction.
  Tensor merge_rows_, merge_source_, merge_target_, merge_positions_;
};

}  // namespace hogwild
