// A model is a configuration plus a source of weights. Weights are loaded one tensor at a time by
// their Hugging Face name ("model.layers.3.self_attn.q_proj.weight"), as fp32, in HF layout
// ([out_features, in_features] row-major), whatever the file format and quantization: the GGUF
// reader maps GGUF names to HF names and undoes the Q/K row permutation llama.cpp applies, so the
// engine uses one RoPE convention (NeoX rotate-half) for every model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/quant.h"

namespace hogwild {

enum class Architecture { Llama, Qwen2, Qwen3 };
const char* architecture_name(Architecture architecture);

enum class RopeScaling { None, Linear, Llama3, Yarn };

struct RopeConfig {
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::None;
  double factor = 1.0;
  // Llama-3 scaling
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_context = 8192;
  // YaRN
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double attention_factor = 0.0;  // 0: YaRN's default 0.1 * ln(factor) + 1
  // Per-frequency divisors stored by some GGUF files (tensor rope_freqs.weight) instead of the
  // Llama-3 parameters; empty when absent.
  std::vector<float> frequency_factors;
};

// What a file format calls each ModelConfig field, so that an error names the key to fix
// ("llama.attention.head_count", "num_attention_heads"). The defaults describe the field.
struct ConfigKeys {
  std::string layers = "number of layers";
  std::string hidden = "hidden size";
  std::string heads = "number of attention heads";
  std::string kv_heads = "number of key/value heads";
  std::string head_dim = "head dimension";
  std::string ffn_hidden = "feed-forward size";
  std::string vocab = "vocabulary size";
  std::string max_context = "context length";
  std::string rms_eps = "rms_norm_eps";
  std::string rope_theta = "rope theta";
  std::string rope_factor = "rope scaling factor";
  std::string low_freq_factor = "low_freq_factor";
  std::string high_freq_factor = "high_freq_factor";
  std::string original_context = "original_max_position_embeddings";
  std::string beta_fast = "beta_fast";
  std::string beta_slow = "beta_slow";
  std::string attention_factor = "attention_factor";
};

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  int64_t layers = 0;
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_hidden = 0;
  int64_t vocab = 0;
  int64_t max_context = 0;
  double rms_eps = 1e-6;
  RopeConfig rope;
  bool tied_embeddings = false;
  bool qkv_bias = false;  // Qwen2
  bool qk_norm = false;   // Qwen3: RMSNorm over each head of q and k before RoPE

  // Throws hogwild::Error naming `source` and the key (as `keys` spells it) if a number is out of
  // range or contradicts another: counts must be positive, head counts divide, RoPE parameters
  // finite and positive.
  void validate(const std::string& source, const ConfigKeys& keys = {}) const;
};

struct HostTensor {
  std::vector<int64_t> shape;  // outermost first (HF/PyTorch order)
  std::vector<float> data;
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
};

// A 2-D weight as the file stores it (`weights: native`): `shape` in HF order, `bytes` holding
// shape[0] rows of ggml_row_bytes(type, shape[1]) bytes each, already in HF row order.
struct StoredTensor {
  std::vector<int64_t> shape;
  GgmlType type = GgmlType::F32;
  std::vector<uint8_t> bytes;
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
  size_t row_bytes() const {
    const int64_t count = rows();
    return count <= 0 ? 0 : bytes.size() / static_cast<size_t>(count);
  }
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const ModelConfig& config() const = 0;
  virtual const std::string& path() const = 0;
  virtual bool has(const std::string& name) const = 0;
  // Loads a tensor by HF name, checking it has `expected_shape`; throws naming file and tensor.
  virtual HostTensor load(const std::string& name,
                          const std::vector<int64_t>& expected_shape) const = 0;
  // Rows [first, first + count) only (a tensor-parallel shard), after checking the full shape.
  // Readers override it to convert only those rows; the default loads all and slices.
  virtual HostTensor load_rows(const std::string& name, const std::vector<int64_t>& expected_shape,
                               int64_t first, int64_t count) const;
  // The format a weight is stored in, when this source can hand it over as stored
  // (load_stored_rows); nullopt when it cannot or the tensor is missing.
  virtual std::optional<GgmlType> stored_type(const std::string& name) const;
  // Rows [first, first + count) of a 2-D weight in its stored format, checked like load() (shape,
  // NaN and infinity); nullopt when this source keeps no compact format (the caller loads fp32).
  virtual std::optional<StoredTensor> load_stored_rows(const std::string& name,
                                                       const std::vector<int64_t>& expected_shape,
                                                       int64_t first, int64_t count) const;
  // Tokenizer location: a GGUF file (embedded vocabulary) or a HF directory.
  virtual std::string tokenizer_path() const = 0;
};

// Opens a GGUF file or a Hugging Face checkpoint directory (config.json + safetensors).
std::unique_ptr<WeightSource> open_weights(const std::string& path);
std::unique_ptr<WeightSource> open_gguf_weights(const std::string& path);
std::unique_ptr<WeightSource> open_hf_weights(const std::string& directory);

// The index of the first NaN or infinity among `count` values, or `count` when all are finite.
// The readers run it on every tensor they load (a bit test, immune to -ffast-math).
size_t first_non_finite(const float* values, size_t count);

// Standard HF tensor names.
std::string layer_tensor(int64_t layer, const std::string& suffix);  // "model.layers.{l}.{suffix}"

}  // namespace hogwild
