// The CPU backend's tiled (prefill) attention kernel (kernels/cpu/tiled_attention.h) against the
// per-row kernel it replaces for many-entry blocks and against attention by its definition in
// double: prefill rows of one view (causal in their own block, every key of the earlier blocks),
// rows of other views over the same blocks with other offsets, decode-like rows, GQA ratios 1, 3
// and 8, head dims 32/64/128, block lengths that are not multiples of the page, the key tile
// (128) or the query tile, pools of 1 and 3 threads; the tiles on BLAS and on the AVX2 and
// AVX-512 microkernels (where the CPU has them).
//
// Tolerance 1e-5 relative (to max(1, |x|)): both kernels are fp32, but the tiled one sums the
// scores in BLAS's (or its microkernels') order, rescales its running sums once per key tile
// (online softmax) instead of once per 8-page chunk, and uses a polynomial exp (relative error
// ~1e-7), so the bits differ; outputs are convex combinations of values in [-1, 1], so each
// reordering costs ~1e-7.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/block_attention.h"
#include "kernels/cpu/quant_matmul.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/tiled_attention.h"
#include "kernels/view_entry.h"

namespace hogwild::cpu {
namespace {

constexpr double kTolerance = 1e-5;

struct Geometry {
  int64_t heads, kv_heads, head_dim;
};

// A paged K/V pool with blocks on shuffled pages, query rows and their view entries.
struct Problem {
  AttentionShape shape;
  int64_t page_size = 16, max_pages = 0, pages = 0;
  std::vector<float> k, v, q, freq;
  std::vector<int32_t> table;  // blocks x max_pages, -1 past a block's pages
  std::vector<std::vector<ViewEntry>> views;
};

Tensor host_tensor(std::vector<float>& data, int64_t cols) {
  return Tensor{data.data(), DType::F32, static_cast<int64_t>(data.size()) / cols, cols, cols};
}
Tensor host_tensor(std::vector<int32_t>& data, int64_t cols) {
  return Tensor{data.data(), DType::I32, static_cast<int64_t>(data.size()) / cols, cols, cols};
}

class TiledAttention : public ::testing::TestWithParam<Geometry> {
 protected:
  std::vector<float> random_values(int64_t n) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> out(static_cast<size_t>(n));
    for (float& x : out) x = dist(rng_);
    return out;
  }

  // Blocks of the given lengths on pages in order (as a fresh cache hands them out: the tiled
  // kernel reads adjacent pages in place) or shuffled (it copies each key tile).
  Problem make_problem(const std::vector<int64_t>& lengths, bool shuffled = true) {
    const Geometry g = GetParam();
    Problem p;
    p.shape = {g.heads, g.kv_heads, g.head_dim,
               static_cast<float>(1.0 / std::sqrt(static_cast<double>(g.head_dim)))};
    for (int64_t length : lengths) {
      const int64_t pages = (length + p.page_size - 1) / p.page_size;
      p.pages += pages;
      p.max_pages = std::max(p.max_pages, pages);
    }
    std::vector<int32_t> ids(static_cast<size_t>(p.pages));
    std::iota(ids.begin(), ids.end(), 0);
    if (shuffled) std::shuffle(ids.begin(), ids.end(), rng_);
    p.table.assign(lengths.size() * static_cast<size_t>(p.max_pages), -1);
    size_t next = 0;
    for (size_t b = 0; b < lengths.size(); ++b)
      for (int64_t page = 0; page * p.page_size < lengths[b]; ++page)
        p.table[b * static_cast<size_t>(p.max_pages) + static_cast<size_t>(page)] = ids[next++];
    const int64_t width = g.kv_heads * g.head_dim;
    p.k = random_values(p.pages * p.page_size * width);
    p.v = random_values(p.pages * p.page_size * width);
    for (int64_t j = 0; j < g.head_dim / 2; ++j)
      p.freq.push_back(static_cast<float>(std::pow(10000.0, -2.0 * j / g.head_dim)));
    return p;
  }

  // Rows for tokens at view positions [first, first + count) of a view of `blocks` (block
  // lengths by block id), as BatchBuilder::build makes them with append_view_entries.
  static void add_rows(Problem& p, const std::vector<int32_t>& blocks,
                       const std::vector<int64_t>& lengths, int64_t first, int64_t count) {
    std::vector<int64_t> view_lengths;
    for (int32_t b : blocks) view_lengths.push_back(lengths[static_cast<size_t>(b)]);
    for (int64_t position = first; position < first + count; ++position) {
      std::vector<ViewEntry> entries;
      append_view_entries(blocks, view_lengths, position, entries);
      p.views.push_back(entries);
    }
  }

