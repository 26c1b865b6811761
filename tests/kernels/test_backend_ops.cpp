// Every op of every backend against a plain double-precision reference written here, on random
// inputs (never zeros), with outputs poisoned (NaN) before each run so an op that skips an
// element fails. The same tests run for each backend: "cpu" always, "cuda" in CUDA builds (it
// skips where no GPU is present).
//
// Tolerances (relative, or absolute below magnitude 1):
// - cpu, fp32: 1e-5 (accumulation order differs from the reference; fp32 has 24 bits, and sums
//   of a few hundred terms lose ~1e-6).
// - cuda, fp32: 1e-4. The GPU computes the RoPE angle as an fp32 argument of sincospif after a
//   double reduction to turns (~1e-7 rad, where the CPU rounds cos/sin of the double angle once),
//   takes softmax with exp2f (2 ulp), reduces norms in fp32 trees rather than double, and lets
//   cuBLAS pick its summation order (split-K included). Each is ~1e-6; 1e-4 leaves an order of
//   magnitude for their sum over the 300-key softmaxes below while still catching any indexing
//   error (those are O(1)).
// - cuda, bf16 inputs (weights, K/V): the reference takes the same bf16-rounded inputs, so only
//   fp32 accumulation differs: the fp32 tolerance holds. A bf16 output adds its own rounding
//   (2^-9 relative): 1e-2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "common/float16.h"
#include "kernels/backend.h"
#include "kernels/view_entry.h"
#ifdef HOGWILD_CUDA
#include "kernels/cuda/device.h"
#endif

