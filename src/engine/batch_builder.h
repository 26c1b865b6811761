// Turns "these new tokens go at the end of block B, and they read this view of blocks" into a
// ForwardBatch. Views are finished only in build(), after every run of the step has been placed
// in the cache: block lengths then include this step's tokens, so every worker sees every other
// worker's current token (instant sync, docs/design.md §4).
//
// Cache rows are reserved by add() and stay reserved until the step is settled: commit() after a
// successful forward keeps them, rollback() after a failed one gives them back, so a failed step
// leaves no phantom rows. A step that was built and neither committed nor rolled back is taken
// as committed when the next step's first add() comes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cache/kv_cache.h"
#include "engine/transformer.h"

namespace hogwild {

class BatchBuilder {
 public:
  explicit BatchBuilder(KvCache& cache) : cache_(cache) {}

  // Appends `tokens` to `block` (reserving its cache rows). `view` lists the blocks the tokens
  // attend to, in order, and must end with `block`. When `want_logits`, the last token's logits
  // are returned; the result is its index among the batch's logit rows.
  // `owner`: the worker group that computes these tokens in a distributed run (-1: all groups).
  int32_t add(BlockId block, std::span<const int32_t> tokens, std::span<const BlockId> view,
              bool want_logits, int32_t owner = -1);
  size_t tokens() const { return token_count_; }
  bool empty() const { return runs_.empty(); }

  // Fills `batch` (cleared first) and forgets the runs. With `delayed_sync` (distributed
  // `sync: step`), tokens of one worker group do not see the tokens other groups add in the
  // same step: their K/V only arrive after the forward, so views use the earlier lengths.
  void build(ForwardBatch& batch, bool delayed_sync = false);

  // Keeps the rows of the built step (its forward succeeded).
  void commit() { reserved_.clear(); }
  // Gives back every row reserved since the last commit (its blocks shrink to their old lengths);
  // the runs not yet built are dropped too.
  void rollback();

 private:
  struct Run {
    BlockId block;
    int64_t first_index;
    std::vector<int32_t> tokens;
    std::vector<int32_t> rows;
    std::vector<BlockId> view;
    bool want_logits;
    int32_t owner;
  };
  struct Reservation {
    BlockId block;
    int64_t length_before;
  };
  KvCache& cache_;
  std::vector<Run> runs_;
  std::vector<Reservation> reserved_;  // in the order taken
  size_t token_count_ = 0;
  int32_t logit_count_ = 0;
};

}  // namespace hogwild