  void finish(Problem& p) {
    const Geometry g = GetParam();
    p.q = random_values(static_cast<int64_t>(p.views.size()) * g.heads * g.head_dim);
  }

  // Attention by its definition, in double: per row and head, the query rotated by each entry's
  // query position, the entry's visible keys scored, ONE softmax over them all.
  static std::vector<double> by_definition(const Problem& p) {
    const int64_t d = p.shape.head_dim, heads = p.shape.heads;
    const int64_t group = heads / p.shape.kv_heads, width = p.shape.kv_heads * d;
    std::vector<double> expected;
    for (size_t r = 0; r < p.views.size(); ++r)
      for (int64_t h = 0; h < heads; ++h) {
        const float* q = p.q.data() + (static_cast<int64_t>(r) * heads + h) * d;
        std::vector<double> scores;
        std::vector<const float*> value_rows;
        for (const ViewEntry& entry : p.views[r]) {
          std::vector<double> rotated(static_cast<size_t>(d));
          for (int64_t j = 0; j < d / 2; ++j) {
            const double angle = entry.query_position * double{p.freq[static_cast<size_t>(j)]};
            rotated[static_cast<size_t>(j)] =
                q[j] * std::cos(angle) - q[j + d / 2] * std::sin(angle);
            rotated[static_cast<size_t>(j + d / 2)] =
                q[j + d / 2] * std::cos(angle) + q[j] * std::sin(angle);
          }
          for (int32_t j = 0; j < entry.visible; ++j) {
            const int64_t row =
                p.table[static_cast<size_t>(entry.block * p.max_pages + j / p.page_size)] *
                    p.page_size +
                j % p.page_size;
            const float* key = p.k.data() + row * width + h / group * d;
            double dot = 0;
            for (int64_t c = 0; c < d; ++c) dot += rotated[static_cast<size_t>(c)] * key[c];
            scores.push_back(dot * p.shape.scale);
            value_rows.push_back(p.v.data() + row * width + h / group * d);
          }
        }
        double maximum = -1e300, total = 0;
        for (double s : scores) maximum = std::max(maximum, s);
        for (double& s : scores) total += (s = std::exp(s - maximum));
        for (int64_t c = 0; c < d; ++c) {
          double o = 0;
          for (size_t j = 0; j < scores.size(); ++j) o += scores[j] / total * value_rows[j][c];
          expected.push_back(scores.empty() ? 0.0 : o);
        }
      }
    return expected;
  }

  static std::vector<float> run(Problem& p, AttentionKernel kernel, int threads) {
    std::vector<int32_t> offsets = {0}, entries;
    for (const auto& view : p.views) {
      for (const ViewEntry& e : view)
        entries.insert(entries.end(), {e.block, e.query_position, e.visible});
      offsets.push_back(static_cast<int32_t>(entries.size() / 3));
    }
    if (entries.empty()) entries = {0, 0, 0};  // a tensor needs a row; offsets say none is read
    const int64_t width = p.shape.heads * p.shape.head_dim;
    const int64_t kv_width = p.shape.kv_heads * p.shape.head_dim;
    std::vector<float> out(p.q.size(), std::nanf(""));
    ThreadPool pool(threads);
    block_attention(host_tensor(p.q, width), host_tensor(p.k, kv_width), host_tensor(p.v, kv_width),
                    host_tensor(p.table, p.max_pages), p.page_size, host_tensor(offsets, 1),
                    host_tensor(entries, 3), host_tensor(p.freq, p.shape.head_dim / 2), p.shape,
                    host_tensor(out, width), pool, kernel);
    return out;
  }

  template <typename Expected>
  static double worst_error(const std::vector<float>& actual, const Expected& expected) {
    EXPECT_EQ(actual.size(), expected.size());
    double worst = 0;
    for (size_t i = 0; i < actual.size(); ++i) {
      if (!std::isfinite(actual[i])) return INFINITY;
      worst = std::max(worst, std::abs(actual[i] - double{expected[i]}) /
                                  std::max(1.0, std::abs(double{expected[i]})));
    }
    return worst;
  }

