// Hugging Face checkpoint directories: config.json for Llama/Mistral/Qwen2/Qwen3 with every RoPE
// scaling variant, single-file and sharded safetensors weights, and the errors for what is
// missing or unsupported. Fixtures are written into a temporary directory by the test itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/file_writers.h"
#include "model/model.h"
#include "test_support.h"

namespace hogwild {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using testing::Bytes;
using testing::bytes_of;
using ::testing::HasSubstr;
using testing::safetensors_file;
using testing::TempDir;
using ::testing::ThrowsMessage;
using testing::write_file;

// A tiny Llama: 2 heads of 4 over a hidden size of 8, one key/value head.
json llama_config() {
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"hidden_size", 8},
              {"intermediate_size", 16},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 1},
              {"num_hidden_layers", 1},
              {"vocab_size", 10},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 500000.0},
              {"max_position_embeddings", 64},
              {"tie_word_embeddings", true},
              {"torch_dtype", "bfloat16"}};
}

class HfCheckpoint : public ::testing::Test {
 protected:
  std::string directory() const { return dir_.path(); }
  std::string config_path() const { return dir_ / "config.json"; }

  void write_config(const json& config) { write_file(config_path(), config.dump(2)); }
  void write_weights(const Bytes& file, const std::string& name = "model.safetensors") {
    write_file(dir_ / name, file);
  }
  // Writes `config` and an empty model.safetensors, then reads the config back.
  ModelConfig read(const json& config) {
    write_config(config);
    write_weights(safetensors_file("{}", {}));
    return open_hf_weights(directory())->config();
  }
  // Reading `config` must fail naming config.json and `problem`.
  void expect_config_error(const json& config, const std::string& problem) {
    write_config(config);
    write_weights(safetensors_file("{}", {}));
    EXPECT_THAT([&] { open_hf_weights(directory()); },
                ThrowsMessage<Error>(AllOf(HasSubstr(config_path()), HasSubstr(problem))));
  }

  TempDir dir_;
};

TEST_F(HfCheckpoint, ReadsLlamaConfig) {
  const ModelConfig config = read(llama_config());
  EXPECT_EQ(config.architecture, Architecture::Llama);
  EXPECT_EQ(config.hidden, 8);
  EXPECT_EQ(config.ffn_hidden, 16);
  EXPECT_EQ(config.heads, 2);
  EXPECT_EQ(config.kv_heads, 1);
  EXPECT_EQ(config.head_dim, 4);
  EXPECT_EQ(config.layers, 1);
  EXPECT_EQ(config.vocab, 10);
  EXPECT_EQ(config.max_context, 64);
  EXPECT_DOUBLE_EQ(config.rms_eps, 1e-5);
  EXPECT_DOUBLE_EQ(config.rope.theta, 500000.0);
  EXPECT_EQ(config.rope.scaling, RopeScaling::None);
  EXPECT_TRUE(config.tied_embeddings);
  EXPECT_FALSE(config.qkv_bias);
  EXPECT_FALSE(config.qk_norm);
}

TEST_F(HfCheckpoint, AppliesDefaults) {
  json config = llama_config();
  for (const char* key :
       {"num_key_value_heads", "rope_theta", "tie_word_embeddings", "rms_norm_eps"})
    config.erase(key);
  config["head_dim"] = nullptr;  // HF writes null for "derive it"
  const ModelConfig read_back = read(config);
  EXPECT_EQ(read_back.kv_heads, 2);
  EXPECT_EQ(read_back.head_dim, 4);
  EXPECT_DOUBLE_EQ(read_back.rope.theta, 10000.0);
  EXPECT_FALSE(read_back.tied_embeddings);
  EXPECT_DOUBLE_EQ(read_back.rms_eps, 1e-6);
}

TEST_F(HfCheckpoint, ModelTypeAloneNamesTheArchitecture) {
  json config = llama_config();
  config.erase("architectures");
  EXPECT_EQ(read(config).architecture, Architecture::Llama);
  config["model_type"] = "qwen3";
  EXPECT_EQ(read(config).architecture, Architecture::Qwen3);
}

