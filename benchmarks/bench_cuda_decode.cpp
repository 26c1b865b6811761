// Hogwild decode steps of a Qwen3-8B-sized model on the CUDA backend (or any backend) with
// generated weights (no file), against the memory roofline measured in the same run.
//
// Layout of each measurement: a common block of C cached tokens (the shared prompt, K/V filled
// with random values rather than computed: a step's cost does not depend on them) and W workers,
// each adding one token per step to its own block and reading [common, the other workers'
// blocks, own block] (docs/design.md §2). One step = one Transformer forward of W tokens + a
// synchronize (the sampled ids are read back in a real run). For every (W, C):
//
//   step_ms       mean wall time of a step, after warm-up steps (graph capture happens there)
//   roofline_ms   (weight bytes + cache bytes read) / copy bandwidth; weight bytes = every weight
//                 but the untied embedding table (a step reads W rows of it); cache bytes = each
//                 distinct K and V row of every layer once (C + the workers' rows: the Hogwild
//                 kernel reads a shared block once for all workers)
//   ratio         step_ms / roofline_ms (issue 13's target: <= 1.2 at 4 workers, 8k keys)
//   tokens_per_s  W / step time; `scaling` = tokens_per_s / that of 1 worker at the same C
//   attention_us  one layer's block_attention for the step's views (mean of 20 calls), so
//                 attention 4 workers vs 1 at 16k keys can be read off (target <= 1.25x)
// copy bandwidth: a device-to-device copy of 1 GiB (cudaMemcpyAsync; bytes read + written over
// the time), or on other backends gather_rows of 256 MiB.
//
//   bench_cuda_decode [--backend cuda|cpu] [--geometry qwen3-8b|tiny] [--layers N]
//                     [--dtype bf16|f32] [--graphs on|off] [--workers 1,2,4,8]
//                     [--contexts 16384,4096,1024] [--steps 20] [--warmup 3] [--json PATH]
//
// --dtype and --graphs set TransformerOptions::dtype and ::graphs. Where the engine does not
// implement them yet (bf16 weights/KV, CUDA graphs: other branches of issue 13) it runs fp32 and
// eager; the JSON records the dtypes the weights and KV pools really got ("weights_dtype",
// "kv_dtype"), so a run says which path it measured. Graphs on vs off: run it twice (the option
// is fixed when the model is loaded); device_check.sh does.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "cache/kv_cache.h"
#include "common/error.h"
#include "common/random.h"
#include "driver_flags.h"
#include "engine/batch_builder.h"
#include "engine/transformer.h"
#include "model/model.h"

#ifdef HOGWILD_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string backend = "cuda", geometry = "qwen3-8b", dtype = "bf16", json;
  int64_t layers = 0;  // 0: the geometry's
  bool graphs = true;
  std::vector<int64_t> workers = {1, 2, 4, 8}, contexts = {16384, 4096, 1024};
  int64_t steps = 20, warmup = 3;
};

hogwild::ModelConfig geometry(const Flags& flags) {
  hogwild::ModelConfig c;
  c.architecture = hogwild::Architecture::Qwen3;
  c.qk_norm = true;
  c.rope.theta = 1e6;
  c.rms_eps = 1e-6;
  if (flags.geometry == "qwen3-8b") {
    c.layers = 36, c.hidden = 4096, c.heads = 32, c.kv_heads = 8, c.head_dim = 128;
    c.ffn_hidden = 12288, c.vocab = 151936, c.max_context = 40960;
  } else {  // tiny: the CPU smoke test
    c.layers = 2, c.hidden = 256, c.heads = 4, c.kv_heads = 2, c.head_dim = 64;
    c.ffn_hidden = 512, c.vocab = 1024, c.max_context = 40960;
  }
  if (flags.layers > 0) c.layers = flags.layers;
  c.validate("bench_cuda_decode --geometry " + flags.geometry);
  return c;
}

