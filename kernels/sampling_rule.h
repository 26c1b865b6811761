// The sampling rule of Backend::sample_tokens (kernels/backend.h), shared by the CPU reference
// (kernels/cpu/sampling.cpp) and the CUDA kernel (kernels/cuda/sampling.cu) so both compute the
// same bits. Plain C++17, `__host__ __device__` under nvcc.
//
// The rule, for one row of logits l (suppressed tokens removed):
//  1. Candidates: unsuppressed tokens whose logit is not NaN; none: the token is -1.
//  2. Rank order: logit descending, id ascending at equal logits (rank_key). m = the first
//     candidate's logit. Greedy (temperature < kGreedyBelowTemperature, or m = +-inf): that token.
//  3. Weights W_i = token_weight((l_i - m) / T), integers, m's exactly 2^44. Eligible: candidates
//     with W_i > 0, in rank order; E of them.
//  4. Keep the first L eligible tokens, L = min(K, P, M): K = top_k (0: E; at most E); P = the
//     fewest whose weight sum reaches top_p_target(top_p, sum of the first K) (top_p >= 1: E);
//     M = max(1, count of eligible W_i >= min_p_weight(min_p)) (min_p <= 0: E).
//  5. t = draw_target(seed, counter, sum of the kept weights): floor(u * mass) for the Philox
//     draw u in [0, 1). The token is the lowest id whose cumulative kept weight, in id order,
//     exceeds t.
// Why fixed point: a draw must not depend on the order in which a backend sums probabilities.
// token_weight() uses IEEE-rounded +, -, * only (no FMA contraction: the device uses
// __dmul_rn/__dadd_rn, the CPU file is compiled with -ffp-contract=off) and no libm, so a weight
// is the same integer on every backend; every sum above is an exact integer sum, the same in any
// reduction order; the few double products (the targets) are single IEEE operations. So given
// the same logits and parameters every backend draws the same token: no tie of any measure can
// flip it. (Sampling agrees exactly; only the logits themselves differ between backends.)
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/philox.h"

