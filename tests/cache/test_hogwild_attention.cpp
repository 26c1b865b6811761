// Exactness of the RoPE trick (docs/design.md §3-§4): attention through block-local keys and
// per-block query rotations equals naive attention over the same tokens laid out contiguously in
// each worker's view order, with keys rotated at their true positions. Random block lengths, GQA
// ratios, head dims 64 and 128, several workers with different views of the same blocks, and
// again after history merges (page-aligned, pages reused; and unaligned, copied).
// Tolerance: 1e-5 relative (fp32; each rotation rounds to ~1e-7 and sums are short).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "cache/kv_cache.h"
#include "engine/cache_merge.h"
#include "kernels/backend.h"
#include "kernels/view_entry.h"

namespace hogwild {
namespace {

struct Geometry {
  int64_t heads, kv_heads, head_dim;
};

class HogwildAttention : public ::testing::TestWithParam<Geometry> {
 protected:
  void SetUp() override {
    const Geometry g = GetParam();
    config_.layers = 1;
    config_.heads = g.heads;
    config_.kv_heads = g.kv_heads;
    config_.head_dim = g.head_dim;
    width_ = g.kv_heads * g.head_dim;
    for (int64_t j = 0; j < g.head_dim / 2; ++j)
      inv_freq_.push_back(static_cast<float>(std::pow(10000.0, -2.0 * j / g.head_dim)));
    backend_ = make_cpu_backend();
    CacheOptions options{64, 8, 8, 32};
    cache_ = std::make_unique<KvCache>(*backend_, config_, options);
    freq_ = backend_->allocate(1, g.head_dim / 2, DType::F32);
    backend_->upload_f32(freq_, inv_freq_.data());
  }
  void TearDown() override {
    cache_.reset();
    backend_->release(freq_);
  }

  std::vector<float> random_vector(size_t n) {
    std::vector<float> v(n);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& x : v) x = dist(rng_);
    return v;
  }

  // Raw (unrotated) keys and values of every token, by block.
  struct Tokens {
    std::vector<std::vector<float>> keys, values;
  };

  // Writes `count` new tokens into `block`: keys rotated to their block-local index.
  void append(BlockId block, int64_t count) {
    std::vector<int32_t> rows;
    const int64_t first = cache_->length(block);
    cache_->extend(block, count, rows);
    Tokens& tokens = tokens_[block];
    std::vector<float> k_all, v_all;
    std::vector<int32_t> positions;
    for (int64_t t = 0; t < count; ++t) {
      tokens.keys.push_back(random_vector(static_cast<size_t>(width_)));
      tokens.values.push_back(random_vector(static_cast<size_t>(width_)));
      k_all.insert(k_all.end(), tokens.keys.back().begin(), tokens.keys.back().end());
      v_all.insert(v_all.end(), tokens.values.back().begin(), tokens.values.back().end());
      positions.push_back(static_cast<int32_t>(first + t));
    }
    Tensor k = backend_->allocate(count, width_, DType::F32);
    Tensor v = backend_->allocate(count, width_, DType::F32);
    Tensor p = backend_->allocate(count, 1, DType::I32);
    Tensor r = backend_->allocate(count, 1, DType::I32);
    backend_->upload_f32(k, k_all.data());
    backend_->upload_f32(v, v_all.data());
    backend_->upload_i32(p, positions.data());
    backend_->upload_i32(r, rows.data());
    backend_->rope(k, p, freq_, config_.head_dim);
    backend_->scatter_rows(k, r, cache_->keys(0));
    backend_->scatter_rows(v, r, cache_->values(0));
    for (Tensor* t : {&k, &v, &p, &r}) backend_->release(*t);
  }

  // History merge in the cache and in the reference's token lists (the source id may be reused).
  void merge(BlockId target, BlockId source) {
    CacheMerger(*backend_, *cache_, freq_, GetParam().head_dim)
        .apply(cache_->append_block(target, source));
    Tokens& to = tokens_[target];
    Tokens& from = tokens_[source];
    to.keys.insert(to.keys.end(), from.keys.begin(), from.keys.end());
    to.values.insert(to.values.end(), from.values.begin(), from.values.end());
    tokens_.erase(source);
  }

