// BatchBuilder against a naive model of a step: every view is laid out key by key and each
// token's visible keys are counted one at a time, so the builder's min() formula, its block
// starts, instant sync, delayed sync and the row bookkeeping are all checked independently.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <ostream>
#include <vector>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "engine/batch_builder.h"
#include "engine/forward_batch.h"
#include "view_entry_testing.h"

namespace hogwild {

namespace {

// One add() of a step, as the test plans it.
struct PlannedRun {
  BlockId block;
  std::vector<int32_t> tokens;
  std::vector<BlockId> view;
  bool want_logits = false;
  int32_t owner = -1;
};

// The entries a token reads, found the slow way: lay the view out position by position and
// count, for each block, the keys that sit at or before the token's position.
std::vector<ViewEntry> naive_entries(const std::vector<BlockId>& view,
                                     const std::map<BlockId, int64_t>& seen_length,
                                     int64_t own_index) {
  std::vector<int64_t> starts;
  int64_t next_position = 0;
  for (BlockId block : view) {
    starts.push_back(next_position);
    next_position += seen_length.at(block);
  }
  const int64_t position = starts.back() + own_index;
  std::vector<ViewEntry> entries;
  for (size_t v = 0; v < view.size(); ++v) {
    int32_t visible = 0;
    for (int64_t key = 0; key < seen_length.at(view[v]); ++key)
      if (starts[v] + key <= position) ++visible;
    if (visible == 0) continue;
    entries.push_back(
        {view[v], static_cast<int32_t>(position - starts[v]), static_cast<int32_t>(visible)});
  }
  return entries;
}

// What build() must produce for `runs`, given every block's length before the step. Cache rows
// come from KvCache::row once the rows are reserved.
ForwardBatch expected_batch(const std::vector<PlannedRun>& runs,
                            const std::map<BlockId, int64_t>& length_before, const KvCache& cache,
                            bool delayed_sync) {
  ForwardBatch expected;
  expected.view_offsets.push_back(0);
  std::map<BlockId, int64_t> next_index = length_before;
  for (const PlannedRun& run : runs) {
    // The length of each block this run sees: every token added this step (instant sync), except,
    // with delayed sync, the tokens that another worker group adds to another block.
    std::map<BlockId, int64_t> seen = length_before;
    for (const PlannedRun& other : runs) {
      const bool other_group = delayed_sync && other.block != run.block && run.owner >= 0 &&
                               other.owner >= 0 && other.owner != run.owner;
      if (!other_group) seen[other.block] += static_cast<int64_t>(other.tokens.size());
    }
    for (int32_t token : run.tokens) {
      const int64_t index = next_index[run.block]++;
      expected.tokens.push_back(token);
      expected.key_positions.push_back(static_cast<int32_t>(index));
      expected.cache_rows.push_back(cache.row(run.block, index));
      expected.owners.push_back(run.owner);
      for (const ViewEntry& entry : naive_entries(run.view, seen, index))
        expected.view_entries.push_back(entry);
      expected.view_offsets.push_back(static_cast<int32_t>(expected.view_entries.size()));
    }
    if (run.want_logits)
      expected.logit_rows.push_back(static_cast<int32_t>(expected.tokens.size()) - 1);
  }
  return expected;
}

void expect_same_batch(const ForwardBatch& actual, const ForwardBatch& expected) {
  EXPECT_EQ(actual.tokens, expected.tokens);
  EXPECT_EQ(actual.key_positions, expected.key_positions);
  EXPECT_EQ(actual.cache_rows, expected.cache_rows);
  EXPECT_EQ(actual.view_offsets, expected.view_offsets);
  EXPECT_EQ(actual.view_entries, expected.view_entries);
  EXPECT_EQ(actual.logit_rows, expected.logit_rows);
  EXPECT_EQ(actual.owners, expected.owners);
}

// Everything rollback() must restore: each block's length and pages, the free pool, the table.
struct CacheState {
  std::map<BlockId, int64_t> lengths;
  std::map<BlockId, std::vector<int32_t>> pages;
  int64_t free_pages = 0;
  std::vector<int32_t> table;
  bool operator==(const CacheState&) const = default;
};

class BatchBuilderTest : public ::testing::Test {
 protected:
  static constexpr int64_t kPageSize = 4;

