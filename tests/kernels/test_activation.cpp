// SwiGLU's elementwise step on the CPU (kernels/cpu/activation.h) at each SIMD level against
// silu(g) * u in double: every length around the eight lanes (so the tails), gates from -120 to
// 120 (past e^±87, where a plain e^-g would overflow for negative g), and the same bits for an
// element wherever the row starts. Tolerance: two float roundings of the exponential (exp_avx2's
// truncation is 6e-9) plus a division and two products: 1e-6 relative; below 1e-30 absolute,
// where the exponential is clamped at e^-87 and silu(g) * u is that small anyway.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/activation.h"

namespace hogwild::cpu {
namespace {

double reference(double g, double u) { return g / (1.0 + std::exp(-g)) * u; }

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> all{SimdLevel::kScalar};
  if (best_simd_level() == SimdLevel::kAvx2) all.push_back(SimdLevel::kAvx2);
  return all;
}

TEST(Activation, SwigluMatchesItsDefinitionAtEveryLengthAndRange) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-120.0f, 120.0f), narrow(-6.0f, 6.0f), up(-2.0f, 2.0f);
  for (SimdLevel level : levels())
    for (int64_t n = 1; n <= 41; ++n) {
      SCOPED_TRACE(::testing::Message() << "level " << static_cast<int>(level) << ", n " << n);
      std::vector<float> g(static_cast<size_t>(n)), u(g.size()), out(g.size(), NAN);
      for (size_t j = 0; j < g.size(); ++j) {
        g[j] = j % 3 == 0 ? wide(rng) : narrow(rng);
        u[j] = up(rng);
      }
      g[0] = n % 2 == 0 ? 0.0f : -0.0f;
      swiglu_row(g.data(), u.data(), out.data(), n, level);
      for (size_t j = 0; j < g.size(); ++j) {
        const double expected = reference(g[j], u[j]);
        ASSERT_TRUE(std::isfinite(out[j])) << "g " << g[j];
        EXPECT_LE(std::abs(out[j] - expected), std::max(1e-6 * std::abs(expected), 1e-30))
            << "g " << g[j] << ", u " << u[j];
      }
    }
}

TEST(Activation, SwigluOfAnElementDoesNotDependOnItsPlaceInTheRow) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> value(-10.0f, 10.0f);
  std::vector<float> g(37), u(37), whole(37), piece(37);
  for (size_t j = 0; j < g.size(); ++j) {
    g[j] = value(rng);
    u[j] = value(rng);
  }
  for (SimdLevel level : levels()) {
    swiglu_row(g.data(), u.data(), whole.data(), 37, level);
    for (int64_t first = 0; first < 37; first += 5)  // pieces of 5: every lane offset
      swiglu_row(g.data() + first, u.data() + first, piece.data() + first,
                 std::min<int64_t>(5, 37 - first), level);
    for (size_t j = 0; j < g.size(); ++j) EXPECT_EQ(whole[j], piece[j]) << "element " << j;
  }
}

}  // namespace
}  // namespace hogwild::cpu
