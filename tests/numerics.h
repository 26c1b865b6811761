// Numerical helpers shared by the tests that compare logits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace hogwild::testing {

// Log-probabilities of one row of `vocab` logits, in double (max-shifted, so large logits do not
// overflow).
inline std::vector<double> log_softmax(const float* logits, int64_t vocab) {
  const double maximum = *std::max_element(logits, logits + vocab);
  double total = 0.0;
  for (int64_t i = 0; i < vocab; ++i) total += std::exp(logits[i] - maximum);
  const double log_total = std::log(total) + maximum;
  std::vector<double> result(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) result[static_cast<size_t>(i)] = logits[i] - log_total;
  return result;
}

}  // namespace hogwild::testing
