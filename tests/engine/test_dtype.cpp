// `dtype: bf16` on the CPU backend: the matrices kept as bf16 (read by the quantized kernels),
// the K/V pools fp32 (the CPU's attention reads fp32 only). The whole forward of tiny random
// models against the fp32 one: log-probabilities within 0.05 (bf16 keeps 8 bits of mantissa: a
// relative error of 2^-9 per weight, through two layers and the lm_head) and the same most likely
// token at almost every position, but not the same bits (the conversion did happen).
#include <gtest/gtest.h>

#include "dtype_forward.h"
#include "engine/transformer.h"
#include "model/model.h"
#include "test_support.h"

namespace hogwild {
namespace {

const std::vector<int32_t> kPrompt = {3, 17, 5, 99, 42, 7, 7, 61, 2, 0, 88};

TEST(Dtype, Bf16OnTheCpuKeepsFp32KvPools) {
  const auto cpu = make_cpu_backend(1);
  EXPECT_EQ(kv_dtype_on(*cpu, DType::BF16), DType::F32);
  EXPECT_EQ(kv_dtype_on(*cpu, DType::F32), DType::F32);
  EXPECT_EQ(compute_dtype_named("bf16"), DType::BF16);
  EXPECT_EQ(compute_dtype_named("f32"), DType::F32);
  EXPECT_EQ(testing::error_of([] { compute_dtype_named("f16"); }),
            "dtype must be f32 or bf16, not 'f16'");
}

TEST(Dtype, Bf16ForwardOnTheCpuIsCloseToFp32) {
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  for (const char* flags : {"--arch llama", "--arch llama --tied", "--arch qwen2",
                            "--arch qwen3 --head-dim 64 --heads 4 --kv-heads 2 --hidden 256"}) {
    testing::TempDir dir;
    ASSERT_EQ(
        testing::run_script(std::string("make_tiny_model.py --out ") + (dir / "m") + " " + flags)
            .exit_code,
        0);
    const auto weights = open_weights(dir / "m");
    const auto cpu = make_cpu_backend(2);
    size_t f32_bytes = 0, bf16_bytes = 0;
    const std::vector<float> f32 =
        testing::prompt_logits(*weights, *cpu, DType::F32, kPrompt, &f32_bytes);
    const std::vector<float> bf16 =
        testing::prompt_logits(*weights, *cpu, DType::BF16, kPrompt, &bf16_bytes);
    const int64_t vocab = weights->config().vocab;
    ASSERT_EQ(f32.size(), kPrompt.size() * static_cast<size_t>(vocab));
    ASSERT_EQ(bf16.size(), f32.size());
    const double worst = testing::worst_logprob_difference(f32, bf16, vocab);
    EXPECT_LE(worst, 0.05) << flags;
    EXPECT_GT(worst, 1e-6) << flags << ": the bf16 run gave the fp32 run's bits";
    EXPECT_LE(testing::argmax_differences(f32, bf16, vocab), 1) << flags;
    // Half the bytes for the matrices; the norms and biases (a few KiB) stay fp32.
    EXPECT_LT(bf16_bytes, f32_bytes * 52 / 100) << flags;
    EXPECT_GT(bf16_bytes, f32_bytes / 2) << flags;
  }
}

// A checkpoint stored in bf16 (Hugging Face safetensors are loaded as fp32): converting its
// matrices back to bf16 is exact, so dtype bf16 halves their bytes and changes the logits only by
// the kernels' summation order (log-probabilities within 1e-4; a lossy rounding would move them
// by 1e-2 as above).
TEST(Dtype, Bf16CheckpointConvertsExactly) {
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  testing::TempDir dir;
  ASSERT_EQ(testing::run_script(std::string("make_tiny_model.py --out ") + (dir / "m") +
                                " --arch qwen2 --dtype bf16")
                .exit_code,
            0);
  const auto weights = open_weights(dir / "m");
  const auto cpu = make_cpu_backend(2);
  size_t f32_bytes = 0, bf16_bytes = 0;
  const std::vector<float> f32 =
      testing::prompt_logits(*weights, *cpu, DType::F32, kPrompt, &f32_bytes);
  const std::vector<float> bf16 =
      testing::prompt_logits(*weights, *cpu, DType::BF16, kPrompt, &bf16_bytes);
  EXPECT_LE(testing::worst_logprob_difference(f32, bf16, weights->config().vocab), 1e-4);
  EXPECT_LT(bf16_bytes, f32_bytes * 52 / 100);
}

}  // namespace
}  // namespace hogwild
