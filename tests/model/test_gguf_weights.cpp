// GGUF files as models: the config read from `{arch}.*` keys and the errors a user meets with a
// file that parses but is not a usable model (unsupported architecture or quantization, wrong
// shapes, inconsistent head counts). Each error names the file and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "file_writers.h"
#include "model/model.h"
#include "test_support.h"

namespace hogwild {
namespace {

using testing::error_of;

using testing::GgufWriter;
using ::testing::HasSubstr;
using testing::TempDir;

// A one-layer llama GGUF whose embedding has type `embedding_type` (bytes filled with zeros).
testing::Bytes tiny_llama(const std::string& arch, uint32_t embedding_type, int64_t embedding_bytes,
                          uint32_t heads = 2) {
  GgufWriter writer;
  writer.string("general.architecture", arch)
      .u32(arch + ".block_count", 1)
      .u32(arch + ".embedding_length", 256)
      .u32(arch + ".feed_forward_length", 512)
      .u32(arch + ".attention.head_count", heads)
      .u32(arch + ".attention.head_count_kv", 2)
      .f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f)
      .f32(arch + ".rope.freq_base", 10000.0f);
  writer.tensor("token_embd.weight", {256, 4}, embedding_type,
                testing::Bytes(static_cast<size_t>(embedding_bytes), 0));
  return writer.bytes();
}

TEST(GgufWeights, ReadsTheConfig) {
  TempDir dir;
  testing::write_file(dir / "m.gguf", tiny_llama("llama", 0, 256 * 4 * 4));
  const auto weights = open_weights(dir / "m.gguf");
  const ModelConfig& c = weights->config();
  EXPECT_EQ(c.architecture, Architecture::Llama);
  EXPECT_EQ(c.layers, 1);
  EXPECT_EQ(c.hidden, 256);
  EXPECT_EQ(c.heads, 2);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab, 4);
  EXPECT_TRUE(c.tied_embeddings);  // no output.weight
  EXPECT_EQ(weights->load("model.embed_tokens.weight", {4, 256}).data.size(), 1024u);
}

TEST(GgufWeights, UnsupportedQuantizationNamesFileAndTensor) {
  TempDir dir;
  // Q2_K (type 10): 84 bytes per 256 values; parsed, but not dequantized.
  testing::write_file(dir / "q2k.gguf", tiny_llama("llama", 10, 84 * 4));
  const auto weights = open_weights(dir / "q2k.gguf");
  const std::string message = error_of([&] {
    weights->load("model.embed_tokens.weight", {4, 256});
  });
  EXPECT_THAT(message, HasSubstr("q2k.gguf"));
  EXPECT_THAT(message, HasSubstr("token_embd.weight"));
  EXPECT_THAT(message, HasSubstr("Q2_K is not supported"));
}

TEST(GgufWeights, UnsupportedArchitecture) {
  TempDir dir;
  testing::write_file(dir / "gpt2.gguf", tiny_llama("gpt2", 0, 256 * 4 * 4));
  EXPECT_THAT(error_of([&] { open_weights(dir / "gpt2.gguf"); }),
              HasSubstr("unsupported architecture 'gpt2' (supported: llama, qwen2, qwen3)"));
}

TEST(GgufWeights, WrongShapeAndBadHeadCounts) {
  TempDir dir;
  testing::write_file(dir / "m.gguf", tiny_llama("llama", 0, 256 * 4 * 4));
  const auto weights = open_weights(dir / "m.gguf");
  EXPECT_THAT(error_of([&] {
                weights->load("model.embed_tokens.weight", {4, 128});
              }),
              HasSubstr("'token_embd.weight' has shape [4, 256], expected [4, 128]"));
  EXPECT_THAT(error_of([&] {
                weights->load("model.layers.0.mlp.up_proj.weight", {512, 256});
              }),
              HasSubstr("missing tensor 'blk.0.ffn_up.weight'"));
  testing::write_file(dir / "heads.gguf", tiny_llama("llama", 0, 256 * 4 * 4, /*heads=*/3));
  EXPECT_THAT(error_of([&] { open_weights(dir / "heads.gguf"); }),
              HasSubstr("llama.embedding_length (256) is not a multiple of "
                        "llama.attention.head_count (3), and no llama.attention.key_length"));
}

}  // namespace
}  // namespace hogwild
