// The memory plan against what the engine really allocates (the weights and cache of tiny models
// and of the demo model), and the error a run that cannot fit gets before loading anything.
#include <gtest/gtest.h>

#include "common/error.h"
#include "engine/cache_merge.h"
#include "engine/memory_plan.h"
#include "engine/transformer.h"
#include "kernels/device_memory.h"
#include "model/model.h"
#include "test_support.h"

namespace hogwild {
namespace {

void expect_plan_matches(const std::string& path, int64_t parts, DType dtype = DType::F32,
                         DType kv_dtype = DType::F32) {
  SCOPED_TRACE(cat(dtype_name(dtype), " matrices, ", dtype_name(kv_dtype), " K/V"));
  const auto weights = open_weights(path);
  const auto backend = make_cpu_backend();
  TransformerOptions options;
  options.max_batch_tokens = 48;
  options.max_view_entries = 4;
  options.dtype = dtype;
  CacheOptions cache_options = cache_options_for(6, 300, 16);
  cache_options.dtype = kv_dtype;  // the CPU backend holds bf16 pools (only CUDA reads them)
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
    expect_plan_matches(dir / "m", 1, DType::BF16, DType::BF16);
  }
}

// Byte counts of bf16 against f32, from the geometry alone: every matrix element takes 2 bytes
// instead of 4, the norms (and biases) stay fp32, and every K/V element takes 2 bytes.
TEST(MemoryPlan, Bf16HalvesTheMatricesAndTheKvPools) {
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  testing::TempDir dir;
  ASSERT_EQ(testing::run_script(std::string("make_tiny_model.py --out ") + (dir / "m") +
                                " --arch qwen2 --layers 3")
                .exit_code,
            0);
  const auto weights = open_weights(dir / "m");
  const ModelConfig& c = weights->config();
  const CacheOptions f32_cache = cache_options_for(6, 300, 16);
  CacheOptions bf16_cache = f32_cache;
  bf16_cache.dtype = DType::BF16;
  TransformerOptions f32_options;
  TransformerOptions bf16_options;
  bf16_options.dtype = DType::BF16;
  const MemoryPlan f32 = plan_memory(*weights, c, f32_cache, f32_options);
  const MemoryPlan bf16 = plan_memory(*weights, c, bf16_cache, bf16_options);
  const int64_t q = c.heads * c.head_dim, kv = c.kv_heads * c.head_dim;
  const int64_t matrices =
      c.vocab * c.hidden * (c.tied_embeddings ? 1 : 2) +
      c.layers * (c.hidden * (q + 2 * kv) + q * c.hidden + 3 * c.ffn_hidden * c.hidden);
  const int64_t vectors = c.hidden + c.layers * (2 * c.hidden + q + 2 * kv);  // norms, biases
  EXPECT_EQ(f32.weights, static_cast<size_t>(4 * (matrices + vectors)));
  EXPECT_EQ(bf16.weights, static_cast<size_t>(2 * matrices + 4 * vectors));
  const auto kv_values =
      static_cast<size_t>(2 * c.layers * f32_cache.pages * f32_cache.page_size * kv);
  EXPECT_EQ(f32.cache, 4 * kv_values);
  EXPECT_EQ(bf16.cache, 2 * kv_values);
  // The merge scratch holds a block of keys in the pools' dtype; activations stay fp32.
  const auto block_rows = static_cast<size_t>(f32_cache.max_pages_per_block * f32_cache.page_size);
  EXPECT_EQ(f32.workspace - bf16.workspace, block_rows * static_cast<size_t>(kv) * 2);
}

// The CUDA backend's buffers: the cuBLAS workspace, the bf16 matmul's input scratch (only with
// bf16 matrices) and the attention kernel's workspace (a bound that grows with the batch); the
// graphs slot stays 0 until graphs are sized. A device that is too small is refused naming them.
TEST(MemoryPlan, CudaBuffersAndTheDeviceMessage) {
  ModelConfig c;
  c.layers = 4;
  c.hidden = 1024;
  c.heads = 8;
  c.kv_heads = 4;
  c.head_dim = 128;
  c.ffn_hidden = 2816;
  c.vocab = 8192;
  const CacheOptions cache = cache_options_for(8, 4096, 16);
  TransformerOptions options;
  options.max_batch_tokens = 64;
  options.max_view_entries = 4;
  MemoryPlan f32;
  add_cuda_buffers(f32, c, c, cache, options);
  EXPECT_EQ(f32.backend, kCudaCublasWorkspaceBytes);
  EXPECT_EQ(f32.graphs, 0u);
  options.dtype = DType::BF16;
  MemoryPlan bf16;
  add_cuda_buffers(bf16, c, c, cache, options);
  EXPECT_EQ(bf16.backend, kCudaCublasWorkspaceBytes + 64 * 2816 * 2);  // widest input: ffn
  EXPECT_EQ(bf16.attention, f32.attention);
  // The partials of 256 entries x 8 heads x (128 + 2) floats: 63 splits fill the 64 MiB budget.
  EXPECT_GT(f32.attention, size_t{256 * 8 * 130 * 4 * 63});
  EXPECT_LT(f32.attention, size_t{80} << 20);
  // A prefill of 8192 rows: one split already passes the budget, and the partials grow with it.
  options.max_batch_tokens = 8192;
  MemoryPlan wider;
  add_cuda_buffers(wider, c, c, cache, options);
  EXPECT_GT(wider.attention, size_t{8192 * 4 * 8 * 130 * 4});
  bf16.weights = size_t{3} << 30;
  const std::string message =
      testing::error_of([&] { check_memory_plan(bf16, size_t{1} << 30, "memory on GPU 0"); });
  EXPECT_NE(message.find("not enough memory on GPU 0: the run needs 3."), std::string::npos)
      << message;
  EXPECT_NE(message.find("attention buffers"), std::string::npos) << message;
  EXPECT_NE(message.find("cuBLAS and matmul scratch 32."), std::string::npos) << message;
  EXPECT_NE(message.find("but 1.0 GiB is available"), std::string::npos) << message;
  EXPECT_EQ(device_free_memory("cpu", 0), 0u);  // host backends: checked against host memory
}

// check_run_memory on the CPU checks host memory (the tiny plan fits), and refuses a cache that
// cannot fit before the model is built.
TEST(MemoryPlan, RunCheckOnTheCpuUsesHostMemory) {
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  testing::TempDir dir;
  ASSERT_EQ(
      testing::run_script(std::string("make_tiny_model.py --out ") + (dir / "m") + " --arch llama")
          .exit_code,
      0);
  const auto weights = open_weights(dir / "m");
  const auto cpu = make_cpu_backend(1);
  const TransformerOptions options;
  EXPECT_NO_THROW(check_run_memory(*weights, weights->config(), cache_options_for(4, 256, 16),
                                   options, *cpu, 0));
  CacheOptions huge = cache_options_for(1, 256, 16);
  huge.pages = int64_t{1} << 40;
  EXPECT_NE(testing::error_of([&] {
              check_run_memory(*weights, weights->config(), huge, options, *cpu, 0);
            }).find("not enough host memory"),
            std::string::npos);
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
