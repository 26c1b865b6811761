#include "cache/kv_cache.h"

#include <algorithm>

#include "common/error.h"

namespace hogwild {

CacheOptions cache_options_for(int64_t blocks, int64_t tokens_per_block, int64_t page_size) {
  CacheOptions options;
  options.page_size = page_size;
  options.max_blocks = blocks;
  options.max_pages_per_block = (tokens_per_block + page_size - 1) / page_size;
  options.pages = blocks * options.max_pages_per_block;
  return options;
}

KvCache::KvCache(Backend& backend, const ModelConfig& config, const CacheOptions& options)
    : backend_(backend), options_(options), layers_(config.layers) {
  HOGWILD_CHECK(options.page_size > 0 && options.pages > 0 && options.max_blocks > 0 &&
                    options.max_pages_per_block > 0,
                "KV cache options must be positive (pages ", options.pages, ", page size ",
                options.page_size, ", blocks ", options.max_blocks, ", pages per block ",
                options.max_pages_per_block, ")");
  HOGWILD_CHECK(options.dtype == DType::F32 || options.dtype == DType::BF16,
                "KV cache pools are f32 or bf16, not ", dtype_name(options.dtype));
  const int64_t rows = options.pages * options.page_size;
  const int64_t width = config.kv_heads * config.head_dim;
  for (int64_t layer = 0; layer < layers_; ++layer) {
    keys_.push_back(backend_.allocate(rows, width, options.dtype));
    values_.push_back(backend_.allocate(rows, width, options.dtype));
  }
  for (int64_t page = options.pages - 1; page >= 0; --page)
    free_pages_.push_back(static_cast<int32_t>(page));
  blocks_.resize(static_cast<size_t>(options.max_blocks));
  host_table_.assign(static_cast<size_t>(options.max_blocks * options.max_pages_per_block), 0);
  table_ = backend_.allocate(options.max_blocks, options.max_pages_per_block, DType::I32);
}

KvCache::~KvCache() {
  for (Tensor& t : keys_) backend_.release(t);
  for (Tensor& t : values_) backend_.release(t);
  backend_.release(table_);
}

KvCache::Block& KvCache::live_block(BlockId block) {
  HOGWILD_ASSERT(block >= 0 && block < static_cast<BlockId>(blocks_.size()) &&
                 blocks_[static_cast<size_t>(block)].live);
  return blocks_[static_cast<size_t>(block)];
}

const KvCache::Block& KvCache::live_block(BlockId block) const {
  HOGWILD_ASSERT(block >= 0 && block < static_cast<BlockId>(blocks_.size()) &&
                 blocks_[static_cast<size_t>(block)].live);
  return blocks_[static_cast<size_t>(block)];
}

BlockId KvCache::create_block() {
  for (size_t b = 0; b < blocks_.size(); ++b) {
    if (!blocks_[b].live) {
      blocks_[b] = Block{{}, 0, true};
      return static_cast<BlockId>(b);
    }
  }
  fail("KV cache: all ", blocks_.size(), " blocks are in use");
}

void KvCache::release_block(BlockId block) {
  Block& b = live_block(block);
  for (auto it = b.pages.rbegin(); it != b.pages.rend(); ++it) free_pages_.push_back(*it);
  b = Block{};
  table_dirty_ = true;
}

int64_t KvCache::length(BlockId block) const { return live_block(block).length; }

const std::vector<int32_t>& KvCache::pages(BlockId block) const { return live_block(block).pages; }

void KvCache::extend(BlockId block, int64_t count, std::vector<int32_t>& rows) {
  Block& b = live_block(block);
  const int64_t new_length = b.length + count;
  const int64_t pages_needed = (new_length + options_.page_size - 1) / options_.page_size;
  if (pages_needed > options_.max_pages_per_block)
    fail("KV cache: a block would hold ", new_length, " tokens, more than the ",
         options_.max_pages_per_block * options_.page_size,
         " allowed (raise max_tokens_per_problem)");
  const int64_t missing = pages_needed - static_cast<int64_t>(b.pages.size());
  if (missing > static_cast<int64_t>(free_pages_.size()))
    fail("KV cache: out of pages (", options_.pages, " pages of ", options_.page_size,
         " tokens are all in use)");
  for (int64_t i = 0; i < missing; ++i) {
    b.pages.push_back(free_pages_.back());
    free_pages_.pop_back();
    table_dirty_ = true;
  }
  for (int64_t index = b.length; index < new_length; ++index) {
    b.length = index + 1;
    rows.push_back(row(block, index));
  }
}

int32_t KvCache::row(BlockId block, int64_t index) const {
  const Block& b = live_block(block);
  HOGWILD_ASSERT(index >= 0 && index < b.length);
  return static_cast<int32_t>(b.pages[static_cast<size_t>(index / options_.page_size)] *
                                  options_.page_size +
                              index % options_.page_size);
}

void KvCache::truncate(BlockId block, int64_t length) {
  Block& b = live_block(block);
  HOGWILD_ASSERT(length >= 0 && length <= b.length);
  const auto pages_needed =
      static_cast<size_t>((length + options_.page_size - 1) / options_.page_size);
  while (b.pages.size() > pages_needed) {
    free_pages_.push_back(b.pages.back());
    b.pages.pop_back();
    table_dirty_ = true;
  }
  b.length = length;
}

MergePlan KvCache::append_block(BlockId target, BlockId source) {
  HOGWILD_ASSERT(target != source);
  MergePlan plan;
  const int64_t offset = live_block(target).length;
  const int64_t count = live_block(source).length;
  plan.rotation = static_cast<int32_t>(offset);
  for (int64_t i = 0; i < count; ++i) plan.from.push_back(row(source, i));
  if (count > 0 && offset % options_.page_size == 0) {
    // Reuse the pages: they simply join the target's page list; keys are rotated in place.
    Block& t = live_block(target);
    Block& s = live_block(source);
    if (static_cast<int64_t>(t.pages.size() + s.pages.size()) > options_.max_pages_per_block)
      fail("KV cache: a block would hold ", offset + count, " tokens, more than the ",
           options_.max_pages_per_block * options_.page_size, " allowed");
    t.pages.insert(t.pages.end(), s.pages.begin(), s.pages.end());
    t.length += count;
    s.pages.clear();
    plan.to = plan.from;
  } else if (count > 0) {
    extend(target, count, plan.to);
  }
  release_block(source);
  return plan;
}

const Tensor& KvCache::page_table() {
  if (table_dirty_) {
    std::fill(host_table_.begin(), host_table_.end(), 0);
    for (size_t b = 0; b < blocks_.size(); ++b)
      std::copy(blocks_[b].pages.begin(), blocks_[b].pages.end(),
                host_table_.begin() + static_cast<ptrdiff_t>(b) * options_.max_pages_per_block);
    backend_.upload_i32(table_, host_table_.data());
    table_dirty_ = false;
  }
  return table_;
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const Tensor& t : keys_) total += static_cast<size_t>(t.elements()) * dtype_size(t.dtype);
  return 2 * total;
}

}  // namespace hogwild
