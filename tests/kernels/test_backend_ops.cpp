// Every op of every backend against a plain double-precision reference written here, on random
// inputs (never zeros), with outputs poisoned (NaN) before each run so an op that skips an
// element fails. fp32 backends must agree to 1e-5 relative (accumulation order differs from the
// reference; fp32 has 24 bits, and sums of a few hundred terms lose ~1e-6); bf16 backends
// (CUDA, a later issue) to 1e-2.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <tuple>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "kernels/backend.h"

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

class BackendOpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cpu") backend_ = make_cpu_backend();
    ASSERT_TRUE(backend_) << "backend " << GetParam() << " unavailable";
  }
  void TearDown() override {
    for (Tensor& t : tensors_) backend_->release(t);
  }

  Tensor put(const HostMatrix& m) {
    Tensor t = backend_->allocate(m.rows, m.cols, DType::F32);
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
  float tolerance() const { return 1e-5f; }
  void expect_close(const HostMatrix& actual, const std::vector<double>& expected) {
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
    EXPECT_LE(worst, tolerance()) << "worst at element " << worst_index << ": got "
                                  << actual.data[worst_index] << ", expected "
                                  << expected[worst_index];
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
        const double angle = positions[static_cast<size_t>(r)] * double{freq.data[static_cast<size_t>(j)]};
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
    for (int64_t c = 0; c < 8; ++c) expected_dst.at(targets[r], c) = static_cast<float>(sum[static_cast<size_t>(r * 8 + c)]);
  expect_close(get(dst), {expected_dst.data.begin(), expected_dst.data.end()});

  const Tensor gathered = poisoned(3, 8);
  backend_->gather_rows(dst, put_ints({2, 2, 7}), gathered);
  std::vector<double> expected_gather;
  for (int32_t r : {2, 2, 7})
    for (int64_t c = 0; c < 8; ++c) expected_gather.push_back(expected_dst.at(r, c));
  expect_close(get(gathered), expected_gather);
}

// Block attention by its definition: for each row, rotate the query by each entry's query
// position, score the entry's visible keys (looked up through the page table), and take ONE
// softmax over all of them. Pages are shuffled, blocks span several kernel chunks, some entries
// see nothing (empty partials), one row has no entry at all (output 0).
TEST_P(BackendOpsTest, BlockAttentionMatchesDefinition) {
  for (const auto& [head_dim, heads, kv_heads] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{64, 6, 2}, {128, 4, 4}, {64, 8, 1}}) {
    const AttentionShape shape{heads, kv_heads, head_dim, static_cast<float>(1.0 / std::sqrt(head_dim))};
    const int64_t page_size = 16, pages = 64, blocks = 4, max_pages = 40;
    const HostMatrix k = random_matrix(pages * page_size, kv_heads * head_dim, rng_);
    const HostMatrix v = random_matrix(pages * page_size, kv_heads * head_dim, rng_);
    // Blocks own disjoint, shuffled pages; lengths 5, 300 (> one 8-page chunk), 16, 0.
    std::vector<int32_t> page_ids(pages);
    std::iota(page_ids.begin(), page_ids.end(), 0);
    std::shuffle(page_ids.begin(), page_ids.end(), rng_);
    const std::vector<int64_t> lengths = {5, 300, 16, 0};
    std::vector<int32_t> table(static_cast<size_t>(blocks * max_pages), -1);
    size_t next = 0;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t p = 0; p * page_size < lengths[static_cast<size_t>(b)]; ++p)
        table[static_cast<size_t>(b * max_pages + p)] = page_ids[next++];
    // Rows and their views: {block, query_position, visible}.
    const std::vector<std::vector<std::array<int32_t, 3>>> views = {
        {{1, 310, 300}, {0, 4, 5}},              // two blocks, everything visible
        {{1, 57, 57}, {2, 0, 0}, {0, 900, 5}},   // causal prefix of block 1, an empty entry
        {},                                      // no entry: output 0
        {{2, 15, 16}, {1, 1000, 300}, {3, 2, 0}},
    };
    std::vector<int32_t> offsets = {0}, entries;
    for (const auto& view : views) {
      for (const auto& entry : view) entries.insert(entries.end(), entry.begin(), entry.end());
      offsets.push_back(static_cast<int32_t>(entries.size() / 3));
    }
    HostMatrix freq{1, head_dim / 2, {}};
    for (int64_t j = 0; j < head_dim / 2; ++j)
      freq.data.push_back(static_cast<float>(std::pow(10000.0, -2.0 * j / head_dim)));
    const int64_t rows = static_cast<int64_t>(views.size());
    const HostMatrix q = random_matrix(rows, heads * head_dim, rng_);
    const Tensor out = poisoned(rows, heads * head_dim);
    backend_->block_attention(put(q), put(k), put(v), put_ints(table, max_pages), page_size,
                              put_ints(offsets), put_ints(entries, 3), put(freq), shape, out);

    std::vector<double> expected;
    const int64_t group = heads / kv_heads;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> scores;
        std::vector<const float*> value_rows;
        for (const auto& [block, position, visible] : views[static_cast<size_t>(r)]) {
          std::vector<double> rotated(static_cast<size_t>(head_dim));
          for (int64_t j = 0; j < head_dim / 2; ++j) {
            const double angle = position * double{freq.data[static_cast<size_t>(j)]};
            const double a = q.at(r, h * head_dim + j), b = q.at(r, h * head_dim + j + head_dim / 2);
            rotated[static_cast<size_t>(j)] = a * std::cos(angle) - b * std::sin(angle);
            rotated[static_cast<size_t>(j + head_dim / 2)] = b * std::cos(angle) + a * std::sin(angle);
          }
          for (int32_t j = 0; j < visible; ++j) {
            const int64_t row = table[static_cast<size_t>(block * max_pages + j / page_size)] * page_size + j % page_size;
            double dot = 0;
            for (int64_t c = 0; c < head_dim; ++c)
              dot += rotated[static_cast<size_t>(c)] * k.at(row, h / group * head_dim + c);
            scores.push_back(dot * shape.scale);
            value_rows.push_back(&v.data[static_cast<size_t>(row * v.cols + h / group * head_dim)]);
          }
        }
        double maximum = -1e300, total = 0;
        for (double s : scores) maximum = std::max(maximum, s);
        for (double& s : scores) total += (s = std::exp(s - maximum));
        for (int64_t c = 0; c < head_dim; ++c) {
          double o = 0;
          for (size_t j = 0; j < scores.size(); ++j) o += scores[j] / total * value_rows[j][c];
          expected.push_back(o);
        }
      }
    expect_close(get(out), expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendOpsTest, ::testing::Values("cpu"),
                         [](const ::testing::TestParamInfo<std::string>& param) { return param.param; });

}  // namespace
}  // namespace hogwild
