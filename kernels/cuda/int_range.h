// cuBLAS sizes and our kernels' indices are 32-bit ints; tensor shapes are int64_t. Host code
// checks a shape with fits_int before narrowing it. Plain C++17 (read by nvcc and the host
// compiler).
#pragma once

#include <cstdint>
#include <limits>

namespace hogwild::cuda {

// True when `value` is a valid non-negative int (a size, a count or an index).
constexpr bool fits_int(int64_t value) {
  return value >= 0 && value <= std::numeric_limits<int>::max();
}

}  // namespace hogwild::cuda
