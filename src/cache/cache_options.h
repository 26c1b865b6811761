// How big a KV cache is: pages, page size, blocks. A header of its own so that configuration
// code can name the defaults without the cache's dependencies.
#pragma once

#include <cstdint>

namespace hogwild {

// kernels/tensor.h's element types, declared only: configuration code includes this header
// without the kernels' include path.
enum class DType;

// Tokens per page unless a run says otherwise (the run config's page_size).
inline constexpr int64_t kDefaultPageSize = 32;

struct CacheOptions {
  int64_t pages = 0;                     // pages in the pool (per layer)
  int64_t page_size = kDefaultPageSize;  // tokens per page
  int64_t max_blocks = 0;                // blocks that can exist at once
  int64_t max_pages_per_block = 0;       // the longest block, in pages
  // Element type of the K/V pools: F32, or BF16 where the backend's attention reads it (CUDA;
  // kv_dtype_on in engine/transformer.h decides from the `dtype` key).
  DType dtype{};  // {} = DType::F32, the first enumerator
};

// Options sized for `blocks` blocks of up to `tokens_per_block` tokens each.
CacheOptions cache_options_for(int64_t blocks, int64_t tokens_per_block, int64_t page_size);

}  // namespace hogwild
