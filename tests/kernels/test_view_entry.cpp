// append_view_entries (kernels/view_entry.h) against hand-computed views and against a naive
// definition: key j of block v is visible to the token at `position` iff start(v) + j <= position.
#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/view_entry.h"

namespace hogwild {

bool operator==(const ViewEntry& a, const ViewEntry& b) {
  return a.block == b.block && a.query_position == b.query_position && a.visible == b.visible;
}

void PrintTo(const ViewEntry& entry, std::ostream* out) {
  *out << "{" << entry.block << ", " << entry.query_position << ", " << entry.visible << "}";
}

namespace {

// The definition, key by key.
std::vector<ViewEntry> naive_view(const std::vector<int32_t>& blocks,
                                  const std::vector<int64_t>& lengths, int64_t position) {
  std::vector<ViewEntry> entries;
  int64_t start = 0;
  for (size_t v = 0; v < blocks.size(); ++v) {
    int32_t visible = 0;
    for (int64_t j = 0; j < lengths[v]; ++j)
      if (start + j <= position) ++visible;
    if (visible > 0)
      entries.push_back({blocks[v], static_cast<int32_t>(position - start), visible});
    start += lengths[v];
  }
  return entries;
}

std::vector<ViewEntry> view(const std::vector<int32_t>& blocks, const std::vector<int64_t>& lengths,
                            int64_t position) {
  std::vector<ViewEntry> entries;
  const size_t appended = append_view_entries(blocks, lengths, position, entries);
  EXPECT_EQ(appended, entries.size());
  return entries;
}

TEST(ViewEntries, OwnBlockIsCausal) {
  // A prefill of 4 tokens into block 7, alone in its view: token i sees keys 0..i.
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(view({7}, {4}, i),
              (std::vector<ViewEntry>{{7, static_cast<int32_t>(i), static_cast<int32_t>(i + 1)}}));
}

TEST(ViewEntries, EarlierBlocksAreWhollyVisible) {
  // [common 10, other worker's step 4, own step 6]; the token is the own step's third (index 2):
  // position 10 + 4 + 2 = 16.
  EXPECT_EQ(view({0, 3, 5}, {10, 4, 6}, 16),
            (std::vector<ViewEntry>{{0, 16, 10}, {3, 6, 4}, {5, 2, 3}}));
}

TEST(ViewEntries, BlocksPastThePositionAreSkipped) {
  // The token at position 3 lies in the first block: it sees 4 of its keys and nothing after it.
  EXPECT_EQ(view({0, 1, 2}, {10, 5, 2}, 3), (std::vector<ViewEntry>{{0, 3, 4}}));
  // A block starting exactly at the token sees one key (the token's own).
  EXPECT_EQ(view({0, 1}, {10, 5}, 10), (std::vector<ViewEntry>{{0, 10, 10}, {1, 0, 1}}));
}

TEST(ViewEntries, EmptyBlocksAreSkipped) {
  EXPECT_EQ(view({4, 8, 9}, {3, 0, 2}, 4), (std::vector<ViewEntry>{{4, 4, 3}, {9, 1, 2}}));
  EXPECT_TRUE(view({}, {}, 0).empty());
}

TEST(ViewEntries, AppendsAndCountsOnlyItsOwnEntries) {
  std::vector<ViewEntry> entries = {{1, 2, 3}};
  const std::vector<int32_t> blocks = {6, 2};
  const std::vector<int64_t> lengths = {5, 0};
  EXPECT_EQ(append_view_entries(blocks, lengths, 9, entries), 1u);
  EXPECT_EQ(entries, (std::vector<ViewEntry>{{1, 2, 3}, {6, 9, 5}}));
}

TEST(ViewEntries, MismatchedLengthsThrow) {
  std::vector<ViewEntry> entries;
  const std::vector<int32_t> blocks = {0, 1};
  const std::vector<int64_t> lengths = {3};
  EXPECT_THROW(append_view_entries(blocks, lengths, 2, entries), Error);
}

TEST(ViewEntries, MatchTheDefinitionOnRandomViews) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> block_count(1, 6);
  std::uniform_int_distribution<int64_t> length(0, 20);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int32_t> blocks;
    std::vector<int64_t> lengths;
    int64_t total = 0;
    for (int v = block_count(rng); v > 0; --v) {
      blocks.push_back(static_cast<int32_t>(blocks.size()) * 3 + 1);
      lengths.push_back(length(rng));
      total += lengths.back();
    }
    for (int64_t position = 0; position <= total + 2; ++position)
      EXPECT_EQ(view(blocks, lengths, position), naive_view(blocks, lengths, position))
          << "trial " << trial << ", position " << position;
  }
}

}  // namespace
}  // namespace hogwild
