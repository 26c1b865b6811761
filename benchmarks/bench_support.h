// Helpers shared by the benchmarks: deterministic random data that is never all zeros.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/random.h"
#include "kernels/backend.h"

namespace hogwild::bench {

// Deterministic, fast, uniform in [-1, 1) (splitmix64).
struct Random {
  uint64_t state;
  float next() { return static_cast<float>(splitmix64(state) >> 40) * (2.0f / 16777216.0f) - 1.0f; }
};

// Fills a (large) tensor with random rows: one random host chunk uploaded again and again (the
// pools reach 1 GB; generating every value would dominate a benchmark's run time).
inline void fill_random(Backend& backend, const Tensor& tensor, Random& random) {
  const int64_t chunk = std::min<int64_t>(4096, tensor.rows);
  std::vector<float> host(static_cast<size_t>(chunk * tensor.cols));
  for (float& x : host) x = random.next();
  for (int64_t first = 0; first < tensor.rows; first += chunk) {
    const int64_t count = std::min(chunk, tensor.rows - first);
    backend.upload_f32(tensor.rows_view(first, count), host.data());
  }
}

// Bytes a buffer needs so that the last-level cache cannot hold it: twice the L3, and at least
// `minimum` (where sysconf does not know the L3). Benchmarks that cycle through such a pool read
// from memory, as a decode step does (a Sapphire Rapids-class VM reported an L3 of 480 MiB).
inline int64_t uncached_bytes(int64_t minimum) {
  int64_t bytes = minimum;
#ifdef _SC_LEVEL3_CACHE_SIZE
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (l3 > 0) bytes = std::max<int64_t>(bytes, 2 * static_cast<int64_t>(l3));
#endif
  return bytes;
}

// Sanity check of a benchmark's output: nullptr when every value is finite and not all are zero
// (random inputs cannot give all zeros), else what is wrong.
inline const char* output_problem(Backend& backend, const Tensor& out) {
  std::vector<float> result(static_cast<size_t>(out.elements()));
  backend.download_f32(out, result.data());
  double magnitude = 0.0;
  for (float x : result) {
    if (!std::isfinite(x)) return "non-finite output";
    magnitude += std::fabs(x);
  }
  return magnitude == 0.0 ? "output is all zeros" : nullptr;
}

}  // namespace hogwild::bench
