// One layer's Backend::block_attention on the CPU backend for the Hogwild layout (docs/design.md
// §3-§4, §8 "attention overhead of N workers vs one"): W workers, one query row each (the last
// token of the worker's own 64-token step), attending to
//
//   hogwild:     [common, step(other_1), ..., step(other_W-1), step(own)]   (one shared common)
//   independent: [common_w, step(own)]                    (W private copies of common: the cost of
//                                                          W independent sequences)
//
// The view entries {block, query_position, visible} come from append_view_entries, as in
// BatchBuilder::build. The
// shared kernel reads each key/value row of `common` once for all workers, so its traffic is
// K + 64W rows against W(K + 64) for independent sequences; compare the two at equal W and K.
// Counters: call (time per call); keys_read (distinct key rows the call reads); keys_attended (sum
// over the workers of their visible keys: the arithmetic); bytes_per_second (keys_read rows of K
// and V, fp32, per second).
//
//   build/cpu/bin/bench_attention [--max-keys=N] [--cold] [benchmark flags]
//   (--max-keys drops the shapes with more common keys than N; the default runs 1024..16384.
//   --cold: each call reads the next of enough layers' caches to fill twice the last-level cache
//   (at least 256 MiB), so the keys come from memory, as in a decode step whose weights have
//   pushed the cache out of L3; bytes_per_second is then against the memory's read bandwidth.)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bench_support.h"
#include "cache/kv_cache.h"
#include "kernels/backend.h"
#include "kernels/view_entry.h"
#include "model/model.h"

namespace {

constexpr int64_t kStepTokens = 64;
constexpr int64_t kPageSize = 32;
int64_t g_max_keys = 16384;
bool g_cold = false;

struct Geometry {
  const char* name;
  int64_t heads, kv_heads, head_dim;
  double rope_theta;
};
constexpr Geometry kGeometries[] = {
    {"smollm", 9, 3, 64, 100000.0},  // SmolLM2-135M
    {"qwen3-8b", 32, 8, 128, 1e6},   // Qwen3-8B
};

enum class Layout { Hogwild, Independent };

using hogwild::bench::fill_random;
using hogwild::bench::Random;

// Everything one call needs; built once per shape (Google Benchmark calls the function several
// times while it picks the iteration count) and kept until the next shape.
struct Setup {
  std::unique_ptr<hogwild::Backend> backend;
  std::unique_ptr<hogwild::KvCache> cache;
  hogwild::Tensor q, out, view_offsets, view_entries, inv_freq;
  hogwild::AttentionShape shape;
  int64_t keys_read = 0, keys_attended = 0;
  int64_t layers = 1;  // caches cycled through (--cold), one per call

