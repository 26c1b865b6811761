// Sampling on the backend (Backend::sample_tokens, the rule of kernels/sampling_rule.h):
// - Philox4x32-10 (kernels/philox.h) against Random123's published known-answer vectors;
// - the CPU backend's op (the reference) against a naive double-precision reading of each
//   filter's definition written here: greedy = argmax with the lowest id at ties; the sets that
//   top-k, top-p and min-p keep; the frequencies of many draws against the renormalised
//   probabilities of the kept set; same seed and counter, same token; the suppressed mask;
//   the chosen token's logprob;
// - every backend against the CPU one on the same inputs ("cuda" skips without a device): tokens
//   equal (greedy and sampled: the rule is exact integer arithmetic), logprobs within 1e-5
//   relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/backend.h"
#include "kernels/philox.h"
#include "kernels/sampling_rule.h"
#include "kernels/sampling_search.h"
#ifdef HOGWILD_CUDA
#include "kernels/cuda/device.h"
#endif

namespace hogwild {
namespace {

using sampling::RowParams;

TEST(Philox, Random123KnownAnswers) {
  struct Case {
    uint32_t counter[4], key[2], expected[4];
  };
  // Random123 1.09, tests/kat_vectors: "philox4x32 10" lines.
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Case& c : cases) {
    const Philox4x32 out = philox4x32_10(c.counter, c.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], c.expected[i]) << "word " << i;
  }
}

TEST(Philox, UniformIsInRangeAndMeanHalf) {
  double sum = 0.0;
  constexpr int kDraws = 100000;
  for (uint64_t counter = 0; counter < kDraws; ++counter) {
    const double u = philox_uniform(42, counter);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Mean of U(0,1): sd of the mean sqrt(1/12/N) = 9.1e-4; 5 sd.
  EXPECT_NEAR(sum / kDraws, 0.5, 5 * 9.1e-4);
  EXPECT_NE(philox_uniform(1, 0), philox_uniform(2, 0));
  EXPECT_NE(philox_uniform(1, 0), philox_uniform(1, 1));
}

TEST(SamplingRule, TokenWeightIsExpInFixedPoint) {
  EXPECT_EQ(sampling::token_weight(0.0), sampling::kMaxWeight);
  EXPECT_EQ(sampling::token_weight(-40.0), 0u);
  EXPECT_EQ(sampling::token_weight(std::numeric_limits<double>::quiet_NaN()), 0u);
  for (double x = -30.0; x < 0.0; x += 0.01234) {
    const double expected = std::exp(x) * static_cast<double>(sampling::kMaxWeight);
    const auto weight = static_cast<double>(sampling::token_weight(x));
    // floor() of a value accurate to a few ulps: within 1 of the exact product (+1e-15 relative).
    EXPECT_NEAR(weight, expected, 1.0 + expected * 1e-15) << "x = " << x;
  }
  for (float x : {-3.5f, -0.0f, 0.0f, 1e-30f, 7.25f, -std::numeric_limits<float>::infinity()})
    EXPECT_EQ(sampling::key_logit(sampling::rank_key(x)), x == 0.0f ? 0.0f : x);
  EXPECT_LT(sampling::rank_key(-1.0f), sampling::rank_key(-0.5f));
  EXPECT_LT(sampling::rank_key(-0.5f), sampling::rank_key(0.25f));
  EXPECT_EQ(sampling::rank_key(-0.0f), sampling::rank_key(0.0f));
}

// ---- the naive reference
struct Naive {
  std::vector<int32_t> kept;        // the kept set, in rank order
  std::vector<double> probability;  // of each kept token, renormalised
};

bool allowed(const std::vector<int32_t>& mask, size_t i) { return mask.empty() || mask[i] == 0; }

int32_t naive_argmax(const std::vector<float>& logits, const std::vector<int32_t>& mask) {
  int32_t best = -1;
  for (size_t i = 0; i < logits.size(); ++i)
    if (allowed(mask, i) && !std::isnan(logits[i]) &&
        (best < 0 || logits[i] > logits[static_cast<size_t>(best)]))
      best = static_cast<int32_t>(i);
  return best;
}

// Temperature, then top-k of the tokens by logit (lower id first at ties), then top-p (the
// shortest prefix whose probability, renormalised over the top-k, reaches top_p), then min-p
// (p >= min_p * p_max), in double.
Naive naive_filter(const std::vector<float>& logits, const std::vector<int32_t>& mask,
                   const RowParams& p) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < logits.size(); ++i)
    if (allowed(mask, i) && !std::isnan(logits[i])) order.push_back(static_cast<int32_t>(i));
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)];
  });
  const double maximum = logits[static_cast<size_t>(order.front())];
  std::vector<double> weight;
  for (const int32_t id : order)
    weight.push_back(std::exp((logits[static_cast<size_t>(id)] - maximum) / p.temperature));
  size_t keep = order.size();
  if (p.top_k > 0) keep = std::min(keep, static_cast<size_t>(p.top_k));
  if (p.top_p < 1.0f) {
    const double mass =
        std::accumulate(weight.begin(), weight.begin() + static_cast<long>(keep), 0.0);
    double cumulative = 0.0;
    size_t cut = 0;
    while (cut < keep && cumulative < p.top_p * mass) cumulative += weight[cut++];
    keep = cut;
  }
  if (p.min_p > 0.0f) {
    size_t cut = 1;
    while (cut < keep && weight[cut] >= p.min_p) ++cut;
    keep = cut;
  }
  Naive result;
  result.kept.assign(order.begin(), order.begin() + static_cast<long>(keep));
  const double mass =
      std::accumulate(weight.begin(), weight.begin() + static_cast<long>(keep), 0.0);
  for (size_t j = 0; j < keep; ++j) result.probability.push_back(weight[j] / mass);
  return result;
}

