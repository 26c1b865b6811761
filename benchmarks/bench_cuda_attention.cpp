// One layer's Backend::block_attention on the CUDA backend (docs/design.md §4, §8): W Hogwild
// workers, one query row each (the last token of the worker's own 64-token step), in the combined
// layout
//
//   hogwild:     [common, step(other_1), ..., step(other_W-1), step(own)]   (one shared common)
//   independent: [common_w, step(own)]         (W private copies of common: W plain sequences)
//
// with Qwen3-8B's attention geometry (32 query heads, 8 kv heads, head dim 128), K/V pools in
// f32 or bf16. Times come from CUDA events on the backend's stream around 20 back-to-back calls
// (the per-layer cost: the plan, built once per step, is reused by those calls); `first` is one
// call that rebuilds the plan (the first layer of a step), timed the same way.
//
// Counters: us (per call), GB/s = bytes of K/V that must be read (each distinct key and value
// row once: K + 64 W rows for hogwild, W (K + 64) for independent) / time. Compare GB/s with the
// card's HBM bandwidth (H100 SXM ~3.35 TB/s, H200 ~4.8 TB/s; a device-to-device copy reaches
// ~90 % of it). A summary table follows Google Benchmark's own output.
//
//   build/cuda/bin/bench_cuda_attention [--max-keys=N] [benchmark flags]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bench_support.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/view_entry.h"

namespace {

constexpr int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 128;  // Qwen3-8B
constexpr double kRopeTheta = 1e6;
constexpr int64_t kStepTokens = 64;
constexpr int64_t kPageSize = 32;
constexpr int kCallsPerIteration = 20;
int64_t g_max_keys = 16384;

enum class Layout { Hogwild, Independent };

using hogwild::bench::fill_random;
using hogwild::bench::Random;

struct Setup {
  std::unique_ptr<hogwild::Backend> backend;
  hogwild::Tensor keys, values, page_table, q, out, view_offsets, view_entries, inv_freq;
  std::vector<int32_t> offsets;
  hogwild::AttentionShape shape;
  int64_t page_size = kPageSize;
  int64_t keys_read = 0;
  cudaEvent_t start = nullptr, stop = nullptr;

  ~Setup() {
    if (start != nullptr) (void)cudaEventDestroy(start);
    if (stop != nullptr) (void)cudaEventDestroy(stop);
    for (hogwild::Tensor* t :
         {&keys, &values, &page_table, &q, &out, &view_offsets, &view_entries, &inv_freq})
      if (!t->empty()) backend->release(*t);
  }

