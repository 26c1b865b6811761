#include "engine/forward_batch.h"

namespace hogwild {

void ForwardBatch::clear() {
  tokens.clear();
  key_positions.clear();
  cache_rows.clear();
  view_offsets.clear();
  view_entries.clear();
  logit_rows.clear();
  owners.clear();
}

ForwardBatch ForwardBatch::subset_for_group(int32_t group,
                                            std::vector<int32_t>& local_logit_row) const {
  ForwardBatch local;
  local.view_offsets.push_back(0);
  std::vector<int32_t> local_index(tokens.size(), -1);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int32_t owner = owners.empty() ? -1 : owners[t];
    if (owner != -1 && owner != group) continue;
    local_index[t] = static_cast<int32_t>(local.tokens.size());
    local.tokens.push_back(tokens[t]);
    local.key_positions.push_back(key_positions[t]);
    local.cache_rows.push_back(cache_rows[t]);
    local.owners.push_back(owner);
    local.view_entries.insert(local.view_entries.end(), view_entries.begin() + view_offsets[t],
                              view_entries.begin() + view_offsets[t + 1]);
    local.view_offsets.push_back(static_cast<int32_t>(local.view_entries.size()));
  }
  local_logit_row.assign(logit_rows.size(), -1);
  for (size_t r = 0; r < logit_rows.size(); ++r) {
    const int32_t index = local_index[static_cast<size_t>(logit_rows[r])];
    if (index < 0) continue;
    local_logit_row[r] = static_cast<int32_t>(local.logit_rows.size());
    local.logit_rows.push_back(index);
  }
  return local;
}

}  // namespace hogwild
