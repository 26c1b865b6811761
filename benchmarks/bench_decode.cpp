// Decode throughput of one model on the CPU backend for several sequences batched in one forward
// per step, against the memory roofline measured in the same run. The weights are read once per
// step whatever the batch, so a step should cost about (weights + cache read) / bandwidth; the
// benchmark measures a streaming read with the same threads first and prints, per batch, the
// bytes read per step and roofline = step time / (bytes / bandwidth) (target <= 1.15).
//
//   build/cpu/bin/bench_decode [--model=PATH] [--context=N] [--threads=N] [--weights=native|f32]
//                              [--busy]
//                              [benchmark flags]
//
// --threads: the CPU backend's threads (default: as `hogwild run`, the physical cores).
// --busy: also runs every batch with one competing busy process (a forked child spinning on a
// core, ended after the benchmark) and prints idle vs busy tokens/s; the same as running
// `yes > /dev/null &` alongside.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "engine/batch_builder.h"
#include "engine/memory_plan.h"
#include "engine/transformer.h"
#include "kernels/cpu/thread_pool.h"
#include "model/model.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

std::string g_model = HOGWILD_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
int64_t g_context = 64;  // cached tokens per sequence before the timed steps
int g_threads = 0;       // 0: hogwild::default_cpu_threads()
hogwild::WeightFormat g_weights = hogwild::WeightFormat::Native;
double g_bandwidth = 0;  // bytes/s of a streaming read, measured before the benchmarks
// tokens/s by batch, idle and with the busy process, for the comparison printed at the end
std::map<int64_t, double> g_idle_tokens_per_second, g_busy_tokens_per_second;

// Sum of a float range: the loads are the point (4 independent chains keep them in flight).
#if defined(__x86_64__)
__attribute__((target("avx2"))) float sum_avx2(const float* data, int64_t n) {
  __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = _mm256_add_ps(a, _mm256_load_ps(data + i));
    b = _mm256_add_ps(b, _mm256_load_ps(data + i + 8));
    c = _mm256_add_ps(c, _mm256_load_ps(data + i + 16));
    d = _mm256_add_ps(d, _mm256_load_ps(data + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
  float sum = 0;
  for (float lane : lanes) sum += lane;
  for (; i < n; ++i) sum += data[i];
  return sum;
}
#endif
float sum_plain(const float* data, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += data[i];
    s1 += data[i + 1];
    s2 += data[i + 2];
    s3 += data[i + 3];
  }
  for (; i < n; ++i) s0 += data[i];
  return s0 + s1 + s2 + s3;
}

int64_t last_level_cache_bytes() {
  for (int index = 4; index >= 0; --index) {
    std::ifstream file("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) +
                       "/size");
    std::string text;
    if (file >> text && !text.empty()) {
      int64_t value = std::stoll(text);
      if (text.back() == 'K') value <<= 10;
      if (text.back() == 'M') value <<= 20;
      return value;
    }
  }
  return int64_t{32} << 20;
}

// Best of several streaming reads of a buffer of 4x the last-level cache (at least 256 MiB),
// split across a pool of the benchmark's threads as the forward's GEMV splits the weights.
double measure_read_bandwidth(int threads) {
  const int64_t bytes = std::max<int64_t>(4 * last_level_cache_bytes(), int64_t{256} << 20);
  const int64_t n = bytes / 4;
  auto* data = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(bytes)));
  for (int64_t i = 0; i < n; ++i) data[i] = static_cast<float>(i & 1023) * 1e-3f;
  hogwild::cpu::ThreadPool pool(threads);
  const bool avx2 = __builtin_cpu_supports("avx2");
  volatile float sink = 0;
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    std::vector<float> partial(static_cast<size_t>(pool.size()), 0.0f);
    const auto start = std::chrono::steady_clock::now();
    // Chunks of 1 MiB, a multiple of 32 floats.
    pool.parallel_for(n / 262144, 1, [&](int64_t begin, int64_t end, int thread) {
      const float* first = data + begin * 262144;
      const int64_t count = (end - begin) * 262144;
#if defined(__x86_64__)
      partial[static_cast<size_t>(thread)] +=
          avx2 ? sum_avx2(first, count) : sum_plain(first, count);
#else
      partial[static_cast<size_t>(thread)] += sum_plain(first, count);
#endif
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (float p : partial) sink = sink + p;
    best = std::max(best, static_cast<double>(n / 262144 * 262144) * 4 / seconds);
  }
  std::free(data);
  return best;
}

