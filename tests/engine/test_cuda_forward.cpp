// The whole forward pass on the CUDA backend against the CPU backend (fp32 weights on both):
// tiny random Llama/Qwen2/Qwen3 checkpoints and the demo model. Log-probabilities within 1e-3
// (fp32 GEMMs in another summation order, fp32 RoPE trigonometry; 30 layers compound it) and
// identical greedy tokens. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/batch_builder.h"
#include "engine/generation.h"
#include "engine/transformer.h"
#include "kernels/cuda/device.h"
#include "model/model.h"
#include "numerics.h"
#include "test_support.h"

namespace hogwild {
namespace {

struct Result {
  std::vector<float> logits;
  std::vector<int32_t> greedy;
};

Result run(const WeightSource& weights, Backend& backend, const std::vector<int32_t>& prompt) {
  TransformerOptions options;
  options.max_batch_tokens = 64;
  options.max_view_entries = 1;
  Transformer model(weights, backend, options);
  KvCache cache(backend, model.shard_config(), cache_options_for(2, 128, 16));
  Result result;
  {
    const BlockId block = cache.create_block();
    BatchBuilder builder(cache);
    ForwardBatch batch;
    for (size_t p = 0; p < prompt.size(); ++p)
      builder.add(block, {&prompt[p], 1}, {&block, 1}, true);
    builder.build(batch);
    model.forward(batch, cache, result.logits);
    cache.release_block(block);
  }
  Sampler greedy(SamplingParams{});
  GenerationRequest request;
  request.prompt = prompt;
  request.max_tokens = 16;
  generate(model, cache, greedy, request, [&](int32_t t) { result.greedy.push_back(t); });
  return result;
}

void expect_same(const std::string& path, const std::vector<int32_t>& prompt) {
  const auto weights = open_weights(path);
  const auto cpu = make_cpu_backend();
  const auto cuda = make_backend("cuda", 0);
  const Result a = run(*weights, *cpu, prompt), b = run(*weights, *cuda, prompt);
  const int64_t vocab = weights->config().vocab;
  double worst = 0;
  for (size_t p = 0; p < prompt.size(); ++p) {
    const size_t row = p * static_cast<size_t>(vocab);
    const std::vector<double> expected = testing::log_softmax(a.logits.data() + row, vocab);
    const std::vector<double> actual = testing::log_softmax(b.logits.data() + row, vocab);
    for (size_t i = 0; i < expected.size(); ++i)
      worst = std::max(worst, std::abs(actual[i] - expected[i]));
  }
  EXPECT_LE(worst, 1e-3) << path;
  EXPECT_EQ(a.greedy, b.greedy) << path;
}

TEST(CudaForward, TinyModelsMatchTheCpuBackend) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  // Head dim 64: the smallest the CUDA attention kernel is built for (64, 128, 256).
  for (const char* flags : {"--arch llama --head-dim 64 --heads 4 --kv-heads 2 --hidden 256",
                            "--arch qwen2 --head-dim 64 --heads 4 --kv-heads 2 --hidden 256",
                            "--arch qwen3 --head-dim 64 --heads 4 --kv-heads 2 --hidden 256"}) {
    testing::TempDir dir;
    ASSERT_EQ(
        testing::run_script(std::string("make_tiny_model.py --out ") + (dir / "m") + " " + flags)
            .exit_code,
        0);
    expect_same(dir / "m", {3, 17, 5, 99, 42, 7, 7, 61, 2, 0, 88});
  }
}

TEST(CudaForward, DemoModelMatchesTheCpuBackend) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  HOGWILD_REQUIRE_DEMO_MODEL();
  expect_same(testing::demo_model_path(),
              {1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198});
}

}  // namespace
}  // namespace hogwild