  // The tiled kernel, the per-row kernel and auto, at 1 and 3 threads, against the definition
  // and against each other; the tiles on BLAS and, where the CPU has them, on AVX2 and AVX-512.
  void expect_kernels_agree(Problem& p) {
    const std::vector<double> expected = by_definition(p);
    const QuantIsa chosen = quant_isa();
    std::vector<QuantIsa> isas = {QuantIsa::Scalar};
    for (QuantIsa isa : {QuantIsa::Avx2, QuantIsa::Avx512})
      if (quant_isa_available(isa)) isas.push_back(isa);
    for (QuantIsa isa : isas) {
      set_quant_isa(isa);
      const int64_t d = p.shape.head_dim;
      const std::string tiles = tile_isa_available(TileIsa::kAvx512, d) ? "avx512"
                                : tile_isa_available(TileIsa::kAvx2, d) ? "avx2"
                                                                        : "blas";
      for (int threads : {1, 3}) {
        const std::string where = tiles + " tiles, threads " + std::to_string(threads);
        const std::vector<float> per_row = run(p, AttentionKernel::kPerRow, threads);
        const std::vector<float> tiled = run(p, AttentionKernel::kTiled, threads);
        const std::vector<float> automatic = run(p, AttentionKernel::kAuto, threads);
        EXPECT_LE(worst_error(per_row, expected), kTolerance) << "per-row, " << where;
        EXPECT_LE(worst_error(tiled, expected), kTolerance) << "tiled, " << where;
        EXPECT_LE(worst_error(tiled, per_row), kTolerance) << "tiled vs per-row, " << where;
        EXPECT_LE(worst_error(automatic, expected), kTolerance) << "auto, " << where;
      }
    }
    set_quant_isa(chosen);
  }