  // Naive reference in double: the view's tokens laid out contiguously, keys rotated at their
  // view positions, the query (last position of the view) rotated at its position.
  std::vector<double> naive(const std::vector<float>& q, const std::vector<BlockId>& view) {
    const Geometry g = GetParam();
    std::vector<const std::vector<float>*> keys, values;
    for (BlockId b : view)
      for (size_t t = 0; t < tokens_[b].keys.size(); ++t) {
        keys.push_back(&tokens_[b].keys[t]);
        values.push_back(&tokens_[b].values[t]);
      }
    const auto rotate = [&](const float* x, double position, std::vector<double>& out) {
      const int64_t half = g.head_dim / 2;
      out.resize(static_cast<size_t>(g.head_dim));
      for (int64_t j = 0; j < half; ++j) {
        const double angle = position * std::pow(10000.0, -2.0 * j / g.head_dim);
        out[static_cast<size_t>(j)] = x[j] * std::cos(angle) - x[j + half] * std::sin(angle);
        out[static_cast<size_t>(j + half)] = x[j + half] * std::cos(angle) + x[j] * std::sin(angle);
      }
    };
    const double query_position = static_cast<double>(keys.size()) - 1;
    std::vector<double> result;
    const int64_t group = g.heads / g.kv_heads;
    std::vector<double> rq, rk;
    for (int64_t h = 0; h < g.heads; ++h) {
      rotate(q.data() + h * g.head_dim, query_position, rq);
      std::vector<double> scores;
      double maximum = -1e300;
      for (size_t p = 0; p < keys.size(); ++p) {
        rotate(keys[p]->data() + h / group * g.head_dim, static_cast<double>(p), rk);
        double dot = 0;
        for (int64_t c = 0; c < g.head_dim; ++c)
          dot += rq[static_cast<size_t>(c)] * rk[static_cast<size_t>(c)];
        scores.push_back(dot / std::sqrt(static_cast<double>(g.head_dim)));
        maximum = std::max(maximum, scores.back());
      }
      double total = 0;
      for (double& s : scores) total += (s = std::exp(s - maximum));
      for (int64_t c = 0; c < g.head_dim; ++c) {
        double o = 0;
        for (size_t p = 0; p < keys.size(); ++p)
          o += scores[p] / total * (*values[p])[static_cast<size_t>(h / group * g.head_dim + c)];
        result.push_back(o);
      }
    }
    return result;
  }

  // The engine's path: one query row per view, its entries from append_view_entries.
  std::vector<std::vector<float>> hogwild(const std::vector<std::vector<float>>& queries,
                                          const std::vector<std::vector<BlockId>>& views) {
    const Geometry g = GetParam();
    std::vector<int32_t> offsets = {0};
    std::vector<ViewEntry> entries;
    std::vector<float> q_all;
    for (size_t w = 0; w < views.size(); ++w) {
      std::vector<int64_t> lengths;
      int64_t total = 0;
      for (BlockId b : views[w]) {
        lengths.push_back(cache_->length(b));
        total += lengths.back();
      }
      const int64_t position = total - 1;  // the query is the view's last token
      append_view_entries(views[w], lengths, position, entries);
      offsets.push_back(static_cast<int32_t>(entries.size()));
      q_all.insert(q_all.end(), queries[w].begin(), queries[w].end());
    }
    const auto rows = static_cast<int64_t>(views.size());
    Tensor q = backend_->allocate(rows, g.heads * g.head_dim, DType::F32);
    Tensor out = backend_->allocate(rows, g.heads * g.head_dim, DType::F32);
    Tensor o = backend_->allocate(rows + 1, 1, DType::I32);
    Tensor e = backend_->allocate(static_cast<int64_t>(entries.size()), 3, DType::I32);
    backend_->upload_f32(q, q_all.data());
    backend_->upload_i32(o, offsets.data());
    backend_->upload_i32(e, reinterpret_cast<const int32_t*>(entries.data()));
    const AttentionShape shape{
        g.heads, g.kv_heads, g.head_dim,
        static_cast<float>(1.0 / std::sqrt(static_cast<double>(g.head_dim)))};
    backend_->block_attention(q, cache_->keys(0), cache_->values(0), cache_->page_table(),
                              cache_->page_size(), o, e, freq_, shape, out);
    std::vector<float> flat(static_cast<size_t>(rows * g.heads * g.head_dim));
    backend_->download_f32(out, flat.data());
    for (Tensor* t : {&q, &out, &o, &e}) backend_->release(*t);
    std::vector<std::vector<float>> result;
    for (int64_t r = 0; r < rows; ++r)
      result.emplace_back(flat.begin() + r * g.heads * g.head_dim,
                          flat.begin() + (r + 1) * g.heads * g.head_dim);
    return result;
  }

