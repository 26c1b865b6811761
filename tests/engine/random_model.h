// A tiny random model held in memory (no file, no Python): a WeightSource whose every tensor is
// drawn from a generator seeded by the tensor's name, so two sources with the same config and
// seed hold the same weights. For tests of the forward's plumbing (padding, graphs, uploads).
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/model.h"

namespace hogwild::testing {

inline ModelConfig tiny_random_config(Architecture architecture = Architecture::Llama) {
  ModelConfig c;
  c.architecture = architecture;
  c.layers = 2;
  c.hidden = 64;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 64;  // the CUDA block_attention's smallest head dim
  c.ffn_hidden = 96;
  c.vocab = 101;
  c.max_context = 512;
  c.rms_eps = 1e-5;
  c.qkv_bias = architecture == Architecture::Qwen2;
  c.qk_norm = architecture == Architecture::Qwen3;
  return c;
}

class RandomWeights final : public WeightSource {
 public:
  explicit RandomWeights(const ModelConfig& config, uint32_t seed = 1)
      : config_(config), seed_(seed) {}
  const ModelConfig& config() const override { return config_; }
  const std::string& path() const override { return path_; }
  bool has(const std::string&) const override { return true; }
  std::string tokenizer_path() const override { return path_; }

  HostTensor load(const std::string& name,
                  const std::vector<int64_t>& expected_shape) const override {
    HostTensor t;
    t.shape = expected_shape;
    size_t count = 1;
    for (int64_t d : expected_shape) count *= static_cast<size_t>(d);
    std::mt19937 generator(seed_ ^ static_cast<uint32_t>(std::hash<std::string>{}(name)));
    // Norm weights near 1, the rest small (activations stay in range over the layers).
    const bool norm = name.find("norm") != std::string::npos;
    std::normal_distribution<float> normal(norm ? 1.0f : 0.0f, norm ? 0.1f : 0.15f);
    t.data.resize(count);
    for (float& value : t.data) value = normal(generator);
    return t;
  }

 private:
  ModelConfig config_;
  uint32_t seed_;
  std::string path_ = "random-tiny-model";
};

}  // namespace hogwild::testing
