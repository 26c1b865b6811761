#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace hogwild {

void SamplingParams::validate() const {
  HOGWILD_CHECK(std::isfinite(temperature) && temperature >= 0.0, "temperature must be >= 0, got ",
                temperature);
  HOGWILD_CHECK(top_k >= 0, "top_k must be >= 0, got ", top_k);
  HOGWILD_CHECK(top_p > 0.0 && top_p <= 1.0, "top_p must be in (0, 1], got ", top_p);
  HOGWILD_CHECK(min_p >= 0.0 && min_p < 1.0, "min_p must be in [0, 1), got ", min_p);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), generator_(params.seed) {
  params_.validate();
}

int32_t argmax(std::span<const float> logits) {
  HOGWILD_ASSERT(!logits.empty());
  // First maximum wins, so ties resolve the same way on every backend.
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

double Sampler::uniform() { return static_cast<double>(generator_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<const float> logits) {
  const auto temperature = static_cast<float>(params_.temperature);
  const auto top_p = static_cast<float>(params_.top_p);
  const auto min_p = static_cast<float>(params_.min_p);
  if (params_.temperature < kGreedyBelowTemperature) return argmax(logits);

  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i)
    candidates_.emplace_back(logits[i] / temperature, static_cast<int32_t>(i));
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(keep),
                      candidates_.end(), by_logit);
    candidates_.resize(keep);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }

  // Softmax over the survivors (sorted, so the first is the maximum).
  const float maximum = candidates_.front().first;
  double total = 0.0;
  for (auto& [value, id] : candidates_) {
    value = std::exp(value - maximum);
    total += value;
  }
  for (auto& candidate : candidates_) candidate.first = static_cast<float>(candidate.first / total);

  if (top_p < 1.0f) {
    double cumulative = 0.0;
    size_t cut = 0;
    while (cut < candidates_.size()) {
      cumulative += candidates_[cut].first;
      ++cut;
      if (cumulative >= top_p) break;
    }
    candidates_.resize(cut);
  }
  if (min_p > 0.0f) {
    const float threshold = min_p * candidates_.front().first;
    size_t cut = 1;
    while (cut < candidates_.size() && candidates_[cut].first >= threshold) ++cut;
    candidates_.resize(cut);
  }

  double mass = 0.0;
  for (const auto& candidate : candidates_) mass += candidate.first;
  double draw = uniform() * mass;
  for (const auto& [probability, id] : candidates_) {
    draw -= probability;
    if (draw < 0.0) return id;
  }
  return candidates_.back().second;
}

}  // namespace hogwild