double naive_logprob(const std::vector<float>& logits, const std::vector<int32_t>& mask,
                     int32_t token) {
  double maximum = -INFINITY;
  for (size_t i = 0; i < logits.size(); ++i)
    if (allowed(mask, i)) maximum = std::max(maximum, static_cast<double>(logits[i]));
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i)
    if (allowed(mask, i)) total += std::exp(logits[i] - maximum);
  return logits[static_cast<size_t>(token)] - maximum - std::log(total);
}

// ---- running the op
struct Result {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

// rows x vocab logits (dense), one RowParams per row, an optional mask (1 or rows rows).
Result run_sampling(Backend& backend, const std::vector<float>& logits, int64_t vocab,
                    const std::vector<RowParams>& params, const std::vector<int32_t>& mask = {},
                    bool with_logprobs = true) {
  const auto rows = static_cast<int64_t>(params.size());
  std::vector<int32_t> packed(static_cast<size_t>(rows) * sampling::kRowWords);
  for (size_t r = 0; r < params.size(); ++r)
    sampling::pack_row(params[r], packed.data() + r * sampling::kRowWords);
  Tensor t_logits = backend.allocate(rows, vocab, DType::F32);
  Tensor t_params = backend.allocate(rows, sampling::kRowWords, DType::I32);
  Tensor t_mask;
  if (!mask.empty())
    t_mask = backend.allocate(static_cast<int64_t>(mask.size()) / vocab, vocab, DType::I32);
  Tensor t_tokens = backend.allocate(rows, 1, DType::I32);
  Tensor t_logprobs;
  if (with_logprobs) t_logprobs = backend.allocate(rows, 1, DType::F32);
  backend.upload_f32(t_logits, logits.data());
  backend.upload_i32(t_params, packed.data());
  if (!mask.empty()) backend.upload_i32(t_mask, mask.data());
  std::vector<int32_t> poison(static_cast<size_t>(rows), -7);
  backend.upload_i32(t_tokens, poison.data());
  backend.sample_tokens(t_logits, t_params, t_mask, t_tokens, t_logprobs);
  Result result;
  result.tokens.resize(static_cast<size_t>(rows));
  backend.download_i32(t_tokens, result.tokens.data());
  if (with_logprobs) {
    result.logprobs.resize(static_cast<size_t>(rows));
    backend.download_f32(t_logprobs, result.logprobs.data());
  }
  for (Tensor* t : {&t_logits, &t_params, &t_mask, &t_tokens, &t_logprobs}) backend.release(*t);
  return result;
}

std::vector<float> random_logits(int64_t rows, int64_t vocab, std::mt19937& rng, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  for (float& x : logits) x = normal(rng);
  return logits;
}

std::vector<float> repeat_rows(const std::vector<float>& row, int64_t rows) {
  std::vector<float> out;
  for (int64_t r = 0; r < rows; ++r) out.insert(out.end(), row.begin(), row.end());
  return out;
}

RowParams params_of(float temperature, int32_t top_k, float top_p, float min_p, uint64_t seed,
                    uint64_t counter) {
  RowParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  p.counter = counter;
  return p;
}

class CpuSampling : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> cpu_ = make_cpu_backend(1);
};

