#include "engine/batch_builder.h"

#include <algorithm>
#include <map>

#include "common/error.h"

namespace hogwild {

int32_t BatchBuilder::add(BlockId block, std::span<const int32_t> tokens,
                          std::span<const BlockId> view, bool want_logits, int32_t owner) {
  HOGWILD_ASSERT(!tokens.empty() && !view.empty() && view.back() == block);
  if (runs_.empty()) commit();  // the first run of a new step: the last one is settled
  Run run{block, cache_.length(block),       {tokens.begin(), tokens.end()},
          {},    {view.begin(), view.end()}, want_logits,
          owner};
  cache_.extend(block, static_cast<int64_t>(tokens.size()), run.rows);
  reserved_.push_back({block, run.first_index});
  token_count_ += tokens.size();
  runs_.push_back(std::move(run));
  return want_logits ? logit_count_++ : -1;
}

void BatchBuilder::build(ForwardBatch& batch, bool delayed_sync) {
  batch.clear();
  batch.view_offsets.push_back(0);
  // Blocks that grow this step: their length before it, and which group grows them.
  std::map<BlockId, std::pair<int64_t, int32_t>> grown;
  for (const Run& run : runs_)
    if (!grown.count(run.block)) grown[run.block] = {run.first_index, run.owner};
  auto length_seen = [&](const Run& run, BlockId b) {
    if (delayed_sync && b != run.block && run.owner >= 0) {
      const auto it = grown.find(b);
      if (it != grown.end() && it->second.second >= 0 && it->second.second != run.owner)
        return it->second.first;
    }
    return cache_.length(b);
  };
  std::vector<int64_t> lengths;
  for (const Run& run : runs_) {
    // The view's block lengths after all of this step's appends (instant sync) or, with delayed
    // sync, before the other groups' appends; the own block starts after all the others.
    lengths.clear();
    int64_t own_start = 0;
    for (BlockId b : run.view) lengths.push_back(length_seen(run, b));
    for (size_t v = 0; v + 1 < lengths.size(); ++v) own_start += lengths[v];
    for (size_t t = 0; t < run.tokens.size(); ++t) {
      const int64_t index = run.first_index + static_cast<int64_t>(t);
      const int64_t position = own_start + index;  // the token's position in its view
      batch.tokens.push_back(run.tokens[t]);
      batch.key_positions.push_back(static_cast<int32_t>(index));
      batch.cache_rows.push_back(run.rows[t]);
      batch.owners.push_back(run.owner);
      // Visible iff j <= i - s (docs/design.md §3): causal in the own block, everything before it.
      append_view_entries(run.view, lengths, position, batch.view_entries);
      batch.view_offsets.push_back(static_cast<int32_t>(batch.view_entries.size()));
    }
    if (run.want_logits) batch.logit_rows.push_back(static_cast<int32_t>(batch.tokens.size() - 1));
  }
  runs_.clear();
  token_count_ = 0;
  logit_count_ = 0;
}

void BatchBuilder::rollback() {
  for (auto it = reserved_.rbegin(); it != reserved_.rend(); ++it)
    cache_.truncate(it->block, it->length_before);
  reserved_.clear();
  runs_.clear();
  token_count_ = 0;
  logit_count_ = 0;
}

}  // namespace hogwild
