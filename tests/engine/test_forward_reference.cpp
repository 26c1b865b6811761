// The forward pass against an independent implementation: scripts/reference_forward.py (plain
// numpy, float64) on the same checkpoints. Our CPU backend computes in fp32, so log-probabilities
// agree to ~1e-5; we require <= 1e-4 max abs (the bound) and identical greedy tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "engine/batch_builder.h"
#include "engine/generation.h"
#include "engine/sampler.h"
#include "engine/transformer.h"
#include "model/model.h"
#include "numerics.h"
#include "test_support.h"

namespace hogwild {
namespace {

using testing::log_softmax;
using testing::TempDir;

std::string join(const std::vector<int32_t>& ids) {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(ids[i]);
  }
  return text;
}

// Log-probs of every position of `prompt` from the engine, prefilled in chunks of `chunk` tokens
// while a second, unrelated sequence shares every batch (so batching must not leak).
std::vector<std::vector<double>> engine_logprobs(const WeightSource& weights,
                                                 const std::vector<int32_t>& prompt,
                                                 int64_t chunk) {
  const auto backend = make_cpu_backend();
  TransformerOptions options;
  options.weights = WeightFormat::F32;  // the fp32 reference path
  options.max_batch_tokens = 2 * chunk;
  options.max_view_entries = 1;
  Transformer model(weights, *backend, options);
  // Page size 4: sequences span several pages, some partly filled.
  KvCache cache(*backend, model.shard_config(),
                cache_options_for(2, static_cast<int64_t>(prompt.size()), 4));
  const BlockId ours = cache.create_block(), other = cache.create_block();
  BatchBuilder builder(cache);
  ForwardBatch batch;
  std::vector<std::vector<double>> result;
  std::vector<float> logits;
  const int64_t vocab = weights.config().vocab;
  for (size_t first = 0; first < prompt.size(); first += static_cast<size_t>(chunk)) {
    const size_t last = std::min(prompt.size(), first + static_cast<size_t>(chunk));
    for (size_t p = first; p < last; ++p) {
      const int32_t noise = (prompt[p] * 3 + 1) % static_cast<int32_t>(vocab);
      builder.add(other, {&noise, 1}, {&other, 1}, false);
      builder.add(ours, {&prompt[p], 1}, {&ours, 1}, true);
    }
    builder.build(batch);
    model.forward(batch, cache, logits);
    for (size_t row = 0; row < last - first; ++row)
      result.push_back(log_softmax(logits.data() + row * static_cast<size_t>(vocab), vocab));
  }
  return result;
}

std::vector<int32_t> engine_greedy(const WeightSource& weights, const std::vector<int32_t>& prompt,
                                   int64_t count) {
  const auto backend = make_cpu_backend();
  TransformerOptions options;
  options.weights = WeightFormat::F32;  // the fp32 reference path
  options.max_batch_tokens = 16;
  options.max_view_entries = 1;
  Transformer model(weights, *backend, options);
  KvCache cache(*backend, model.shard_config(),
                cache_options_for(1, static_cast<int64_t>(prompt.size()) + count, 16));
  Sampler sampler(SamplingParams{});
  GenerationRequest request;
  request.prompt = prompt;
  request.max_tokens = count;
  std::vector<int32_t> generated;
  generate(model, cache, sampler, request, [&](int32_t token) { generated.push_back(token); });
  return generated;
}

double max_abs_difference(const std::vector<double>& a, const float* b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - double{b[i]}));
  return worst;
}

struct TinyCase {
  std::string name;
  std::string flags;
};

class TinyModelReference : public ::testing::TestWithParam<TinyCase> {};