TEST_F(CpuSampling, GreedyIsArgmaxWithTheLowestIdAtTies) {
  const int64_t vocab = 9;
  std::vector<float> row = {0.5f, 2.0f, -1.0f, 3.0f, 3.0f, 1.0f, 3.0f, -0.0f, 0.0f};
  std::vector<RowParams> params = {params_of(0.0f, 0, 1.0f, 0.0f, 1, 0),
                                   params_of(1e-6f, 5, 0.5f, 0.1f, 1, 0)};
  const Result result = run_sampling(*cpu_, repeat_rows(row, 2), vocab, params);
  EXPECT_EQ(result.tokens, (std::vector<int32_t>{3, 3}));
  // The mask removes 3 and 4: the next tie member, 6, wins; then with 6 gone too, 1.
  std::vector<int32_t> mask(static_cast<size_t>(vocab * 2), 0);
  mask[3] = mask[4] = 1;
  mask[static_cast<size_t>(vocab) + 3] = mask[static_cast<size_t>(vocab) + 4] =
      mask[static_cast<size_t>(vocab) + 6] = 1;
  EXPECT_EQ(run_sampling(*cpu_, repeat_rows(row, 2), vocab, params, mask).tokens,
            (std::vector<int32_t>{6, 1}));
  for (int trial = 0; trial < 20; ++trial) {
    std::mt19937 rng(static_cast<unsigned>(trial));
    const std::vector<float> logits = random_logits(1, 1000, rng, 3.0f);
    EXPECT_EQ(run_sampling(*cpu_, logits, 1000, {params[0]}).tokens[0], naive_argmax(logits, {}));
  }
}

TEST_F(CpuSampling, DrawsStayInTheFilteredSetAndReachAllOfIt) {
  std::mt19937 rng(7);
  const int64_t vocab = 300;
  const std::vector<float> row = random_logits(1, vocab, rng, 1.5f);
  const std::vector<RowParams> settings = {
      params_of(1.0f, 0, 1.0f, 0.0f, 0, 0),   params_of(0.8f, 6, 1.0f, 0.0f, 0, 0),
      params_of(1.2f, 0, 0.3f, 0.0f, 0, 0),   params_of(1.0f, 0, 1.0f, 0.2f, 0, 0),
      params_of(0.7f, 20, 0.6f, 0.05f, 0, 0), params_of(2.0f, 1, 1.0f, 0.0f, 0, 0)};
  constexpr int64_t kDraws = 4000;
  for (const RowParams& setting : settings) {
    const Naive naive = naive_filter(row, {}, setting);
    std::vector<RowParams> params;
    for (int64_t i = 0; i < kDraws; ++i) {
      RowParams p = setting;
      p.seed = 11;
      p.counter = static_cast<uint64_t>(i);
      params.push_back(p);
    }
    const Result result = run_sampling(*cpu_, repeat_rows(row, kDraws), vocab, params, {}, false);
    const std::set<int32_t> kept(naive.kept.begin(), naive.kept.end());
    std::set<int32_t> drawn(result.tokens.begin(), result.tokens.end());
    for (const int32_t token : drawn) {
      EXPECT_TRUE(kept.count(token))
          << "token " << token << " is outside the filtered set of " << kept.size() << " (top_k "
          << setting.top_k << ", top_p " << setting.top_p << ", min_p " << setting.min_p << ")";
    }
    // Every kept token of probability >= 0.5% is drawn (missed with probability < e^-20).
    for (size_t j = 0; j < naive.kept.size(); ++j) {
      if (naive.probability[j] < 0.005) continue;
      EXPECT_TRUE(drawn.count(naive.kept[j]))
          << "kept token " << naive.kept[j] << " (p " << naive.probability[j] << ") never drawn";
    }
  }
}