// Weights made up on the host, value by value from a hash of (tensor, index): projections
// uniform with std ~1/sqrt(in_features), norms 1 +- 0.1, the embedding O(1); filled by all cores.
class GeneratedWeights final : public hogwild::WeightSource {
 public:
  explicit GeneratedWeights(const hogwild::ModelConfig& config) : config_(config) {}
  const hogwild::ModelConfig& config() const override { return config_; }
  const std::string& path() const override { return path_; }
  bool has(const std::string& name) const override {
    if (name.find("_proj.bias") != std::string::npos) return config_.qkv_bias;
    if (name == "lm_head.weight") return !config_.tied_embeddings;
    return true;
  }
  hogwild::HostTensor load(const std::string& name,
                           const std::vector<int64_t>& expected_shape) const override {
    return load_rows(name, expected_shape, 0, expected_shape.front());
  }
  hogwild::HostTensor load_rows(const std::string& name, const std::vector<int64_t>& shape,
                                int64_t first, int64_t count) const override {
    HOGWILD_CHECK(has(name), "generated weights: no tensor ", name);
    const int64_t cols = shape.size() < 2 ? 1 : shape[1];
    hogwild::HostTensor t;
    t.shape = shape;
    t.shape[0] = count;
    t.data.resize(static_cast<size_t>(count * cols));
    const bool norm = name.find("norm") != std::string::npos;
    const float scale = norm ? 0.1f
                        : name.find("embed_tokens") != std::string::npos
                            ? 1.0f
                            : static_cast<float>(std::sqrt(3.0 / static_cast<double>(cols)));
    const float offset = norm ? 1.0f : 0.0f;
    const uint64_t seed = std::hash<std::string>{}(name);
    const int64_t total = count * cols;
    const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 64);
    const int64_t chunk = (total + threads - 1) / threads;
    std::vector<std::thread> pool;
    for (int64_t part = 0; part < threads; ++part)
      pool.emplace_back([&, part] {
        const int64_t begin = part * chunk, end = std::min(total, begin + chunk);
        for (int64_t i = begin; i < end; ++i) {
          uint64_t state = seed ^ static_cast<uint64_t>(first * cols + i) * 0x9E3779B97F4A7C15ull;
          const float unit =
              static_cast<float>(hogwild::splitmix64(state) >> 40) * (2.0f / 16777216.0f) - 1.0f;
          t.data[static_cast<size_t>(i)] = offset + scale * unit;
        }
      });
    for (std::thread& thread : pool) thread.join();
    return t;
  }
  std::string tokenizer_path() const override { return ""; }

 private:
  hogwild::ModelConfig config_;
  std::string path_ = "(generated weights)";
};

Flags parse(int argc, char** argv) {
  using hogwild::bench::parse_choice;
  constexpr int64_t kMost = int64_t{1} << 20;
  const auto count = [](const std::string& flag, const std::string& value) {
    return hogwild::bench::parse_count(flag, value, 1, kMost);
  };
  const auto counts = [](const std::string& flag, const std::string& value) {
    return hogwild::bench::parse_count_list(flag, value, 1, kMost);
  };
  Flags flags;
  hogwild::bench::for_each_flag(argc, argv, [&](const std::string& flag, const std::string& value) {
    if (flag == "--backend") {
      flags.backend = value;
    } else if (flag == "--geometry") {
      flags.geometry = parse_choice(flag, value, {"qwen3-8b", "tiny"});
    } else if (flag == "--layers") {
      flags.layers = count(flag, value);
    } else if (flag == "--dtype") {
      flags.dtype = parse_choice(flag, value, {"f32", "bf16"});
    } else if (flag == "--graphs") {
      flags.graphs = parse_choice(flag, value, {"on", "off"}) == "on";
    } else if (flag == "--workers") {
      flags.workers = counts(flag, value);
    } else if (flag == "--contexts") {
      flags.contexts = counts(flag, value);
    } else if (flag == "--steps") {
      flags.steps = count(flag, value);
    } else if (flag == "--warmup") {
      flags.warmup = count(flag, value);
    } else if (flag == "--json") {
      flags.json = value;
    } else {
      hogwild::fail("unknown flag '", flag,
                    "' (--backend --geometry --layers --dtype --graphs --workers --contexts "
                    "--steps --warmup --json)");
    }
  });
  // Longest context first: the common block is filled once and then truncated.
  std::sort(flags.contexts.rbegin(), flags.contexts.rend());
  std::sort(flags.workers.begin(), flags.workers.end());
  return flags;
}

