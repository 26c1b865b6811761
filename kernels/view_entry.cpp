#include "kernels/view_entry.h"

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace hogwild {

size_t append_view_entries(std::span<const int32_t> blocks, std::span<const int64_t> lengths,
                           int64_t position, std::vector<ViewEntry>& out) {
  HOGWILD_CHECK(blocks.size() == lengths.size(), "a view of ", blocks.size(), " blocks with ",
                lengths.size(), " lengths");
  const size_t before = out.size();
  int64_t start = 0;
  for (size_t v = 0; v < blocks.size(); ++v) {
    const int64_t query_position = position - start;
    start += lengths[v];
    // Key j of the block is visible iff j <= query_position (docs/design.md §3): causal in the
    // token's own block, everything of the blocks before it, nothing of the blocks after it.
    const int64_t visible = std::min(lengths[v], query_position + 1);
    if (visible <= 0) continue;
    HOGWILD_CHECK(query_position < std::numeric_limits<int32_t>::max(), "view position ",
                  query_position, " exceeds the int32 range of view entries");
    out.push_back({blocks[v], static_cast<int32_t>(query_position), static_cast<int32_t>(visible)});
  }
  return out.size() - before;
}

}  // namespace hogwild