// Frequencies of N draws against the kept set's renormalised probabilities: each count within 5
// standard deviations, sqrt(N p (1 - p)), plus 1 for the weights' fixed-point rounding (2^-44).
// The draws are seeded, so the test is deterministic; an exact sampler fails a cell with
// probability ~6e-7.
TEST_F(CpuSampling, FrequenciesMatchTheFilteredDistribution) {
  const int64_t vocab = 12;
  const std::vector<float> row = {1.0f,  0.2f, -0.5f, 2.1f,  0.0f, 1.7f,
                                  -3.0f, 0.9f, 1.0f,  -1.2f, 0.4f, 2.0f};
  const std::vector<RowParams> settings = {
      params_of(1.0f, 0, 1.0f, 0.0f, 0, 0), params_of(0.6f, 0, 1.0f, 0.0f, 0, 0),
      params_of(1.3f, 5, 1.0f, 0.0f, 0, 0), params_of(1.0f, 0, 0.75f, 0.0f, 0, 0),
      params_of(1.0f, 0, 1.0f, 0.3f, 0, 0), params_of(0.9f, 7, 0.9f, 0.1f, 0, 0)};
  constexpr int64_t kDraws = 40000;
  for (const RowParams& setting : settings) {
    std::vector<RowParams> params;
    for (int64_t i = 0; i < kDraws; ++i) {
      RowParams p = setting;
      p.seed = 0x5eed;
      p.counter = static_cast<uint64_t>(i);
      params.push_back(p);
    }
    const Result result = run_sampling(*cpu_, repeat_rows(row, kDraws), vocab, params, {}, false);
    std::vector<int64_t> counts(static_cast<size_t>(vocab), 0);
    for (const int32_t token : result.tokens) ++counts.at(static_cast<size_t>(token));
    const Naive naive = naive_filter(row, {}, setting);
    std::vector<double> expected(static_cast<size_t>(vocab), 0.0);
    for (size_t j = 0; j < naive.kept.size(); ++j)
      expected[static_cast<size_t>(naive.kept[j])] = naive.probability[j];
    for (int64_t i = 0; i < vocab; ++i) {
      const double p = expected[static_cast<size_t>(i)];
      const double mean = p * kDraws, sd = std::sqrt(kDraws * p * (1 - p));
      EXPECT_NEAR(static_cast<double>(counts[static_cast<size_t>(i)]), mean, 5 * sd + 1)
          << "token " << i << " (T " << setting.temperature << ", top_k " << setting.top_k
          << ", top_p " << setting.top_p << ", min_p " << setting.min_p << ")";
    }
  }
}