namespace hogwild {
namespace {

struct HostMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
  float& at(int64_t r, int64_t c) { return data[static_cast<size_t>(r * cols + c)]; }
  float at(int64_t r, int64_t c) const { return data[static_cast<size_t>(r * cols + c)]; }
};

HostMatrix random_matrix(int64_t rows, int64_t cols, std::mt19937& rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> dist(0.1f, 1.0f);
  std::bernoulli_distribution sign(0.5);
  HostMatrix m{rows, cols, std::vector<float>(static_cast<size_t>(rows * cols))};
  for (float& v : m.data) v = (sign(rng) ? 1.0f : -1.0f) * dist(rng) * scale;
  return m;
}

// Rounds every element to the nearest bf16 (what a bf16 tensor stores).
HostMatrix bf16_rounded(HostMatrix m) {
  for (float& v : m.data) v = bf16_to_float(float_to_bf16(v));
  return m;
}

HostMatrix rope_frequencies(int64_t head_dim) {
  HostMatrix freq{1, head_dim / 2, {}};
  for (int64_t j = 0; j < head_dim / 2; ++j)
    freq.data.push_back(static_cast<float>(std::pow(10000.0, -2.0 * j / head_dim)));
  return freq;
}

// One block_attention problem: a paged K/V pool, blocks as page lists, and per row its view
// entries {block, query_position, visible}.
struct AttentionCase {
  AttentionShape shape;
  int64_t page_size = 16, max_pages = 0;
  HostMatrix k, v, q, freq;
  std::vector<int32_t> table;  // blocks x max_pages, -1 where a block has no page
  std::vector<std::vector<ViewEntry>> views;
};

// Block attention by its definition: for each row, rotate the query by each entry's query
// position, score the entry's visible keys (looked up through the page table), and take ONE
// softmax over all of them.
std::vector<double> attention_by_definition(const AttentionCase& c) {
  const int64_t head_dim = c.shape.head_dim, heads = c.shape.heads;
  const int64_t group = heads / c.shape.kv_heads;
  std::vector<double> expected;
  for (int64_t r = 0; r < static_cast<int64_t>(c.views.size()); ++r)
    for (int64_t h = 0; h < heads; ++h) {
      std::vector<double> scores;
      std::vector<const float*> value_rows;
      for (const auto& [block, position, visible] : c.views[static_cast<size_t>(r)]) {
        std::vector<double> rotated(static_cast<size_t>(head_dim));
        for (int64_t j = 0; j < head_dim / 2; ++j) {
          const double angle = position * double{c.freq.data[static_cast<size_t>(j)]};
          const double a = c.q.at(r, h * head_dim + j),
                       b = c.q.at(r, h * head_dim + j + head_dim / 2);
          rotated[static_cast<size_t>(j)] = a * std::cos(angle) - b * std::sin(angle);
          rotated[static_cast<size_t>(j + head_dim / 2)] =
              b * std::cos(angle) + a * std::sin(angle);
        }
        for (int32_t j = 0; j < visible; ++j) {
          const int64_t row =
              c.table[static_cast<size_t>(block * c.max_pages + j / c.page_size)] * c.page_size +
              j % c.page_size;
          double dot = 0;
          for (int64_t d = 0; d < head_dim; ++d)
            dot += rotated[static_cast<size_t>(d)] * c.k.at(row, h / group * head_dim + d);
          scores.push_back(dot * c.shape.scale);
          value_rows.push_back(
              &c.v.data[static_cast<size_t>(row * c.v.cols + h / group * head_dim)]);
        }
      }
      double maximum = -1e300, total = 0;
      for (double s : scores) maximum = std::max(maximum, s);
      for (double& s : scores) total += (s = std::exp(s - maximum));
      for (int64_t d = 0; d < head_dim; ++d) {
        double o = 0;
        for (size_t j = 0; j < scores.size(); ++j) o += scores[j] / total * value_rows[j][d];
        expected.push_back(o);
      }
    }
  return expected;
}

// Blocks of the given lengths on disjoint, shuffled pages of a pool of `pages` pages.
std::vector<int32_t> shuffled_page_table(const std::vector<int64_t>& lengths, int64_t pages,
                                         int64_t page_size, int64_t max_pages, std::mt19937& rng) {
  std::vector<int32_t> page_ids(static_cast<size_t>(pages));
  std::iota(page_ids.begin(), page_ids.end(), 0);
  std::shuffle(page_ids.begin(), page_ids.end(), rng);
  std::vector<int32_t> table(lengths.size() * static_cast<size_t>(max_pages), -1);
  size_t next = 0;
  for (size_t b = 0; b < lengths.size(); ++b)
    for (int64_t p = 0; p * page_size < lengths[b]; ++p)
      table[b * static_cast<size_t>(max_pages) + static_cast<size_t>(p)] = page_ids.at(next++);
  return table;
}

class BackendOpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    // cpu: the default threads; cpu1/cpu3/cpu7: pools of 1, 3 and 7 threads (7 exceeds the cores
    // of most test machines: chunks must still all run, whatever the scheduling).
    if (GetParam() == "cpu") backend_ = make_cpu_backend();
    if (GetParam() == "cpu1") backend_ = make_cpu_backend(1);
    if (GetParam() == "cpu3") backend_ = make_cpu_backend(3);
    if (GetParam() == "cpu7") backend_ = make_cpu_backend(7);
#ifdef HOGWILD_CUDA
    if (GetParam() == "cuda") {
      if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
      backend_ = make_cuda_backend(0);
    }
#endif
    ASSERT_TRUE(backend_) << "backend " << GetParam() << " unavailable";
  }
  void TearDown() override {
    for (Tensor& t : tensors_) backend_->release(t);
  }

  Tensor put(const HostMatrix& m, DType dtype = DType::F32) {
    Tensor t = backend_->allocate(m.rows, m.cols, dtype);
    tensors_.push_back(t);
    backend_->upload_f32(t, m.data.data());
    return t;
  }
  Tensor put_ints(const std::vector<int32_t>& values, int64_t cols = 1) {
    Tensor t = backend_->allocate(static_cast<int64_t>(values.size()) / cols, cols, DType::I32);
    tensors_.push_back(t);
    backend_->upload_i32(t, values.data());
    return t;
  }
  Tensor poisoned(int64_t rows, int64_t cols) {
    HostMatrix nan{rows, cols,
                   std::vector<float>(static_cast<size_t>(rows * cols),
                                      std::numeric_limits<float>::quiet_NaN())};
    return put(nan);
  }
  HostMatrix get(const Tensor& t) {
    HostMatrix m{t.rows, t.cols, std::vector<float>(static_cast<size_t>(t.rows * t.cols))};
    backend_->download_f32(t, m.data.data());
    return m;
  }
  bool is_cpu() const { return GetParam().starts_with("cpu"); }
  float tolerance() const { return is_cpu() ? 1e-5f : 1e-4f; }
  // A test of `op` in `dtype` skips where the backend does not compute in it (the CPU backend:
  // fp32 only), as the backend itself says.
  bool supports(BackendOp op, DType dtype) const { return backend_->supports(op, dtype); }
  void expect_close(const HostMatrix& actual, const std::vector<double>& expected) {
    expect_close(actual, expected, tolerance());
  }
  void expect_close(const HostMatrix& actual, const std::vector<double>& expected, double bound) {
    ASSERT_EQ(actual.data.size(), expected.size());
    double worst = 0.0;
    size_t worst_index = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_TRUE(std::isfinite(actual.data[i])) << "element " << i << " not written";
      const double error =
          std::abs(actual.data[i] - expected[i]) / std::max(1.0, std::abs(expected[i]));
      if (error > worst) {
        worst = error;
        worst_index = i;
      }
    }
    EXPECT_LE(worst, bound) << "worst at element " << worst_index << ": got "
                            << actual.data[worst_index] << ", expected " << expected[worst_index];
  }

  // Runs block_attention on the case, with K/V stored as `kv_dtype`.
  HostMatrix run_attention(const AttentionCase& c, DType kv_dtype = DType::F32) {
    std::vector<int32_t> offsets = {0}, entries;
    for (const auto& view : c.views) {
      for (const ViewEntry& entry : view)
        entries.insert(entries.end(), {entry.block, entry.query_position, entry.visible});
      offsets.push_back(static_cast<int32_t>(entries.size() / 3));
    }
    const int64_t rows = static_cast<int64_t>(c.views.size());
    const Tensor out = poisoned(rows, c.shape.heads * c.shape.head_dim);
    backend_->block_attention(put(c.q), put(c.k, kv_dtype), put(c.v, kv_dtype),
                              put_ints(c.table, c.max_pages), c.page_size, put_ints(offsets),
                              put_ints(entries, 3), put(c.freq), c.shape, out);
    return get(out);
  }

  // Hogwild views as the engine builds them: `workers` rows, one query each (the last token of
  // the worker's own step); each sees [common, header, step(next worker), step(own)]. Every
  // row reads the common block, whose entries then fill several query tiles of the GPU kernel.
  AttentionCase hogwild_case(int64_t head_dim, int64_t heads, int64_t kv_heads, int64_t workers,
                             int64_t common_keys) {
    AttentionCase c;
    c.shape = {heads, kv_heads, head_dim, static_cast<float>(1.0 / std::sqrt(head_dim))};
    // Blocks: 0 = common, 1 = header, 2 + w = step of worker w.
    std::vector<int64_t> lengths = {common_keys, 7};
    for (int64_t w = 0; w < workers; ++w) lengths.push_back(5 + 3 * w);
    int64_t pages = 0;
    for (int64_t length : lengths) pages += (length + c.page_size - 1) / c.page_size;
    c.max_pages = (common_keys + c.page_size - 1) / c.page_size;
    c.k = random_matrix(pages * c.page_size, kv_heads * head_dim, rng_);
    c.v = random_matrix(pages * c.page_size, kv_heads * head_dim, rng_);
    c.table = shuffled_page_table(lengths, pages, c.page_size, c.max_pages, rng_);
    for (int64_t w = 0; w < workers; ++w) {
      const std::vector<int32_t> view = {0, 1, static_cast<int32_t>(2 + (w + 1) % workers),
                                         static_cast<int32_t>(2 + w)};
      std::vector<int64_t> view_lengths;
      for (int32_t b : view) view_lengths.push_back(lengths[static_cast<size_t>(b)]);
      int64_t total = 0;
      for (int64_t length : view_lengths) total += length;
      const int64_t position = total - 1;  // the own step's last token
      std::vector<ViewEntry> entries;
      append_view_entries(view, view_lengths, position, entries);
      c.views.push_back(entries);
    }
    c.q = random_matrix(workers, heads * head_dim, rng_);
    c.freq = rope_frequencies(head_dim);
    return c;
  }

  std::mt19937 rng_{1234};
  std::unique_ptr<Backend> backend_;
  std::vector<Tensor> tensors_;
};

