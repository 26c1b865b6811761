// Single-thread speed of the quantized matmul kernels (kernels/cpu/quant_matmul.h) in GB/s of
// weight bytes read, next to a plain streaming read of the same bytes in the same run: the
// kernels' target is that read bandwidth (a decode step is memory-bound).
//
// The weights of one matmul are copied into a pool of at least 128 MiB and twice the L3 and each
// iteration uses the next copy, as a decode step moves from layer to layer, so the bytes come
// from memory, not cache. Geometries are SmolLM2-135M's: 576x1536 (ffn_down: 576 output rows of
// 1536) and 1536x576 (ffn_up / ffn_gate). Activations are quantized once, outside the timing.
//
// Counters: bytes_per_second (weight bytes per second; "read" rows: the streaming read) and
// GB_s (the same in 1e9 bytes/s).
//
//   build/cpu/bin/bench_quant_matmul [--benchmark_filter=...]
//       --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//   (interleaved repetitions, so that the machine's load shifts hit every row alike)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bench_support.h"
#include "kernels/cpu/quant_matmul.h"
#include "kernels/tensor.h"

namespace {

using hogwild::DType;
namespace cpu = hogwild::cpu;

// Bytes of the pool: 128 MiB, or twice the L3 where that is larger.
size_t pool_bytes() {
  return static_cast<size_t>(hogwild::bench::uncached_bytes(int64_t{128} << 20));
}

// Random weights of `dtype`: random quant bits, with every half-precision scale / minimum field set
// to finite normal values (random bits would give infinities, NaNs and slow subnormals).
std::vector<uint8_t> random_weights(DType dtype, int64_t rows, int64_t k,
                                    hogwild::bench::Random& random) {
  const size_t bytes = hogwild::dtype_row_bytes(dtype, k) * static_cast<size_t>(rows);
  std::vector<uint8_t> w(bytes);
  for (uint8_t& b : w) b = static_cast<uint8_t>(random.next() * 127.0f + 128.0f);
  const size_t block = hogwild::dtype_block_bytes(dtype);
  auto put_half = [&](size_t at, uint16_t h) { std::memcpy(w.data() + at, &h, 2); };
  for (size_t at = 0; at < bytes; at += block) {
    switch (dtype) {
      case DType::F32: {
        const float v = random.next();
        std::memcpy(w.data() + at, &v, 4);
        break;
      }
      case DType::F16:
      case DType::BF16:
        put_half(at,
                 static_cast<uint16_t>(0x3000 | (w[at] & 0x3ff)));  // ~0.1 in both formats' ranges
        break;
      case DType::Q4_1:
      case DType::Q5_1:
      case DType::Q4_K:
      case DType::Q5_K:
        put_half(at, 0x2000);
        put_half(at + 2, 0xa400);
        break;
      case DType::Q6_K:
        put_half(at + 208, 0x2000);
        break;
      default:  // Q4_0, Q5_0, Q8_0: one scale first
        put_half(at, 0x2000);
        break;
    }
  }
  return w;
}

// Copies of one matrix filling the pool; each iteration reads the next.
struct Pool {
  std::vector<uint8_t> bytes;
  size_t matrix_bytes = 0;
  size_t copies = 0;
};

Pool make_pool(const std::vector<uint8_t>& matrix, bool from_memory = true) {
  Pool pool;
  pool.matrix_bytes = matrix.size();
  pool.copies = from_memory ? std::max<size_t>(2, pool_bytes() / matrix.size()) : 1;
  pool.bytes.resize(pool.copies * pool.matrix_bytes);
  for (size_t c = 0; c < pool.copies; ++c)
    std::memcpy(pool.bytes.data() + c * pool.matrix_bytes, matrix.data(), matrix.size());
  return pool;
}

void set_counters(benchmark::State& state, size_t bytes_per_iteration, const std::string& label) {
  const auto bytes =
      static_cast<int64_t>(bytes_per_iteration) * static_cast<int64_t>(state.iterations());
  state.SetBytesProcessed(bytes);
  state.counters["GB_s"] =
      benchmark::Counter(static_cast<double>(bytes) * 1e-9, benchmark::Counter::kIsRate);
  state.SetLabel(label);
}

// Args: dtype, rows, k, n, isa, memory (0: one copy of the weights, read from cache: the kernel's
// compute speed), lanes (1: Q4_0 / Q4_1 in the lane layout, as the CPU backend keeps them with
// the AVX2 and AVX-512 kernels; quant_matmul.h).
void BM_QuantMatmul(benchmark::State& state) {
  const auto dtype = static_cast<DType>(state.range(0));
  const int64_t rows = state.range(1), k = state.range(2), n = state.range(3);
  const auto isa = static_cast<cpu::QuantIsa>(state.range(4));
  const bool from_memory = state.range(5) != 0, lanes = state.range(6) != 0;
  if (!cpu::quant_isa_available(isa)) {
    state.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  cpu::set_quant_isa(isa);
  hogwild::bench::Random random{42};
  std::vector<uint8_t> weights = random_weights(dtype, rows, k, random);
  if (lanes) {
    std::vector<uint8_t> plain = weights;
    cpu::to_lane_layout(dtype, plain.data(), k, rows, weights.data(), 0);
  }
  const Pool pool = make_pool(weights, from_memory);
  std::vector<float> x(static_cast<size_t>(n * k));
  for (float& v : x) v = random.next();
  std::vector<uint8_t> act(cpu::activation_bytes(dtype, n, k));
  cpu::quantize_activations(dtype, x.data(), n, k, k, act.data());
  std::vector<float> out(static_cast<size_t>(n * rows));
  size_t copy = 0;
  for (auto _ : state) {
    const uint8_t* w = pool.bytes.data() + copy * pool.matrix_bytes;
    if (lanes)
      cpu::quant_matmul_lane_rows(dtype, w, 0, k, act.data(), n, 0, rows, out.data(), rows);
    else
      cpu::quant_matmul_rows(dtype, w, k, act.data(), n, 0, rows, out.data(), rows);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    copy = copy + 1 == pool.copies ? 0 : copy + 1;
  }
  set_counters(state, pool.matrix_bytes,
               std::string(hogwild::dtype_name(dtype)) + " " + cpu::quant_isa_name(isa) + " " +
                   std::to_string(rows) + "x" + std::to_string(k) + " n=" + std::to_string(n) +
                   (from_memory ? "" : " cached") + (lanes ? " lanes" : ""));
}

// The bandwidth reference: a sum over the same number of bytes, from the same kind of pool.
// Args: matrix bytes.
void BM_StreamingRead(benchmark::State& state) {
  std::vector<uint8_t> matrix(static_cast<size_t>(state.range(0)), 1);
  const Pool pool = make_pool(matrix);
  const size_t words = pool.matrix_bytes / sizeof(uint64_t);
  size_t copy = 0;
  for (auto _ : state) {
    const uint8_t* base = pool.bytes.data() + copy * pool.matrix_bytes;
    // Four independent sums (the compiler vectorizes each), so the adds do not limit the read.
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= words; i += 4) {
      uint64_t v[4];
      std::memcpy(v, base + i * sizeof(uint64_t), sizeof v);
      s0 += v[0];
      s1 += v[1];
      s2 += v[2];
      s3 += v[3];
    }
    uint64_t total = s0 + s1 + s2 + s3;
    benchmark::DoNotOptimize(total);
    copy = copy + 1 == pool.copies ? 0 : copy + 1;
  }
  set_counters(state, pool.matrix_bytes, "read " + std::to_string(pool.matrix_bytes) + " B");
}

void matmul_args(benchmark::internal::Benchmark* b) {
  const DType dtypes[] = {DType::Q4_1, DType::Q8_0, DType::F32,  DType::Q4_0,
                          DType::F16,  DType::BF16, DType::Q5_0, DType::Q5_1,
                          DType::Q4_K, DType::Q5_K, DType::Q6_K};
  const int64_t shapes[][2] = {{576, 1536}, {1536, 576}};
  const auto amx = static_cast<int64_t>(cpu::QuantIsa::Amx),
             avx512 = static_cast<int64_t>(cpu::QuantIsa::Avx512),
             avx2 = static_cast<int64_t>(cpu::QuantIsa::Avx2),
             scalar = static_cast<int64_t>(cpu::QuantIsa::Scalar);
  for (const auto& shape : shapes) {
    for (DType dtype : dtypes) {
      // K-quants need k % 256 == 0: 576 is not; they run on 1536 only.
      if (hogwild::dtype_block_elements(dtype) == 256 && shape[1] % 256 != 0) continue;
      const bool main = dtype == DType::Q4_1 || dtype == DType::Q8_0 || dtype == DType::F32;
      const int64_t d = static_cast<int64_t>(dtype);
      // The layouts the CPU backend uses: the lane layout for Q4_0 / Q4_1 with AVX2, AVX-512, AMX.
      const bool lane_format = cpu::lane_layout_fits(dtype, shape[0]);
      for (int64_t isa : {amx, avx512, avx2}) {
        for (int64_t lanes : {int64_t{0}, int64_t{1}}) {
          if (lanes == 1 && !lane_format) continue;
          if (isa == amx && lanes == 0) continue;  // AMX changes the lane layout's kernel only
          for (int64_t n : {1, 4, 16}) {
            if (!main && n != 1) continue;
            b->Args({d, shape[0], shape[1], n, isa, 1, lanes});
          }
          if (main) b->Args({d, shape[0], shape[1], 1, isa, 0, lanes});
          // A prefill chunk's rows, weights from cache: the compute-bound side.
          if (main) b->Args({d, shape[0], shape[1], 64, isa, 0, lanes});
        }
      }
      if (main) b->Args({d, shape[0], shape[1], 1, scalar, 1, 0});
    }
  }
}

void read_args(benchmark::internal::Benchmark* b) {
  for (DType dtype : {DType::Q4_1, DType::Q8_0, DType::F32})
    b->Arg(static_cast<int64_t>(hogwild::dtype_row_bytes(dtype, 1536) * 576));
}

BENCHMARK(BM_QuantMatmul)
    ->Apply(matmul_args)
    ->ArgNames({"dtype", "rows", "k", "n", "isa", "memory", "lanes"})
    ->MinTime(0.2);
BENCHMARK(BM_StreamingRead)->Apply(read_args)->ArgNames({"bytes"})->MinTime(0.2);

}  // namespace

BENCHMARK_MAIN();