TEST_F(CpuSampling, SameSeedAndCounterGiveTheSameToken) {
  std::mt19937 rng(3);
  const int64_t vocab = 500;
  const std::vector<float> row = random_logits(1, vocab, rng, 1.0f);
  std::vector<RowParams> params;
  for (uint64_t c = 0; c < 64; ++c) params.push_back(params_of(1.0f, 0, 0.95f, 0.0f, 99, c));
  const Result first = run_sampling(*cpu_, repeat_rows(row, 64), vocab, params);
  const Result again = run_sampling(*cpu_, repeat_rows(row, 64), vocab, params);
  EXPECT_EQ(first.tokens, again.tokens);
  // Different counters are different draws: not all the same token (p < 1e-20 for these logits).
  EXPECT_GT(std::set<int32_t>(first.tokens.begin(), first.tokens.end()).size(), 8u);
  // Another seed, another sequence.
  for (RowParams& p : params) p.seed = 100;
  EXPECT_NE(run_sampling(*cpu_, repeat_rows(row, 64), vocab, params).tokens, first.tokens);
}

TEST_F(CpuSampling, SuppressedTokensAreNeverDrawn) {
  const int64_t vocab = 6, rows = 2000;
  const std::vector<float> row = {3.0f, 2.9f, 0.1f, 2.8f, -1.0f, 2.95f};
  std::vector<RowParams> params;
  for (int64_t i = 0; i < rows; ++i)
    params.push_back(params_of(1.0f, 0, 1.0f, 0.0f, 5, static_cast<uint64_t>(i)));
  // One mask row for every row: 0 and 5 (the likeliest) suppressed.
  const std::vector<int32_t> mask = {1, 0, 0, 0, 0, 1};
  const Result result = run_sampling(*cpu_, repeat_rows(row, rows), vocab, params, mask);
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t token = result.tokens[static_cast<size_t>(i)];
    ASSERT_TRUE(token == 1 || token == 2 || token == 3 || token == 4) << token;
    EXPECT_NEAR(result.logprobs[static_cast<size_t>(i)], naive_logprob(row, mask, token), 1e-6);
  }
  // All suppressed: no token, no logprob.
  const Result none = run_sampling(*cpu_, row, vocab, {params[0]}, std::vector<int32_t>(6, 1));
  EXPECT_EQ(none.tokens[0], -1);
  EXPECT_TRUE(std::isnan(none.logprobs[0]));
}

TEST_F(CpuSampling, LogprobIsOfTheModelsDistribution) {
  std::mt19937 rng(5);
  const int64_t vocab = 700;
  const std::vector<float> row = random_logits(1, vocab, rng, 4.0f);
  // Temperature and filters do not change the reported logprob (engine/logprobs.h).
  const std::vector<RowParams> params = {params_of(0.0f, 0, 1.0f, 0.0f, 1, 0),
                                         params_of(0.5f, 3, 0.5f, 0.1f, 1, 1)};
  const Result result = run_sampling(*cpu_, repeat_rows(row, 2), vocab, params);
  for (size_t r = 0; r < 2; ++r)
    EXPECT_NEAR(result.logprobs[r], naive_logprob(row, {}, result.tokens[r]),
                1e-6 * std::max(1.0, std::abs(naive_logprob(row, {}, result.tokens[r]))));
}

TEST_F(CpuSampling, BadShapesAreOneClearError) {
  Tensor logits = cpu_->allocate(2, 10, DType::F32);
  Tensor params = cpu_->allocate(2, 5, DType::I32);
  Tensor tokens = cpu_->allocate(2, 1, DType::I32);
  try {
    cpu_->sample_tokens(logits, params, Tensor{}, tokens, Tensor{});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample_tokens: the parameters"), std::string::npos)
        << e.what();
  }
  for (Tensor* t : {&logits, &params, &tokens}) cpu_->release(*t);
}

// ---- the CUDA kernel's search (kernels/sampling_search.h), run on the host with plain loops
struct SerialOps {
  const std::vector<float>& logits;
  float maximum, temperature;

