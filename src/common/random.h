// splitmix64 (Steele, Lea, Flood 2014): a tiny, fast, deterministic generator, the same on every
// platform, for test and benchmark data (sampling draws from std::mt19937_64, engine/sampler.h).
#pragma once

#include <cstdint>

namespace hogwild {

// Advances `state` and returns the next 64 random bits.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace hogwild
