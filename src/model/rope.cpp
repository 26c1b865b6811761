#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "common/error.h"

namespace hogwild {
namespace {

double yarn_default_attention_factor(double factor) {
  return factor <= 1.0 ? 1.0 : 0.1 * std::log(factor) + 1.0;
}

// Dimension index whose wavelength makes `rotations` turns over `context` positions (YaRN paper).
double yarn_correction_dim(double rotations, double dim, double base, double context) {
  return dim * std::log(context / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
}

}  // namespace

std::vector<float> rope_inverse_frequencies(const ModelConfig& config) {
  const RopeConfig& rope = config.rope;
  const int64_t dim = config.head_dim;
  const int64_t half = dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv[static_cast<size_t>(i)] = std::pow(rope.theta, -2.0 * static_cast<double>(i) / dim);

  switch (rope.scaling) {
    case RopeScaling::None:
      break;
    case RopeScaling::Linear:
      for (double& f : inv) f /= rope.factor;
      break;
    case RopeScaling::Llama3: {
      // Long wavelengths are interpolated by `factor`, short ones kept, a smooth ramp between.
      const double context = static_cast<double>(rope.original_context);
      const double low_wavelength = context / rope.low_freq_factor;
      const double high_wavelength = context / rope.high_freq_factor;
      for (double& f : inv) {
        const double wavelength = 2.0 * std::numbers::pi / f;
        if (wavelength < high_wavelength) continue;
        if (wavelength > low_wavelength) {
          f /= rope.factor;
        } else {
          const double smooth = (context / wavelength - rope.low_freq_factor) /
                                (rope.high_freq_factor - rope.low_freq_factor);
          f = (1.0 - smooth) * f / rope.factor + smooth * f;
        }
      }
      break;
    }
    case RopeScaling::Yarn: {
      const double context = static_cast<double>(rope.original_context);
      double low = std::floor(yarn_correction_dim(rope.beta_fast, dim, rope.theta, context));
      double high = std::ceil(yarn_correction_dim(rope.beta_slow, dim, rope.theta, context));
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      for (int64_t i = 0; i < half; ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1.0 - ramp;  // 1: keep the original frequency
        double& f = inv[static_cast<size_t>(i)];
        f = f / rope.factor * (1.0 - extrapolation) + f * extrapolation;
      }
      break;
    }
  }
  if (!rope.frequency_factors.empty()) {
    HOGWILD_CHECK(static_cast<int64_t>(rope.frequency_factors.size()) == half,
                  "rope frequency factors: expected ", half, " values, got ",
                  rope.frequency_factors.size());
    for (int64_t i = 0; i < half; ++i)
      inv[static_cast<size_t>(i)] /= rope.frequency_factors[static_cast<size_t>(i)];
  }
  // validate() keeps every parameter finite and positive; a combination that still gives a
  // frequency RoPE cannot use (overflow, a zero divisor) is refused rather than rotating by NaN.
  for (int64_t i = 0; i < half; ++i) {
    const float value = static_cast<float>(inv[static_cast<size_t>(i)]);
    HOGWILD_CHECK(std::isfinite(value) && value > 0.0f, "rope parameters (theta ", rope.theta,
                  ", scaling factor ", rope.factor, ") give inverse frequency ", value,
                  " for dimension pair ", i, "; expected a finite number above 0");
  }
  return {inv.begin(), inv.end()};
}

double rope_score_factor(const ModelConfig& config) {
  if (config.rope.scaling != RopeScaling::Yarn) return 1.0;
  const double factor = config.rope.attention_factor > 0.0
                            ? config.rope.attention_factor
                            : yarn_default_attention_factor(config.rope.factor);
  return factor * factor;
}

}  // namespace hogwild