  uint64_t weight(size_t i) const {
    if (std::isnan(logits[i])) return 0;
    return sampling::logit_weight(logits[i], maximum, temperature);
  }
  uint64_t at_least(uint64_t threshold, bool mass) const {
    uint64_t total = 0;
    if (threshold > 0xffffffffull) return 0;
    for (size_t i = 0; i < logits.size(); ++i)
      if (sampling::rank_key(logits[i]) >= threshold && weight(i) > 0)
        total += mass ? weight(i) : 1;
    return total;
  }
  uint64_t weight_at_least(uint64_t least) const {
    uint64_t count = 0;
    for (size_t i = 0; i < logits.size(); ++i) count += weight(i) >= least ? 1 : 0;
    return count;
  }
  uint64_t weight_of_key(uint32_t key) const {
    return sampling::logit_weight(sampling::key_logit(key), maximum, temperature);
  }
  int32_t first_crossing(const sampling::SearchPrefix& prefix, uint64_t target) const {
    uint64_t cumulative = 0, ties = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const uint64_t w = weight(i);
      if (w == 0) continue;
      const uint32_t key = sampling::rank_key(logits[i]);
      if (key < prefix.key) continue;
      if (key == prefix.key && ties++ >= prefix.ties) continue;
      cumulative += w;
      if (cumulative > target) return static_cast<int32_t>(i);
    }
    return -1;
  }
};

// The threshold search the GPU runs finds the CPU reference's token, on rows with ties at every
// boundary (few distinct logit values) and on spread ones, under every filter.
TEST(SamplingSearch, FindsTheCpuReferencesToken) {
  const auto cpu = make_cpu_backend(1);
  std::mt19937 rng(21);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t vocab = 50 + trial * 7;
    std::vector<float> row = random_logits(1, vocab, rng, trial % 3 == 0 ? 0.5f : 3.0f);
    if (trial % 2 == 0)  // few distinct values: ties at the top-k, top-p and min-p boundaries
      for (float& x : row) x = std::round(x * 2.0f) / 2.0f;
    if (trial % 7 == 0) row[static_cast<size_t>(trial) % row.size()] = NAN;
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    const RowParams p = params_of(0.2f + 2.0f * uniform(rng), trial % 4 == 0 ? 0 : 1 + trial % 37,
                                  trial % 3 == 1 ? 1.0f : 0.05f + 0.9f * uniform(rng),
                                  trial % 5 == 2 ? 0.2f * uniform(rng) : 0.0f,
                                  static_cast<uint64_t>(trial), static_cast<uint64_t>(trial) * 3);
    float maximum = -INFINITY;
    for (const float x : row)
      if (!std::isnan(x)) maximum = std::max(maximum, x);
    SerialOps ops{row, maximum, p.temperature};
    const int32_t searched = sampling::search_sample(ops, p);
    EXPECT_EQ(searched, run_sampling(*cpu, row, vocab, {p}).tokens[0])
        << "trial " << trial << ": vocab " << vocab << ", T " << p.temperature << ", top_k "
        << p.top_k << ", top_p " << p.top_p << ", min_p " << p.min_p;
  }
}

// ---- every backend against the CPU reference
class SamplingBackends : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cpu") backend_ = make_cpu_backend(3);
#ifdef HOGWILD_CUDA
    if (GetParam() == "cuda") {
      if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
      backend_ = make_cuda_backend(0);
    }
#endif
    ASSERT_TRUE(backend_) << "backend " << GetParam() << " unavailable";
  }
  std::unique_ptr<Backend> reference_ = make_cpu_backend(1);
  std::unique_ptr<Backend> backend_;
};

