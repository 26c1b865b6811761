// Next-token sampling: greedy, or temperature then top-k, top-p (nucleus) and min-p filters,
// drawn from a seeded generator so a fixed seed reproduces a run on any platform.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace hogwild {

// Temperatures below this are greedy: there a logit gap of 1e-3 already weighs exp(-100), so the
// distribution is argmax, and dividing float logits by a tinier temperature would overflow to
// inf - inf = NaN (seen: 1e-38 sampled garbage).
inline constexpr double kGreedyBelowTemperature = 1e-5;

// The one type for sampling settings (config, CLI, teams). Kept in double as configured; the
// sampler works in float, as the logits are.
struct SamplingParams {
  double temperature = 0.0;  // < kGreedyBelowTemperature (0 included): greedy (argmax)
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  double min_p = 0.0;        // 0: off; keep tokens with p >= min_p * p_max
  uint64_t seed = 0;

  void validate() const;  // throws hogwild::Error naming the bad parameter
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(std::span<const float> logits);
  const SamplingParams& params() const { return params_; }

 private:
  double uniform();  // in [0, 1), from 53 random bits (portable, unlike std distributions)

  SamplingParams params_;
  std::mt19937_64 generator_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace hogwild
