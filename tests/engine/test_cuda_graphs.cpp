// Decode steps replayed as CUDA graphs (Backend::run_step) against eager launches, with a tiny
// random model: several steps with changing tokens and growing views, logits within 1e-4 (the
// graph pads the batch to its bucket, which may change cuBLAS' kernel choice, not the maths). A
// step that synchronises or uploads inside its capture is refused with a clear error. Skips
// without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "engine/batch_builder.h"
#include "engine/transformer.h"
#include "kernels/cuda/device.h"
#include "random_model.h"

namespace hogwild {
namespace {

struct ModelRun {
  std::unique_ptr<Backend> backend = make_backend("cuda", 0);
  Transformer model;
  KvCache cache;
  std::vector<BlockId> blocks;
  ModelRun(const WeightSource& weights, const TransformerOptions& options)
      : model(weights, *backend, options),
        cache(*backend, model.shard_config(), cache_options_for(4, 128, 16)) {
    for (int w = 0; w < 3; ++w) blocks.push_back(cache.create_block());
  }

  std::vector<float> step(const std::vector<std::vector<int32_t>>& tokens) {
    BatchBuilder builder(cache);
    for (size_t w = 0; w < blocks.size(); ++w) {
      std::vector<BlockId> view;
      for (size_t o = 0; o < blocks.size(); ++o)
        if (o != w) view.push_back(blocks[o]);
      view.push_back(blocks[w]);
      builder.add(blocks[w], tokens[w], view, true);
    }
    ForwardBatch batch;
    builder.build(batch);
    builder.commit();
    std::vector<float> logits;
    model.forward(batch, cache, logits);
    return logits;
  }
};

TEST(CudaGraphs, ReplaysMatchEagerLaunchesOverChangingSteps) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  for (Architecture a : {Architecture::Llama, Architecture::Qwen3}) {
    const testing::RandomWeights weights(testing::tiny_random_config(a));
    TransformerOptions options;
    options.max_batch_tokens = 32;
    options.max_view_entries = 4;
    options.graphs = true;
    ModelRun graphs(weights, options);
    options.graphs = false;
    ModelRun eager(weights, options);
    std::vector<std::vector<std::vector<int32_t>>> steps = {{{1, 5, 9, 2, 7}, {3, 3}, {8, 6, 4}}};
    for (int32_t s = 0; s < 8; ++s)
      steps.push_back({{(11 * s + 1) % 101}, {(13 * s + 2) % 101}, {(17 * s + 3) % 101}});
    double worst = 0;
    for (size_t s = 0; s < steps.size(); ++s) {
      const std::vector<float> expected = eager.step(steps[s]);
      const std::vector<float> actual = graphs.step(steps[s]);
      ASSERT_EQ(expected.size(), actual.size());
      for (size_t i = 0; i < expected.size(); ++i)
        worst = std::max(worst, static_cast<double>(std::abs(expected[i] - actual[i])));
    }
    EXPECT_LE(worst, 1e-4) << architecture_name(a);
    // Step 0 (bucket 16) and step 1 (bucket 4) warm up, step 2 captures bucket 4, then replays.
    const Backend::StepGraphStats stats = graphs.backend->step_graph_stats();
    EXPECT_EQ(stats.captured, 1) << architecture_name(a);
    EXPECT_EQ(stats.replayed, 7) << architecture_name(a);
    EXPECT_EQ(stats.eager, 2) << architecture_name(a);
    const Backend::StepGraphStats none = eager.backend->step_graph_stats();
    EXPECT_EQ(none.captured + none.replayed + none.eager, 0);
  }
}

TEST(CudaGraphs, ASynchronisationOrUploadInsideACaptureIsRefused) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const auto backend = make_backend("cuda", 0);
  ASSERT_TRUE(backend->step_graphs());
  Tensor t = backend->allocate(4, 1, DType::I32);
  const int32_t values[4] = {1, 2, 3, 4};
  for (int key = 1; key <= 2; ++key) {
    auto bad = [&] {
      if (key == 1)
        backend->synchronize();
      else
        backend->upload_i32(t, values);
    };
    backend->run_step(static_cast<uint64_t>(key), bad);  // the warm-up runs eagerly: allowed
    try {
      backend->run_step(static_cast<uint64_t>(key), bad);  // captured: refused
      ADD_FAILURE() << "no error for a forbidden call inside a capture";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("captured as a CUDA graph"), std::string::npos)
          << error.what();
    }
  }
  // The backend still works after a failed capture.
  backend->upload_i32(t, values);
  backend->synchronize();
  backend->release(t);
}

}  // namespace
}  // namespace hogwild