TEST_F(HfCheckpoint, MistralIsLlamaWithinItsWindow) {
  json config = llama_config();
  config["architectures"] = {"MistralForCausalLM"};
  config["model_type"] = "mistral";
  config["sliding_window"] = 32;
  ModelConfig read_back = read(config);
  EXPECT_EQ(read_back.architecture, Architecture::Llama);
  EXPECT_EQ(read_back.max_context, 32);
  config["sliding_window"] = nullptr;  // Mistral v0.2+: no window
  EXPECT_EQ(read(config).max_context, 64);
}

TEST_F(HfCheckpoint, ReadsQwen2) {
  json config = llama_config();
  config["architectures"] = {"Qwen2ForCausalLM"};
  config["model_type"] = "qwen2";
  config["sliding_window"] = 16;
  config["use_sliding_window"] = false;
  const ModelConfig read_back = read(config);
  EXPECT_EQ(read_back.architecture, Architecture::Qwen2);
  EXPECT_TRUE(read_back.qkv_bias);
  EXPECT_FALSE(read_back.qk_norm);
  EXPECT_EQ(read_back.max_context, 64);  // the window is off
  config["use_sliding_window"] = true;
  EXPECT_EQ(read(config).max_context, 16);
}

TEST_F(HfCheckpoint, AttentionBiasIsHonoured) {
  json config = llama_config();
  config["attention_bias"] = true;
  EXPECT_TRUE(read(config).qkv_bias);
  config["architectures"] = {"Qwen2ForCausalLM"};
  config["attention_bias"] = false;
  EXPECT_FALSE(read(config).qkv_bias);
  config["attention_bias"] = "yes";
  expect_config_error(config, "'attention_bias' must be true or false");
}

TEST_F(HfCheckpoint, ReadsQwen3) {
  json config = llama_config();
  config["architectures"] = {"Qwen3ForCausalLM"};
  config["model_type"] = "qwen3";
  config["head_dim"] = 16;  // Qwen3 heads are wider than hidden / heads
  config["attention_bias"] = false;
  const ModelConfig read_back = read(config);
  EXPECT_EQ(read_back.architecture, Architecture::Qwen3);
  EXPECT_TRUE(read_back.qk_norm);
  EXPECT_FALSE(read_back.qkv_bias);
  EXPECT_EQ(read_back.head_dim, 16);
}

