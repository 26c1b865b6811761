// Compiled with -ffp-contract=off (kernels/cpu/CMakeLists.txt): sampling::token_weight must be
// the same IEEE operations as on the device, with no fused multiply-adds.
#include "kernels/cpu/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/sampling_rule.h"

namespace hogwild::cpu {
namespace {

// log p(token) under log_softmax of the row with suppressed tokens at -inf, in double and
// max-shifted; NaN where the row has no distribution (a NaN or +inf among the unsuppressed
// logits, or every one -inf) or no token was chosen (engine/logprobs.h's definition).
double chosen_logprob(const float* logits, const int32_t* suppressed, int64_t vocab,
                      int32_t token) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  if (token < 0) return nan;
  double maximum = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) {
    if (suppressed != nullptr && suppressed[i] != 0) continue;
    const float value = logits[i];
    if (std::isnan(value) || value == std::numeric_limits<float>::infinity()) return nan;
    maximum = std::max(maximum, static_cast<double>(value));
  }
  if (maximum == -std::numeric_limits<double>::infinity()) return nan;
  double total = 0.0;
  for (int64_t i = 0; i < vocab; ++i)
    if (suppressed == nullptr || suppressed[i] == 0)
      total += std::exp(static_cast<double>(logits[i]) - maximum);
  return static_cast<double>(logits[token]) - (maximum + std::log(total));
}

int32_t sample_row(const float* logits, const int32_t* suppressed, int64_t vocab,
                   const sampling::RowParams& p, std::vector<int32_t>& order,
                   std::vector<uint64_t>& weight) {
  auto candidate = [&](int64_t i) {
    return (suppressed == nullptr || suppressed[i] == 0) && !std::isnan(logits[i]);
  };
  // Greedy's token, and the maximum the weights are relative to: the highest rank key, the
  // lowest id among equal ones.
  int64_t best = -1;
  for (int64_t i = 0; i < vocab; ++i)
    if (candidate(i) &&
        (best < 0 || sampling::rank_key(logits[i]) > sampling::rank_key(logits[best])))
      best = i;
  if (best < 0) return -1;
  const float maximum = logits[best];
  if (!(p.temperature >= sampling::kGreedyBelowTemperature) || std::isinf(maximum))
    return static_cast<int32_t>(best);

  // Eligible: candidates of nonzero weight, in rank order (key descending, id ascending).
  weight.assign(static_cast<size_t>(vocab), 0);
  order.clear();
  for (int64_t i = 0; i < vocab; ++i) {
    if (!candidate(i)) continue;
    weight[static_cast<size_t>(i)] = sampling::logit_weight(logits[i], maximum, p.temperature);
    if (weight[static_cast<size_t>(i)] > 0) order.push_back(static_cast<int32_t>(i));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const uint32_t ka = sampling::rank_key(logits[a]), kb = sampling::rank_key(logits[b]);
    return ka > kb || (ka == kb && a < b);
  });
  const auto eligible = static_cast<int64_t>(order.size());
  std::vector<uint64_t> prefix(order.size() + 1, 0);  // prefix[j]: mass of the first j
  for (size_t j = 0; j < order.size(); ++j)
    prefix[j + 1] = prefix[j] + weight[static_cast<size_t>(order[j])];

  const int64_t keep_k = p.top_k > 0 ? std::min<int64_t>(p.top_k, eligible) : eligible;
  int64_t keep = keep_k;
  if (p.top_p < 1.0f) {
    const uint64_t target = sampling::top_p_target(p.top_p, prefix[static_cast<size_t>(keep_k)]);
    int64_t keep_p = 1;
    while (prefix[static_cast<size_t>(keep_p)] < target) ++keep_p;
    keep = std::min(keep, keep_p);
  }
  if (p.min_p > 0.0f) {
    const uint64_t least = sampling::min_p_weight(p.min_p);
    int64_t keep_m = 0;
    for (const int32_t id : order) keep_m += weight[static_cast<size_t>(id)] >= least ? 1 : 0;
    keep = std::min(keep, std::max<int64_t>(keep_m, 1));
  }

  // The draw: the first kept token, in id order, whose cumulative weight exceeds the target.
  const uint64_t target =
      sampling::draw_target(p.seed, p.counter, prefix[static_cast<size_t>(keep)]);
  std::vector<int32_t> kept(order.begin(), order.begin() + keep);
  std::sort(kept.begin(), kept.end());
  uint64_t cumulative = 0;
  for (const int32_t id : kept) {
    cumulative += weight[static_cast<size_t>(id)];
    if (cumulative > target) return id;
  }
  return kept.back();  // unreachable: target < the kept mass
}

}  // namespace

void sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                   const Tensor& tokens, const Tensor& logprobs) {
  std::vector<int32_t> order;
  std::vector<uint64_t> weight;
  const int64_t vocab = logits.cols;
  for (int64_t r = 0; r < logits.rows; ++r) {
    const float* row = static_cast<const float*>(logits.data) + r * logits.stride;
    const int32_t* mask = nullptr;
    if (!suppressed.empty())
      mask = static_cast<const int32_t*>(suppressed.data) +
             (suppressed.rows == 1 ? 0 : r) * suppressed.stride;
    const sampling::RowParams p =
        sampling::unpack_row(static_cast<const int32_t*>(params.data) + r * params.stride);
    const int32_t token = sample_row(row, mask, vocab, p, order, weight);
    static_cast<int32_t*>(tokens.data)[r * tokens.stride] = token;
    if (!logprobs.empty())
      static_cast<float*>(logprobs.data)[r * logprobs.stride] =
          static_cast<float>(chosen_logprob(row, mask, vocab, token));
  }
}

}  // namespace hogwild::cpu
