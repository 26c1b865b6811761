// One entry of a query token's view: the record block_attention reads from its [E, 3] I32
// view_entries tensor (kernels/backend.h), built by the engine and read by both kernels.
#pragma once

#include <cstddef>
#include <cstdint>
// The struct is read by the CUDA kernels, which nvcc compiles as C++17; the builder below is
// host C++20 code (std::span).
#if __cplusplus >= 202002L
#include <span>
#include <vector>
#endif

namespace hogwild {

// One block of a token's view: query rotation and how many of the block's keys it sees.
struct ViewEntry {
  int32_t block = 0;
  int32_t query_position = 0;  // the token's position in its view minus the block's start
  int32_t visible = 0;         // keys 0..visible-1 of the block are visible
};
// A vector of entries is uploaded as the [E, 3] I32 tensor as it lies in memory.
static_assert(sizeof(ViewEntry) == 3 * sizeof(int32_t) && alignof(ViewEntry) == alignof(int32_t),
              "ViewEntry must be three packed int32 (one row of view_entries)");

#if __cplusplus >= 202002L
// Appends the entries of a query token at `position` in a view of `blocks` whose lengths (as this
// token sees them) are `lengths`: block v starts at the sum of the earlier lengths; entry {block,
// position - start, min(length, position - start + 1)}, skipped when nothing is visible. Returns
// how many were appended.
size_t append_view_entries(std::span<const int32_t> blocks, std::span<const int64_t> lengths,
                           int64_t position, std::vector<ViewEntry>& out);
#endif

}  // namespace hogwild
