// generate() sampling on the backend (engine/device_sampler.h) against the host Sampler, on the
// CPU backend (GenerationRequest::Sampling::on_backend forces the device path there; on CUDA it
// is the default, and tests/engine/test_cuda_forward.cpp compares its greedy tokens with the CPU
// backend's): greedy tokens identical to the host path's; sampled runs reproducible from the
// seed, different for another seed; the logits handed to the callback identical to the host
// path's; DeviceSampler's own checks.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "engine/device_sampler.h"
#include "engine/generation.h"
#include "engine/transformer.h"
#include "model/model.h"
#include "test_support.h"

namespace hogwild {
namespace {

struct Generated {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
};

Generated generate_with(const WeightSource& weights, Backend& backend, const SamplingParams& params,
                        GenerationRequest::Sampling place, bool keep_logits) {
  TransformerOptions options;
  options.max_batch_tokens = 8;  // the prompt in two chunks
  options.max_view_entries = 1;
  Transformer model(weights, backend, options);
  KvCache cache(backend, model.shard_config(), cache_options_for(1, 128, 16));
  Sampler sampler(params);
  GenerationRequest request;
  request.prompt = {3, 17, 5, 99, 42, 7, 7, 61, 2, 0, 88};
  request.max_tokens = 24;
  request.sampling = place;
  Generated run;
  if (keep_logits) {
    generate(model, cache, sampler, request, [&](int32_t token, std::span<const float> logits) {
      run.tokens.push_back(token);
      run.logits.emplace_back(logits.begin(), logits.end());
    });
  } else {
    generate(model, cache, sampler, request, [&](int32_t token) { run.tokens.push_back(token); });
  }
  return run;
}

class DeviceSampling : public ::testing::Test {
 protected:
  void SetUp() override {
    HOGWILD_REQUIRE_REFERENCE_PYTHON();
    ASSERT_EQ(
        testing::run_script("make_tiny_model.py --out " + (dir_ / "m") + " --arch llama").exit_code,
        0);
    weights_ = open_weights(dir_ / "m");
  }
  testing::TempDir dir_;
  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<Backend> cpu_ = make_cpu_backend(2);
};

using Place = GenerationRequest::Sampling;

TEST_F(DeviceSampling, GreedyGivesTheHostSamplersTokens) {
  const SamplingParams greedy{};
  const Generated host = generate_with(*weights_, *cpu_, greedy, Place::on_host, true);
  const Generated device = generate_with(*weights_, *cpu_, greedy, Place::on_backend, true);
  ASSERT_EQ(host.tokens.size(), 24u);
  EXPECT_EQ(device.tokens, host.tokens);
  // The callback's logits are downloaded from the backend: the host path's, bit for bit.
  EXPECT_EQ(device.logits, host.logits);
  // The CPU backend's default stays the host Sampler.
  EXPECT_EQ(generate_with(*weights_, *cpu_, greedy, Place::automatic, false).tokens, host.tokens);
}

TEST_F(DeviceSampling, SampledRunsFollowTheSeed) {
  SamplingParams params;
  params.temperature = 1.5;
  params.top_p = 0.98;
  params.seed = 1234;
  const Generated first = generate_with(*weights_, *cpu_, params, Place::on_backend, false);
  const Generated again = generate_with(*weights_, *cpu_, params, Place::on_backend, false);
  EXPECT_EQ(first.tokens, again.tokens);
  params.seed = 4321;
  const Generated other = generate_with(*weights_, *cpu_, params, Place::on_backend, false);
  // 24 tokens at T 1.5 from a random model's flat distribution: equal only by a fluke (< 1e-20).
  EXPECT_NE(other.tokens, first.tokens);
}

TEST(DeviceSampler, ChecksItsInputs) {
  const auto cpu = make_cpu_backend(1);
  DeviceSampler sampler(*cpu, 2, 10);
  EXPECT_THROW(sampler.set_suppressed(std::vector<int32_t>{3, 10}), Error);
  Tensor logits = cpu->allocate(2, 10, DType::F32);
  std::vector<float> values(20, 0.0f);
  values[4] = 1.0f;
  values[10 + 7] = 2.0f;
  cpu->upload_f32(logits, values.data());
  std::vector<int32_t> tokens;
  const SamplingParams greedy{};
  const std::vector<SamplingParams> params = {greedy, greedy};
  const std::vector<uint64_t> counters = {0, 0};
  sampler.sample(logits, params, counters, tokens);
  EXPECT_EQ(tokens, (std::vector<int32_t>{4, 7}));
  sampler.set_suppressed(std::vector<int32_t>{4, 7});
  std::vector<float> logprobs;
  sampler.sample(logits, params, counters, tokens, &logprobs);
  EXPECT_EQ(tokens, (std::vector<int32_t>{0, 0}));  // all equal now: the lowest id
  EXPECT_NEAR(logprobs[0], -std::log(8.0f), 1e-6);
  EXPECT_THROW(sampler.sample(logits, {params.data(), 1}, counters, tokens), Error);
  std::vector<int32_t> all(10);
  for (int32_t i = 0; i < 10; ++i) all[static_cast<size_t>(i)] = i;
  sampler.set_suppressed(all);
  try {
    sampler.sample(logits, params, counters, tokens);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no token to sample"), std::string::npos) << e.what();
  }
  cpu->release(logits);
}

}  // namespace
}  // namespace hogwild