TEST_P(BackendOpsTest, Embedding) {
  const HostMatrix table = random_matrix(50, 24, rng_);
  const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
  const Tensor out = poisoned(5, 24);
  backend_->embedding(put(table), put_ints(ids), out);
  std::vector<double> expected;
  for (int32_t id : ids)
    for (int64_t c = 0; c < 24; ++c) expected.push_back(table.at(id, c));
  expect_close(get(out), expected);
}

TEST_P(BackendOpsTest, RmsNorm) {
  const HostMatrix x = random_matrix(7, 96, rng_, 3.0f);
  const HostMatrix w = random_matrix(1, 96, rng_);
  const Tensor out = poisoned(7, 96);
  backend_->rms_norm(put(x), put(w), 1e-5f, out);
  std::vector<double> expected;
  for (int64_t r = 0; r < 7; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < 96; ++c) sum += double{x.at(r, c)} * x.at(r, c);
    const double scale = 1.0 / std::sqrt(sum / 96 + 1e-5);
    for (int64_t c = 0; c < 96; ++c) expected.push_back(x.at(r, c) * scale * w.at(0, c));
  }
  expect_close(get(out), expected);
}

TEST_P(BackendOpsTest, HeadRmsNormOnStridedView) {
  const HostMatrix x = random_matrix(5, 3 * 32 + 10, rng_, 2.0f);
  const HostMatrix w = random_matrix(1, 32, rng_);
  const Tensor all = put(x);
  backend_->head_rms_norm(all.cols_view(0, 96), put(w), 1e-6f);
  std::vector<double> expected;
  for (int64_t r = 0; r < 5; ++r) {
    for (int64_t h = 0; h < 3; ++h) {
      double sum = 0;
      for (int64_t c = 0; c < 32; ++c) sum += double{x.at(r, h * 32 + c)} * x.at(r, h * 32 + c);
      const double scale = 1.0 / std::sqrt(sum / 32 + 1e-6);
      for (int64_t c = 0; c < 32; ++c) expected.push_back(x.at(r, h * 32 + c) * scale * w.at(0, c));
    }
    for (int64_t c = 96; c < 106; ++c) expected.push_back(x.at(r, c));  // untouched columns
  }
  expect_close(get(all), expected);
}

