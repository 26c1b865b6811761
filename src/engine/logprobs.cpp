#include "engine/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"

namespace hogwild {
namespace {

// The order of the top list: higher logit first, then lower id.
struct MoreLikely {
  std::span<const float> logits;
  bool operator()(int32_t a, int32_t b) const {
    const float la = logits[static_cast<size_t>(a)], lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  }
};

}  // namespace

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t chosen, int64_t top_k) {
  HOGWILD_CHECK(chosen >= 0 && static_cast<size_t>(chosen) < logits.size(), "logprobs: token ",
                chosen, " is not in a vocabulary of ", logits.size());
  HOGWILD_CHECK(top_k >= 0, "logprobs: top_k must be >= 0, got ", top_k);
  TokenLogprobs result;

  double maximum = -std::numeric_limits<double>::infinity();
  for (const float value : logits) {
    if (std::isnan(value) || value == std::numeric_limits<float>::infinity()) {
      result.chosen = std::numeric_limits<double>::quiet_NaN();
      return result;
    }
    maximum = std::max(maximum, static_cast<double>(value));
  }
  if (maximum == -std::numeric_limits<double>::infinity()) {
    result.chosen = std::numeric_limits<double>::quiet_NaN();
    return result;
  }
  double total = 0.0;
  for (const float value : logits) total += std::exp(static_cast<double>(value) - maximum);
  // total >= 1 (the maximum's own term), so the log is finite.
  const double log_total = maximum + std::log(total);
  auto logprob = [&](int32_t id) {
    return static_cast<double>(logits[static_cast<size_t>(id)]) - log_total;
  };
  result.chosen = logprob(chosen);

  // A heap of the best K so far, its least likely on top: O(vocab log K), no vocab-sized buffer.
  const size_t keep = std::min(static_cast<size_t>(top_k), logits.size());
  if (keep == 0) return result;
  const MoreLikely more_likely{logits};
  std::vector<int32_t> best;
  best.reserve(keep);
  for (size_t i = 0; i < logits.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (best.size() < keep) {
      best.push_back(id);
      std::push_heap(best.begin(), best.end(), more_likely);
    } else if (more_likely(id, best.front())) {
      std::pop_heap(best.begin(), best.end(), more_likely);
      best.back() = id;
      std::push_heap(best.begin(), best.end(), more_likely);
    }
  }
  std::sort_heap(best.begin(), best.end(), more_likely);
  result.top.reserve(keep);
  for (const int32_t id : best) result.top.push_back({id, logprob(id)});
  return result;
}

}  // namespace hogwild
