// Shared by the dtype tests (test_dtype.cpp on the CPU, test_cuda_dtype.cpp on a GPU): one
// prompt through a Transformer of a given dtype, and the worst log-probability difference of two
// such runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/batch_builder.h"
#include "engine/transformer.h"
#include "numerics.h"

namespace hogwild::testing {

// The prompt is one sequence: every position's logits, `dtype` for the matrices, the K/V pools
// in what the backend keeps for it (kv_dtype_on).
inline std::vector<float> prompt_logits(const WeightSource& weights, Backend& backend, DType dtype,
                                        const std::vector<int32_t>& prompt,
                                        size_t* weight_bytes = nullptr) {
  TransformerOptions options;
  options.max_batch_tokens = 64;
  options.max_view_entries = 1;
  options.dtype = dtype;
  Transformer model(weights, backend, options);
  CacheOptions cache_options = cache_options_for(2, 128, 16);
  cache_options.dtype = kv_dtype_on(backend, dtype);
  KvCache cache(backend, model.shard_config(), cache_options);
  const BlockId block = cache.create_block();
  BatchBuilder builder(cache);
  ForwardBatch batch;
  for (const int32_t& token : prompt) builder.add(block, {&token, 1}, {&block, 1}, true);
  builder.build(batch);
  std::vector<float> logits;
  model.forward(batch, cache, logits);
  if (weight_bytes != nullptr) *weight_bytes = model.weight_bytes();
  return logits;
}

// max |log p_a - log p_b| over every position and token.
inline double worst_logprob_difference(const std::vector<float>& a, const std::vector<float>& b,
                                       int64_t vocab) {
  double worst = 0;
  for (size_t row = 0; row + static_cast<size_t>(vocab) <= a.size();
       row += static_cast<size_t>(vocab)) {
    const std::vector<double> x = log_softmax(a.data() + row, vocab);
    const std::vector<double> y = log_softmax(b.data() + row, vocab);
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  }
  return worst;
}

// Positions whose most likely token differs.
inline int argmax_differences(const std::vector<float>& a, const std::vector<float>& b,
                              int64_t vocab) {
  int count = 0;
  for (size_t row = 0; row + static_cast<size_t>(vocab) <= a.size();
       row += static_cast<size_t>(vocab)) {
    const auto first = static_cast<std::ptrdiff_t>(row);
    const auto last = first + static_cast<std::ptrdiff_t>(vocab);
    count += std::max_element(a.begin() + first, a.begin() + last) - a.begin() !=
             std::max_element(b.begin() + first, b.begin() + last) - b.begin();
  }
  return count;
}

}  // namespace hogwild::testing