TEST_P(BackendOpsTest, MatmulWithAndWithoutBias) {
  for (bool with_bias : {false, true}) {
    const HostMatrix x = random_matrix(6, 40, rng_);
    const HostMatrix w = random_matrix(33, 40, rng_);
    const HostMatrix b = random_matrix(1, 33, rng_);
    const Tensor out = poisoned(6, 33);
    backend_->matmul(put(x), put(w), with_bias ? put(b) : Tensor{}, out);
    std::vector<double> expected;
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t m = 0; m < 33; ++m) {
        double sum = with_bias ? b.at(0, m) : 0.0;
        for (int64_t k = 0; k < 40; ++k) sum += double{x.at(r, k)} * w.at(m, k);
        expected.push_back(sum);
      }
    expect_close(get(out), expected);
  }
}

// The decode shapes (few rows: the CPU backend's small GEMM) and the prefill ones (BLAS on slices
// of the weight rows), on both sides of the switch, with tails of rows and of k.
TEST_P(BackendOpsTest, MatmulShapesAroundTheSmallRowsSwitch) {
  for (const int64_t n : {1, 2, 3, 5, 16, 17, 40})
    for (const int64_t m : {1, 5, 33, 130})
      for (const int64_t k : {7, 40, 129}) {
        const HostMatrix x = random_matrix(n, k, rng_);
        const HostMatrix w = random_matrix(m, k, rng_);
        const HostMatrix b = random_matrix(1, m, rng_);
        const Tensor out = poisoned(n, m);
        backend_->matmul(put(x), put(w), put(b), out);
        std::vector<double> expected;
        for (int64_t r = 0; r < n; ++r)
          for (int64_t c = 0; c < m; ++c) {
            double sum = b.at(0, c);
            for (int64_t j = 0; j < k; ++j) sum += double{x.at(r, j)} * w.at(c, j);
            expected.push_back(sum);
          }
        SCOPED_TRACE(cat("n=", n, " m=", m, " k=", k));
        expect_close(get(out), expected);
      }
}