  BatchBuilderTest() {
    config_.layers = 1;
    config_.heads = 1;
    config_.kv_heads = 1;
    config_.head_dim = 4;
    backend_ = make_cpu_backend();
    // 16 pages of 4 tokens, 8 blocks of at most 4 pages.
    cache_ = std::make_unique<KvCache>(*backend_, config_, CacheOptions{16, kPageSize, 8, 4});
  }

  // A block that already holds `length` tokens from earlier steps.
  BlockId block_of_length(int64_t length) {
    const BlockId block = cache_->create_block();
    std::vector<int32_t> rows;
    if (length > 0) cache_->extend(block, length, rows);
    blocks_.push_back(block);
    return block;
  }

  std::map<BlockId, int64_t> lengths() const {
    std::map<BlockId, int64_t> result;
    for (BlockId block : blocks_) result[block] = cache_->length(block);
    return result;
  }

  CacheState state() {
    CacheState s;
    for (BlockId block : blocks_) {
      s.lengths[block] = cache_->length(block);
      s.pages[block] = cache_->pages(block);
    }
    s.free_pages = cache_->free_pages();
    const Tensor& table = cache_->page_table();
    const auto* data = static_cast<const int32_t*>(table.data);  // CPU backend: host memory
    s.table.assign(data, data + table.rows * table.cols);
    return s;
  }

