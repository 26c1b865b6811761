// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel random
// numbers: as easy as 1, 2, 3" (SC 2011), written from the paper's definition: ten rounds of two
// 32x32->64 multiplications and a key schedule of Weyl increments. A draw is a pure function of
// (key, counter), so every (stream, step) has its own numbers with no state to carry, and host and
// device code compute the same bits. Plain C++17, `__host__ __device__` under nvcc (the CUDA
// sampling kernel includes it); tested against Random123's published known-answer vectors
// (tests/kernels/test_sampling.cpp).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define HOGWILD_HOST_DEVICE __host__ __device__
#else
#define HOGWILD_HOST_DEVICE
#endif

namespace hogwild {

struct Philox4x32 {
  uint32_t v[4];
};

namespace philox_detail {

// The multipliers and the key increments (golden ratio and sqrt(3) - 1 in 32-bit fixed point).
constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;
constexpr uint32_t kW1 = 0xBB67AE85u;

HOGWILD_HOST_DEVICE inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

HOGWILD_HOST_DEVICE inline void round(uint32_t c[4], uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  mulhilo(kM0, c[0], hi0, lo0);
  mulhilo(kM1, c[2], hi1, lo1);
  const uint32_t c1 = c[1], c3 = c[3];
  c[0] = hi1 ^ c1 ^ k0;
  c[1] = lo1;
  c[2] = hi0 ^ c3 ^ k1;
  c[3] = lo0;
}

}  // namespace philox_detail

// The 128 random bits of block `counter` under `key`.
HOGWILD_HOST_DEVICE inline Philox4x32 philox4x32_10(const uint32_t counter[4],
                                                    const uint32_t key[2]) {
  Philox4x32 out{{counter[0], counter[1], counter[2], counter[3]}};
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += philox_detail::kW0;
      k1 += philox_detail::kW1;
    }
    philox_detail::round(out.v, k0, k1);
  }
  return out;
}

// A uniform double in [0, 1) with 53 random bits: the draw of step `counter` of stream `seed`
// (key = seed, counter = {counter low, counter high, 0, 0}; the first two output words).
HOGWILD_HOST_DEVICE inline double philox_uniform(uint64_t seed, uint64_t counter) {
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const uint32_t block[4] = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                             0u, 0u};
  const Philox4x32 bits = philox4x32_10(block, key);
  const uint64_t word = (static_cast<uint64_t>(bits.v[1]) << 32) | bits.v[0];
  return static_cast<double>(word >> 11) * 0x1.0p-53;
}

}  // namespace hogwild
