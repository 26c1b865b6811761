// Tensor parallelism against a single process, under mpirun: every rank runs the model split
// over all ranks (heads, key/value heads and feed-forward units divided, docs/design.md §6) and, as
// the reference, the whole model alone; log-probabilities must agree to 1e-4 (the bound;
// only the summation order of the projections changes) and greedy tokens must be identical.
// Models: tiny random checkpoints with 4 KV heads made by the fixture test (llama, qwen2 with
// biases, qwen3 with q/k norm), and SmolLM2 (9 heads / 3 KV heads) when the world size is 3.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "comm/mpi_communicator.h"
#include "engine/batch_builder.h"
#include "engine/generation.h"
#include "engine/transformer.h"
#include "model/model.h"
#include "mpi_test_main.h"
#include "numerics.h"
#include "stream_ordered_recorder.h"
#include "test_paths.h"

namespace hogwild {
namespace {

using testing::log_softmax;

struct Outputs {
  std::vector<std::vector<double>> logprobs;  // per prompt position
  std::vector<int32_t> greedy;
};

Outputs run_model(const WeightSource& weights, Communicator* tensor,
                  const std::vector<int32_t>& prompt, bool device_communicator = false) {
  const auto backend = make_cpu_backend();
  TransformerOptions options;
  options.weights = WeightFormat::F32;  // the fp32 reference path
  options.max_batch_tokens = 64;
  options.max_view_entries = 1;
  options.tensor = tensor;
  options.device_communicator = device_communicator;
  Transformer model(weights, *backend, options);
  KvCache cache(*backend, model.shard_config(), cache_options_for(2, 128, 16));
  Outputs out;
  {
    const BlockId block = cache.create_block();
    BatchBuilder builder(cache);
    ForwardBatch batch;
    std::vector<float> logits;
    for (size_t p = 0; p < prompt.size(); ++p)
      builder.add(block, {&prompt[p], 1}, {&block, 1}, true);
    builder.build(batch);
    model.forward(batch, cache, logits);
    const int64_t vocab = model.config().vocab;
    for (size_t p = 0; p < prompt.size(); ++p)
      out.logprobs.push_back(log_softmax(logits.data() + p * static_cast<size_t>(vocab), vocab));
    cache.release_block(block);
  }
  Sampler greedy(SamplingParams{});
  GenerationRequest request;
  request.prompt = prompt;
  request.max_tokens = 16;
  generate(model, cache, greedy, request, [&](int32_t token) { out.greedy.push_back(token); });
  return out;
}

void expect_same_as_single_process(const std::string& path, const std::vector<int32_t>& prompt) {
  RankGrid grid = make_rank_grid(mpi_world_size(), 1);
  const auto weights = open_weights(path);
  const Outputs split = run_model(*weights, grid.tensor.get(), prompt);
  const Outputs whole = run_model(*weights, nullptr, prompt);
  double worst = 0;
  for (size_t p = 0; p < prompt.size(); ++p)
    for (size_t i = 0; i < whole.logprobs[p].size(); ++i)
      worst = std::max(worst, std::abs(split.logprobs[p][i] - whole.logprobs[p][i]));
  EXPECT_LE(worst, 1e-4) << path << " on " << grid.tensor->describe();
  EXPECT_EQ(split.greedy, whole.greedy) << path;
  // Every rank decided the same tokens (they all hold the full logits).
  std::vector<int32_t> all(split.greedy.size() * static_cast<size_t>(grid.world->size()));
  grid.world->all_gather(split.greedy.data(), all.data(), split.greedy.size() * sizeof(int32_t));
  for (int r = 0; r < grid.world->size(); ++r)
    EXPECT_TRUE(std::equal(split.greedy.begin(), split.greedy.end(),
                           all.begin() + r * static_cast<ptrdiff_t>(split.greedy.size())));
}

class TinyTensorParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyTensorParallel, MatchesSingleProcess) {
  const std::string path = testing::binary_dir() + "/fixtures/" + GetParam();
  if (!std::filesystem::exists(path + "/config.json"))
    GTEST_SKIP() << path << " missing: the fixture test (make_tiny_model.py) did not run";
  if (4 % mpi_world_size() != 0)
    GTEST_SKIP() << "4 KV heads do not split over " << mpi_world_size();
  expect_same_as_single_process(path, {3, 17, 5, 99, 42, 7, 7, 61, 2, 0, 88});
}

// The tensor axis as the CUDA backend runs it with NCCL: the MPI axis presented as a
// stream-ordered communicator (device_communicator set, as the runner sets it for NCCL). The
// all-reduces go in place on the backend's buffers, two per layer and forward, and the model
// never waits for them itself: the same results as one process.
TEST_P(TinyTensorParallel, StreamOrderedAxisMatchesSingleProcess) {
  const std::string path = testing::binary_dir() + "/fixtures/" + GetParam();
  if (!std::filesystem::exists(path + "/config.json"))
    GTEST_SKIP() << path << " missing: the fixture test (make_tiny_model.py) did not run";
  if (4 % mpi_world_size() != 0)
    GTEST_SKIP() << "4 KV heads do not split over " << mpi_world_size();
  RankGrid grid = make_rank_grid(mpi_world_size(), 1);
  testing::StreamOrderedRecorder axis(*grid.tensor);
  const auto weights = open_weights(path);
  const std::vector<int32_t> prompt = {3, 17, 5, 99, 42, 7, 7, 61, 2, 0, 88};
  const Outputs split = run_model(*weights, &axis, prompt, true);
  const Outputs whole = run_model(*weights, nullptr, prompt);
  double worst = 0;
  for (size_t p = 0; p < prompt.size(); ++p)
    for (size_t i = 0; i < whole.logprobs[p].size(); ++i)
      worst = std::max(worst, std::abs(split.logprobs[p][i] - whole.logprobs[p][i]));
  EXPECT_LE(worst, 1e-4) << path;
  EXPECT_EQ(split.greedy, whole.greedy) << path;
  const int64_t layers = weights->config().layers;
  if (mpi_world_size() > 1) {
    EXPECT_GT(axis.all_reduces, 0);
    EXPECT_EQ(axis.all_reduces % (2 * layers), 0) << "two all-reduces per layer and forward";
  }
  EXPECT_EQ(axis.waits, 0) << "the model queues its collectives; the caller waits";
}

INSTANTIATE_TEST_SUITE_P(Models, TinyTensorParallel,
                         ::testing::Values("tp_llama", "tp_qwen2", "tp_qwen3"));

TEST(DemoTensorParallel, SmolLM2SplitThreeWays) {
  if (mpi_world_size() != 3) GTEST_SKIP() << "SmolLM2's 9 heads / 3 KV heads split over 3 ranks";
  if (!testing::demo_model_available()) GTEST_SKIP() << "demo model missing";
  // "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
  expect_same_as_single_process(
      testing::demo_model_path(),
      {1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198});
}

}  // namespace
}  // namespace hogwild

HOGWILD_MPI_TEST_MAIN()
