// The decode chunk of block_attention (kernels/cpu/decode_attention.h), each kernel this CPU has
// (AVX2, AVX-512), against the softmax partials by their definition, in double: every query count
// around the kernels' groups of three and four, key counts around their groups of four, eight and
// sixteen, keys gathered from scattered pool rows, and visibility cut anywhere (none, some, all).
// Tolerance: a key's fp32 score is off by about sqrt(d) roundings of its partial sums, so its
// weight e^(score - max) by a relative u sqrt(d) sum_c |q_c k_c| (u = 2^-24); the fp32 sums of up
// to 300 weights and exp_avx2's 6e-9 truncation add 2e-6 of the scale (sum |weights x values|).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/decode_attention.h"

namespace hogwild::cpu {
namespace {

struct Case {
  int64_t width, tokens, head_dim;
};

void check(const Case& c, DecodeIsa isa, std::mt19937& rng) {
  SCOPED_TRACE(::testing::Message()
               << "width " << c.width << ", tokens " << c.tokens << ", head_dim " << c.head_dim);
  const int64_t d = c.head_dim, stride = d * 3 + 5, pool_rows = c.tokens * 2 + 3;
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> queries(static_cast<size_t>(c.width * d));
  for (float& q : queries) q = value(rng) * 0.4f;
  std::vector<float> pool_k(static_cast<size_t>(pool_rows * stride)),
      pool_v(static_cast<size_t>(pool_rows * stride));
  for (float& x : pool_k) x = value(rng) * 3.0f;
  for (float& x : pool_v) x = value(rng);
  // Keys at scattered, distinct pool rows (pages of a block need not be adjacent).
  std::vector<int64_t> all(static_cast<size_t>(pool_rows));
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  const std::vector<int64_t> rows(all.begin(), all.begin() + c.tokens);
  std::vector<int32_t> visible(static_cast<size_t>(c.width));
  std::uniform_int_distribution<int32_t> seen(-2, static_cast<int32_t>(c.tokens) + 3);
  for (int32_t& v : visible) v = seen(rng);
  if (c.width > 1) visible[1] = static_cast<int32_t>(c.tokens);  // one query sees every key
  const int64_t column = d;  // the kv head's columns start inside the row
  const DecodeChunk chunk{
      queries.data(),         visible.data(),         c.width, d, rows.data(), c.tokens,
      pool_k.data() + column, pool_v.data() + column, stride};
  std::vector<float> scratch, maxima(static_cast<size_t>(c.width)),
      sums(static_cast<size_t>(c.width)),
      out(static_cast<size_t>(c.width * d), std::numeric_limits<float>::quiet_NaN());
  attend_decode_chunk(chunk, scratch, maxima.data(), sums.data(), out.data(), isa);

  for (int64_t w = 0; w < c.width; ++w) {
    const int64_t n = std::clamp<int64_t>(visible[static_cast<size_t>(w)], 0, c.tokens);
    if (n == 0) {
      EXPECT_EQ(maxima[static_cast<size_t>(w)], -std::numeric_limits<float>::infinity());
      EXPECT_EQ(sums[static_cast<size_t>(w)], 0.0f);
      for (int64_t x = 0; x < d; ++x) EXPECT_EQ(out[static_cast<size_t>(w * d + x)], 0.0f);
      continue;
    }
    std::vector<double> score(static_cast<size_t>(n)), weight_error(static_cast<size_t>(n));
    double maximum = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0, magnitude = 0.0;
      for (int64_t x = 0; x < d; ++x) {
        const double product =
            double{queries[static_cast<size_t>(w * d + x)]} *
            pool_k[static_cast<size_t>(rows[static_cast<size_t>(j)] * stride + column + x)];
        s += product;
        magnitude += std::fabs(product);
      }
      score[static_cast<size_t>(j)] = s;
      weight_error[static_cast<size_t>(j)] =
          std::ldexp(1.0, -24) * std::sqrt(static_cast<double>(d)) * magnitude;
      maximum = std::max(maximum, s);
    }
    ASSERT_NEAR(maxima[static_cast<size_t>(w)], maximum, 1e-5 * (1.0 + std::fabs(maximum)))
        << "query " << w;
    // Weights relative to the kernel's own maximum (its partial is defined with it).
    const double shift = maxima[static_cast<size_t>(w)];
    double sum = 0.0, sum_error = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double weight = std::exp(score[static_cast<size_t>(j)] - shift);
      sum += weight;
      sum_error += weight * weight_error[static_cast<size_t>(j)];
    }
    EXPECT_NEAR(sums[static_cast<size_t>(w)], sum, 2e-6 * sum + sum_error) << "query " << w;
    for (int64_t x = 0; x < d; ++x) {
      double o = 0.0, scale = 0.0, error = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        const double weight = std::exp(score[static_cast<size_t>(j)] - shift);
        const double v =
            pool_v[static_cast<size_t>(rows[static_cast<size_t>(j)] * stride + column + x)];
        o += weight * v;
        scale += std::fabs(weight * v);
        error += std::fabs(weight * v) * weight_error[static_cast<size_t>(j)];
      }
      EXPECT_NEAR(out[static_cast<size_t>(w * d + x)], o, 2e-6 * scale + error + 1e-30)
          << "query " << w << ", column " << x;
    }
  }
}

void check_kernel(DecodeIsa isa, std::initializer_list<int64_t> head_dims) {
  std::mt19937 rng(3);
  for (int64_t head_dim : head_dims)
    for (int64_t width : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12})
      for (int64_t tokens : {1, 3, 4, 5, 8, 9, 15, 16, 17, 31, 33, 256, 300})
        check({width, tokens, head_dim}, isa, rng);
}

TEST(DecodeAttention, Avx2MatchesTheDefinition) {
  if (!decode_isa_available(DecodeIsa::kAvx2, 64)) GTEST_SKIP() << "this CPU has no AVX2+FMA";
  check_kernel(DecodeIsa::kAvx2, {8, 64, 72, 128});
}

TEST(DecodeAttention, Avx512MatchesTheDefinition) {
  if (!decode_isa_available(DecodeIsa::kAvx512, 64)) GTEST_SKIP() << "this CPU has no AVX-512";
  check_kernel(DecodeIsa::kAvx512, {16, 48, 64, 80, 128, 256});
}

TEST(DecodeAttention, NeedsHeadDimsOfWholeVectors) {
  EXPECT_FALSE(decode_chunk_supported(12));
  EXPECT_FALSE(decode_chunk_supported(100));
  EXPECT_FALSE(decode_isa_available(DecodeIsa::kAvx512, 72));
  EXPECT_FALSE(decode_isa_available(DecodeIsa::kAvx512, 0));
}

}  // namespace
}  // namespace hogwild::cpu