TEST_P(TinyModelReference, LogprobsAndGreedyMatchNumpy) {
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  TempDir dir;
  const std::string model_dir = dir / "model";
  auto made = testing::run_script("make_tiny_model.py --out " + model_dir +
                                  " --vocab 97 --seed 7 " + GetParam().flags);
  ASSERT_EQ(made.exit_code, 0) << made.output;

  const std::vector<int32_t> prompt = {1, 5, 9, 33, 2, 96, 14, 0, 71, 71, 8, 40, 3};
  auto reference = testing::run_script("reference_forward.py " + model_dir + " --tokens " +
                                       join(prompt) + " --greedy 12 --out " + (dir / "ref.json") +
                                       " --all-positions " + (dir / "ref.bin"));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const auto json = nlohmann::json::parse(testing::read_file(dir / "ref.json"));
  const std::vector<float> expected = testing::read_floats(dir / "ref.bin");

  const auto weights = open_weights(model_dir);
  const int64_t vocab = weights->config().vocab;
  ASSERT_EQ(expected.size(), prompt.size() * static_cast<size_t>(vocab));
  for (int64_t chunk : {1, 4, 13}) {
    const auto actual = engine_logprobs(*weights, prompt, chunk);
    ASSERT_EQ(actual.size(), prompt.size());
    for (size_t p = 0; p < prompt.size(); ++p)
      EXPECT_LE(max_abs_difference(actual[p], expected.data() + p * static_cast<size_t>(vocab)),
                1e-4)
          << "position " << p << ", chunk " << chunk;
  }
  EXPECT_EQ(engine_greedy(*weights, prompt, 12), json["greedy"].get<std::vector<int32_t>>());
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, TinyModelReference,
    ::testing::Values(
        TinyCase{"llama", "--arch llama"},
        TinyCase{"llama_tied_gqa4", "--arch llama --tied --heads 8 --kv-heads 2"},
        TinyCase{"llama3_rope_scaling", "--arch llama --rope-scaling llama3 --rope-theta 500000"},
        TinyCase{"llama_mha_head_dim_64", "--arch llama --heads 2 --kv-heads 2 --head-dim 64"},
        TinyCase{"qwen2_bias", "--arch qwen2"},
        TinyCase{"qwen3_qk_norm", "--arch qwen3 --head-dim 32"},
        TinyCase{"qwen3_yarn", "--arch qwen3 --rope-scaling yarn"},
        TinyCase{"bf16_sharded", "--arch llama --dtype bf16 --sharded"},
        TinyCase{"f16", "--arch qwen2 --dtype f16"}),
    [](const ::testing::TestParamInfo<TinyCase>& param) { return param.param.name; });

// The demo model (SmolLM2-135M-Instruct, Q4_1 GGUF) against numpy reading the same GGUF through
// the `gguf` package's own dequantization.
TEST(DemoModelReference, LogprobsAndGreedyMatchNumpy) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  TempDir dir;
  // "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
  const std::vector<int32_t> prompt = {1,    4093, 198, 1780, 314, 260, 3575, 282,
                                       4649, 47,   2,   198,  1,   520, 9531, 198};
  auto reference =
      testing::run_script("reference_forward.py " + testing::demo_model_path() + " --tokens " +
                          join(prompt) + " --greedy 32 --out " + (dir / "ref.json"));
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const auto json = nlohmann::json::parse(testing::read_file(dir / "ref.json"));
  const auto expected = json["logprobs_last"].get<std::vector<float>>();

  const auto weights = open_weights(testing::demo_model_path());
  const auto actual = engine_logprobs(*weights, prompt, 8);
  EXPECT_LE(max_abs_difference(actual.back(), expected.data()), 1e-4);
  EXPECT_EQ(engine_greedy(*weights, prompt, 32), json["greedy"].get<std::vector<int32_t>>())
      << "reference text: " << json.value("greedy_text", "");
}

// The same model as GGUF and as a converted safetensors checkpoint gives the same logits: the two
// readers (names, shapes, Q/K un-permutation, tied embeddings) agree.
TEST(DemoModelReference, GgufAndSafetensorsGiveTheSameLogits) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  TempDir dir;
  auto converted = testing::run_script("gguf_to_hf.py " + testing::demo_model_path() + " " +
                                       (dir / "hf") + " --dtype f32 --no-tokenizer");
  ASSERT_EQ(converted.exit_code, 0) << converted.output;
  const std::vector<int32_t> prompt = {1, 4093, 198, 504, 3575, 282, 4649, 314};
  const auto from_gguf = engine_logprobs(*open_weights(testing::demo_model_path()), prompt, 8);
  const auto from_hf = engine_logprobs(*open_weights(dir / "hf"), prompt, 8);
  ASSERT_EQ(from_gguf.size(), from_hf.size());
  // Same fp32 weights (the readers agree bit for bit) and the same kernels: identical logits.
  for (size_t p = 0; p < prompt.size(); ++p)
    EXPECT_EQ(from_gguf[p], from_hf[p]) << "position " << p;
}

}  // namespace
}  // namespace hogwild