// Rows of every kind: greedy, temperatures, each filter alone and together, a per-row mask, ties,
// -inf and NaN logits; a small and a Qwen-sized vocabulary.
TEST_P(SamplingBackends, MatchesTheCpuReference) {
  for (const int64_t vocab : {int64_t{1000}, int64_t{151936}}) {
    std::mt19937 rng(static_cast<unsigned>(vocab));
    const int64_t rows = vocab > 100000 ? 12 : 96;
    std::vector<float> logits = random_logits(rows, vocab, rng, 2.5f);
    // Ties and special values in some rows.
    for (int64_t r = 0; r < rows; r += 5) {
      float* row = logits.data() + r * vocab;
      row[3] = row[vocab - 1] = row[vocab / 2] = 11.0f;  // a three-way tie at the top
      row[7] = -std::numeric_limits<float>::infinity();
      if (r % 10 == 0) row[8] = std::numeric_limits<float>::quiet_NaN();
    }
    for (int64_t r = 2; r < rows; r += 7)  // many equal logits around the top-p boundary
      std::fill(logits.begin() + r * vocab, logits.begin() + r * vocab + vocab / 3, 1.0f);
    std::vector<RowParams> params;
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const auto seed = static_cast<uint64_t>(r) * 0x9e3779b97f4a7c15ull;
      switch (r % 8) {
        case 0:
          params.push_back(params_of(0.0f, 0, 1.0f, 0.0f, seed, 0));
          break;
        case 1:
          params.push_back(params_of(1.0f, 0, 1.0f, 0.0f, seed, 1));
          break;
        case 2:
          params.push_back(params_of(0.3f + uniform(rng), 40, 1.0f, 0.0f, seed, 2));
          break;
        case 3:
          params.push_back(params_of(1.0f, 0, 0.1f + 0.8f * uniform(rng), 0.0f, seed, 3));
          break;
        case 4:
          params.push_back(params_of(1.5f, 0, 1.0f, 0.05f * uniform(rng), seed, 4));
          break;
        case 5:
          params.push_back(params_of(0.8f, 50, 0.9f, 0.02f, seed, 5));
          break;
        case 6:
          params.push_back(params_of(4.0f, 1, 0.5f, 0.0f, seed, 6));
          break;
        default:
          params.push_back(params_of(0.7f, 1000, 0.95f, 0.0f, seed, ~0ull));
          break;
      }
    }
    std::vector<int32_t> mask(static_cast<size_t>(rows * vocab), 0);
    for (size_t i = 0; i < mask.size(); i += 13) mask[i] = 1;
    for (const bool masked : {false, true}) {
      const std::vector<int32_t> m = masked ? mask : std::vector<int32_t>{};
      const Result expected = run_sampling(*reference_, logits, vocab, params, m);
      const Result actual = run_sampling(*backend_, logits, vocab, params, m);
      for (int64_t r = 0; r < rows; ++r) {
        const auto i = static_cast<size_t>(r);
        EXPECT_EQ(actual.tokens[i], expected.tokens[i])
            << "vocab " << vocab << " row " << r << (masked ? " masked" : "");
        if (std::isnan(expected.logprobs[i])) {
          EXPECT_TRUE(std::isnan(actual.logprobs[i])) << "row " << r;
        } else {
          EXPECT_NEAR(actual.logprobs[i], expected.logprobs[i],
                      1e-5 * std::max(1.0f, std::abs(expected.logprobs[i])))
              << "vocab " << vocab << " row " << r;
        }
      }
      // The reference's own greedy rows against the naive argmax.
      for (int64_t r = 0; r < rows; r += 8) {
        std::vector<float> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
        std::vector<int32_t> row_mask;
        if (masked) row_mask.assign(m.begin() + r * vocab, m.begin() + (r + 1) * vocab);
        EXPECT_EQ(expected.tokens[static_cast<size_t>(r)], naive_argmax(row, row_mask));
      }
    }
  }
}

#ifdef HOGWILD_CUDA
#define HOGWILD_SAMPLING_BACKENDS "cpu", "cuda"
#else
#define HOGWILD_SAMPLING_BACKENDS "cpu"
#endif
INSTANTIATE_TEST_SUITE_P(Backends, SamplingBackends, ::testing::Values(HOGWILD_SAMPLING_BACKENDS),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

}  // namespace
}  // namespace hogwild