  void call() {
    backend->block_attention(q, keys, values, page_table, page_size, view_offsets, view_entries,
                             inv_freq, shape, out);
  }
};

std::unique_ptr<Setup> make_setup(Layout layout, int64_t workers, int64_t common_keys,
                                  hogwild::DType kv_dtype) {
  auto setup = std::make_unique<Setup>();
  setup->backend = hogwild::make_cuda_backend(0);
  hogwild::Backend& backend = *setup->backend;
  const int64_t commons = layout == Layout::Hogwild ? 1 : workers;
  const int64_t common_pages = (common_keys + kPageSize - 1) / kPageSize;
  const int64_t step_pages = (kStepTokens + kPageSize - 1) / kPageSize;
  const int64_t pages = commons * common_pages + workers * step_pages;
  const int64_t max_pages = std::max(common_pages, step_pages);
  const int64_t width = kKvHeads * kHeadDim;
  setup->keys = backend.allocate(pages * kPageSize, width, kv_dtype);
  setup->values = backend.allocate(pages * kPageSize, width, kv_dtype);
  Random random{0x5EED0000ull + static_cast<uint64_t>(workers * 131 + common_keys)};
  fill_random(backend, setup->keys, random);
  fill_random(backend, setup->values, random);

  // Blocks: commons first (pages in order), then the steps; lengths as in a decode step.
  std::vector<int64_t> lengths;
  std::vector<int32_t> table;
  int32_t next_page = 0;
  auto add_block = [&](int64_t length, int64_t block_pages) {
    lengths.push_back(length);
    for (int64_t p = 0; p < max_pages; ++p) table.push_back(p < block_pages ? next_page++ : -1);
  };
  for (int64_t c = 0; c < commons; ++c) add_block(common_keys, common_pages);
  for (int64_t w = 0; w < workers; ++w) add_block(kStepTokens, step_pages);
  const int64_t blocks = static_cast<int64_t>(lengths.size());
  setup->page_table = backend.allocate(blocks, max_pages, hogwild::DType::I32);
  backend.upload_i32(setup->page_table, table.data());

  // Views and entries as BatchBuilder::build computes them (append_view_entries).
  std::vector<int32_t> offsets{0};
  std::vector<hogwild::ViewEntry> entries;
  for (int64_t w = 0; w < workers; ++w) {
    std::vector<int32_t> view;
    if (layout == Layout::Hogwild) {
      view.push_back(0);
      for (int64_t k = 1; k < workers; ++k)
        view.push_back(static_cast<int32_t>(commons + (w + k) % workers));
    } else {
      view.push_back(static_cast<int32_t>(w));
    }
    view.push_back(static_cast<int32_t>(commons + w));
    std::vector<int64_t> view_lengths;
    int64_t total = 0;
    for (int32_t b : view) {
      view_lengths.push_back(lengths[static_cast<size_t>(b)]);
      total += view_lengths.back();
    }
    hogwild::append_view_entries(view, view_lengths, total - 1, entries);  // the own step's last
    offsets.push_back(static_cast<int32_t>(entries.size()));
  }
  setup->keys_read = commons * common_keys + workers * kStepTokens;
  setup->offsets = offsets;

  setup->q = backend.allocate(workers, kHeads * kHeadDim, hogwild::DType::F32);
  setup->out = backend.allocate(workers, kHeads * kHeadDim, hogwild::DType::F32);
  fill_random(backend, setup->q, random);
  setup->view_offsets = backend.allocate(workers + 1, 1, hogwild::DType::I32);
  backend.upload_i32(setup->view_offsets, offsets.data());
  setup->view_entries =
      backend.allocate(static_cast<int64_t>(entries.size()), 3, hogwild::DType::I32);
  backend.upload_i32(setup->view_entries, reinterpret_cast<const int32_t*>(entries.data()));
  std::vector<float> inv_freq(static_cast<size_t>(kHeadDim / 2));
  for (size_t j = 0; j < inv_freq.size(); ++j)
    inv_freq[j] = static_cast<float>(
        std::pow(kRopeTheta, -2.0 * static_cast<double>(j) / static_cast<double>(kHeadDim)));
  setup->inv_freq = backend.allocate(1, kHeadDim / 2, hogwild::DType::F32);
  backend.upload_f32(setup->inv_freq, inv_freq.data());
  setup->shape = {kHeads, kKvHeads, kHeadDim,
                  static_cast<float>(1.0 / std::sqrt(static_cast<double>(kHeadDim)))};
  HOGWILD_CUDA_CHECK(cudaEventCreate(&setup->start));
  HOGWILD_CUDA_CHECK(cudaEventCreate(&setup->stop));
  setup->call();  // warm-up: workspace allocation, kernel attributes, plan
  backend.synchronize();
  return setup;
}

struct Row {
  std::string layout, dtype;
  int64_t workers = 0, keys = 0;
  double us = 0, gbps = 0, first_us = 0;
};
std::map<std::tuple<int, int, int64_t, int64_t>, Row> g_rows;
// The current shape's setup, kept while Google Benchmark calls the function several times for one
// shape; released in main (not at static destruction, after the CUDA runtime is gone).
std::unique_ptr<Setup> g_setup;
std::tuple<int, int, int64_t, int64_t> g_setup_key{-1, -1, 0, 0};

void run_attention(benchmark::State& state, Layout layout, hogwild::DType kv_dtype) {
  const int64_t workers = state.range(0), common_keys = state.range(1);
  const char* layout_name = layout == Layout::Hogwild ? "hogwild" : "independent";
  const char* dtype_name = hogwild::dtype_name(kv_dtype);
  state.SetLabel(std::string(layout_name) + " " + dtype_name + " W=" + std::to_string(workers) +
                 " K=" + std::to_string(common_keys));
  if (common_keys > g_max_keys) {
    state.SkipWithError("skipped: K above --max-keys");
    for (auto _ : state) {
    }
    return;
  }

  const std::tuple<int, int, int64_t, int64_t> wanted{
      static_cast<int>(layout), static_cast<int>(kv_dtype), workers, common_keys};
  if (!g_setup || g_setup_key != wanted) {
    g_setup.reset();  // free the previous shape's pools first
    g_setup = make_setup(layout, workers, common_keys, kv_dtype);
    g_setup_key = wanted;
  }
  Setup& s = *g_setup;
  const cudaStream_t stream = hogwild::cuda_stream(*s.backend);

  double seconds = 0.0;
  int64_t calls = 0;
  for (auto _ : state) {
    HOGWILD_CUDA_CHECK(cudaEventRecord(s.start, stream));
    for (int i = 0; i < kCallsPerIteration; ++i) s.call();
    HOGWILD_CUDA_CHECK(cudaEventRecord(s.stop, stream));
    HOGWILD_CUDA_CHECK(cudaEventSynchronize(s.stop));
    float ms = 0.0f;
    HOGWILD_CUDA_CHECK(cudaEventElapsedTime(&ms, s.start, s.stop));
    state.SetIterationTime(ms * 1e-3 / kCallsPerIteration);
    seconds += ms * 1e-3;
    calls += kCallsPerIteration;
  }

  // The first layer of a step: new view tensors (an upload), so the plan is rebuilt.
  double first_seconds = 0.0;
  constexpr int kFirstCalls = 10;
  for (int i = 0; i < kFirstCalls; ++i) {
    s.backend->upload_i32(s.view_offsets, s.offsets.data());
    HOGWILD_CUDA_CHECK(cudaEventRecord(s.start, stream));
    s.call();
    HOGWILD_CUDA_CHECK(cudaEventRecord(s.stop, stream));
    HOGWILD_CUDA_CHECK(cudaEventSynchronize(s.stop));
    float ms = 0.0f;
    HOGWILD_CUDA_CHECK(cudaEventElapsedTime(&ms, s.start, s.stop));
    first_seconds += ms * 1e-3;
  }

  if (const char* problem = hogwild::bench::output_problem(*s.backend, s.out)) {
    state.SkipWithError(problem);
    return;
  }

  const double bytes_per_call = static_cast<double>(s.keys_read) * 2.0 *
                                static_cast<double>(kKvHeads * kHeadDim) *
                                static_cast<double>(hogwild::dtype_size(kv_dtype));
  Row row;
  row.layout = layout_name;
  row.dtype = dtype_name;
  row.workers = workers;
  row.keys = common_keys;
  row.us = calls > 0 ? seconds / static_cast<double>(calls) * 1e6 : 0.0;
  row.gbps = seconds > 0 ? bytes_per_call * static_cast<double>(calls) / seconds * 1e-9 : 0.0;
  row.first_us = first_seconds / kFirstCalls * 1e6;
  state.counters["us"] = row.us;
  state.counters["GB/s"] = row.gbps;
  state.counters["first_us"] = row.first_us;
  state.counters["keys_read"] = static_cast<double>(s.keys_read);
  g_rows[wanted] = row;
}

void BM_HogwildF32(benchmark::State& state) {
  run_attention(state, Layout::Hogwild, hogwild::DType::F32);
}
void BM_HogwildBf16(benchmark::State& state) {
  run_attention(state, Layout::Hogwild, hogwild::DType::BF16);
}
void BM_IndependentF32(benchmark::State& state) {
  run_attention(state, Layout::Independent, hogwild::DType::F32);
}

void shapes(benchmark::internal::Benchmark* benchmark) {
  benchmark->ArgNames({"W", "K"});
  for (int64_t keys : {1024, 4096, 16384})
    for (int64_t workers : {1, 2, 4, 8}) benchmark->Args({workers, keys});
}

BENCHMARK(BM_HogwildF32)
    ->Apply(shapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2);
BENCHMARK(BM_HogwildBf16)
    ->Apply(shapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2);
BENCHMARK(BM_IndependentF32)
    ->Apply(shapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2);

void print_summary() {
  std::printf("\nblock_attention on %s, Qwen3-8B geometry (32 q heads, 8 kv heads, head dim 128)\n",
              hogwild::cuda_device_info(0).name.c_str());
  std::printf("%-12s %-5s %3s %6s %10s %10s %10s %12s\n", "layout", "kv", "W", "K", "us/call",
              "GB/s", "vs W=1", "first us");
  std::map<std::tuple<std::string, std::string, int64_t>, double> base;
  for (const auto& [key, row] : g_rows)
    if (row.workers == 1) base[{row.layout, row.dtype, row.keys}] = row.us;
  // Group by layout, dtype, K; then W.
  std::vector<Row> rows;
  for (const auto& [key, row] : g_rows) rows.push_back(row);
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.layout, a.dtype, a.keys, a.workers) <
           std::tie(b.layout, b.dtype, b.keys, b.workers);
  });
  for (const Row& row : rows) {
    const auto found = base.find({row.layout, row.dtype, row.keys});
    const double ratio = found != base.end() && found->second > 0 ? row.us / found->second : 0.0;
    std::printf("%-12s %-5s %3lld %6lld %10.1f %10.0f %9.2fx %12.1f\n", row.layout.c_str(),
                row.dtype.c_str(), static_cast<long long>(row.workers),
                static_cast<long long>(row.keys), row.us, row.gbps, ratio, row.first_us);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--max-keys=", 11) == 0) {
      g_max_keys = std::stoll(argv[i] + 11);
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (hogwild::cuda_device_count() == 0) {
    std::fprintf(stderr, "bench_cuda_attention: no CUDA device\n");
    return 1;
  }
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  if (benchmark::ReportUnrecognizedArguments(count, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_setup.reset();
  print_summary();
  return 0;
}