TEST_P(BackendOpsTest, RopeRotatesHalvesOfEachHead) {
  const int64_t head_dim = 16, heads = 3;
  const HostMatrix x = random_matrix(4, heads * head_dim, rng_);
  const std::vector<int32_t> positions = {0, 1, 7, 100000};
  HostMatrix freq{1, head_dim / 2, {}};
  for (int64_t j = 0; j < head_dim / 2; ++j)
    freq.data.push_back(static_cast<float>(std::pow(10000.0, -2.0 * j / head_dim)));
  const Tensor t = put(x);
  backend_->rope(t, put_ints(positions), put(freq), head_dim);
  std::vector<double> expected(x.data.size());
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < head_dim / 2; ++j) {
        const double angle =
            positions[static_cast<size_t>(r)] * double{freq.data[static_cast<size_t>(j)]};
        const double a = x.at(r, h * head_dim + j), b = x.at(r, h * head_dim + j + head_dim / 2);
        expected[static_cast<size_t>(r * heads * head_dim + h * head_dim + j)] =
            a * std::cos(angle) - b * std::sin(angle);
        expected[static_cast<size_t>(r * heads * head_dim + h * head_dim + j + head_dim / 2)] =
            b * std::cos(angle) + a * std::sin(angle);
      }
  expect_close(get(t), expected);
}

TEST_P(BackendOpsTest, SwiGlu) {
  const HostMatrix gate_up = random_matrix(3, 2 * 20, rng_, 4.0f);
  const Tensor out = poisoned(3, 20);
  backend_->swiglu(put(gate_up), out);
  std::vector<double> expected;
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t j = 0; j < 20; ++j) {
      const double g = gate_up.at(r, j);
      expected.push_back(g / (1.0 + std::exp(-g)) * gate_up.at(r, 20 + j));
    }
  expect_close(get(out), expected);
}

TEST_P(BackendOpsTest, AddScatterGather) {
  const HostMatrix a = random_matrix(4, 8, rng_), b = random_matrix(4, 8, rng_);
  const Tensor ta = put(a);
  backend_->add(ta, put(b));
  std::vector<double> sum;
  for (size_t i = 0; i < a.data.size(); ++i) sum.push_back(double{a.data[i]} + b.data[i]);
  expect_close(get(ta), sum);

  const HostMatrix base = random_matrix(10, 8, rng_);
  const Tensor dst = put(base);
  backend_->scatter_rows(ta, put_ints({9, 2, 5, 0}), dst);
  HostMatrix expected_dst = base;
  const int32_t targets[] = {9, 2, 5, 0};
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 8; ++c)
      expected_dst.at(targets[r], c) = static_cast<float>(sum[static_cast<size_t>(r * 8 + c)]);
  expect_close(get(dst), {expected_dst.data.begin(), expected_dst.data.end()});

  const Tensor gathered = poisoned(3, 8);
  backend_->gather_rows(dst, put_ints({2, 2, 7}), gathered);
  std::vector<double> expected_gather;
  for (int32_t r : {2, 2, 7})
    for (int64_t c = 0; c < 8; ++c) expected_gather.push_back(expected_dst.at(r, c));
  expect_close(get(gathered), expected_gather);
}

// Block attention against its definition (attention_by_definition). Pages are shuffled, blocks
// span several kernel chunks, some entries see nothing (empty partials), one row has no entry at
// all (output 0).
TEST_P(BackendOpsTest, BlockAttentionMatchesDefinition) {
  for (const auto& [head_dim, heads, kv_heads] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{64, 6, 2}, {128, 4, 4}, {64, 8, 1}}) {
    AttentionCase c;
    c.shape = {heads, kv_heads, head_dim, static_cast<float>(1.0 / std::sqrt(head_dim))};
    c.page_size = 16;
    c.max_pages = 40;
    const int64_t pages = 64;
    c.k = random_matrix(pages * c.page_size, kv_heads * head_dim, rng_);
    c.v = random_matrix(pages * c.page_size, kv_heads * head_dim, rng_);
    // Blocks own disjoint, shuffled pages; lengths 5, 300 (> one 8-page chunk), 16, 0.
    c.table = shuffled_page_table({5, 300, 16, 0}, pages, c.page_size, c.max_pages, rng_);
    // Rows and their views: {block, query_position, visible}.
    c.views = {
        {{1, 310, 300}, {0, 4, 5}},             // two blocks, everything visible
        {{1, 57, 57}, {2, 0, 0}, {0, 900, 5}},  // causal prefix of block 1, an empty entry
        {},                                     // no entry: output 0
        {{2, 15, 16}, {1, 1000, 300}, {3, 2, 0}},
    };
    c.freq = rope_frequencies(head_dim);
    c.q = random_matrix(static_cast<int64_t>(c.views.size()), heads * head_dim, rng_);
    expect_close(run_attention(c), attention_by_definition(c));
  }
}

