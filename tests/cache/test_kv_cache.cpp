// Block and page bookkeeping of the KV cache: rows, page reuse, limits, the page table.
#include <gtest/gtest.h>

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
  for (size_t p = 0; p < cache->pages(a).size(); ++p) EXPECT_EQ(t[a * 3 + static_cast<int64_t>(p)], cache->pages(a)[p]);
  for (size_t p = 0; p < cache->pages(b).size(); ++p) EXPECT_EQ(t[b * 3 + static_cast<int64_t>(p)], cache->pages(b)[p]);
  std::set<int32_t> all(cache->pages(a).begin(), cache->pages(a).end());
  all.insert(cache->pages(b).begin(), cache->pages(b).end());
  EXPECT_EQ(all.size(), cache->pages(a).size() + cache->pages(b).size());  // no page shared
}

}  // namespace
}  // namespace hogwild
