// Sizes computed from a config or a model file's header: a product or sum too large for size_t
// saturates at its maximum, so that an absurd size fails a memory check instead of wrapping round
// to a small one. One copy for the memory plan and the weight sizes it sums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>

namespace hogwild {

constexpr size_t kSaturatedSize = std::numeric_limits<size_t>::max();

// A count read from a file or a config; negative (nonsense) saturates too.
inline size_t saturating_count(int64_t value) {
  return value < 0 ? kSaturatedSize : static_cast<size_t>(value);
}

inline size_t saturating_product(std::initializer_list<size_t> factors) {
  size_t result = 1;
  for (const size_t factor : factors)
    if (__builtin_mul_overflow(result, factor, &result)) return kSaturatedSize;
  return result;
}

inline size_t saturating_sum(std::initializer_list<size_t> terms) {
  size_t result = 0;
  for (const size_t term : terms)
    if (__builtin_add_overflow(result, term, &result)) return kSaturatedSize;
  return result;
}

}  // namespace hogwild