// Many workers over one shared block (more (entry, head) pairs than one GPU query tile holds),
// head dims 64, 128 (Qwen3-8B's 32/8 heads) and 256, GQA groups of 8 and 4.
TEST_P(BackendOpsTest, BlockAttentionManyWorkersShareBlocks) {
  for (const auto& [head_dim, heads, kv_heads] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{64, 16, 2}, {128, 32, 8}, {256, 8, 2}}) {
    SCOPED_TRACE("head_dim " + std::to_string(head_dim));
    const AttentionCase c = hogwild_case(head_dim, heads, kv_heads, /*workers=*/10, 700);
    expect_close(run_attention(c), attention_by_definition(c));
  }
}

// A prefill: the rows are consecutive tokens of one block, each seeing its causal prefix (every
// entry of the block has a different number of visible keys) after a common block.
TEST_P(BackendOpsTest, BlockAttentionCausalPrefill) {
  AttentionCase c;
  const int64_t head_dim = 128, heads = 4, kv_heads = 2, tokens = 70, common = 100;
  c.shape = {heads, kv_heads, head_dim, static_cast<float>(1.0 / std::sqrt(head_dim))};
  c.max_pages = (common + c.page_size - 1) / c.page_size;
  const int64_t pages = 2 * c.max_pages;
  c.k = random_matrix(pages * c.page_size, kv_heads * head_dim, rng_);
  c.v = random_matrix(pages * c.page_size, kv_heads * head_dim, rng_);
  c.table = shuffled_page_table({common, tokens}, pages, c.page_size, c.max_pages, rng_);
  // Token i of the own block sits at position common + i of the view [common, own].
  const std::vector<int32_t> view = {0, 1};
  const std::vector<int64_t> view_lengths = {common, tokens};
  for (int64_t i = 0; i < tokens; ++i) {
    std::vector<ViewEntry> entries;
    append_view_entries(view, view_lengths, common + i, entries);
    c.views.push_back(entries);
  }
  c.freq = rope_frequencies(head_dim);
  c.q = random_matrix(tokens, heads * head_dim, rng_);
  expect_close(run_attention(c), attention_by_definition(c));
}

// K/V stored in bf16 (half the cache traffic): the reference reads the same rounded values.
TEST_P(BackendOpsTest, BlockAttentionBf16Cache) {
  if (!supports(BackendOp::BlockAttention, DType::BF16))
    GTEST_SKIP() << GetParam() << " has no bf16 K/V pools";
  for (int64_t head_dim : {64, 128, 256}) {
    SCOPED_TRACE("head_dim " + std::to_string(head_dim));
    AttentionCase c = hogwild_case(head_dim, 8, 2, /*workers=*/4, 300);
    c.k = bf16_rounded(c.k);
    c.v = bf16_rounded(c.v);
    expect_close(run_attention(c, DType::BF16), attention_by_definition(c));
  }
}