  std::mt19937 rng_{7};
};

// A prompt prefilled in one batch into its own block after a shared one (the Hogwild common
// block): causal in block 1, all of block 0 visible; 300 keys = 2 key tiles + 44.
TEST_P(TiledAttention, PrefillChunkAfterASharedBlock) {
  const std::vector<int64_t> lengths = {57, 243};
  Problem p = make_problem(lengths);
  // The chunk is the last 181 tokens of block 1; the first 62 were prefilled before.
  add_rows(p, {0, 1}, lengths, 57 + 62, 181);
  finish(p);
  expect_kernels_agree(p);
}

// Rows of three views over the same blocks in different orders (so each block sits at a
// different offset, and each row's queries are rotated differently per block), together with
// decode-like rows that read few entries: auto then mixes both kernels in one call.
TEST_P(TiledAttention, ViewsWithOffsetsAndDecodeRows) {
  const std::vector<int64_t> lengths = {140, 33, 75, 9};
  Problem p = make_problem(lengths);
  add_rows(p, {0, 1, 2}, lengths, 140 + 33, 75);  // prefill of block 2, after 0 and 1
  add_rows(p, {1, 0, 2}, lengths, 33 + 140 + 10, 40);
  add_rows(p, {0, 3}, lengths, 140 + 8, 1);  // a decode row of another team
  add_rows(p, {2, 1, 3}, lengths, 75 + 33 + 8, 1);
  finish(p);
  expect_kernels_agree(p);
}

// A long causal prefill from position 0 (the tiles cross the diagonal), with a row count that
// is not a multiple of the query tile.
TEST_P(TiledAttention, CausalPrefillFromTheStart) {
  const std::vector<int64_t> lengths = {397};
  for (bool shuffled : {true, false}) {
    Problem p = make_problem(lengths, shuffled);
    add_rows(p, {0}, lengths, 0, 397);
    finish(p);
    expect_kernels_agree(p);
  }
}

// A row that sees nothing (no entries) gets zeros from both kernels.
TEST_P(TiledAttention, RowWithoutEntriesIsZero) {
  const std::vector<int64_t> lengths = {20};
  Problem p = make_problem(lengths);
  add_rows(p, {0}, lengths, 0, 20);
  p.views.emplace_back();
  finish(p);
  for (AttentionKernel kernel : {AttentionKernel::kPerRow, AttentionKernel::kTiled}) {
    const std::vector<float> out = run(p, kernel, 3);
    const int64_t width = p.shape.heads * p.shape.head_dim;
    for (int64_t c = 0; c < width; ++c) EXPECT_EQ(out[static_cast<size_t>(20 * width + c)], 0.0f);
  }
  expect_kernels_agree(p);
}

INSTANTIATE_TEST_SUITE_P(Geometries, TiledAttention,
                         ::testing::Values(Geometry{4, 4, 64}, Geometry{9, 3, 64},
                                           Geometry{8, 1, 128}, Geometry{4, 2, 32}),
                         [](const ::testing::TestParamInfo<Geometry>& param) {
                           return "h" + std::to_string(param.param.heads) + "_kv" +
                                  std::to_string(param.param.kv_heads) + "_d" +
                                  std::to_string(param.param.head_dim);
                         });

// attend_tile's scalar and AVX2 paths (exp, max) on the same tile: the same partials within the
// tolerance, and the normalised result equal to softmax attention in double.
TEST(TiledAttentionTile, ScalarAndAvx2PathsAgree) {
  constexpr int64_t kQueries = 37, kKeys = 301, kDim = 64, kPage = 16;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> q(kQueries * kDim), k(kKeys * kDim), v(kKeys * kDim);
  for (auto* data : {&q, &k, &v})
    for (float& x : *data) x = dist(rng) * 2.0f;  // wider scores than the scaled case
  std::vector<int32_t> visible(kQueries), pages((kKeys + kPage - 1) / kPage);
  for (int64_t i = 0; i < kQueries; ++i)
    visible[static_cast<size_t>(i)] = static_cast<int32_t>(kKeys - 8 * i);
  std::iota(pages.begin(), pages.end(), 0);
  const AttentionTile tile{q.data(), visible.data(), kQueries,     kDim, k.data(),
                           v.data(), kDim,           pages.data(), kPage};
  std::vector<double> expected;
  for (int64_t i = 0; i < kQueries; ++i) {
    std::vector<double> scores;
    for (int64_t j = 0; j < visible[static_cast<size_t>(i)]; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < kDim; ++c) dot += double{q[i * kDim + c]} * k[j * kDim + c];
      scores.push_back(dot);
    }
    const double maximum = *std::max_element(scores.begin(), scores.end());
    double total = 0;
    for (double& s : scores) total += (s = std::exp(s - maximum));
    for (int64_t c = 0; c < kDim; ++c) {
      double o = 0;
      for (size_t j = 0; j < scores.size(); ++j) o += scores[j] * v[j * kDim + c];
      expected.push_back(o / total);
    }
  }
  // "scalar" and "avx2": attend_tile at that level; "avx2 tile", "avx512 tile": attend_tile_simd.
  std::vector<std::string> paths = {"scalar"};
  if (best_simd_level() == SimdLevel::kAvx2) paths.emplace_back("avx2");
  if (tile_isa_available(TileIsa::kAvx2, kDim)) paths.emplace_back("avx2 tile");
  if (tile_isa_available(TileIsa::kAvx512, kDim)) paths.emplace_back("avx512 tile");
  std::vector<SoftmaxPartial> first_partials;
  for (const std::string& path : paths) {
    TileScratch scratch;
    std::vector<SoftmaxPartial> partials(kQueries);
    std::vector<float> values(kQueries * kDim);
    if (path == "avx2 tile" || path == "avx512 tile")
      attend_tile_simd(tile, scratch, path == "avx2 tile" ? TileIsa::kAvx2 : TileIsa::kAvx512,
                       partials.data(), values.data());
    else
      attend_tile(tile, scratch, path == "avx2" ? SimdLevel::kAvx2 : SimdLevel::kScalar,
                  partials.data(), values.data());
    double worst = 0;
    for (int64_t i = 0; i < kQueries; ++i)
      for (int64_t c = 0; c < kDim; ++c) {
        const double got =
            values[static_cast<size_t>(i * kDim + c)] / partials[static_cast<size_t>(i)].sum;
        const double want = expected[static_cast<size_t>(i * kDim + c)];
        worst = std::max(worst, std::abs(got - want) / std::max(1.0, std::abs(want)));
      }
    EXPECT_LE(worst, kTolerance) << path;
    // The partials themselves (what the merge combines) agree too: the same maximum, the sum
    // within the tolerance.
    if (first_partials.empty()) first_partials = partials;
    for (int64_t i = 0; i < kQueries; ++i) {
      const SoftmaxPartial& a = first_partials[static_cast<size_t>(i)];
      const SoftmaxPartial& b = partials[static_cast<size_t>(i)];
      EXPECT_NEAR(a.maximum, b.maximum, kTolerance * std::max(1.0f, std::abs(a.maximum)))
          << path << " query " << i;
      EXPECT_NEAR(a.sum, b.sum, kTolerance * a.sum) << path << " query " << i;
    }
  }
}

