// dtype bf16 and the device memory plan on a GPU (skip without one):
// - the whole forward with bf16 matrices and bf16 K/V pools on CUDA against the CPU backend's fp32
//   forward on tiny random models: log-probabilities within 0.1 (bf16 weights, matmul inputs
//   rounded to bf16 and bf16 K/V, each a relative error of 2^-9, through two layers and the
//   lm_head; the CPU's bf16-weight run stays within 0.05, test_dtype.cpp) and the same most likely
//   token at all but 2 of 11 positions;
// - a history merge rotating bf16 keys in place against the same merge on fp32 pools: within
//   bf16 rounding (2^-8 relative, values of magnitude <= 2);
// - the memory plan against cudaMemGetInfo before and after building a Transformer, its KvCache
//   and CacheMerger (f32 and bf16): within 64 MiB (the allocator's 2 MiB granularity over some 60
//   allocations), and the attention and matmul buffers of a forward within the plan's bound plus
//   64 MiB (lazily loaded kernel modules also take device memory).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "dtype_forward.h"
#include "engine/cache_merge.h"
#include "engine/memory_plan.h"
#include "engine/transformer.h"
#include "kernels/cuda/device.h"
#include "kernels/device_memory.h"
#include "model/model.h"
#include "model/rope.h"
#include "test_support.h"

namespace hogwild {
namespace {

const std::vector<int32_t> kPrompt = {3, 17, 5, 99, 42, 7, 7, 61, 2, 0, 88};

std::string make_model(const testing::TempDir& dir, const std::string& flags) {
  const std::string path = dir / "m";
  EXPECT_EQ(testing::run_script("make_tiny_model.py --out " + path + " " + flags).exit_code, 0);
  return path;
}

TEST(CudaDtype, Bf16ForwardMatchesTheCpuFp32Forward) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  // Head dim 64: the CUDA attention kernel has 64, 128 and 256 only.
  for (const char* arch : {"llama", "llama --tied", "qwen2", "qwen3"}) {
    const std::string flags =
        cat("--arch ", arch, " --head-dim 64 --heads 4 --kv-heads 2 --hidden 256 --ffn 512");
    testing::TempDir dir;
    const auto weights = open_weights(make_model(dir, flags));
    const auto cpu = make_cpu_backend();
    const auto cuda = make_backend("cuda", 0);
    EXPECT_EQ(kv_dtype_on(*cuda, DType::BF16), DType::BF16);
    size_t f32_bytes = 0, bf16_bytes = 0;
    const std::vector<float> expected =
        testing::prompt_logits(*weights, *cpu, DType::F32, kPrompt, &f32_bytes);
    const std::vector<float> actual =
        testing::prompt_logits(*weights, *cuda, DType::BF16, kPrompt, &bf16_bytes);
    const int64_t vocab = weights->config().vocab;
    ASSERT_EQ(actual.size(), expected.size());
    EXPECT_LE(testing::worst_logprob_difference(expected, actual, vocab), 0.1) << flags;
    EXPECT_LE(testing::argmax_differences(expected, actual, vocab), 2) << flags;
    EXPECT_LT(bf16_bytes, f32_bytes * 52 / 100) << flags;
  }
}

TEST(CudaDtype, HistoryMergeRotatesBf16KeysInPlace) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ModelConfig config;
  config.layers = 2;
  config.heads = 4;
  config.kv_heads = 2;
  config.head_dim = 64;
  config.hidden = 256;
  const int64_t width = config.kv_heads * config.head_dim;
  const std::vector<float> inv_freq_host = rope_inverse_frequencies(config);
  auto merged_keys = [&](Backend& backend, DType dtype) {
    CacheOptions options = cache_options_for(2, 64, 16);
    options.dtype = dtype;
    KvCache cache(backend, config, options);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    std::vector<float> pool(static_cast<size_t>(cache.keys(0).elements()));
    for (float& v : pool) v = value(rng);
    for (int64_t l = 0; l < cache.layers(); ++l) {
      backend.upload_f32(cache.keys(l), pool.data());
      backend.upload_f32(cache.values(l), pool.data());
    }
    Tensor inv_freq = backend.allocate(1, static_cast<int64_t>(inv_freq_host.size()), DType::F32);
    backend.upload_f32(inv_freq, inv_freq_host.data());
    const BlockId target = cache.create_block(), source = cache.create_block();
    std::vector<int32_t> rows;
    cache.extend(target, 21, rows);  // not a whole page: the source's rows move and rotate
    cache.extend(source, 30, rows);
    {
      CacheMerger merger(backend, cache, inv_freq, config.head_dim);
      merger.apply(cache.append_block(target, source));
    }
    std::vector<float> keys(pool.size());
    backend.download_f32(cache.keys(1), keys.data());
    std::vector<float> merged;
    for (int64_t i = 0; i < cache.length(target); ++i) {
      const auto row = static_cast<size_t>(cache.row(target, i) * width);
      merged.insert(merged.end(), keys.begin() + static_cast<std::ptrdiff_t>(row),
                    keys.begin() + static_cast<std::ptrdiff_t>(row + width));
    }
    backend.release(inv_freq);
    return merged;
  };
  const auto cpu = make_cpu_backend(1);
  const auto cuda = make_backend("cuda", 0);
  const std::vector<float> expected = merged_keys(*cpu, DType::F32);
  const std::vector<float> actual = merged_keys(*cuda, DType::BF16);
  ASSERT_EQ(actual.size(), expected.size());
  ASSERT_EQ(actual.size(), static_cast<size_t>(51 * width));
  double worst = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(actual[i]) - expected[i]) /
                                std::max(1.0, std::abs(static_cast<double>(expected[i]))));
  // Two roundings to bf16 (the stored key, the rotated one): 2 * 2^-8, with the rotation's sum.
  EXPECT_LE(worst, 1.5e-2);
}