  // Adds every run; returns what add() answered for each.
  std::vector<int32_t> add_all(BatchBuilder& builder, const std::vector<PlannedRun>& runs) {
    std::vector<int32_t> answers;
    for (const PlannedRun& run : runs)
      answers.push_back(builder.add(run.block, run.tokens, run.view, run.want_logits, run.owner));
    return answers;
  }

  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvCache> cache_;
  std::vector<BlockId> blocks_;
};

TEST_F(BatchBuilderTest, AddReservesRowsAtOnceAndBuildListsThem) {
  const BlockId common = block_of_length(6);
  const BlockId step = block_of_length(0);
  BatchBuilder builder(*cache_);
  const int32_t tokens[] = {11, 12, 13};
  const BlockId view[] = {common, step};
  EXPECT_EQ(builder.add(step, tokens, view, false), -1) << "no logits asked for";
  EXPECT_EQ(cache_->length(step), 3) << "rows are reserved by add(), before build()";
  EXPECT_EQ(builder.tokens(), 3u);
  EXPECT_FALSE(builder.empty());

  ForwardBatch batch;
  batch.tokens = {99};  // build() clears what was there
  builder.build(batch);
  EXPECT_TRUE(builder.empty());
  EXPECT_EQ(builder.tokens(), 0u);
  EXPECT_EQ(batch.tokens, (std::vector<int32_t>{11, 12, 13}));
  EXPECT_EQ(batch.key_positions, (std::vector<int32_t>{0, 1, 2}));
  // The step block took one fresh page: its rows are that page's first three.
  ASSERT_EQ(cache_->pages(step).size(), 1u);
  const int32_t page = cache_->pages(step)[0];
  EXPECT_EQ(batch.cache_rows, (std::vector<int32_t>{page * 4, page * 4 + 1, page * 4 + 2}));
  EXPECT_EQ(batch.owners, (std::vector<int32_t>{-1, -1, -1}));
  EXPECT_TRUE(batch.logit_rows.empty());
  // Each token sees all 6 keys of common and its own block causally.
  EXPECT_EQ(batch.view_offsets, (std::vector<int32_t>{0, 2, 4, 6}));
  EXPECT_EQ(batch.view_entries, (std::vector<ViewEntry>{{common, 6, 6},
                                                        {step, 0, 1},
                                                        {common, 7, 6},
                                                        {step, 1, 2},
                                                        {common, 8, 6},
                                                        {step, 2, 3}}));
}

TEST_F(BatchBuilderTest, MultiBlockViewsSeeTheOthersTokensOfTheSameStep) {
  const BlockId common = block_of_length(5);
  const BlockId alice = block_of_length(2);
  const BlockId bob = block_of_length(3);
  BatchBuilder builder(*cache_);
  const std::vector<PlannedRun> runs = {
      {alice, {21}, {common, bob, alice}, true},
      {bob, {31, 32}, {common, alice, bob}, true},
  };
  const std::map<BlockId, int64_t> before = lengths();
  EXPECT_EQ(add_all(builder, runs), (std::vector<int32_t>{0, 1})) << "indices among logit rows";
  ForwardBatch batch;
  builder.build(batch);
  expect_same_batch(batch, expected_batch(runs, before, *cache_, false));

  // By hand. Alice's token (index 2) in [common 5 | bob 3+2 | alice 2+1]: position 12, and she
  // already sees both of Bob's new tokens.
  // Bob's tokens (3, 4) in [common 5 | alice 3 | bob 5]: positions 11 and 12.
  EXPECT_EQ(batch.view_entries, (std::vector<ViewEntry>{{common, 12, 5},
                                                        {bob, 7, 5},
                                                        {alice, 2, 3},
                                                        {common, 11, 5},
                                                        {alice, 6, 3},
                                                        {bob, 3, 4},
                                                        {common, 12, 5},
                                                        {alice, 7, 3},
                                                        {bob, 4, 5}}));
  EXPECT_EQ(batch.view_offsets, (std::vector<int32_t>{0, 3, 6, 9}));
  EXPECT_EQ(batch.logit_rows, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(batch.key_positions, (std::vector<int32_t>{2, 3, 4}));
  EXPECT_EQ(batch.cache_rows, (std::vector<int32_t>{cache_->row(alice, 2), cache_->row(bob, 3),
                                                    cache_->row(bob, 4)}));
}

TEST_F(BatchBuilderTest, EmptyBlocksAreSkippedAndRepeatedBlocksReadTwice) {
  // The combined layout of worker 0 when worker 1's new step is still empty:
  // [common, others_header, step(1), marker, step(2), marker, own_header, step(0)].
  const BlockId common = block_of_length(7);
  const BlockId others_header = block_of_length(3);
  const BlockId marker = block_of_length(2);
  const BlockId own_header = block_of_length(2);
  const BlockId empty_step = block_of_length(0);
  const BlockId carol = block_of_length(4);
  const BlockId alice = block_of_length(1);
  BatchBuilder builder(*cache_);
  const std::vector<PlannedRun> runs = {
      {alice,
       {41, 42},
       {common, others_header, empty_step, marker, carol, marker, own_header, alice},
       true,
       0},
  };
  const std::map<BlockId, int64_t> before = lengths();
  add_all(builder, runs);
  ForwardBatch batch;
  builder.build(batch);
  expect_same_batch(batch, expected_batch(runs, before, *cache_, false));
  // Starts: common 0, others_header 7, empty 10, marker 10, carol 12, marker 16, own_header 18,
  // alice 20; the first new token has index 1, position 21.
  const std::vector<ViewEntry> first_token = {
      {common, 21, 7}, {others_header, 14, 3}, {marker, 11, 2}, {carol, 9, 4},
      {marker, 5, 2},  {own_header, 3, 2},     {alice, 1, 2}};
  ASSERT_EQ(batch.view_offsets.size(), 3u);
  EXPECT_EQ(batch.view_offsets[1], 7) << "the empty step has no entry";
  EXPECT_EQ(std::vector<ViewEntry>(batch.view_entries.begin(), batch.view_entries.begin() + 7),
            first_token);
}

TEST_F(BatchBuilderTest, SeveralRunsOnOneBlockContinueEachOther) {
  // Prefill chunks: two runs of one block in one step; the first chunk sees only itself (and what
  // came before), the second sees the first.
  const BlockId common = block_of_length(3);
  BatchBuilder builder(*cache_);
  const std::vector<PlannedRun> runs = {
      {common, {1, 2}, {common}, false},
      {common, {3, 4, 5}, {common}, true},
  };
  const std::map<BlockId, int64_t> before = lengths();
  EXPECT_EQ(add_all(builder, runs), (std::vector<int32_t>{-1, 0}));
  ForwardBatch batch;
  builder.build(batch);
  expect_same_batch(batch, expected_batch(runs, before, *cache_, false));
  EXPECT_EQ(batch.key_positions, (std::vector<int32_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(batch.view_entries, (std::vector<ViewEntry>{
                                    {common, 3, 4},
                                    {common, 4, 5},
                                    {common, 5, 6},
                                    {common, 6, 7},
                                    {common, 7, 8},
                                }));
  EXPECT_EQ(batch.logit_rows, (std::vector<int32_t>{4}));
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_EQ(batch.cache_rows[static_cast<size_t>(i)], cache_->row(common, 3 + i));
}

TEST_F(BatchBuilderTest, DelayedSyncHidesOtherGroupsTokensOfTheSameStep) {
  // Three workers in two groups: Alice and Carol in group 0, Bob in group 1; the shared header
  // (owner -1) is grown by every group, so everyone sees it.
  const BlockId common = block_of_length(5);
  const BlockId header = block_of_length(1);
  const BlockId alice = block_of_length(2);
  const BlockId bob = block_of_length(3);
  const BlockId carol = block_of_length(1);
  const std::vector<PlannedRun> runs = {
      {header, {7}, {common, header}, false, -1},
      {alice, {21}, {common, header, bob, carol, alice}, true, 0},
      {bob, {31, 32}, {common, header, alice, carol, bob}, true, 1},
      {carol, {51}, {common, header, alice, bob, carol}, true, 0},
  };
  const std::map<BlockId, int64_t> before = lengths();
  {
    BatchBuilder builder(*cache_);
    add_all(builder, runs);
    ForwardBatch batch;
    builder.build(batch, /*delayed_sync=*/true);
    expect_same_batch(batch, expected_batch(runs, before, *cache_, true));
    // By hand, Alice (index 2) in [common 5 | header 2 | bob 3 (old) | carol 2 | alice 3]:
    // position 14; Bob's two new tokens are hidden, Carol's (same group) and the header's are not.
    ASSERT_GE(batch.view_offsets.size(), 3u);
    EXPECT_EQ(std::vector<ViewEntry>(batch.view_entries.begin() + batch.view_offsets[1],
                                     batch.view_entries.begin() + batch.view_offsets[2]),
              (std::vector<ViewEntry>{
                  {common, 14, 5}, {header, 9, 2}, {bob, 7, 3}, {carol, 4, 2}, {alice, 2, 3}}));
    // Bob's first token (index 3) in [common 5 | header 2 | alice 2 | carol 1 | bob 5]: 13.
    EXPECT_EQ(std::vector<ViewEntry>(batch.view_entries.begin() + batch.view_offsets[2],
                                     batch.view_entries.begin() + batch.view_offsets[3]),
              (std::vector<ViewEntry>{
                  {common, 13, 5}, {header, 8, 2}, {alice, 6, 2}, {carol, 4, 1}, {bob, 3, 4}}));
    EXPECT_EQ(batch.owners, (std::vector<int32_t>{-1, 0, 1, 1, 0}));
    builder.rollback();
  }
  EXPECT_EQ(lengths(), before);
  {
    // The same step with instant sync: everyone sees everything.
    BatchBuilder builder(*cache_);
    add_all(builder, runs);
    ForwardBatch batch;
    builder.build(batch, /*delayed_sync=*/false);
    expect_same_batch(batch, expected_batch(runs, before, *cache_, false));
    EXPECT_EQ(batch.view_entries[static_cast<size_t>(batch.view_offsets[1]) + 2],
              (ViewEntry{bob, 9, 5}));
  }
}

TEST_F(BatchBuilderTest, RollbackRestoresLengthsPagesPoolAndTable) {
  const BlockId common = block_of_length(3);
  const BlockId alice = block_of_length(4);  // exactly one page: its next token takes a page
  const BlockId bob = block_of_length(0);
  const CacheState before = state();
  const std::vector<PlannedRun> runs = {
      {common, {1, 2, 3, 4, 5, 6}, {common}, false},   // 3 -> 9 tokens: two more pages
      {alice, {7}, {common, alice}, true},             // 4 -> 5: one more page
      {bob, {8, 9, 10, 11, 12}, {common, bob}, true},  // 0 -> 5: two pages
      {common, {13, 14}, {common}, false},             // 9 -> 11: same pages
  };
  ForwardBatch first;
  {
    BatchBuilder builder(*cache_);
    add_all(builder, runs);
    EXPECT_EQ(cache_->free_pages(), before.free_pages - 5);
    builder.build(first);
    builder.rollback();
    EXPECT_TRUE(builder.empty());
    EXPECT_EQ(builder.tokens(), 0u);
  }
  EXPECT_EQ(state(), before);
  // The free pages are back in their order too: the same step takes the same rows again.
  BatchBuilder builder(*cache_);
  add_all(builder, runs);
  ForwardBatch second;
  builder.build(second);
  EXPECT_EQ(second.cache_rows, first.cache_rows);
}

TEST_F(BatchBuilderTest, RollbackDropsRunsNotYetBuilt) {
  const BlockId common = block_of_length(2);
  const CacheState before = state();
  BatchBuilder builder(*cache_);
  const int32_t tokens[] = {1, 2, 3, 4, 5};
  const BlockId view[] = {common};
  EXPECT_EQ(builder.add(common, tokens, view, true), 0);
  builder.rollback();
  EXPECT_TRUE(builder.empty());
  EXPECT_EQ(state(), before);
  // The logit numbering restarts as well.
  EXPECT_EQ(builder.add(common, tokens, view, true), 0);
}

TEST_F(BatchBuilderTest, CommitKeepsTheStepAndALaterRollbackLeavesIt) {
  const BlockId common = block_of_length(2);
  BatchBuilder builder(*cache_);
  const int32_t tokens[] = {1, 2, 3};
  const BlockId view[] = {common};
  builder.add(common, tokens, view, false);
  ForwardBatch batch;
  builder.build(batch);
  builder.commit();
  const CacheState committed = state();
  EXPECT_EQ(committed.lengths.at(common), 5);
  builder.rollback();  // nothing reserved since the commit
  EXPECT_EQ(state(), committed);
}

TEST_F(BatchBuilderTest, TheNextStepsFirstAddCommitsAnUnsettledStep) {
  const BlockId common = block_of_length(2);
  const BlockId alice = block_of_length(0);
  BatchBuilder builder(*cache_);
  const int32_t prompt[] = {1, 2, 3};
  const BlockId prompt_view[] = {common};
  builder.add(common, prompt, prompt_view, true);
  ForwardBatch batch;
  builder.build(batch);  // neither committed nor rolled back
  const CacheState after_first_step = state();

  const int32_t step[] = {4, 5, 6, 7, 8};
  const BlockId step_view[] = {common, alice};
  builder.add(alice, step, step_view, true);
  builder.add(common, prompt, prompt_view, false);
  builder.rollback();  // only the second step is given back
  EXPECT_EQ(state(), after_first_step);
  EXPECT_EQ(cache_->length(common), 5);
  EXPECT_EQ(cache_->length(alice), 0);
}

TEST_F(BatchBuilderTest, AFailedAddLeavesTheStepRollbackable) {
  const BlockId common = block_of_length(1);
  const BlockId big = block_of_length(0);
  const CacheState before = state();
  BatchBuilder builder(*cache_);
  const std::vector<int32_t> small(5, 1);  // 1 -> 6 tokens: takes a page
  const BlockId common_view[] = {common};
  builder.add(common, small, common_view, false);
  const std::vector<int32_t> too_long(17, 1);  // a block holds at most 4 pages of 4 tokens
  const BlockId big_view[] = {common, big};
  EXPECT_THROW(builder.add(big, too_long, big_view, true), Error);
  builder.rollback();
  EXPECT_EQ(state(), before);
}

TEST_F(BatchBuilderTest, AddRejectsAViewThatDoesNotEndWithItsBlock) {
  const BlockId common = block_of_length(1);
  const BlockId alice = block_of_length(0);
  BatchBuilder builder(*cache_);
  const int32_t tokens[] = {1};
  const BlockId view[] = {alice, common};
  EXPECT_THROW(builder.add(alice, tokens, view, false), Error);
  EXPECT_EQ(cache_->length(alice), 0);
}

}  // namespace
}  // namespace hogwild