// The register-tiled kernels on shapes their microkernels split unevenly: query counts around
// the chunks (16 for AVX2, 32 for AVX-512) and their vectors, key counts around the score blocks
// (6 keys for AVX2, 8 for AVX-512), the 32-key value groups and the 128-key tile, queries that see
// nothing, head dims 8 to 144 (one to eighteen vectors), pages out of order.
class TileKernelShapes : public ::testing::TestWithParam<TileIsa> {};

TEST_P(TileKernelShapes, MatchTheBlasTileOnUnevenShapes) {
  const TileIsa isa = GetParam();
  const int64_t vector = isa == TileIsa::kAvx2 ? 8 : 16;
  if (!tile_isa_available(isa, vector)) GTEST_SKIP() << "this CPU has no such instructions";
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  constexpr int64_t kPage = 16;
  for (int64_t d : {8, 16, 24, 48, 64, 80, 128, 144})
    for (int64_t queries : {1, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 70})
      for (int64_t keys : {1, 5, 6, 7, 9, 13, 33, 128, 129, 263}) {
        if (d % vector != 0) continue;
        std::vector<float> q(static_cast<size_t>(queries * d));
        const int64_t kv_stride = d + 16;  // another head's columns between rows
        const int64_t pages = (keys + kPage - 1) / kPage;
        std::vector<float> k(static_cast<size_t>(pages * kPage * kv_stride)), v(k.size());
        for (auto* data : {&q, &k, &v})
          for (float& x : *data) x = dist(rng);
        std::vector<int32_t> visible(static_cast<size_t>(queries)),
            order(static_cast<size_t>(pages));
        for (int64_t i = 0; i < queries; ++i)
          visible[static_cast<size_t>(i)] =
              static_cast<int32_t>(i % 7 == 3 ? 0 : std::max<int64_t>(1, keys - 3 * i));
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        const AttentionTile tile{q.data(), visible.data(), queries,      d,    k.data(),
                                 v.data(), kv_stride,      order.data(), kPage};
        TileScratch blas_scratch, wide_scratch;
        std::vector<SoftmaxPartial> blas_partials(static_cast<size_t>(queries)),
            wide_partials(static_cast<size_t>(queries));
        std::vector<float> blas_values(static_cast<size_t>(queries * d)),
            wide_values(static_cast<size_t>(queries * d), std::nanf(""));
        attend_tile(tile, blas_scratch, SimdLevel::kScalar, blas_partials.data(),
                    blas_values.data());
        attend_tile_simd(tile, wide_scratch, isa, wide_partials.data(), wide_values.data());
        const std::string where = "d " + std::to_string(d) + ", queries " +
                                  std::to_string(queries) + ", keys " + std::to_string(keys);
        for (int64_t i = 0; i < queries; ++i) {
          const SoftmaxPartial& a = blas_partials[static_cast<size_t>(i)];
          const SoftmaxPartial& b = wide_partials[static_cast<size_t>(i)];
          if (visible[static_cast<size_t>(i)] == 0) {
            EXPECT_EQ(b.sum, 0.0f) << where;
            EXPECT_EQ(b.maximum, -INFINITY) << where;
            for (int64_t c = 0; c < d; ++c)
              EXPECT_EQ(wide_values[static_cast<size_t>(i * d + c)], 0.0f) << where;
            continue;
          }
          ASSERT_NEAR(a.maximum, b.maximum, kTolerance * std::max(1.0f, std::abs(a.maximum)))
              << where << ", query " << i;
          ASSERT_NEAR(a.sum, b.sum, kTolerance * std::max(1.0f, a.sum)) << where << ", query " << i;
          for (int64_t c = 0; c < d; ++c) {
            const float x = blas_values[static_cast<size_t>(i * d + c)];
            const float y = wide_values[static_cast<size_t>(i * d + c)];
            ASSERT_NEAR(x, y, kTolerance * std::max(1.0f, a.sum)) << where << ", query " << i;
          }
        }
      }
}

INSTANTIATE_TEST_SUITE_P(Isas, TileKernelShapes,
                         ::testing::Values(TileIsa::kAvx2, TileIsa::kAvx512),
                         [](const ::testing::TestParamInfo<TileIsa>& param) {
                           return param.param == TileIsa::kAvx2 ? "avx2" : "avx512";
                         });

}  // namespace
}  // namespace hogwild::cpu
