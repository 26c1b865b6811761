// Sampler against the definitions: empirical frequencies over many draws match the filtered
// softmax computed here independently (5 sigma binomial bounds), filters keep exactly the right
// tokens, and a seed reproduces the same draws.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "common/error.h"
#include "engine/sampler.h"

namespace hogwild {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 3.0f, 0.5f};

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  double total = 0;
  std::vector<double> p;
  for (float l : logits) total += std::exp(l / temperature);
  for (float l : logits) p.push_back(std::exp(l / temperature) / total);
  return p;
}

std::map<int32_t, int> histogram(const SamplingParams& params, int draws) {
  Sampler sampler(params);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(kLogits)];
  return counts;
}

void expect_frequencies(const std::map<int32_t, int>& counts, const std::vector<double>& p,
                        int draws) {
  for (size_t id = 0; id < p.size(); ++id) {
    const double expected = p[id] * draws;
    const double sigma = std::sqrt(draws * p[id] * (1 - p[id])) + 1e-9;
    const int actual =
        counts.count(static_cast<int32_t>(id)) ? counts.at(static_cast<int32_t>(id)) : 0;
    EXPECT_LE(std::abs(actual - expected), 5 * sigma + 0.5) << "token " << id;
  }
}

TEST(Sampler, GreedyIsFirstArgmax) {
  Sampler sampler(SamplingParams{});
  EXPECT_EQ(sampler.sample(kLogits), 1);  // 1 and 5 tie; the first wins on every backend
}

TEST(Sampler, TemperatureFollowsSoftmax) {
  SamplingParams params;
  params.temperature = 0.8f;
  params.seed = 11;
  const int draws = 40000;
  expect_frequencies(histogram(params, draws), softmax(kLogits, 0.8), draws);
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 3;  // tokens 1, 5 (tied 3.0) and 2 (2.5)
  const int draws = 30000;
  std::vector<float> kept = {-1e30f, 3.0f, 2.5f, -1e30f, -1e30f, 3.0f, -1e30f};
  expect_frequencies(histogram(params, draws), softmax(kept, 1.0), draws);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_p = 0.6f;
  const std::vector<double> p = softmax(kLogits, 1.0);
  // Sorted: tokens 1 and 5 (p ≈ 0.30 each) already exceed 0.6 together: the nucleus is {1, 5}.
  ASSERT_GT(p[1] + p[5], 0.6);
  ASSERT_LT(p[1], 0.6);
  const int draws = 20000;
  std::vector<float> kept = {-1e30f, 3.0f, -1e30f, -1e30f, -1e30f, 3.0f, -1e30f};
  expect_frequencies(histogram(params, draws), softmax(kept, 1.0), draws);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.min_p = 0.5f;  // keep p >= 0.5 p_max: logits >= 3 - ln 2 ≈ 2.31 → tokens 1, 5, 2
  const int draws = 30000;
  std::vector<float> kept = {-1e30f, 3.0f, 2.5f, -1e30f, -1e30f, 3.0f, -1e30f};
  expect_frequencies(histogram(params, draws), softmax(kept, 1.0), draws);
}

TEST(Sampler, SeedReproducesDraws) {
  SamplingParams params;
  params.temperature = 1.5f;
  params.seed = 99;
  Sampler a(params), b(params);
  params.seed = 100;
  Sampler c(params);
  std::vector<int32_t> da, db, dc;
  for (int i = 0; i < 200; ++i) {
    da.push_back(a.sample(kLogits));
    db.push_back(b.sample(kLogits));
    dc.push_back(c.sample(kLogits));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(Sampler, RejectsBadParameters) {
  auto make = [](auto change) {
    SamplingParams params;
    change(params);
    return Sampler(params);
  };
  EXPECT_THROW(make([](SamplingParams& p) { p.temperature = -1; }), Error);
  EXPECT_THROW(make([](SamplingParams& p) { p.temperature = NAN; }), Error);
  EXPECT_THROW(make([](SamplingParams& p) { p.top_k = -2; }), Error);
  EXPECT_THROW(make([](SamplingParams& p) { p.top_p = 0; }), Error);
  EXPECT_THROW(make([](SamplingParams& p) { p.top_p = 1.5f; }), Error);
  EXPECT_THROW(make([](SamplingParams& p) { p.min_p = 1; }), Error);
}

// A tiny positive temperature is greedy, never NaN garbage; just above the threshold the
// distribution is still computed (and with these logits still all on the maximum).
TEST(Sampler, TinyTemperaturesAreGreedy) {
  const std::vector<float> logits = {-3.0f, 1000.0f, 999.5f, -1000.0f};
  for (double temperature : {1e-38, 1e-300, 9.99e-6, 1e-5, 1e-4}) {
    SamplingParams params;
    params.temperature = temperature;
    params.seed = 3;
    Sampler sampler(params);
    for (int draw = 0; draw < 50; ++draw)
      ASSERT_EQ(sampler.sample(logits), 1) << "temperature " << temperature;
  }
}

}  // namespace
}  // namespace hogwild