TEST_F(HfCheckpoint, ReadsLinearRopeScaling) {
  json config = llama_config();
  config["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  const RopeConfig rope = read(config).rope;
  EXPECT_EQ(rope.scaling, RopeScaling::Linear);
  EXPECT_DOUBLE_EQ(rope.factor, 4.0);
}

TEST_F(HfCheckpoint, ReadsLlama3RopeScaling) {
  json config = llama_config();
  config["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  const RopeConfig rope = read(config).rope;
  EXPECT_EQ(rope.scaling, RopeScaling::Llama3);
  EXPECT_DOUBLE_EQ(rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(rope.high_freq_factor, 4.0);
  EXPECT_EQ(rope.original_context, 8192);

  config["rope_scaling"].erase("low_freq_factor");
  expect_config_error(config, "missing 'rope_scaling.low_freq_factor'");
  config["rope_scaling"]["low_freq_factor"] = "one";
  expect_config_error(config, "'rope_scaling.low_freq_factor' must be a number");
  config["rope_scaling"]["low_freq_factor"] = 8.0;  // not below high_freq_factor: validate()
  expect_config_error(config, "high_freq_factor");
}

TEST_F(HfCheckpoint, ReadsYarnRopeScaling) {
  json config = llama_config();
  config["rope_scaling"] = {
      {"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 16}};
  RopeConfig rope = read(config).rope;
  EXPECT_EQ(rope.scaling, RopeScaling::Yarn);
  EXPECT_DOUBLE_EQ(rope.factor, 4.0);
  EXPECT_EQ(rope.original_context, 16);
  EXPECT_DOUBLE_EQ(rope.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(rope.beta_slow, 1.0);
  EXPECT_DOUBLE_EQ(rope.attention_factor, 0.0);

  config["rope_scaling"] = {{"rope_type", "yarn"},
                            {"factor", 2},
                            {"beta_fast", 16},
                            {"beta_slow", 2},
                            {"attention_factor", 1.5}};
  rope = read(config).rope;
  EXPECT_DOUBLE_EQ(rope.factor, 2.0);
  EXPECT_EQ(rope.original_context, 64);  // defaults to max_position_embeddings
  EXPECT_DOUBLE_EQ(rope.beta_fast, 16.0);
  EXPECT_DOUBLE_EQ(rope.beta_slow, 2.0);
  EXPECT_DOUBLE_EQ(rope.attention_factor, 1.5);
}

TEST_F(HfCheckpoint, DefaultOrNullRopeScalingIsNone) {
  json config = llama_config();
  config["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(read(config).rope.scaling, RopeScaling::None);
  config["rope_scaling"] = nullptr;
  EXPECT_EQ(read(config).rope.scaling, RopeScaling::None);
}

// transformers 5 writes theta and the scaling as one "rope_parameters" object.
TEST_F(HfCheckpoint, ReadsTransformers5RopeParameters) {
  json config = llama_config();
  config.erase("rope_theta");
  config["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  RopeConfig rope = read(config).rope;
  EXPECT_DOUBLE_EQ(rope.theta, 500000.0);
  EXPECT_EQ(rope.scaling, RopeScaling::None);
  config["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 1e6}};
  rope = read(config).rope;
  EXPECT_DOUBLE_EQ(rope.theta, 1e6);
  EXPECT_EQ(rope.scaling, RopeScaling::Linear);
  EXPECT_DOUBLE_EQ(rope.factor, 2.0);
  config["rope_parameters"] = {{"rope_type", "dynamic"}, {"rope_theta", 1e6}};
  expect_config_error(config, "unsupported rope_parameters type 'dynamic'");
}

TEST_F(HfCheckpoint, RejectsUnsupportedRopeScaling) {
  json config = llama_config();
  config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  expect_config_error(config, "unsupported rope_scaling type 'dynamic'");
  config["rope_scaling"] = {{"factor", 2.0}};
  expect_config_error(config, "neither 'rope_type' nor 'type'");
  config["rope_scaling"] = "linear";
  expect_config_error(config, "'rope_scaling' must be an object");
}

TEST_F(HfCheckpoint, RejectsUnsupportedArchitecture) {
  json config = llama_config();
  config["architectures"] = {"GPT2LMHeadModel"};
  expect_config_error(config, "unsupported architecture 'GPT2LMHeadModel'");
  config.erase("architectures");
  config["model_type"] = "gpt2";
  expect_config_error(config, "unsupported model_type 'gpt2'");
  config.erase("model_type");
  expect_config_error(config, "neither 'architectures' nor 'model_type'");
  config["architectures"] = json::array();
  expect_config_error(config, "'architectures' must be a non-empty array");
}

TEST_F(HfCheckpoint, RejectsBadConfigValues) {
  json config = llama_config();
  config.erase("vocab_size");
  expect_config_error(config, "missing 'vocab_size'");
  config = llama_config();
  config["hidden_size"] = "8";
  expect_config_error(config, "'hidden_size' must be an integer, found \"8\"");
  config["hidden_size"] = 8.5;
  expect_config_error(config, "'hidden_size' must be an integer");
  config["hidden_size"] = json::array({json::array({8})});
  expect_config_error(config, "'hidden_size' must be an integer, found an array");
  config = llama_config();
  config["num_attention_heads"] = 3;  // 3 heads over 1 key/value head is fine, but head_dim 8/3=2
  config["num_key_value_heads"] = 2;  // ... and 3 is not a multiple of 2
  expect_config_error(config, "not a multiple");
  config = llama_config();
  config["quantization_config"] = {{"quant_method", "gptq"}};
  expect_config_error(config, "quantization_config");
}

TEST_F(HfCheckpoint, RejectsBrokenConfigJson) {
  write_file(config_path(), std::string("{\"hidden_size\": "));
  write_weights(safetensors_file("{}", {}));
  EXPECT_THAT([&] { open_hf_weights(directory()); },
              ThrowsMessage<Error>(AllOf(HasSubstr(config_path()), HasSubstr("not valid JSON"))));
  write_file(config_path(), std::string("[1]"));
  EXPECT_THAT(
      [&] { open_hf_weights(directory()); },
      ThrowsMessage<Error>(AllOf(HasSubstr(config_path()), HasSubstr("expected a JSON object"))));
}

TEST_F(HfCheckpoint, MissingFilesNameTheDirectory) {
  EXPECT_THAT([&] { open_hf_weights(directory()); },
              ThrowsMessage<Error>(AllOf(HasSubstr(directory()), HasSubstr("no config.json"))));
  write_config(llama_config());
  EXPECT_THAT([&] { open_hf_weights(directory()); },
              ThrowsMessage<Error>(
                  AllOf(HasSubstr(directory()),
                        HasSubstr("no model.safetensors or model.safetensors.index.json"))));
  const std::string missing = dir_ / "absent";
  EXPECT_THAT([&] { open_hf_weights(missing); },
              ThrowsMessage<Error>(AllOf(HasSubstr(missing), HasSubstr("not a directory"))));
}

TEST_F(HfCheckpoint, LoadsTensorsFromOneFile) {
  write_config(llama_config());
  const std::vector<uint16_t> norm = {0x3F80, 0x4000, 0xBF80, 0x0000,
                                      0x3F00, 0x4040, 0x4080, 0x40A0};
  const std::vector<uint16_t> embed(10 * 8, 0x3C00);  // 1.0 in half
  write_weights(safetensors_file({{"model.norm.weight", "BF16", {8}, bytes_of(norm)},
                                  {"model.embed_tokens.weight", "F16", {10, 8}, bytes_of(embed)}}));
  const auto weights = open_hf_weights(directory());
  EXPECT_EQ(weights->path(), directory());
  EXPECT_EQ(weights->tokenizer_path(), directory());
  EXPECT_TRUE(weights->has("model.norm.weight"));
  EXPECT_FALSE(weights->has("lm_head.weight"));

  const HostTensor loaded = weights->load("model.norm.weight", {8});
  EXPECT_EQ(loaded.shape, (std::vector<int64_t>{8}));
  EXPECT_EQ(loaded.data, (std::vector<float>{1, 2, -1, 0, 0.5f, 3, 4, 5}));
  const HostTensor embedding = weights->load("model.embed_tokens.weight", {10, 8});
  EXPECT_EQ(embedding.rows(), 10);
  EXPECT_EQ(embedding.cols(), 8);
  EXPECT_EQ(embedding.data, std::vector<float>(80, 1.0f));

  const std::string file = dir_ / "model.safetensors";
  EXPECT_THAT(
      [&] {
        weights->load("model.embed_tokens.weight", {8, 10});
      },
      ThrowsMessage<Error>(HasSubstr(
          file + ": tensor 'model.embed_tokens.weight' has shape [10, 8], expected [8, 10]")));
  EXPECT_THAT(
      [&] {
        weights->load("model.norm.weight", {8, 1});
      },
      ThrowsMessage<Error>(HasSubstr("has shape [8], expected [8, 1]")));
  EXPECT_THAT(
      [&] {
        weights->load("lm_head.weight", {10, 8});
      },
      ThrowsMessage<Error>(
          AllOf(HasSubstr(directory()), HasSubstr("missing tensor 'lm_head.weight'"))));
}

TEST_F(HfCheckpoint, OpenWeightsDispatchesOnDirectories) {
  write_config(llama_config());
  write_weights(safetensors_file("{}", {}));
  EXPECT_EQ(open_weights(directory())->config().hidden, 8);
}

TEST_F(HfCheckpoint, LoadsShardsLazily) {
  write_config(llama_config());
  const std::vector<float> first = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<float> second = {-1, -2, -3, -4, -5, -6, -7, -8};
  write_weights(safetensors_file({{"model.norm.weight", "F32", {8}, bytes_of(first)}}),
                "model-00001-of-00003.safetensors");
  write_weights(
      safetensors_file({{"model.layers.0.input_layernorm.weight", "F32", {8}, bytes_of(second)}}),
      "model-00002-of-00003.safetensors");
  // The third shard is never written: it must not be opened until one of its tensors is loaded.
  const json index = {
      {"metadata", {{"total_size", 64}}},
      {"weight_map",
       {{"model.norm.weight", "model-00001-of-00003.safetensors"},
        {"model.layers.0.input_layernorm.weight", "model-00002-of-00003.safetensors"},
        {"model.layers.0.post_attention_layernorm.weight", "model-00001-of-00003.safetensors"},
        {"lm_head.weight", "model-00003-of-00003.safetensors"}}}};
  write_file(dir_ / "model.safetensors.index.json", index.dump());

  const auto weights = open_hf_weights(directory());
  EXPECT_TRUE(weights->has("lm_head.weight"));
  EXPECT_FALSE(weights->has("model.embed_tokens.weight"));
  EXPECT_EQ(weights->load("model.norm.weight", {8}).data, first);
  EXPECT_EQ(weights->load("model.layers.0.input_layernorm.weight", {8}).data, second);
  EXPECT_EQ(weights->load("model.norm.weight", {8}).data, first);  // shard already open
  EXPECT_THAT(
      [&] { weights->load("model.layers.0.post_attention_layernorm.weight", {8}); },
      ThrowsMessage<Error>(AllOf(HasSubstr("model-00001-of-00003.safetensors"),
                                 HasSubstr("'model.layers.0.post_attention_layernorm.weight' is "
                                           "listed in model.safetensors.index.json but absent"))));
  const std::string third = dir_ / "model-00003-of-00003.safetensors";
  EXPECT_THAT(
      [&] {
        weights->load("lm_head.weight", {10, 8});
      },
      ThrowsMessage<Error>(AllOf(HasSubstr(third), HasSubstr("cannot open"))));
}

TEST_F(HfCheckpoint, RejectsBadIndex) {
  write_config(llama_config());
  const std::string index_path = dir_ / "model.safetensors.index.json";
  auto expect_index_error = [&](const std::string& text, const std::string& problem) {
    write_file(index_path, text);
    EXPECT_THAT([&] { open_hf_weights(directory()); },
                ThrowsMessage<Error>(AllOf(HasSubstr(index_path), HasSubstr(problem))));
  };
  expect_index_error("{", "not valid JSON");
  expect_index_error("[]", "'weight_map' object");
  expect_index_error(R"({"metadata": {}})", "'weight_map' object");
  expect_index_error(R"({"weight_map": {}})", "lists no tensors");
  expect_index_error(R"({"weight_map": {"a": 3}})", "weight_map entry 'a' is not a string");
  expect_index_error(R"({"weight_map": {"a": "../elsewhere.safetensors"}})",
                     "names the file '../elsewhere.safetensors'");
  expect_index_error(R"({"weight_map": {"a": "/etc/passwd"}})",
                     "expected a file name in the same directory");
  expect_index_error(R"({"weight_map": {"a": ".."}})",
                     "expected a file name in the same directory");
}

TEST_F(HfCheckpoint, RejectsAttentionOutputBias) {
  write_config(llama_config());
  write_weights(safetensors_file({{"model.layers.0.self_attn.o_proj.bias",
                                   "F32",
                                   {8},
                                   bytes_of(std::vector<float>(8, 0.0f))}}));
  EXPECT_THAT([&] { open_hf_weights(directory()); },
              ThrowsMessage<Error>(AllOf(HasSubstr(directory()), HasSubstr("o_proj.bias"))));
}

TEST_F(HfCheckpoint, BadSafetensorsNamesTheFile) {
  write_config(llama_config());
  write_weights(Bytes{1, 2, 3});
  EXPECT_THAT(
      [&] { open_hf_weights(directory()); },
      ThrowsMessage<Error>(AllOf(HasSubstr(dir_ / "model.safetensors"), HasSubstr("too short"))));
}

}  // namespace
}  // namespace hogwild
