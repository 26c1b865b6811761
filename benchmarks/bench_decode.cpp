// Decode throughput of one model on the CPU backend for several sequences batched in one forward
// per step. The weights are read once per step whatever the batch, so tokens/s should grow
// almost linearly with the batch until compute dominates (target: batch 4 >= 3x batch 1).
//
//   build/cpu/bin/bench_decode [--model PATH] [--context N] [benchmark flags]
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "engine/batch_builder.h"
#include "engine/transformer.h"
#include "model/model.h"

namespace {

std::string g_model = HOGWILD_SOURCE_DIR "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
int64_t g_context = 64;  // cached tokens per sequence before the timed steps

void BM_Decode(benchmark::State& state) {
  const int64_t batch = state.range(0);
  static std::unique_ptr<hogwild::WeightSource> weights = hogwild::open_weights(g_model);
  const auto backend = hogwild::make_cpu_backend();
  hogwild::TransformerOptions options;
  options.max_batch_tokens = std::max<int64_t>(batch, 64);
  options.max_view_entries = 1;
  hogwild::Transformer model(*weights, *backend, options);
  const int64_t steps_at_most = 4096;
  hogwild::KvCache cache(*backend, model.shard_config(),
                         hogwild::cache_options_for(batch, g_context + steps_at_most, 32));

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
  int64_t steps = 0;
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
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Decode)
    ->ArgName("batch")
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Arg(8)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--model=", 8) == 0) {
      g_model = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--context=", 10) == 0) {
      g_context = std::stoll(argv[i] + 10);
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