namespace hogwild::sampling {

// Weights are floor(exp(x) * 2^44), the maximum token's exactly 2^44. A vocabulary below 2^19
// keeps any sum below 2^63. Tokens with exp(x) < 2^-44 (x < -30.5) weigh 0 and are never drawn:
// together at most vocab * 2^-44 (3e-8 at 2^19 tokens) of the mass, the rule's only bias.
constexpr int kWeightBits = 44;
constexpr uint64_t kMaxWeight = uint64_t{1} << kWeightBits;
constexpr int64_t kMaxVocab = int64_t{1} << 19;
// Below this temperature a row is greedy (the engine's kGreedyBelowTemperature, as f32).
constexpr float kGreedyBelowTemperature = 1e-5f;

// One row's parameters; packed into kRowWords int32 columns of an I32 tensor so that they live in
// device memory (uploaded with the step's other inputs):
//   [0] temperature (f32 bits)  [1] top_k (0: off)  [2] top_p (f32 bits; >= 1: off)
//   [3] min_p (f32 bits; <= 0: off)  [4,5] seed (low, high)  [6,7] counter (low, high)
struct RowParams {
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
  uint64_t counter = 0;
};
constexpr int kRowWords = 8;

HOGWILD_HOST_DEVICE inline int32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(x);
#else
  int32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

HOGWILD_HOST_DEVICE inline float bits_float(int32_t bits) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

HOGWILD_HOST_DEVICE inline void pack_row(const RowParams& p, int32_t out[kRowWords]) {
  out[0] = float_bits(p.temperature);
  out[1] = p.top_k;
  out[2] = float_bits(p.top_p);
  out[3] = float_bits(p.min_p);
  out[4] = static_cast<int32_t>(static_cast<uint32_t>(p.seed));
  out[5] = static_cast<int32_t>(static_cast<uint32_t>(p.seed >> 32));
  out[6] = static_cast<int32_t>(static_cast<uint32_t>(p.counter));
  out[7] = static_cast<int32_t>(static_cast<uint32_t>(p.counter >> 32));
}

HOGWILD_HOST_DEVICE inline RowParams unpack_row(const int32_t* in) {
  RowParams p;
  p.temperature = bits_float(in[0]);
  p.top_k = in[1];
  p.top_p = bits_float(in[2]);
  p.min_p = bits_float(in[3]);
  p.seed =
      static_cast<uint32_t>(in[4]) | (static_cast<uint64_t>(static_cast<uint32_t>(in[5])) << 32);
  p.counter =
      static_cast<uint32_t>(in[6]) | (static_cast<uint64_t>(static_cast<uint32_t>(in[7])) << 32);
  return p;
}

// Rank order of logits as unsigned keys: a larger logit has a larger key, -0 and +0 one key (they
// compare equal), so "key >= v" thresholds are exact float comparisons.
HOGWILD_HOST_DEVICE inline uint32_t rank_key(float logit) {
  const auto bits = static_cast<uint32_t>(float_bits(logit == 0.0f ? 0.0f : logit));
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}

// The logit of a rank key (the inverse of rank_key).
HOGWILD_HOST_DEVICE inline float key_logit(uint32_t key) {
  const uint32_t bits = (key & 0x80000000u) != 0 ? (key & 0x7FFFFFFFu) : ~key;
  return bits_float(static_cast<int32_t>(bits));
}

// IEEE-rounded double ops that the compiler may not fuse into FMAs.
HOGWILD_HOST_DEVICE inline double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
HOGWILD_HOST_DEVICE inline double add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
HOGWILD_HOST_DEVICE inline double divide(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

// floor(exp(x) * 2^44) for x <= 0 (0 for x < -31 and for NaN): x = n ln2 + r with |r| <= ln2/2,
// exp(r) by its Taylor series to r^13 (truncation < 3e-16), times 2^(n+44) exactly.
HOGWILD_HOST_DEVICE inline uint64_t token_weight(double x) {
  if (!(x > -31.0)) return 0;
  if (x >= 0.0) return kMaxWeight;
  constexpr double kLog2e = 1.4426950408889634;
  // ln 2 split so that n * kLn2Hi is exact for |n| < 2^11.
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  // n = ceil(x log2e - 1/2) (the cast truncates toward zero, and the argument is negative), so
  // |x log2e - n| <= 1/2.
  const double n = static_cast<double>(static_cast<int>(add(mul(x, kLog2e), -0.5)));
  const double r = add(add(x, -mul(n, kLn2Hi)), -mul(n, kLn2Lo));
  constexpr double kInverseFactorial[14] = {1.0,
                                            1.0,
                                            1.0 / 2,
                                            1.0 / 6,
                                            1.0 / 24,
                                            1.0 / 120,
                                            1.0 / 720,
                                            1.0 / 5040,
                                            1.0 / 40320,
                                            1.0 / 362880,
                                            1.0 / 3628800,
                                            1.0 / 39916800,
                                            1.0 / 479001600,
                                            1.0 / 6227020800.0};
  double p = kInverseFactorial[13];
  for (int k = 12; k >= 0; --k) p = add(mul(p, r), kInverseFactorial[k]);
  // 2^(n + 44) from its exponent bits (n + 44 >= -1: a normal double).
  const int biased = 1023 + kWeightBits + static_cast<int>(n);  // in [1022, 1067]
  const auto exponent = static_cast<uint64_t>(biased);
  double scale;
  const uint64_t scale_bits = exponent << 52;
#if defined(__CUDA_ARCH__)
  scale = __longlong_as_double(static_cast<long long>(scale_bits));
#else
  std::memcpy(&scale, &scale_bits, sizeof scale);
#endif
  const double weight = mul(p, scale);
  return weight >= static_cast<double>(kMaxWeight) ? kMaxWeight : static_cast<uint64_t>(weight);
}

// The weight of a logit under the row's maximum and temperature.
HOGWILD_HOST_DEVICE inline uint64_t logit_weight(float logit, float maximum, float temperature) {
  // The difference of two floats is exact in double; one rounded division.
  return token_weight(divide(static_cast<double>(logit) - static_cast<double>(maximum),
                             static_cast<double>(temperature)));
}

// The integer in [0, total) that selects the drawn token: floor(u * total), u the Philox draw.
HOGWILD_HOST_DEVICE inline uint64_t draw_target(uint64_t seed, uint64_t counter, uint64_t total) {
  const double u = philox_uniform(seed, counter);
  const auto target = static_cast<uint64_t>(mul(u, static_cast<double>(total)));
  return target >= total ? total - 1 : target;
}

// Mass the top-p prefix must reach: floor(top_p * mass) (at least 1).
HOGWILD_HOST_DEVICE inline uint64_t top_p_target(float top_p, uint64_t mass) {
  const auto target =
      static_cast<uint64_t>(mul(static_cast<double>(top_p), static_cast<double>(mass)));
  return target == 0 ? 1 : target;
}

// Smallest weight min-p keeps: min_p times the maximum's weight (at least 1).
HOGWILD_HOST_DEVICE inline uint64_t min_p_weight(float min_p) {
  const auto weight =
      static_cast<uint64_t>(mul(static_cast<double>(min_p), static_cast<double>(kMaxWeight)));
  return weight == 0 ? 1 : weight;
}

}  // namespace hogwild::sampling
