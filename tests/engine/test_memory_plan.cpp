// The memory plan against what the engine really allocates (the weights and cache of tiny models
// and of the demo model), and the error a run that cannot fit gets before loading anything.
#include <gtest/gtest.h>

#include "common/error.h"
#include "engine/cache_merge.h"
#include "engine/memory_plan.h"
#include "engine/transformer.h"
#include "model/model.h"
#include "test_support.h"

namespace hogwild {
namespace {

void expect_plan_matches(const std::string& path, int64_t parts) {
  const auto weights = open_weights(path);
  const auto backend = make_cpu_backend();
  TransformerOptions options;
  options.max_batch_tokens = 48;
  options.max_view_entries = 4;
  const CacheOptions cache_options = cache_options_for(6, 300, 16);
  const ModelConfig shard = shard_of(weights->config(), parts);
  const MemoryPlan plan = plan_memory(*weights, shard, cache_options, options);
  Transformer model(*weights, *backend, options);
  KvCache cache(*backend, model.shard_config(), cache_options);
  EXPECT_EQ(plan.weights, model.weight_bytes()) << path;
  EXPECT_EQ(plan.cache, cache.bytes()) << path;
  // The workspace estimate may round up (it is small); never under.
  EXPECT_GE(plan.workspace, model.workspace_bytes()) << path;
  EXPECT_LE(plan.workspace, 2 * model.workspace_bytes()) << path;
  // Exact: the forward's workspace and the history merges' scratch, nothing else.
  const CacheMerger merger(*backend, cache, model.inv_freq(), model.head_dim());
  EXPECT_EQ(plan.workspace, model.workspace_bytes() + merger.bytes()) << path;
  EXPECT_EQ(plan.total(),
            model.weight_bytes() + cache.bytes() + model.workspace_bytes() + merger.bytes());
}

TEST(MemoryPlan, MatchesAllocationsOfTinyModels) {
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  for (const char* flags :
       {"--arch llama", "--arch llama --tied", "--arch qwen2", "--arch qwen3"}) {
    testing::TempDir dir;
    ASSERT_EQ(
        testing::run_script(std::string("make_tiny_model.py --out ") + (dir / "m") + " " + flags)
            .exit_code,
        0);
    expect_plan_matches(dir / "m", 1);
  }
}

TEST(MemoryPlan, MatchesTheDemoModel) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  expect_plan_matches(testing::demo_model_path(), 1);
}

TEST(MemoryPlan, TooLittleMemoryIsAClearError) {
  MemoryPlan plan;
  plan.weights = size_t{3} << 30;
  plan.cache = size_t{5} << 30;
  plan.workspace = size_t{1} << 20;
  try {
    check_memory_plan(plan, size_t{4} << 30, "host memory");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(
        message.find(
            "not enough host memory: the run needs 8.0 GiB (weights 3.0 GiB, KV cache 5.0 GiB"),
        std::string::npos)
        << message;
    EXPECT_NE(message.find("but 4.0 GiB is available"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(check_memory_plan(plan, size_t{9} << 30, "host memory"));
  EXPECT_NO_THROW(check_memory_plan(plan, 0, "host memory"));  // unknown: no check
  EXPECT_GT(available_host_memory(), 0u);
}

}  // namespace
}  // namespace hogwild