// A child process that spins on a core until killed: the competing busy process.
class BusyProcess {
 public:
  BusyProcess() {
    pid_ = fork();
    if (pid_ == 0) {
      volatile uint64_t x = 0;
      for (;;) x = x + 1;
    }
  }
  ~BusyProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  BusyProcess(const BusyProcess&) = delete;
  BusyProcess& operator=(const BusyProcess&) = delete;
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

void BM_Decode(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const bool busy = state.range(1) != 0;
  static std::unique_ptr<hogwild::WeightSource> weights = hogwild::open_weights(g_model);
  const auto backend = hogwild::make_cpu_backend(g_threads);
  hogwild::TransformerOptions options;
  options.weights = g_weights;
  options.max_batch_tokens = std::max<int64_t>(batch, 64);
  options.max_view_entries = 1;
  hogwild::Transformer model(*weights, *backend, options);
  const int64_t steps_at_most = 4096;
  const hogwild::CacheOptions cache_options =
      hogwild::cache_options_for(batch, g_context + steps_at_most, 32);
  hogwild::KvCache cache(*backend, model.shard_config(), cache_options);

  std::vector<hogwild::BlockId> blocks;
  hogwild::BatchBuilder builder(cache);
  hogwild::ForwardBatch forward_batch;
  std::vector<float> logits;
  for (int32_t s = 0; s < batch; ++s) {  // prefill each sequence with `g_context` tokens
    blocks.push_back(cache.create_block());
    std::vector<int32_t> prompt;
    for (int32_t p = 0; p < g_context; ++p) prompt.push_back((p * 7 + s) % 1000 + 100);
    for (size_t first = 0; first < prompt.size(); first += 64) {
      const size_t count = std::min<size_t>(64, prompt.size() - first);
      builder.add(blocks.back(), {prompt.data() + first, count}, {&blocks.back(), 1}, false);
      builder.build(forward_batch);
      model.forward(forward_batch, cache, logits);
    }
  }
  std::unique_ptr<BusyProcess> competitor;
  if (busy) {
    competitor = std::make_unique<BusyProcess>();
    if (!competitor->started()) state.SkipWithError("fork of the busy process failed");
  }
  int64_t steps = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (++steps >= steps_at_most) state.SkipWithError("context exhausted");
    for (int32_t s = 0; s < batch; ++s) {
      const int32_t token = 42 + s;
      builder.add(blocks[static_cast<size_t>(s)], {&token, 1}, {&blocks[static_cast<size_t>(s)], 1},
                  true);
    }
    builder.build(forward_batch);
    model.forward(forward_batch, cache, logits);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  competitor.reset();

  // Bytes one step reads: every weight but the (untied) embedding table, of which a step reads
  // one row per token; and the cache's keys and values over the mean context of the run.
  const hogwild::ModelConfig& config = weights->config();
  const hogwild::Tensor& table = model.embedding_table();
  const double embedding_table =
      static_cast<double>(table.rows) *
      static_cast<double>(hogwild::dtype_row_bytes(table.dtype, table.cols));
  const double weight_bytes =
      static_cast<double>(model.weight_bytes()) - (config.tied_embeddings ? 0.0 : embedding_table);
  const double mean_context =
      static_cast<double>(g_context) + static_cast<double>(state.iterations()) / 2.0;
  const double cache_bytes = static_cast<double>(batch * config.layers * 2) * mean_context *
                             static_cast<double>(config.kv_heads * config.head_dim) * 4;
  const double bytes = weight_bytes + cache_bytes;
  const double iterations =
      static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  const double step = seconds / iterations;
  state.counters["threads"] = g_threads;
  state.counters["MB/step"] = bytes / 1e6;
  state.counters["tokens/s"] = static_cast<double>(batch) / step;
  state.counters["roofline"] = step / (bytes / g_bandwidth);
  (busy ? g_busy_tokens_per_second : g_idle_tokens_per_second)[batch] =
      static_cast<double>(batch) / step;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  bool busy = false;
  try {
    for (int i = 0; i < argc; ++i) {
      if (std::strncmp(argv[i], "--model=", 8) == 0) {
        g_model = argv[i] + 8;
      } else if (std::strncmp(argv[i], "--context=", 10) == 0) {
        g_context = std::stoll(argv[i] + 10);
      } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
        g_threads = std::stoi(argv[i] + 10);
      } else if (std::strcmp(argv[i], "--weights=f32") == 0) {
        g_weights = hogwild::WeightFormat::F32;
      } else if (std::strcmp(argv[i], "--weights=native") == 0) {
        g_weights = hogwild::WeightFormat::Native;
      } else if (std::strcmp(argv[i], "--busy") == 0) {
        busy = true;
      } else {
        rest.push_back(argv[i]);
      }
    }
    if (g_threads == 0) g_threads = hogwild::default_cpu_threads();
    if (g_threads < 1 || g_threads > 1024 || g_context < 1) {
      std::fprintf(stderr, "bench_decode: --threads must be in [1, 1024] and --context >= 1\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_decode: bad flag value: %s\n", e.what());
    return 1;
  }
  g_bandwidth = measure_read_bandwidth(g_threads);
  std::fprintf(stderr,
               "weights: %s; streaming read, %d threads: %.2f GB/s (best of 6 reads of %lld MiB)\n",
               hogwild::weight_format_name(g_weights), g_threads, g_bandwidth / 1e9,
               static_cast<long long>(
                   std::max<int64_t>(4 * last_level_cache_bytes(), int64_t{256} << 20) >> 20));
  auto* decode = benchmark::RegisterBenchmark("BM_Decode", BM_Decode);
  decode->ArgNames({"batch", "busy"})->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
  for (const int64_t batch : {1, 2, 4, 8, 16}) {
    decode->Args({batch, 0});
    if (busy) decode->Args({batch, 1});
  }
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  if (benchmark::ReportUnrecognizedArguments(count, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (busy) {
    std::printf("\none competing busy process (%d threads):\n%6s %12s %12s %6s\n", g_threads,
                "batch", "idle tok/s", "busy tok/s", "kept");
    for (const auto& [batch, idle] : g_idle_tokens_per_second) {
      const auto found = g_busy_tokens_per_second.find(batch);
      if (found == g_busy_tokens_per_second.end()) continue;
      std::printf("%6lld %12.1f %12.1f %5.0f%%\n", static_cast<long long>(batch), idle,
                  found->second, 100.0 * found->second / idle);
    }
  }
  return 0;
}
