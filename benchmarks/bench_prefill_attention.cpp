// One layer's CPU block_attention for a prefill chunk: R query rows, the last R tokens of one
// block of K keys (causal in it), SmolLM2-135M's heads (9 query, 3 kv, dim 64), with the per-row
// and the tiled kernel (kernels/cpu/block_attention.h), its tiles on OpenBLAS and, where the CPU
// has them, on the AVX2 and AVX-512 microkernels (attend_tile_simd), interleaved. Prints ms per
// call (median of the repeats) and the ratios; R small is the decode-like side of kTiledEntries.
//
//   build/cpu/bin/bench_prefill_attention [THREADS] [REPEATS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/cpu/block_attention.h"
#include "kernels/cpu/quant_matmul.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/view_entry.h"

namespace {

using hogwild::AttentionShape;
using hogwild::DType;
using hogwild::Tensor;
using hogwild::ViewEntry;
using hogwild::cpu::AttentionKernel;

constexpr int64_t kHeads = 9, kKvHeads = 3, kDim = 64, kPage = 32;

Tensor host(std::vector<float>& v, int64_t cols) {
  return {v.data(), DType::F32, static_cast<int64_t>(v.size()) / cols, cols, cols};
}
Tensor host(std::vector<int32_t>& v, int64_t cols) {
  return {v.data(), DType::I32, static_cast<int64_t>(v.size()) / cols, cols, cols};
}

double median_ms(int64_t keys, int64_t rows, AttentionKernel kernel, hogwild::cpu::ThreadPool& pool,
                 int repeats) {
  const int64_t pages = (keys + kPage - 1) / kPage;
  std::vector<float> k(static_cast<size_t>(pages * kPage * kKvHeads * kDim));
  std::vector<float> v(k.size()), q(static_cast<size_t>(rows * kHeads * kDim)), out(q.size());
  uint32_t state = 12345;
  for (auto* data : {&k, &v, &q})
    for (float& x : *data)
      x = static_cast<float>((state = state * 1664525u + 1013904223u) >> 8) / 8388608.0f - 1.0f;
  std::vector<int32_t> table(static_cast<size_t>(pages)), offsets = {0}, entries;
  for (int64_t p = 0; p < pages; ++p) table[static_cast<size_t>(p)] = static_cast<int32_t>(p);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t position = keys - rows + r;
    entries.insert(entries.end(),
                   {0, static_cast<int32_t>(position), static_cast<int32_t>(position + 1)});
    offsets.push_back(static_cast<int32_t>(r + 1));
  }
  std::vector<float> freq(kDim / 2);
  for (int64_t j = 0; j < kDim / 2; ++j)
    freq[static_cast<size_t>(j)] = static_cast<float>(std::pow(100000.0, -2.0 * j / kDim));
  const AttentionShape shape{kHeads, kKvHeads, kDim, 0.125f};
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    hogwild::cpu::block_attention(host(q, kHeads * kDim), host(k, kKvHeads * kDim),
                                  host(v, kKvHeads * kDim), host(table, pages), kPage,
                                  host(offsets, 1), host(entries, 3), host(freq, kDim / 2), shape,
                                  host(out, kHeads * kDim), pool, kernel);
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  if (threads < 1 || threads > 1024 || repeats < 1) {
    std::fprintf(stderr, "usage: bench_prefill_attention [THREADS 1-1024] [REPEATS >= 1]\n");
    return 1;
  }
  hogwild::cpu::ThreadPool pool(threads);
  std::printf("threads %d, heads 9/3, dim 64, page %lld, median of %d\n", threads,
              static_cast<long long>(kPage), repeats);
  using hogwild::cpu::QuantIsa;
  const bool avx2 = hogwild::cpu::quant_isa_available(QuantIsa::Avx2);
  const bool wide = hogwild::cpu::quant_isa_available(QuantIsa::Avx512);
  std::printf("%8s %6s %12s %12s %12s %12s %10s %10s %10s\n", "keys", "rows", "per-row ms",
              "blas-tile ms", "avx2 ms", "avx512 ms", "row/blas", "blas/avx2", "blas/avx512");
  const int64_t shapes[][2] = {{512, 512}, {3072, 256}, {6046, 256}, {6046, 64}, {6046, 32},
                               {6046, 16}, {6046, 8},   {6046, 4},   {6046, 2},  {6046, 1},
                               {1024, 16}, {1024, 4},   {256, 16},   {256, 4}};
  for (const auto& [keys, rows] : shapes) {
    const double per_row = median_ms(keys, rows, AttentionKernel::kPerRow, pool, repeats);
    hogwild::cpu::set_quant_isa(QuantIsa::Scalar);  // the tiles on OpenBLAS
    const double blas = median_ms(keys, rows, AttentionKernel::kTiled, pool, repeats);
    double avx2_ms = 0, avx512_ms = 0;
    if (avx2) {
      hogwild::cpu::set_quant_isa(QuantIsa::Avx2);
      avx2_ms = median_ms(keys, rows, AttentionKernel::kTiled, pool, repeats);
    }
    if (wide) {
      hogwild::cpu::set_quant_isa(QuantIsa::Avx512);
      avx512_ms = median_ms(keys, rows, AttentionKernel::kTiled, pool, repeats);
    }
    std::printf("%8lld %6lld %12.2f %12.2f %12.2f %12.2f %10.2f %10.2f %10.2f\n",
                static_cast<long long>(keys), static_cast<long long>(rows), per_row, blas, avx2_ms,
                avx512_ms, per_row / blas, avx2 ? blas / avx2_ms : 0.0,
                wide ? blas / avx512_ms : 0.0);
  }
  return 0;
}