// Bytes per second of a device copy (read + written over the time), best of 5.
double copy_bandwidth(hogwild::Backend& backend) {
#ifdef HOGWILD_CUDA
  if (backend.name() == "cuda") {
    const size_t bytes = size_t{1} << 30;
    void *src = nullptr, *dst = nullptr;
    HOGWILD_CUDA_CHECK(cudaMalloc(&src, bytes));
    HOGWILD_CUDA_CHECK(cudaMalloc(&dst, bytes));
    HOGWILD_CUDA_CHECK(cudaMemset(src, 1, bytes));
    cudaStream_t stream = hogwild::cuda_stream(backend);
    cudaEvent_t start, stop;
    HOGWILD_CUDA_CHECK(cudaEventCreate(&start));
    HOGWILD_CUDA_CHECK(cudaEventCreate(&stop));
    double best = 0;
    for (int pass = 0; pass < 6; ++pass) {
      HOGWILD_CUDA_CHECK(cudaEventRecord(start, stream));
      HOGWILD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
      HOGWILD_CUDA_CHECK(cudaEventRecord(stop, stream));
      HOGWILD_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      HOGWILD_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (pass > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / (ms * 1e-3));
    }
    HOGWILD_CUDA_CHECK(cudaEventDestroy(start));
    HOGWILD_CUDA_CHECK(cudaEventDestroy(stop));
    HOGWILD_CUDA_CHECK(cudaFree(src));
    HOGWILD_CUDA_CHECK(cudaFree(dst));
    return best;
  }
#endif
  const int64_t rows = 65536, cols = 1024;  // 256 MiB of f32
  const hogwild::Tensor src = backend.allocate(rows, cols, hogwild::DType::F32);
  const hogwild::Tensor dst = backend.allocate(rows, cols, hogwild::DType::F32);
  const hogwild::Tensor index = backend.allocate(rows, 1, hogwild::DType::I32);
  std::vector<int32_t> identity(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) identity[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  backend.upload_i32(index, identity.data());
  hogwild::bench::Random random{3};
  hogwild::bench::fill_random(backend, src, random);
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    backend.synchronize();
    const auto start = Clock::now();
    backend.gather_rows(src, index, dst);
    backend.synchronize();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::max(best, 2.0 * static_cast<double>(rows * cols * 4) / seconds);
  }
  hogwild::Tensor owned[] = {src, dst, index};
  for (hogwild::Tensor& t : owned) backend.release(t);
  return best;
}

struct Result {
  int64_t workers = 0, context = 0;
  double step_ms = 0, roofline_ms = 0, tokens_per_s = 0, attention_us = 0, scaling = 0;
};

std::string json_escape(const std::string& text) {
  std::string out;
  for (char c : text) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return out;
}

