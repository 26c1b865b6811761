// The demo model's forward with the CPU backend's pool at 1, 2, 3 and 7 threads (7: more than the
// cores of most machines), prefilled in batches of many rows (BLAS on slices of the weight rows)
// and decoded row by row (the small GEMM): every thread count gives the single-thread
// log-probabilities (the same bits row by row; within the reference tests' 1e-4 in wide batches,
// where BLAS's fp32 summation order depends on the slice) and the same greedy tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/batch_builder.h"
#include "engine/transformer.h"
#include "model/model.h"
#include "numerics.h"
#include "test_support.h"

namespace hogwild {
namespace {

struct Forward {
  std::vector<std::vector<double>> logprobs;  // per prompt position
  std::vector<int32_t> argmax;
};

// Two sequences share every batch (the prompt and a shifted copy), `chunk` positions a forward.
Forward run(const WeightSource& weights, int threads, const std::vector<int32_t>& prompt,
            size_t chunk, WeightFormat format = WeightFormat::F32) {
  const auto backend = make_cpu_backend(threads);
  TransformerOptions options;
  options.weights = format;
  options.max_batch_tokens = static_cast<int64_t>(2 * chunk);
  options.max_view_entries = 1;
  Transformer model(weights, *backend, options);
  KvCache cache(*backend, model.shard_config(),
                cache_options_for(2, static_cast<int64_t>(prompt.size()), 16));
  const BlockId ours = cache.create_block(), other = cache.create_block();
  BatchBuilder builder(cache);
  ForwardBatch batch;
  std::vector<float> logits;
  const int64_t vocab = weights.config().vocab;
  Forward result;
  for (size_t first = 0; first < prompt.size(); first += chunk) {
    const size_t last = std::min(prompt.size(), first + chunk);
    for (size_t p = first; p < last; ++p) {
      const int32_t shifted = (prompt[p] + 11) % static_cast<int32_t>(vocab);
      builder.add(other, {&shifted, 1}, {&other, 1}, false);
      builder.add(ours, {&prompt[p], 1}, {&ours, 1}, true);
    }
    builder.build(batch);
    model.forward(batch, cache, logits);
    for (size_t row = 0; row < last - first; ++row) {
      const float* row_logits = logits.data() + row * static_cast<size_t>(vocab);
      result.logprobs.push_back(testing::log_softmax(row_logits, vocab));
      result.argmax.push_back(
          static_cast<int32_t>(std::max_element(row_logits, row_logits + vocab) - row_logits));
    }
  }
  return result;
}

double max_abs_difference(const Forward& a, const Forward& b) {
  double worst = 0.0;
  for (size_t p = 0; p < a.logprobs.size(); ++p)
    for (size_t i = 0; i < a.logprobs[p].size(); ++i)
      worst = std::max(worst, std::abs(a.logprobs[p][i] - b.logprobs[p][i]));
  return worst;
}

TEST(ForwardThreads, AnyThreadCountGivesTheSingleThreadResult) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  const auto weights = open_weights(testing::demo_model_path());
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 24; ++i) prompt.push_back((i * 977 + 13) % 40000 + 100);
  // 24 positions x 2 sequences = 48 rows a forward: the BLAS path; then 2 rows: the small GEMM.
  const Forward wide = run(*weights, 1, prompt, 24);
  const Forward narrow = run(*weights, 1, prompt, 1);
  ASSERT_EQ(wide.logprobs.size(), prompt.size());
  EXPECT_LE(max_abs_difference(wide, narrow), 1e-4) << "BLAS and the small GEMM disagree";
  for (const int threads : {2, 3, 7}) {
    // Row by row: every op's outputs are computed whole by one thread, whatever the split, so
    // the bits are the single thread's.
    const Forward threaded_narrow = run(*weights, threads, prompt, 1);
    EXPECT_EQ(max_abs_difference(threaded_narrow, narrow), 0.0) << threads << " threads, 2 rows";
    EXPECT_EQ(threaded_narrow.argmax, narrow.argmax);
    // Many rows: BLAS on slices of the weight rows sums in a slice-dependent order (fp32).
    const Forward threaded_wide = run(*weights, threads, prompt, 24);
    EXPECT_LE(max_abs_difference(threaded_wide, wide), 1e-4) << threads << " threads, 48 rows";
    EXPECT_EQ(threaded_wide.argmax, wide.argmax);
  }
}

// Weights as stored (Q4_1, Q8_0): the same bits at any thread count, in narrow and wide batches
// (the CPU backend runs the quantized kernels row by row on each thread's weight rows). Across
// batchings the attention's fp32 sums differ in the last bits, and the 8-bit activations can
// round such a difference up to a visible one, so only thread counts are compared here.
TEST(ForwardThreads, NativeWeightsGiveTheSameBitsAtAnyThreadCount) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  const auto weights = open_weights(testing::demo_model_path());
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 12; ++i) prompt.push_back((i * 977 + 13) % 40000 + 100);
  for (const size_t chunk : {1, 6}) {
    const Forward single = run(*weights, 1, prompt, chunk, WeightFormat::Native);
    for (const int threads : {2, 3}) {
      const Forward threaded = run(*weights, threads, prompt, chunk, WeightFormat::Native);
      EXPECT_EQ(max_abs_difference(threaded, single), 0.0)
          << threads << " threads, " << 2 * chunk << " rows a forward";
      EXPECT_EQ(threaded.argmax, single.argmax);
    }
  }
}

}  // namespace
}  // namespace hogwild