  ~Setup() {
    for (hogwild::Tensor* t : {&q, &out, &view_offsets, &view_entries, &inv_freq})
      if (!t->empty()) backend->release(*t);
    cache.reset();  // before the backend that owns its memory
  }
};

std::unique_ptr<Setup> make_setup(Layout layout, int64_t workers, int64_t common_keys,
                                  const Geometry& geometry) {
  auto setup = std::make_unique<Setup>();
  setup->backend = hogwild::make_cpu_backend();
  hogwild::Backend& backend = *setup->backend;

  hogwild::ModelConfig config;
  const int64_t commons = layout == Layout::Hogwild ? 1 : workers;
  const int64_t layer_bytes = (commons * common_keys + workers * kStepTokens) * 2 *
                              geometry.kv_heads * geometry.head_dim * 4;
  setup->layers =
      g_cold ? std::clamp<int64_t>(
                   hogwild::bench::uncached_bytes(int64_t{256} << 20) / layer_bytes + 1, 1, 4096)
             : 1;
  config.layers = setup->layers;
  config.heads = geometry.heads;
  config.kv_heads = geometry.kv_heads;
  config.head_dim = geometry.head_dim;
  const int64_t common_pages = (common_keys + kPageSize - 1) / kPageSize;
  const int64_t step_pages = (kStepTokens + kPageSize - 1) / kPageSize;
  hogwild::CacheOptions options;
  options.page_size = kPageSize;
  options.max_blocks = commons + workers;
  options.max_pages_per_block = std::max(common_pages, step_pages);
  options.pages = commons * common_pages + workers * step_pages;
  setup->cache = std::make_unique<hogwild::KvCache>(backend, config, options);
  hogwild::KvCache& cache = *setup->cache;

  std::vector<int32_t> rows;
  std::vector<hogwild::BlockId> common_blocks, steps;
  for (int64_t c = 0; c < commons; ++c) {
    common_blocks.push_back(cache.create_block());
    cache.extend(common_blocks.back(), common_keys, rows);
  }
  for (int64_t w = 0; w < workers; ++w) {
    steps.push_back(cache.create_block());
    cache.extend(steps.back(), kStepTokens, rows);
  }
  Random random{0x5EED0000ull + static_cast<uint64_t>(workers * 131 + common_keys)};
  for (int64_t l = 0; l < setup->layers; ++l) {
    fill_random(backend, cache.keys(l), random);
    fill_random(backend, cache.values(l), random);
  }

  // Views and their entries, as BatchBuilder::build computes them for one query per worker: the
  // last token of the worker's own step block (its K/V already appended, docs/design.md §4 instant
  // sync).
  std::vector<int32_t> offsets{0};
  std::vector<hogwild::ViewEntry> entries;
  for (int64_t w = 0; w < workers; ++w) {
    std::vector<hogwild::BlockId> view;
    if (layout == Layout::Hogwild) {
      view.push_back(common_blocks[0]);
      for (int64_t k = 1; k < workers; ++k)
        view.push_back(steps[static_cast<size_t>((w + k) % workers)]);
    } else {
      view.push_back(common_blocks[static_cast<size_t>(w)]);
    }
    view.push_back(steps[static_cast<size_t>(w)]);
    std::vector<int64_t> lengths;
    for (hogwild::BlockId b : view) lengths.push_back(cache.length(b));
    int64_t own_start = 0;
    for (size_t v = 0; v + 1 < lengths.size(); ++v) own_start += lengths[v];
    const int64_t index = lengths.back() - 1;  // the query token inside its own block
    const size_t first = entries.size();
    hogwild::append_view_entries(view, lengths, own_start + index, entries);
    for (size_t e = first; e < entries.size(); ++e) setup->keys_attended += entries[e].visible;
    offsets.push_back(static_cast<int32_t>(entries.size()));
  }
  setup->keys_read = commons * common_keys + workers * kStepTokens;

  const int64_t width = geometry.heads * geometry.head_dim;
  setup->q = backend.allocate(workers, width, hogwild::DType::F32);
  setup->out = backend.allocate(workers, width, hogwild::DType::F32);
  fill_random(backend, setup->q, random);
  setup->view_offsets = backend.allocate(workers + 1, 1, hogwild::DType::I32);
  backend.upload_i32(setup->view_offsets, offsets.data());
  setup->view_entries =
      backend.allocate(static_cast<int64_t>(entries.size()), 3, hogwild::DType::I32);
  backend.upload_i32(setup->view_entries, reinterpret_cast<const int32_t*>(entries.data()));
  std::vector<float> inv_freq(static_cast<size_t>(geometry.head_dim / 2));
  for (size_t j = 0; j < inv_freq.size(); ++j)
    inv_freq[j] = static_cast<float>(
        std::pow(geometry.rope_theta,
                 -2.0 * static_cast<double>(j) / static_cast<double>(geometry.head_dim)));
  setup->inv_freq = backend.allocate(1, geometry.head_dim / 2, hogwild::DType::F32);
  backend.upload_f32(setup->inv_freq, inv_freq.data());
  setup->shape = {geometry.heads, geometry.kv_heads, geometry.head_dim,
                  static_cast<float>(1.0 / std::sqrt(static_cast<double>(geometry.head_dim)))};
  backend.synchronize();
  return setup;
}

void run_attention(benchmark::State& state, Layout layout) {
  const int64_t workers = state.range(0), common_keys = state.range(1);
  const Geometry& geometry = kGeometries[state.range(2)];
  state.SetLabel("W=" + std::to_string(workers) + " K=" + std::to_string(common_keys) + " " +
                 geometry.name);
  if (common_keys > g_max_keys) {
    state.SkipWithError("skipped: K above --max-keys");
    for (auto _ : state) {
    }
    return;
  }

  static std::unique_ptr<Setup> setup;
  static std::tuple<int, int64_t, int64_t, int64_t> key{-1, 0, 0, 0};
  const std::tuple<int, int64_t, int64_t, int64_t> wanted{static_cast<int>(layout), workers,
                                                          common_keys, state.range(2)};
  if (!setup || key != wanted) {
    setup.reset();  // free the previous shape's cache first
    setup = make_setup(layout, workers, common_keys, geometry);
    key = wanted;
  }
  Setup& s = *setup;
  hogwild::KvCache& cache = *s.cache;
  const hogwild::Tensor& page_table = cache.page_table();

  int64_t layer = 0;
  for (auto _ : state) {
    s.backend->block_attention(s.q, cache.keys(layer), cache.values(layer), page_table,
                               cache.page_size(), s.view_offsets, s.view_entries, s.inv_freq,
                               s.shape, s.out);
    s.backend->synchronize();
    layer = (layer + 1) % s.layers;
  }

  if (const char* problem = hogwild::bench::output_problem(*s.backend, s.out)) {
    state.SkipWithError(problem);
    return;
  }

  const double bytes_per_call = static_cast<double>(s.keys_read) * 2.0 *
                                static_cast<double>(geometry.kv_heads * geometry.head_dim) * 4.0;
  state.counters["call"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["keys_read"] = static_cast<double>(s.keys_read);
  state.counters["keys_attended"] = static_cast<double>(s.keys_attended);
  state.SetBytesProcessed(
      static_cast<int64_t>(static_cast<double>(state.iterations()) * bytes_per_call));
}

void BM_HogwildAttention(benchmark::State& state) { run_attention(state, Layout::Hogwild); }
void BM_IndependentAttention(benchmark::State& state) { run_attention(state, Layout::Independent); }

void shapes(benchmark::internal::Benchmark* benchmark) {
  benchmark->ArgNames({"W", "K", "geometry"});
  for (int64_t geometry = 0; geometry < 2; ++geometry)
    for (int64_t keys : {1024, 4096, 16384})
      for (int64_t workers : {1, 2, 4, 8}) benchmark->Args({workers, keys, geometry});
}

BENCHMARK(BM_HogwildAttention)
    ->Apply(shapes)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5)
    ->UseRealTime();
BENCHMARK(BM_IndependentAttention)
    ->Apply(shapes)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--max-keys=", 11) == 0) {
      g_max_keys = std::stoll(argv[i] + 11);
    } else if (std::strcmp(argv[i], "--cold") == 0) {
      g_cold = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  if (benchmark::ReportUnrecognizedArguments(count, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
