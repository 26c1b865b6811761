// token_logprobs against a naive reference: log_softmax of the whole row in double
// (tests/numerics.h) and a full sort for the top list, on rows with ties, suppressed (-inf)
// tokens, large logits, K = 0 and K larger than the vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/error.h"
#include "engine/logprobs.h"
#include "engine/sampler.h"
#include "numerics.h"

namespace hogwild {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Every id sorted by the reference log-probabilities, most likely first, ties by lower id.
std::vector<int32_t> reference_order(const std::vector<double>& reference) {
  std::vector<int32_t> ids(reference.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return reference[static_cast<size_t>(a)] > reference[static_cast<size_t>(b)];
  });
  return ids;
}

void expect_matches_reference(const std::vector<float>& logits, int32_t chosen, int64_t k) {
  const std::vector<double> reference =
      testing::log_softmax(logits.data(), static_cast<int64_t>(logits.size()));
  const TokenLogprobs got = token_logprobs(logits, chosen, k);
  EXPECT_NEAR(got.chosen, reference[static_cast<size_t>(chosen)], 1e-12);
  const size_t expected_size = std::min(static_cast<size_t>(k), logits.size());
  ASSERT_EQ(got.top.size(), expected_size);
  const std::vector<int32_t> order = reference_order(reference);
  for (size_t i = 0; i < expected_size; ++i) {
    EXPECT_EQ(got.top[i].id, order[i]) << "rank " << i;
    const double want = reference[static_cast<size_t>(order[i])];
    if (std::isinf(want))
      EXPECT_EQ(got.top[i].logprob, want) << "rank " << i;
    else
      EXPECT_NEAR(got.top[i].logprob, want, 1e-12) << "rank " << i;
  }
}

TEST(Logprobs, MatchReferenceOnRandomRows) {
  std::mt19937 generator(7);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> logits(500);
    for (float& value : logits) value = normal(generator);
    for (int64_t k : {1, 5, 40})
      expect_matches_reference(logits, static_cast<int32_t>(trial * 13 % 500), k);
  }
}

TEST(Logprobs, ProbabilitiesSumToOne) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 3.0f, 0.5f};
  const TokenLogprobs got = token_logprobs(logits, 0, 7);
  double total = 0.0;
  for (const TokenLogprob& entry : got.top) total += std::exp(entry.logprob);
  EXPECT_NEAR(total, 1.0, 1e-12);
}

TEST(Logprobs, TiesListTheLowerIdFirstAsArgmaxPicks) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, 3.0f, 3.0f, 0.5f};
  const TokenLogprobs got = token_logprobs(logits, argmax(logits), 4);
  ASSERT_EQ(got.top.size(), 4u);
  EXPECT_EQ(got.top[0].id, 1);
  EXPECT_EQ(got.top[1].id, 3);
  EXPECT_EQ(got.top[2].id, 4);
  EXPECT_EQ(got.top[3].id, 2);
  EXPECT_EQ(got.top[0].logprob, got.top[1].logprob);
  EXPECT_EQ(got.chosen, got.top[0].logprob);  // greedy: the chosen token is the top one
  EXPECT_NEAR(got.chosen,
              std::log(1.0 / 3.0) -
                  std::log1p(std::exp(-0.5) / 3 + std::exp(-2.0) / 3 + std::exp(-2.5) / 3),
              1e-12);
  expect_matches_reference(logits, 2, 6);
}

TEST(Logprobs, SuppressedTokensAreMinusInfinityAndLast) {
  const std::vector<float> logits = {kMinusInf, 2.0f, kMinusInf, 1.0f, 0.0f};
  const TokenLogprobs got = token_logprobs(logits, 0, 5);
  EXPECT_EQ(got.chosen, -std::numeric_limits<double>::infinity());
  ASSERT_EQ(got.top.size(), 5u);
  EXPECT_EQ(got.top[0].id, 1);
  EXPECT_EQ(got.top[3].id, 0);
  EXPECT_EQ(got.top[4].id, 2);
  EXPECT_EQ(got.top[4].logprob, -std::numeric_limits<double>::infinity());
  // The finite ones are the softmax over the tokens left.
  const double log_total = std::log(std::exp(2.0) + std::exp(1.0) + 1.0);
  EXPECT_NEAR(got.top[0].logprob, 2.0 - log_total, 1e-12);
  expect_matches_reference(logits, 3, 5);
}

TEST(Logprobs, LargeLogitsDoNotOverflow) {
  // exp(1000) overflows double: only the max-shifted sum stays finite.
  const std::vector<float> logits = {1000.0f, 999.0f, -1000.0f};
  const TokenLogprobs got = token_logprobs(logits, 1, 2);
  EXPECT_NEAR(got.chosen, -1.0 - std::log1p(std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(got.top[0].logprob, -std::log1p(std::exp(-1.0)), 1e-12);
  expect_matches_reference(logits, 2, 3);
}

TEST(Logprobs, KLargerThanTheVocabularyListsEveryToken) {
  const std::vector<float> logits = {0.5f, -0.5f, 2.0f};
  EXPECT_EQ(token_logprobs(logits, 1, 100).top.size(), 3u);
  expect_matches_reference(logits, 1, 100);
}

TEST(Logprobs, KZeroGivesOnlyTheChosenToken) {
  const std::vector<float> logits = {0.5f, -0.5f, 2.0f};
  const TokenLogprobs got = token_logprobs(logits, 2, 0);
  EXPECT_TRUE(got.top.empty());
  expect_matches_reference(logits, 2, 0);
}

TEST(Logprobs, RowsWithoutADistributionAreNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const std::vector<float>& logits :
       {std::vector<float>{kMinusInf, kMinusInf}, std::vector<float>{0.0f, nan},
        std::vector<float>{inf, 0.0f}}) {
    const TokenLogprobs got = token_logprobs(logits, 0, 2);
    EXPECT_TRUE(std::isnan(got.chosen));
    EXPECT_TRUE(got.top.empty());
  }
}

TEST(Logprobs, RejectsAChosenTokenOutsideTheRowAndNegativeK) {
  const std::vector<float> logits = {0.5f, -0.5f};
  EXPECT_THROW(token_logprobs(logits, 2, 1), Error);
  EXPECT_THROW(token_logprobs(logits, -1, 1), Error);
  EXPECT_THROW(token_logprobs(logits, 0, -1), Error);
}

}  // namespace
}  // namespace hogwild