// A weight in a stored block format (Q8_0: a half scale and 32 signed bytes per block, built here)
// gives each row of a batch the same bits as that row alone, with its bias, for any batch size and
// pool: the engine batches problems and workers together, and a problem's tokens must not depend
// on its batch mates. Also within Q8_0's rounding of the exact product (8-bit activations: about
// 1% of sum |w x|, see test_quant_matmul.cpp for the per-format bounds).
TEST_P(BackendOpsTest, StoredWeightRowsRoundAsAlone) {
  if (!backend_->reads_stored_weights()) GTEST_SKIP() << GetParam() << " reads no stored weights";
  const int64_t m = 70, k = 96, blocks = k / 32, max_n = 19;
  std::vector<uint8_t> bytes(static_cast<size_t>(m * blocks * 34));
  std::vector<double> w(static_cast<size_t>(m * k));
  std::uniform_int_distribution<int> quant(-127, 127);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* block = bytes.data() + (r * blocks + b) * 34;
      const int exponent = -7 - static_cast<int>((r + b) % 3);
      const float d = std::ldexp(1.0f, exponent);
      const auto half = static_cast<uint16_t>((15 + exponent) << 10);  // 2^exponent, exactly
      std::memcpy(block, &half, 2);
      for (int64_t l = 0; l < 32; ++l) {
        const int q = quant(rng_);
        block[2 + l] = static_cast<uint8_t>(static_cast<int8_t>(q));
        w[static_cast<size_t>(r * k + b * 32 + l)] = double{d} * q;
      }
    }
  Tensor weight = backend_->allocate(m, k, DType::Q8_0);
  tensors_.push_back(weight);
  backend_->upload_stored(weight, bytes.data());
  const HostMatrix x = random_matrix(max_n, k, rng_);
  const HostMatrix bias = random_matrix(1, m, rng_);
  const auto product = [&](int64_t first, int64_t n) {
    HostMatrix rows{n, k, {x.data.begin() + first * k, x.data.begin() + (first + n) * k}};
    const Tensor out = poisoned(n, m);
    backend_->matmul(put(rows), weight, put(bias), out);
    return get(out);
  };
  const auto float_bits = [](float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    return bits;
  };
  std::vector<HostMatrix> alone;
  for (int64_t i = 0; i < max_n; ++i) alone.push_back(product(i, 1));
  for (int64_t i = 0; i < max_n; ++i)
    for (int64_t c = 0; c < m; ++c) {
      double exact = bias.at(0, c), scale = 0.0;
      for (int64_t j = 0; j < k; ++j) {
        exact += w[static_cast<size_t>(c * k + j)] * x.at(i, j);
        scale += std::abs(w[static_cast<size_t>(c * k + j)] * x.at(i, j));
      }
      ASSERT_NEAR(alone[static_cast<size_t>(i)].at(0, c), exact, 1e-2 * scale)
          << "row " << i << ", output " << c;
    }
  for (const int64_t n : {2, 3, 5, 8, 13, 19})
    for (int64_t first = 0; first + n <= max_n; first += 3) {
      const HostMatrix batch = product(first, n);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < m; ++c)
          ASSERT_EQ(float_bits(batch.at(i, c)),
                    float_bits(alone[static_cast<size_t>(first + i)].at(0, c)))
              << "row " << first + i << " in a batch of " << n << " from row " << first
              << ", output " << c;
    }
}

// A bf16 weight (cublasGemmEx, fp32 accumulation); the f32 input is rounded to bf16 on the way.
TEST_P(BackendOpsTest, MatmulBf16Weight) {
  if (!supports(BackendOp::Matmul, DType::BF16))
    GTEST_SKIP() << GetParam() << " has no bf16 matmul";
  const HostMatrix x = bf16_rounded(random_matrix(6, 40, rng_));
  const HostMatrix w = bf16_rounded(random_matrix(33, 40, rng_));
  const HostMatrix b = random_matrix(1, 33, rng_);
  std::vector<double> expected;
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t m = 0; m < 33; ++m) {
      double sum = b.at(0, m);
      for (int64_t k = 0; k < 40; ++k) sum += double{x.at(r, k)} * w.at(m, k);
      expected.push_back(sum);
    }
  const Tensor weight = put(w, DType::BF16);
  EXPECT_EQ(get(weight).data, w.data) << "bf16 upload/download must round-trip bf16 values";
  const Tensor out = poisoned(6, 33);
  backend_->matmul(put(x), weight, put(b), out);
  expect_close(get(out), expected);

  const Tensor out_bf16 = put(HostMatrix{6, 33, std::vector<float>(6 * 33, 0.0f)}, DType::BF16);
  backend_->matmul(put(x, DType::BF16), weight, put(b), out_bf16);
  expect_close(get(out_bf16), expected, 1e-2);
}