int run(const Flags& flags) {
  const hogwild::ModelConfig config = geometry(flags);
  const auto backend = hogwild::make_backend(flags.backend, 0);
  const double bandwidth = copy_bandwidth(*backend);
  std::fprintf(stderr, "bench_cuda_decode: %s backend, copy bandwidth %.1f GB/s\n",
               backend->name().c_str(), bandwidth / 1e9);

  GeneratedWeights weights(config);
  const int64_t max_workers = flags.workers.back();
  hogwild::TransformerOptions options;
  options.weights = hogwild::WeightFormat::F32;
  options.max_batch_tokens = max_workers;
  options.max_view_entries = 1 + max_workers;
  options.dtype = flags.dtype == "bf16" ? hogwild::DType::BF16 : hogwild::DType::F32;
  options.graphs = flags.graphs;
  const auto load_start = Clock::now();
  hogwild::Transformer model(weights, *backend, options);
  backend->synchronize();
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();
  std::fprintf(stderr, "bench_cuda_decode: %.2f GB of weights on the backend in %.1f s\n",
               static_cast<double>(model.weight_bytes()) / 1e9, load_seconds);

  // One cache for every measurement: the common block at the longest context, worker blocks
  // for the steps of one measurement.
  const int64_t page = hogwild::kDefaultPageSize;
  const int64_t worker_tokens = flags.warmup + flags.steps + 1;
  hogwild::CacheOptions cache_options;
  cache_options.page_size = page;
  cache_options.max_blocks = 1 + max_workers;
  cache_options.max_pages_per_block =
      (std::max(flags.contexts.front(), worker_tokens) + page - 1) / page;
  cache_options.pages = (flags.contexts.front() + page - 1) / page +
                        max_workers * ((worker_tokens + page - 1) / page);
  hogwild::KvCache cache(*backend, model.shard_config(), cache_options);
  const hogwild::BlockId common = cache.create_block();
  std::vector<int32_t> rows;
  cache.extend(common, flags.contexts.front(), rows);
  hogwild::bench::Random random{11};
  for (int64_t layer = 0; layer < cache.layers(); ++layer) {
    hogwild::bench::fill_random(*backend, cache.keys(layer), random);
    hogwild::bench::fill_random(*backend, cache.values(layer), random);
  }
  const hogwild::DType kv_dtype = cache.keys(0).dtype;
  const hogwild::DType weights_dtype = model.embedding_table().dtype;

  const hogwild::Tensor& table = model.embedding_table();
  const double weight_bytes =
      static_cast<double>(model.weight_bytes()) -
      (config.tied_embeddings
           ? 0.0
           : static_cast<double>(table.rows) *
                 static_cast<double>(hogwild::dtype_row_bytes(table.dtype, table.cols)));
  const double kv_row_bytes = static_cast<double>(model.shard_config().kv_heads * config.head_dim) *
                              static_cast<double>(hogwild::dtype_size(kv_dtype));

  // Attention timing: the step's views, on layer 0's pools, a random query.
  const int64_t q_width = model.shard_config().heads * config.head_dim;
  const hogwild::Tensor q = backend->allocate(max_workers, q_width, hogwild::DType::F32);
  const hogwild::Tensor attention_out =
      backend->allocate(max_workers, q_width, hogwild::DType::F32);
  hogwild::bench::fill_random(*backend, q, random);
  const hogwild::AttentionShape shape{model.shard_config().heads, model.shard_config().kv_heads,
                                      config.head_dim,
                                      static_cast<float>(1.0 / std::sqrt(config.head_dim))};

  std::vector<Result> results;
  std::map<int64_t, double> one_worker_tokens_per_s;  // by context
  for (const int64_t context : flags.contexts) {
    cache.truncate(common, context);
    for (const int64_t workers : flags.workers) {
      std::vector<hogwild::BlockId> blocks;
      for (int64_t w = 0; w < workers; ++w) blocks.push_back(cache.create_block());
      std::vector<std::vector<hogwild::BlockId>> views;
      for (int64_t w = 0; w < workers; ++w) {
        std::vector<hogwild::BlockId> view = {common};
        for (int64_t other = 0; other < workers; ++other)
          if (other != w) view.push_back(blocks[static_cast<size_t>(other)]);
        view.push_back(blocks[static_cast<size_t>(w)]);
        views.push_back(view);
      }
      hogwild::BatchBuilder builder(cache);
      hogwild::ForwardBatch batch;
      double seconds = 0;
      for (int64_t step = 0; step < flags.warmup + flags.steps; ++step) {
        for (int64_t w = 0; w < workers; ++w) {
          const int32_t token = static_cast<int32_t>((step * 131 + w * 7) % config.vocab);
          builder.add(blocks[static_cast<size_t>(w)], {&token, 1}, views[static_cast<size_t>(w)],
                      true);
        }
        builder.build(batch);
        const auto start = Clock::now();
        model.forward_on_backend(batch, cache);
        backend->synchronize();
        if (step >= flags.warmup)
          seconds += std::chrono::duration<double>(Clock::now() - start).count();
        builder.commit();
      }
      // The last step's views, timed alone on layer 0.
      const hogwild::Tensor offsets = backend->allocate(
          static_cast<int64_t>(batch.view_offsets.size()), 1, hogwild::DType::I32);
      const hogwild::Tensor entries = backend->allocate(
          static_cast<int64_t>(batch.view_entries.size()), 3, hogwild::DType::I32);
      backend->upload_i32(offsets, batch.view_offsets.data());
      backend->upload_i32(entries, &batch.view_entries.front().block);
      const hogwild::Tensor q_rows = q.rows_view(0, workers);
      const hogwild::Tensor out_rows = attention_out.rows_view(0, workers);
      const hogwild::Tensor& page_table = cache.page_table();
      auto attention = [&] {
        backend->block_attention(q_rows, cache.keys(0), cache.values(0), page_table, page, offsets,
                                 entries, model.inv_freq(), shape, out_rows);
      };
      attention();
      backend->synchronize();
      const int calls = 20;
      const auto attention_start = Clock::now();
      for (int call = 0; call < calls; ++call) attention();
      backend->synchronize();
      const double attention_seconds =
          std::chrono::duration<double>(Clock::now() - attention_start).count() / calls;
      hogwild::Tensor temporary[] = {offsets, entries};
      for (hogwild::Tensor& t : temporary) backend->release(t);

      Result r;
      r.workers = workers;
      r.context = context;
      const double step = seconds / static_cast<double>(flags.steps);
      // Distinct K/V rows read in a step: the common block and the workers' rows at the mean
      // length of the timed steps.
      const double worker_rows =
          static_cast<double>(workers) *
          (static_cast<double>(flags.warmup) + static_cast<double>(flags.steps + 1) / 2.0);
      const double cache_bytes = static_cast<double>(config.layers) * 2.0 * kv_row_bytes *
                                 (static_cast<double>(context) + worker_rows);
      r.step_ms = step * 1e3;
      r.roofline_ms = (weight_bytes + cache_bytes) / bandwidth * 1e3;
      r.tokens_per_s = static_cast<double>(workers) / step;
      r.attention_us = attention_seconds * 1e6;
      if (workers == 1) one_worker_tokens_per_s[context] = r.tokens_per_s;
      const auto one = one_worker_tokens_per_s.find(context);
      r.scaling = one == one_worker_tokens_per_s.end() ? 0.0 : r.tokens_per_s / one->second;
      results.push_back(r);
      std::fprintf(stderr, "  W=%lld C=%lld: %.3f ms/step (roofline %.3f ms, %.2fx)\n",
                   static_cast<long long>(workers), static_cast<long long>(context), r.step_ms,
                   r.roofline_ms, r.step_ms / r.roofline_ms);
      for (hogwild::BlockId block : blocks) cache.release_block(block);
    }
  }

  std::printf(
      "\ndecode on %s: layers %lld, hidden %lld, %lld/%lld heads, head dim %lld, ffn %lld, vocab "
      "%lld; weights %s, KV %s (asked: %s), graphs asked %s; copy %.0f GB/s\n",
      backend->name().c_str(), static_cast<long long>(config.layers),
      static_cast<long long>(config.hidden), static_cast<long long>(config.heads),
      static_cast<long long>(config.kv_heads), static_cast<long long>(config.head_dim),
      static_cast<long long>(config.ffn_hidden), static_cast<long long>(config.vocab),
      hogwild::dtype_name(weights_dtype), hogwild::dtype_name(kv_dtype), flags.dtype.c_str(),
      flags.graphs ? "on" : "off", bandwidth / 1e9);
  std::printf("%4s %7s %10s %12s %7s %10s %8s %13s\n", "W", "context", "step ms", "roofline ms",
              "ratio", "tokens/s", "scaling", "attention us");
  for (const Result& r : results)
    std::printf("%4lld %7lld %10.3f %12.3f %6.2fx %10.1f %7.2fx %13.1f\n",
                static_cast<long long>(r.workers), static_cast<long long>(r.context), r.step_ms,
                r.roofline_ms, r.step_ms / r.roofline_ms, r.tokens_per_s, r.scaling,
                r.attention_us);

  if (!flags.json.empty()) {
    std::ofstream file(flags.json);
    file << "{\"backend\": \"" << json_escape(backend->name()) << "\", \"geometry\": \""
         << flags.geometry << "\", \"layers\": " << config.layers << ", \"dtype_asked\": \""
         << flags.dtype << "\", \"weights_dtype\": \"" << hogwild::dtype_name(weights_dtype)
         << "\", \"kv_dtype\": \"" << hogwild::dtype_name(kv_dtype)
         << "\", \"graphs_asked\": " << (flags.graphs ? "true" : "false")
         << ", \"copy_bandwidth_gbps\": " << bandwidth / 1e9
         << ", \"weight_bytes\": " << model.weight_bytes() << ", \"load_seconds\": " << load_seconds
         << ", \"steps\": " << flags.steps << ", \"results\": [";
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      file << (i > 0 ? ",\n  " : "\n  ") << "{\"workers\": " << r.workers
           << ", \"context\": " << r.context << ", \"step_ms\": " << r.step_ms
           << ", \"roofline_ms\": " << r.roofline_ms
           << ", \"roofline_ratio\": " << r.step_ms / r.roofline_ms
           << ", \"tokens_per_s\": " << r.tokens_per_s << ", \"scaling\": " << r.scaling
           << ", \"attention_us\": " << r.attention_us << "}";
    }
    file << "]}\n";
    HOGWILD_CHECK(file.good(), flags.json, ": cannot write the results");
  }
  hogwild::Tensor owned[] = {q, attention_out};
  for (hogwild::Tensor& t : owned) backend->release(t);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_decode: %s\n", e.what());
    return 1;
  }
}