  void expect_views_exact(const std::vector<std::vector<BlockId>>& views) {
    const Geometry g = GetParam();
    std::vector<std::vector<float>> queries;
    for (size_t w = 0; w < views.size(); ++w)
      queries.push_back(random_vector(static_cast<size_t>(g.heads * g.head_dim)));
    const auto actual = hogwild(queries, views);
    for (size_t w = 0; w < views.size(); ++w) {
      const std::vector<double> expected = naive(queries[w], views[w]);
      double worst = 0;
      for (size_t i = 0; i < expected.size(); ++i)
        worst = std::max(
            worst, std::abs(actual[w][i] - expected[i]) / std::max(1.0, std::abs(expected[i])));
      EXPECT_LE(worst, 1e-5) << "view " << w;
    }
  }

  ModelConfig config_;
  int64_t width_ = 0;
  std::vector<float> inv_freq_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvCache> cache_;
  Tensor freq_;
  std::map<BlockId, Tokens> tokens_;
  std::mt19937 rng_{2024};
};

TEST_P(HogwildAttention, ViewsOfSharedBlocksEqualContiguousAttention) {
  std::uniform_int_distribution<int64_t> length(1, 40);
  const BlockId common = cache_->create_block(), header = cache_->create_block();
  const BlockId alice = cache_->create_block(), bob = cache_->create_block(),
                carol = cache_->create_block();
  append(common, 37);
  append(header, 5);
  for (BlockId b : {alice, bob, carol}) append(b, length(rng_));
  // Each worker's own step is last; the others' steps come in a different order for each.
  expect_views_exact({{common, header, bob, carol, alice},
                      {common, header, alice, carol, bob},
                      {common, header, alice, bob, carol},
                      {common, carol}});
  // The steps grow (as during decoding): no key is rewritten, the views still agree.
  for (int round = 0; round < 3; ++round) {
    for (BlockId b : {alice, bob, carol}) append(b, 1 + round);
    expect_views_exact({{common, header, bob, carol, alice}, {common, header, alice, carol, bob}});
  }
}

TEST_P(HogwildAttention, HistoryMergesKeepAttentionExact) {
  const BlockId common = cache_->create_block(), alice = cache_->create_block(),
                bob = cache_->create_block();
  append(common, 16);  // page-aligned (page size 8): alice's pages are reused in place
  append(alice, 11);
  append(bob, 6);
  expect_views_exact({{common, bob, alice}, {common, alice, bob}});
  merge(common, alice);
  EXPECT_EQ(cache_->length(common), 27);
  const BlockId alice2 = cache_->create_block();
  append(alice2, 3);
  expect_views_exact({{common, bob, alice2}, {common, alice2, bob}});
  // common now ends mid-page (27 tokens): bob's tokens are copied and rotated by 27.
  merge(common, bob);
  EXPECT_EQ(cache_->length(common), 33);
  const BlockId bob2 = cache_->create_block();
  append(bob2, 9);
  expect_views_exact({{common, bob2, alice2}, {common, alice2, bob2}, {common}});
}

INSTANTIATE_TEST_SUITE_P(Geometries, HogwildAttention,
                         ::testing::Values(Geometry{4, 4, 64}, Geometry{6, 2, 64},
                                           Geometry{8, 1, 128}, Geometry{4, 2, 128}),
                         [](const ::testing::TestParamInfo<Geometry>& param) {
                           return "h" + std::to_string(param.param.heads) + "_kv" +
                                  std::to_string(param.param.kv_heads) + "_d" +
                                  std::to_string(param.param.head_dim);
                         });

}  // namespace
}  // namespace hogwild
