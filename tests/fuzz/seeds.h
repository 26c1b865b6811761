// Seed inputs for the parser fuzzers: small valid files that reach every branch of a successful
// parse, built in code (model/file_writers.h) so the repository holds no binary corpus.
#pragma once

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "model/file_writers.h"
#include "model/quant.h"

namespace hogwild::fuzz {

using testing::Bytes;
using Seed = std::pair<std::string, Bytes>;  // file name, contents

// Deterministic filler bytes for quantized blocks (any bytes are valid block contents).
inline Bytes filler(size_t count, unsigned seed) {
  std::mt19937 random(seed);
  Bytes bytes(count);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

inline std::vector<Seed> gguf_seeds() {
  using namespace testing;
  std::vector<Seed> seeds;

  GgufWriter metadata;  // every value type, as the model loader and tokenizer read them
  metadata.string("general.architecture", "llama")
      .u32("llama.block_count", 2)
      .u64("llama.context_length", 4096)
      .f32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
      .f64("llama.rope.freq_base", 10000.0)
      .boolean("tokenizer.ggml.add_bos_token", true)
      .i32("tokenizer.ggml.bos_token_id", 1)
      .scalar("u8", kU8, uint8_t{7})
      .scalar("i8", kI8, int8_t{-7})
      .scalar("u16", kU16, uint16_t{700})
      .scalar("i16", kI16, int16_t{-700})
      .scalar("i64", kI64, int64_t{-70000})
      .string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b", "ab"})
      .f32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3})
      .i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1})
      .string_array("tokenizer.ggml.merges", {"a b"});
  ByteWriter nested;  // an array of arrays
  nested.u32(kArray).u64(2).u32(kU8).u64(1).u8(1).u32(kString).u64(1).gguf_string("x");
  metadata.raw_key("nested", kArray, nested.bytes());
  seeds.emplace_back("metadata.gguf", metadata.bytes());

  GgufWriter tensors;  // one tensor of each type the loader dequantizes
  tensors.string("general.architecture", "llama");
  struct Kind {
    const char* name;
    GgmlType type;
    int64_t elements;  // one row: a whole number of blocks
    size_t bytes;
  };
  const Kind kinds[] = {
      {"f32", GgmlType::F32, 32, 128},    {"f16", GgmlType::F16, 32, 64},
      {"bf16", GgmlType::BF16, 32, 64},   {"q4_0", GgmlType::Q4_0, 32, 18},
      {"q4_1", GgmlType::Q4_1, 32, 20},   {"q5_0", GgmlType::Q5_0, 32, 22},
      {"q5_1", GgmlType::Q5_1, 32, 24},   {"q8_0", GgmlType::Q8_0, 64, 68},
      {"q4_k", GgmlType::Q4_K, 256, 144}, {"q5_k", GgmlType::Q5_K, 256, 176},
      {"q6_k", GgmlType::Q6_K, 256, 210},
  };
  unsigned seed = 1;
  for (const Kind& kind : kinds)
    tensors.tensor(std::string("t.") + kind.name, {kind.elements}, static_cast<uint32_t>(kind.type),
                   filler(kind.bytes, seed++));
  seeds.emplace_back("tensors.gguf", tensors.bytes());

  GgufWriter aligned;  // a custom alignment and a two-dimensional tensor
  aligned.u32("general.alignment", 64)
      .tensor("a", {3}, static_cast<uint32_t>(GgmlType::F32), filler(12, 50))
      .tensor("b", {4, 2}, static_cast<uint32_t>(GgmlType::F16), filler(16, 51));
  seeds.emplace_back("aligned.gguf", aligned.bytes(3, 64));

  seeds.emplace_back("version2.gguf", GgufWriter().string("general.name", "v2").bytes(2));
  return seeds;
}

inline std::vector<Seed> safetensors_seeds() {
  using namespace testing;
  std::vector<Seed> seeds;
  seeds.emplace_back("mixed.safetensors",
                     safetensors_file({{"model.embed_tokens.weight", "BF16", {4, 2}, filler(16, 1)},
                                       {"model.norm.weight", "F32", {2}, filler(8, 2)},
                                       {"lm_head.weight", "F16", {4, 2}, filler(16, 3)},
                                       {"ids", "I64", {2}, filler(16, 4)},
                                       {"scalar", "F32", {}, filler(4, 5)},
                                       {"empty", "F32", {0, 3}, {}}},
                                      {{"format", "pt"}}));
  seeds.emplace_back("empty.safetensors", safetensors_file("{}", {}));
  // An unpadded header: the data starts at an odd address.
  seeds.emplace_back(
      "unaligned.safetensors",
      safetensors_file(
          R"({"__metadata__":{"a":"b"},"x":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}})",
          filler(6, 6)));
  return seeds;
}

}  // namespace hogwild::fuzz
