// Block and page bookkeeping of the KV cache: rows, page reuse, limits, the page table.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "cache/kv_cache.h"
#include "common/error.h"

namespace hogwild {
namespace {

struct CacheFixture : ::testing::Test {
  CacheFixture() {
    config.layers = 2;
    config.heads = 2;
    config.kv_heads = 1;
    config.head_dim = 4;
    backend = make_cpu_backend();
    cache = std::make_unique<KvCache>(*backend, config, CacheOptions{6, 4, 3, 3});
  }
  ModelConfig config;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<KvCache> cache;
};

TEST_F(CacheFixture, RowsFollowPagesAndPagesAreReused) {
  const BlockId a = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(a, 6, rows);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(cache->length(a), 6);
  EXPECT_EQ(cache->pages(a).size(), 2u);
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(rows[static_cast<size_t>(i)], cache->row(a, i));
    EXPECT_EQ(cache->row(a, i), cache->pages(a)[static_cast<size_t>(i / 4)] * 4 + i % 4);
  }
  EXPECT_EQ(cache->free_pages(), 4);
  const std::vector<int32_t> freed = cache->pages(a);
  cache->release_block(a);
  EXPECT_EQ(cache->free_pages(), 6);
  const BlockId b = cache->create_block();
  rows.clear();
  cache->extend(b, 1, rows);
  EXPECT_EQ(cache->pages(b)[0], freed[0]);  // most recently freed first
}

TEST_F(CacheFixture, LimitsAreClearErrors) {
  const BlockId a = cache->create_block();
  std::vector<int32_t> rows;
  EXPECT_THROW(cache->extend(a, 13, rows), Error);  // 3 pages of 4 tokens per block
  cache->extend(a, 12, rows);
  const BlockId b = cache->create_block();
  cache->extend(b, 12, rows);
  const BlockId c = cache->create_block();
  try {
    cache->extend(c, 1, rows);  // all 6 pages used
    FAIL() << "expected an out-of-pages error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of pages"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cache->create_block(), Error);  // 3 blocks at most
}

TEST_F(CacheFixture, PageTableListsEachBlocksPages) {
  const BlockId a = cache->create_block(), b = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(a, 5, rows);
  cache->extend(b, 9, rows);
  const Tensor& table = cache->page_table();
  ASSERT_EQ(table.rows, 3);
  ASSERT_EQ(table.cols, 3);
  const auto* t = static_cast<const int32_t*>(table.data);  // CPU backend: host memory
  for (size_t p = 0; p < cache->pages(a).size(); ++p)
    EXPECT_EQ(t[a * 3 + static_cast<int64_t>(p)], cache->pages(a)[p]);
  for (size_t p = 0; p < cache->pages(b).size(); ++p)
    EXPECT_EQ(t[b * 3 + static_cast<int64_t>(p)], cache->pages(b)[p]);
  std::set<int32_t> all(cache->pages(a).begin(), cache->pages(a).end());
  all.insert(cache->pages(b).begin(), cache->pages(b).end());
  EXPECT_EQ(all.size(), cache->pages(a).size() + cache->pages(b).size());  // no page shared
}

// The page table's row for `block`, read from the backend (CPU: host memory).
std::vector<int32_t> table_row(KvCache& cache, BlockId block) {
  const Tensor& table = cache.page_table();
  const auto* t = static_cast<const int32_t*>(table.data);
  return {t + block * table.cols, t + (block + 1) * table.cols};
}

TEST_F(CacheFixture, TruncateWithinAPageKeepsItsPagesAndRows) {
  const BlockId a = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(a, 7, rows);
  const std::vector<int32_t> pages = cache->pages(a);
  cache->truncate(a, 5);  // 7 and 5 tokens both need two pages of 4
  EXPECT_EQ(cache->length(a), 5);
  EXPECT_EQ(cache->pages(a), pages);
  EXPECT_EQ(cache->free_pages(), 4);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(cache->row(a, i), rows[static_cast<size_t>(i)]);
  EXPECT_THROW(cache->row(a, 5), Error) << "index 5 is past the end now";
  cache->truncate(a, 5);  // to its own length: nothing changes
  EXPECT_EQ(cache->length(a), 5);
  EXPECT_EQ(cache->pages(a), pages);
}

TEST_F(CacheFixture, TruncateReturnsPagesMostRecentlyTakenFirst) {
  const BlockId a = cache->create_block(), b = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(a, 4, rows);  // a: one full page
  cache->extend(b, 1, rows);
  const int64_t free_before = cache->free_pages();
  const std::vector<int32_t> table_before = table_row(*cache, a);
  rows.clear();
  cache->extend(a, 8, rows);  // two more pages, p1 then p2
  ASSERT_EQ(cache->pages(a).size(), 3u);
  const int32_t p1 = cache->pages(a)[1], p2 = cache->pages(a)[2];
  EXPECT_EQ(cache->free_pages(), free_before - 2);

  cache->truncate(a, 4);
  EXPECT_EQ(cache->length(a), 4);
  EXPECT_EQ(cache->pages(a).size(), 1u);
  EXPECT_EQ(cache->free_pages(), free_before);
  EXPECT_EQ(table_row(*cache, a), table_before) << "the page table forgets the returned pages";
  // p2 went back first and p1 last, so the pool is as it was: the same pages come out in the
  // same order, p1 first.
  const BlockId c = cache->create_block();
  std::vector<int32_t> c_rows;
  cache->extend(c, 5, c_rows);
  EXPECT_EQ(cache->pages(c), (std::vector<int32_t>{p1, p2}));
}

TEST_F(CacheFixture, TruncateToZeroReturnsEveryPageAndRejectsGrowing) {
  const BlockId a = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(a, 9, rows);
  EXPECT_THROW(cache->truncate(a, 10), Error) << "truncate never grows a block";
  EXPECT_THROW(cache->truncate(a, -1), Error);
  EXPECT_EQ(cache->length(a), 9);
  cache->truncate(a, 0);
  EXPECT_EQ(cache->length(a), 0);
  EXPECT_TRUE(cache->pages(a).empty());
  EXPECT_EQ(cache->free_pages(), 6);
  EXPECT_EQ(table_row(*cache, a), (std::vector<int32_t>{0, 0, 0}));
}

TEST_F(CacheFixture, AlignedMergeReusesThePagesAndOnlyRotates) {
  const BlockId common = cache->create_block(), step = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(common, 4, rows);  // a whole page: L = 4
  cache->extend(step, 6, rows);
  const std::vector<int32_t> common_pages = cache->pages(common);
  const std::vector<int32_t> step_pages = cache->pages(step);
  std::vector<int32_t> step_rows;
  for (int64_t i = 0; i < 6; ++i) step_rows.push_back(cache->row(step, i));
  const int64_t free_before = cache->free_pages();

  const MergePlan plan = cache->append_block(common, step);
  EXPECT_EQ(plan.rotation, 4);
  EXPECT_EQ(plan.from, step_rows);
  EXPECT_EQ(plan.to, step_rows) << "pages reused in place: from == to";
  EXPECT_FALSE(plan.moves_rows());
  EXPECT_FALSE(plan.empty());
  EXPECT_EQ(cache->length(common), 10);
  std::vector<int32_t> joined = common_pages;
  joined.insert(joined.end(), step_pages.begin(), step_pages.end());
  EXPECT_EQ(cache->pages(common), joined);
  for (int64_t j = 0; j < 6; ++j)
    EXPECT_EQ(cache->row(common, 4 + j), step_rows[static_cast<size_t>(j)]) << "key " << j;
  EXPECT_EQ(cache->free_pages(), free_before) << "no page taken or returned";
  EXPECT_THROW(cache->length(step), Error) << "the step block is released";
  EXPECT_EQ(table_row(*cache, common), joined);
}

TEST_F(CacheFixture, UnalignedMergeMovesTheRowsIntoFreshOnes) {
  const BlockId common = cache->create_block(), step = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(common, 5, rows);  // L = 5: the second page is partly full
  cache->extend(step, 6, rows);
  const std::vector<int32_t> common_pages = cache->pages(common);
  std::vector<int32_t> step_rows;
  for (int64_t i = 0; i < 6; ++i) step_rows.push_back(cache->row(step, i));
  const int64_t free_before = cache->free_pages();

  const MergePlan plan = cache->append_block(common, step);
  EXPECT_EQ(plan.rotation, 5);
  EXPECT_EQ(plan.from, step_rows);
  ASSERT_EQ(plan.to.size(), 6u);
  EXPECT_TRUE(plan.moves_rows());
  // By hand: keys 5..7 fill the rest of common's second page, keys 8..10 open a third page.
  ASSERT_EQ(cache->pages(common).size(), 3u);
  EXPECT_EQ(std::vector<int32_t>(cache->pages(common).begin(), cache->pages(common).begin() + 2),
            common_pages);
  const int32_t second = common_pages[1], third = cache->pages(common)[2];
  EXPECT_EQ(plan.to, (std::vector<int32_t>{second * 4 + 1, second * 4 + 2, second * 4 + 3,
                                           third * 4, third * 4 + 1, third * 4 + 2}));
  for (int64_t j = 0; j < 6; ++j)
    EXPECT_EQ(cache->row(common, 5 + j), plan.to[static_cast<size_t>(j)]);
  // The new page is taken before the step's pages go back, so no target row is a source row.
  for (int32_t to : plan.to)
    EXPECT_EQ(std::count(plan.from.begin(), plan.from.end(), to), 0) << "row " << to;
  EXPECT_EQ(cache->length(common), 11);
  EXPECT_EQ(cache->free_pages(), free_before - 1 + 2) << "one page taken, the step's two returned";
}

TEST_F(CacheFixture, MergingAnEmptyStepOnlyReleasesIt) {
  const BlockId common = cache->create_block(), step = cache->create_block();
  std::vector<int32_t> rows;
  cache->extend(common, 5, rows);
  const std::vector<int32_t> pages = cache->pages(common);
  const MergePlan plan = cache->append_block(common, step);
  EXPECT_TRUE(plan.empty());
  EXPECT_TRUE(plan.to.empty());
  EXPECT_EQ(cache->length(common), 5);
  EXPECT_EQ(cache->pages(common), pages);
  EXPECT_THROW(cache->length(step), Error);
}

}  // namespace
}  // namespace hogwild
