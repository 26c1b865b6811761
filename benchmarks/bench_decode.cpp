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
  options.slots = batch;
  options.context = g_context + 4096;
  options.max_batch_tokens = std::max<int64_t>(batch, 64);
  hogwild::Transformer model(*weights, *backend, options);

  std::vector<hogwild::BatchToken> tokens;
  std::vector<float> logits;
  for (int32_t slot = 0; slot < batch; ++slot) {  // prefill each sequence with `g_context` tokens
    tokens.clear();
    for (int32_t p = 0; p < g_context; ++p) tokens.push_back({(p * 7 + slot) % 1000 + 100, p, slot, false});
    for (size_t first = 0; first < tokens.size(); first += 64) {
      const size_t count = std::min<size_t>(64, tokens.size() - first);
      model.forward({tokens.data() + first, count}, logits);
    }
  }
  int32_t position = static_cast<int32_t>(g_context);
  for (auto _ : state) {
    if (position >= options.context) state.SkipWithError("context exhausted");
    tokens.clear();
    for (int32_t slot = 0; slot < batch; ++slot) tokens.push_back({42 + slot, position, slot, true});
    model.forward(tokens, logits);
    ++position;
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch),
                                                  benchmark::Counter::kIsRate);
  state.counters["step_ms"] = benchmark::Counter(static_cast<double>(state.iterations()) * 1e-3,
                                                 benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}
BENCHMARK(BM_Decode)->ArgName("batch")->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)->UseRealTime();

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