// supports(): F32 for every op of every backend, every op named; where a backend claims BF16 for
// the elementwise ops, add and swiglu on bf16 tensors give the fp32 result to bf16 rounding.
TEST_P(BackendOpsTest, SupportsWhatItClaims) {
  std::vector<std::string> names;
  for (BackendOp op : kBackendOps) {
    EXPECT_TRUE(supports(op, DType::F32)) << backend_op_name(op) << " must take f32";
    EXPECT_FALSE(supports(op, DType::I32)) << backend_op_name(op) << ": I32 is no compute dtype";
    names.emplace_back(backend_op_name(op));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end()) << "two ops, one name";
  EXPECT_EQ(std::count(names.begin(), names.end(), "unknown op"), 0);
  if (!supports(BackendOp::Add, DType::BF16) || !supports(BackendOp::Swiglu, DType::BF16))
    GTEST_SKIP() << GetParam() << " has no bf16 elementwise ops";
  const HostMatrix x = bf16_rounded(random_matrix(5, 24, rng_));
  const HostMatrix y = bf16_rounded(random_matrix(5, 24, rng_));
  const Tensor sum = put(x, DType::BF16);
  backend_->add(sum, put(y, DType::BF16));
  std::vector<double> expected;
  for (size_t i = 0; i < x.data.size(); ++i) expected.push_back(double{x.data[i]} + y.data[i]);
  expect_close(get(sum), expected, 1e-2);
  const HostMatrix gate_up = bf16_rounded(random_matrix(5, 24, rng_));
  const Tensor out = put(HostMatrix{5, 12, std::vector<float>(60, 0.0f)}, DType::BF16);
  backend_->swiglu(put(gate_up, DType::BF16), out);
  expected.clear();
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t j = 0; j < 12; ++j) {
      const double g = gate_up.at(r, j);
      expected.push_back(g / (1.0 + std::exp(-g)) * gate_up.at(r, 12 + j));
    }
  expect_close(get(out), expected, 1e-2);
}

// Runs `call`, expecting hogwild::Error whose message names each of `parts` (op, shapes).
template <typename Call>
void expect_error_naming(std::initializer_list<const char*> parts, Call&& call) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one naming " << *parts.begin();
  } catch (const Error& error) {
    for (const char* part : parts)
      EXPECT_NE(std::string(error.what()).find(part), std::string::npos)
          << "'" << error.what() << "' does not name " << part;
  }
}

// Shape and dtype mismatches are caught by Backend's public ops, the same way for every backend.
TEST_P(BackendOpsTest, MismatchedShapesThrowNamingTheOp) {
  const Tensor x = put(random_matrix(6, 40, rng_));
  const Tensor weight = put(random_matrix(33, 41, rng_));
  const Tensor out = poisoned(6, 33);
  expect_error_naming({"matmul", "[6x40 f32]", "[33x41 f32]", "[6x33 f32]"},
                      [&] { backend_->matmul(x, weight, Tensor{}, out); });
  expect_error_naming({"add", "[6x40 f32]", "[6x33 f32]"}, [&] { backend_->add(x, out); });
  expect_error_naming({"rms_norm"}, [&] {
    backend_->rms_norm(x, put(random_matrix(1, 39, rng_)), 1e-5f, poisoned(6, 40));
  });
  expect_error_naming({"rope", "[3x1 i32]"}, [&] {
    backend_->rope(x, put_ints({0, 1, 2}), put(rope_frequencies(8)), 8);
  });
  expect_error_naming({"gather_rows", "i32"}, [&] {
    backend_->gather_rows(x, put(random_matrix(2, 1, rng_)), poisoned(2, 40));
  });
  const std::vector<int32_t> ints(6 * 40, 0);
  expect_error_naming({"upload_i32", "[6x40 f32]"}, [&] { backend_->upload_i32(x, ints.data()); });
  const AttentionShape shape{6, 4, 64, 0.125f};
  expect_error_naming({"block_attention", "6 query heads", "4 kv heads"}, [&] {
    backend_->block_attention(poisoned(1, 6 * 64), Tensor{}, Tensor{}, Tensor{}, 16, Tensor{},
                              Tensor{}, Tensor{}, shape, poisoned(1, 6 * 64));
  });
}

#ifdef HOGWILD_CUDA
#define HOGWILD_TEST_BACKENDS "cpu", "cpu1", "cpu3", "cpu7", "cuda"
#else
#define HOGWILD_TEST_BACKENDS "cpu", "cpu1", "cpu3", "cpu7"
#endif
INSTANTIATE_TEST_SUITE_P(Backends, BackendOpsTest, ::testing::Values(HOGWILD_TEST_BACKENDS),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

}  // namespace
}  // namespace hogwild
