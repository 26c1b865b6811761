// One forward pass's inputs: every token of the step, where its K/V goes in the cache, and the
// blocks it attends to. Built by BatchBuilder, run by Transformer::forward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/view_entry.h"

namespace hogwild {

struct ForwardBatch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> key_positions;  // each token's index in its own block (its key rotation)
  std::vector<int32_t> cache_rows;     // pool row receiving each token's K/V
  std::vector<int32_t> view_offsets;   // token t reads view_entries[view_offsets[t]..[t+1])
  std::vector<ViewEntry> view_entries;
  std::vector<int32_t> logit_rows;  // tokens whose next-token logits are returned, in order
  // Distributed runs: which worker group computes each token (-1: every group, e.g. prompts).
  std::vector<int32_t> owners;

  size_t size() const { return tokens.size(); }
  void clear();
  // The tokens that worker group `group` computes (its own and the shared ones), in order;
  // `local_logit_row[r]` is the row of global logit row r in the subset's logits, or -1.
  ForwardBatch subset_for_group(int32_t group, std::vector<int32_t>& local_logit_row) const;
};

}  // namespace hogwild
