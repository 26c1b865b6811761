// Weights from a GGUF file (llama.cpp's format): config from `{arch}.*` metadata, tensors
// dequantized to fp32 and renamed to Hugging Face names.
#include <memory>
#include <regex>

#include "common/error.h"
#include "model/gguf.h"
#include "model/model.h"

namespace hogwild {
namespace {

// GGUF name -> HF name. Per-layer names share the "blk.N." prefix.
std::string hf_name_to_gguf(const std::string& hf) {
  static const std::pair<const char*, const char*> kGlobal[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  for (const auto& [from, to] : kGlobal)
    if (hf == from) return to;
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  static const std::regex kLayerName(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch match;
  if (std::regex_match(hf, match, kLayerName)) {
    for (const auto& [from, to] : kLayer)
      if (match[2] == from) return cat("blk.", match[1].str(), ".", to);
  }
  return "";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += cat(i ? ", " : "", shape[i]);
  return text + "]";
}

class GgufWeights final : public WeightSource {
 public:
  explicit GgufWeights(const std::string& path) : file_(GgufFile::open(path)), path_(path) {
    read_config();
  }

  const ModelConfig& config() const override { return config_; }
  const std::string& path() const override { return path_; }
  std::string tokenizer_path() const override { return path_; }

  bool has(const std::string& name) const override {
    const std::string gguf = hf_name_to_gguf(name);
    return !gguf.empty() && file_.find_tensor(gguf) != nullptr;
  }

  HostTensor load(const std::string& name,
                  const std::vector<int64_t>& expected_shape) const override {
    const std::string gguf = hf_name_to_gguf(name);
    const GgufTensor* tensor = gguf.empty() ? nullptr : file_.find_tensor(gguf);
    if (tensor == nullptr) fail(path_, ": missing tensor '", gguf.empty() ? name : gguf, "'");
    HostTensor result;
    result.shape.assign(tensor->shape.rbegin(),
                        tensor->shape.rend());  // GGUF lists innermost first
    if (result.shape != expected_shape)
      fail(path_, ": tensor '", gguf, "' has shape ", shape_text(result.shape), ", expected ",
           shape_text(expected_shape));
    result.data.resize(static_cast<size_t>(tensor->element_count()));
    try {
      dequantize(tensor->type, tensor->data, result.data.data(), tensor->element_count());
    } catch (const Error& e) {
      fail(path_, ": tensor '", gguf, "': ", e.what());
    }
    if (permuted_) {
      if (gguf.ends_with("attn_q.weight") || gguf.ends_with("attn_q.bias"))
        unpermute_rows(result, config_.heads);
      else if (gguf.ends_with("attn_k.weight") || gguf.ends_with("attn_k.bias"))
        unpermute_rows(result, config_.kv_heads);
    }
    return result;
  }

  // A tensor-parallel shard: only rows [first, first + count) are dequantized (GGUF rows are
  // contiguous runs of whole quantization blocks).
  HostTensor load_rows(const std::string& name, const std::vector<int64_t>& expected_shape,
                       int64_t first, int64_t count) const override {
    const std::string gguf = hf_name_to_gguf(name);
    const GgufTensor* tensor = gguf.empty() ? nullptr : file_.find_tensor(gguf);
    if (tensor == nullptr || tensor->shape.size() != 2)
      return WeightSource::load_rows(name, expected_shape, first, count);
    HostTensor result;
    result.shape.assign(tensor->shape.rbegin(), tensor->shape.rend());
    if (result.shape != expected_shape)
      fail(path_, ": tensor '", gguf, "' has shape ", shape_text(result.shape), ", expected ",
           shape_text(expected_shape));
    HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= result.shape[0]);
    const int64_t cols = result.shape[1];
    const uint64_t row_bytes = ggml_row_bytes(tensor->type, cols);
    result.shape[0] = count;
    result.data.resize(static_cast<size_t>(count * cols));
    try {
      dequantize(tensor->type, tensor->data + static_cast<uint64_t>(first) * row_bytes,
                 result.data.data(), count * cols);
    } catch (const Error& e) {
      fail(path_, ": tensor '", gguf, "': ", e.what());
    }
    // Shards hold whole heads, and the permutation stays inside each head.
    if (permuted_ && (gguf.ends_with("attn_q.weight") || gguf.ends_with("attn_k.weight")))
      unpermute_rows(result, count / config_.head_dim);
    return result;
  }

 private:
  void read_config() {
    const std::string arch = file_.get_string("general.architecture");
    ModelConfig& c = config_;
    if (arch == "llama") {
      c.architecture = Architecture::Llama;
      // llama.cpp's converter permutes Q/K rows of llama models so that RoPE rotates adjacent
      // pairs; we undo it to use rotate-half like the HF checkpoints (docs/design.md §3).
      permuted_ = true;
    } else if (arch == "qwen2") {
      c.architecture = Architecture::Qwen2;
      c.qkv_bias = true;
    } else if (arch == "qwen3") {
      c.architecture = Architecture::Qwen3;
      c.qk_norm = true;
    } else {
      fail(path_, ": unsupported architecture '", arch, "' (supported: llama, qwen2, qwen3)");
    }
    const std::string p = arch + ".";
    c.layers = file_.get_int(p + "block_count");
    c.hidden = file_.get_int(p + "embedding_length");
    c.ffn_hidden = file_.get_int(p + "feed_forward_length");
    c.heads = file_.get_int(p + "attention.head_count");
    c.kv_heads = file_.get_int_or(p + "attention.head_count_kv", c.heads);
    c.head_dim = file_.get_int_or(p + "attention.key_length", c.heads > 0 ? c.hidden / c.heads : 0);
    c.max_context = file_.get_int_or(p + "context_length", 4096);
    c.rms_eps = file_.get_float(p + "attention.layer_norm_rms_epsilon");
    c.rope.theta = file_.get_float_or(p + "rope.freq_base", 10000.0);
    const int64_t rotary_dim = file_.get_int_or(p + "rope.dimension_count", c.head_dim);
    if (rotary_dim != c.head_dim)
      fail(path_, ": partial rotary embeddings (", rotary_dim, " of ", c.head_dim,
           " dimensions) are not supported");
    const std::string scaling = file_.get_string_or(p + "rope.scaling.type", "none");
    if (scaling == "linear") {
      c.rope.scaling = RopeScaling::Linear;
      c.rope.factor = file_.get_float(p + "rope.scaling.factor");
    } else if (scaling == "yarn") {
      c.rope.scaling = RopeScaling::Yarn;
      c.rope.factor = file_.get_float(p + "rope.scaling.factor");
      c.rope.original_context = file_.get_int(p + "rope.scaling.original_context_length");
      c.rope.attention_factor = file_.get_float_or(p + "rope.scaling.attn_factor", 0.0);
    } else if (scaling != "none") {
      fail(path_, ": unsupported rope scaling '", scaling, "'");
    }
    if (const GgufTensor* factors = file_.find_tensor("rope_freqs.weight")) {
      if (factors->type != GgmlType::F32) fail(path_, ": tensor 'rope_freqs.weight' must be F32");
      c.rope.frequency_factors.resize(static_cast<size_t>(factors->element_count()));
      dequantize(factors->type, factors->data, c.rope.frequency_factors.data(),
                 factors->element_count());
    }
    const GgufTensor& embedding = file_.tensor("token_embd.weight");
    if (embedding.shape.size() != 2)
      fail(path_, ": tensor 'token_embd.weight' must have 2 dimensions");
    c.vocab = embedding.shape[1];
    c.tied_embeddings = file_.find_tensor("output.weight") == nullptr;
    c.validate(path_);
  }

  // GGUF row 2i+j of a head holds HF row j*(head_dim/2)+i (j in {0,1}).
  void unpermute_rows(HostTensor& tensor, int64_t heads) const {
    const int64_t cols = tensor.cols();
    const int64_t rows_per_head = tensor.rows() / heads;
    const int64_t half = rows_per_head / 2;
    std::vector<float> original(tensor.data);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i)
        for (int64_t j = 0; j < 2; ++j) {
          const float* from = original.data() + (h * rows_per_head + 2 * i + j) * cols;
          float* to = tensor.data.data() + (h * rows_per_head + j * half + i) * cols;
          std::copy(from, from + cols, to);
        }
  }

  GgufFile file_;
  std::string path_;
  ModelConfig config_;
  bool permuted_ = false;
};

}  // namespace

std::unique_ptr<WeightSource> open_gguf_weights(const std::string& path) {
  return std::make_unique<GgufWeights>(path);
}

}  // namespace hogwild