TEST(CudaDtype, MemoryPlanMatchesDeviceAllocations) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  testing::TempDir dir;
  // ~50M parameters (200 MB in fp32), so that the plan's parts dwarf the allocator's rounding.
  const auto weights =
      open_weights(make_model(dir,
                              "--arch llama --layers 4 --hidden 1024 --heads 8 --kv-heads 4 "
                              "--head-dim 128 --ffn 2816 --vocab 8192"));
  constexpr int64_t kMiB = int64_t{1} << 20;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto cuda = make_backend("cuda", 0);
    TransformerOptions options;
    options.max_batch_tokens = 64;
    options.max_view_entries = 2;
    options.dtype = dtype;
    CacheOptions cache_options = cache_options_for(4, 4096, 16);  // 16384 rows of 512 values
    cache_options.dtype = kv_dtype_on(*cuda, dtype);
    MemoryPlan plan = plan_memory(*weights, weights->config(), cache_options, options);
    add_cuda_buffers(plan, weights->config(), weights->config(), cache_options, options);
    cuda->synchronize();
    const auto before = static_cast<int64_t>(cuda_free_memory(0));
    {
      Transformer model(*weights, *cuda, options);
      KvCache cache(*cuda, model.shard_config(), cache_options);
      CacheMerger merger(*cuda, cache, model.inv_freq(), model.head_dim());
      cuda->synchronize();
      const auto built = static_cast<int64_t>(cuda_free_memory(0));
      const auto planned = static_cast<int64_t>(plan.weights + plan.cache + plan.workspace);
      EXPECT_NEAR(static_cast<double>(before - built), static_cast<double>(planned),
                  static_cast<double>(64 * kMiB))
          << "planned " << planned << " bytes (weights " << plan.weights << ", cache " << plan.cache
          << ", workspace " << plan.workspace << ")";
      // A forward of the whole workspace (64 rows, two view entries each) grows the attention
      // workspace and (bf16) the matmul scratch; the cuBLAS workspace came with the backend.
      const BlockId a = cache.create_block(), b = cache.create_block();
      BatchBuilder builder(cache);
      std::vector<int32_t> tokens(32);
      for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 7 + 1);
      const BlockId view_a[] = {b, a}, view_b[] = {a, b};
      builder.add(a, tokens, view_a, true);
      builder.add(b, tokens, view_b, true);
      ForwardBatch batch;
      builder.build(batch);
      std::vector<float> logits;
      model.forward(batch, cache, logits);
      cuda->synchronize();
      const auto ran = static_cast<int64_t>(cuda_free_memory(0));
      const auto buffers =
          static_cast<int64_t>(plan.attention + plan.backend - kCudaCublasWorkspaceBytes);
      EXPECT_LE(built - ran, buffers + 64 * kMiB)
          << "attention bound " << plan.attention << ", matmul scratch "
          << plan.backend - kCudaCublasWorkspaceBytes;
      // The whole plan fits in what the device had free before (the check would have passed).
      EXPECT_LE(static_cast<int64_t>(plan.total()), before);
    }
  }
}

}  // namespace
}  // namespace hogwild
