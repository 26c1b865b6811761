// Weights from a GGUF file (llama.cpp's format): config from `{arch}.*` metadata, tensors
// dequantized to fp32 and renamed to Hugging Face names.
#include <algorithm>
#include <cmath>
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
    const GgufTensor& tensor = checked_tensor(name, gguf, expected_shape);
    HostTensor result;
    result.shape = expected_shape;
    result.data.resize(static_cast<size_t>(tensor.element_count()));
    // Before unpermuting: element numbers in messages are the file's.
    dequantize_checked(tensor, gguf, 0, tensor.element_count(), result.data.data());
    if (permuted_ && is_permuted(gguf))
      unpermute_rows(reinterpret_cast<uint8_t*>(result.data.data()), result.rows(),
                     static_cast<size_t>(result.cols()) * sizeof(float), heads_in(result.rows()));
    return result;
  }

  // A tensor-parallel shard: only rows [first, first + count) are dequantized (GGUF rows are
  // contiguous runs of whole quantization blocks).
  HostTensor load_rows(const std::string& name, const std::vector<int64_t>& expected_shape,
                       int64_t first, int64_t count) const override {
    const std::string gguf = hf_name_to_gguf(name);
    const GgufTensor& tensor = checked_tensor(name, gguf, expected_shape);
    if (tensor.shape.size() != 2)
      return WeightSource::load_rows(name, expected_shape, first, count);
    HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= expected_shape[0]);
    HostTensor result;
    result.shape = {count, expected_shape[1]};
    const int64_t cols = result.cols();
    result.data.resize(static_cast<size_t>(count * cols));
    dequantize_checked(tensor, gguf, first * cols, count * cols, result.data.data());
    if (permuted_ && is_permuted(gguf))
      unpermute_rows(reinterpret_cast<uint8_t*>(result.data.data()), count,
                     static_cast<size_t>(cols) * sizeof(float), heads_in(result.rows()));
    return result;
  }

  std::optional<GgmlType> stored_type(const std::string& name) const override {
    const std::string gguf = hf_name_to_gguf(name);
    const GgufTensor* tensor = gguf.empty() ? nullptr : file_.find_tensor(gguf);
    if (tensor == nullptr || tensor->shape.size() != 2) return std::nullopt;
    return tensor->type;
  }

  // The same rows as stored: block bytes copied as they are, checked for NaN and infinity by
  // dequantizing them once into a scratch chunk.
  std::optional<StoredTensor> load_stored_rows(const std::string& name,
                                               const std::vector<int64_t>& expected_shape,
                                               int64_t first, int64_t count) const override {
    const std::string gguf = hf_name_to_gguf(name);
    const GgufTensor& tensor = checked_tensor(name, gguf, expected_shape);
    if (tensor.shape.size() != 2) return std::nullopt;
    HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= expected_shape[0]);
    const int64_t cols = expected_shape[1];
    uint64_t row_bytes = 0;
    try {
      row_bytes = ggml_row_bytes(tensor.type, cols);
    } catch (const Error& e) {
      fail(path_, ": tensor '", gguf, "': ", e.what());
    }
    StoredTensor result;
    result.shape = {count, cols};
    result.type = tensor.type;
    const uint8_t* begin = tensor.data + static_cast<uint64_t>(first) * row_bytes;
    result.bytes.assign(begin, begin + static_cast<uint64_t>(count) * row_bytes);
    std::vector<float> scratch(static_cast<size_t>(std::min<int64_t>(kCheckChunk, count * cols)));
    for (int64_t done = 0; done < count * cols; done += kCheckChunk) {
      const int64_t size = std::min(kCheckChunk, count * cols - done);
      dequantize_checked(tensor, gguf, first * cols + done, size, scratch.data());
    }
    if (permuted_ && is_permuted(gguf))
      unpermute_rows(result.bytes.data(), count, row_bytes, heads_in(count));
    return result;
  }

 private:
  // A multiple of every block size (1, 32, 256 elements).
  static constexpr int64_t kCheckChunk = int64_t{1} << 14;

  // The tensor for HF name `name` (GGUF name `gguf`), which must have `expected_shape`.
  const GgufTensor& checked_tensor(const std::string& name, const std::string& gguf,
                                   const std::vector<int64_t>& expected_shape) const {
    const GgufTensor* tensor = gguf.empty() ? nullptr : file_.find_tensor(gguf);
    if (tensor == nullptr) fail(path_, ": missing tensor '", gguf.empty() ? name : gguf, "'");
    // GGUF lists innermost first.
    const std::vector<int64_t> shape(tensor->shape.rbegin(), tensor->shape.rend());
    if (shape != expected_shape)
      fail(path_, ": tensor '", gguf, "' has shape ", shape_text(shape), ", expected ",
           shape_text(expected_shape));
    return *tensor;
  }

  static bool is_permuted(const std::string& gguf) {
    return gguf.ends_with("attn_q.weight") || gguf.ends_with("attn_q.bias") ||
           gguf.ends_with("attn_k.weight") || gguf.ends_with("attn_k.bias");
  }
  // Heads in `rows` rows of a Q or K tensor (shards hold whole heads; the permutation stays
  // inside each head). A bias has one row per output: head_dim rows per head likewise.
  int64_t heads_in(int64_t rows) const { return rows / config_.head_dim; }

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
    ConfigKeys keys;
    keys.layers = p + "block_count";
    keys.hidden = p + "embedding_length";
    keys.ffn_hidden = p + "feed_forward_length";
    keys.heads = p + "attention.head_count";
    keys.kv_heads = p + "attention.head_count_kv";
    keys.head_dim = p + "attention.key_length";
    keys.vocab = "token_embd.weight rows";
    keys.max_context = p + "context_length";
    keys.rms_eps = p + "attention.layer_norm_rms_epsilon";
    keys.rope_theta = p + "rope.freq_base";
    keys.rope_factor = p + "rope.scaling.factor";
    keys.original_context = p + "rope.scaling.original_context_length";
    keys.attention_factor = p + "rope.scaling.attn_factor";
    c.layers = file_.get_int(keys.layers);
    c.hidden = file_.get_int(keys.hidden);
    c.ffn_hidden = file_.get_int(keys.ffn_hidden);
    c.heads = file_.get_int(keys.heads);
    c.kv_heads = file_.get_int_or(keys.kv_heads, c.heads);
    if (file_.has(keys.head_dim)) {
      c.head_dim = file_.get_int(keys.head_dim);
    } else if (c.heads > 0) {
      if (c.hidden % c.heads != 0)
        fail(path_, ": ", keys.hidden, " (", c.hidden, ") is not a multiple of ", keys.heads, " (",
             c.heads, "), and no ", keys.head_dim, " gives the head dimension");
      c.head_dim = c.hidden / c.heads;
    }
    c.max_context = file_.get_int_or(keys.max_context, 4096);
    c.rms_eps = file_.get_float(keys.rms_eps);
    c.rope.theta = file_.get_float_or(keys.rope_theta, 10000.0);
    const int64_t rotary_dim = file_.get_int_or(p + "rope.dimension_count", c.head_dim);
    if (rotary_dim != c.head_dim)
      fail(path_, ": partial rotary embeddings (", rotary_dim, " of ", c.head_dim,
           " dimensions) are not supported");
    const std::string scaling = file_.get_string_or(p + "rope.scaling.type", "none");
    if (scaling == "linear") {
      c.rope.scaling = RopeScaling::Linear;
      c.rope.factor = file_.get_float(keys.rope_factor);
    } else if (scaling == "yarn") {
      c.rope.scaling = RopeScaling::Yarn;
      c.rope.factor = file_.get_float(keys.rope_factor);
      c.rope.original_context = file_.get_int(keys.original_context);
      c.rope.attention_factor = file_.get_float_or(keys.attention_factor, 0.0);
    } else if (scaling != "none") {
      fail(path_, ": unsupported rope scaling '", scaling, "'");
    }
    if (const GgufTensor* factors = file_.find_tensor("rope_freqs.weight")) {
      if (factors->type != GgmlType::F32) fail(path_, ": tensor 'rope_freqs.weight' must be F32");
      c.rope.frequency_factors.resize(static_cast<size_t>(factors->element_count()));
      dequantize_checked(*factors, "rope_freqs.weight", 0, factors->element_count(),
                         c.rope.frequency_factors.data());
    }
    const GgufTensor& embedding = file_.tensor("token_embd.weight");
    if (embedding.shape.size() != 2)
      fail(path_, ": tensor 'token_embd.weight' must have 2 dimensions");
    c.vocab = embedding.shape[1];
    c.tied_embeddings = file_.find_tensor("output.weight") == nullptr;
    c.validate(path_, keys);
    check_metadata_against_tensors(p, embedding);
  }

  // Metadata that contradicts the tensors present is refused at open, naming the key: a lower
  // block_count would silently drop layers, a larger one fail only when the weights load.
  void check_metadata_against_tensors(const std::string& p, const GgufTensor& embedding) const {
    int64_t layers_present = 0;
    std::string highest;
    for (const GgufTensor& tensor : file_.tensors()) {
      if (!tensor.name.starts_with("blk.")) continue;
      const size_t dot = tensor.name.find('.', 4);
      const std::string number = tensor.name.substr(4, dot == std::string::npos ? dot : dot - 4);
      int64_t layer = 0;
      bool digits = !number.empty() && number.size() <= 9;
      for (char ch : number) {
        digits = digits && ch >= '0' && ch <= '9';
        layer = layer * 10 + (ch - '0');
      }
      if (!digits) fail(path_, ": tensor '", tensor.name, "' has no layer number after 'blk.'");
      if (layer + 1 > layers_present) {
        layers_present = layer + 1;
        highest = tensor.name;
      }
    }
    if (layers_present > config_.layers)
      fail(path_, ": ", p, "block_count is ", config_.layers, " but the file has tensors for ",
           layers_present, " layers (up to '", highest, "')");
    // A file with no layer tensors at all is reported as a missing tensor when the weights load.
    if (layers_present != 0 && layers_present < config_.layers)
      fail(path_, ": ", p, "block_count is ", config_.layers, " but the file has tensors for only ",
           layers_present, " layers");
    if (file_.has(p + "vocab_size") && file_.get_int(p + "vocab_size") != config_.vocab)
      fail(path_, ": ", p, "vocab_size is ", file_.get_int(p + "vocab_size"),
           " but tensor 'token_embd.weight' has ", config_.vocab, " rows");
    if (const GgufValue* tokens = file_.find("tokenizer.ggml.tokens");
        tokens != nullptr && tokens->type == GgufType::Array &&
        tokens->element_count > static_cast<uint64_t>(embedding.shape[1]))
      fail(path_, ": tokenizer.ggml.tokens has ", tokens->element_count,
           " entries but tensor 'token_embd.weight' has only ", embedding.shape[1], " rows");
  }

  // Dequantizes elements [first, first + count) of `tensor` (whole rows) into `out`, checking each
  // chunk for NaN and infinity while it is still in cache (a separate pass over the fp32 result
  // would cost a quarter of the load time).
  void dequantize_checked(const GgufTensor& tensor, const std::string& name, int64_t first,
                          int64_t count, float* out) const {
    constexpr int64_t kChunk = kCheckChunk;
    const GgmlTypeTraits traits = ggml_type_traits(static_cast<uint32_t>(tensor.type));
    for (int64_t done = 0; done < count; done += kChunk) {
      const int64_t size = std::min(kChunk, count - done);
      const int64_t start = first + done;
      try {
        HOGWILD_CHECK(traits.block_elements > 0 && start % traits.block_elements == 0, "element ",
                      start, " does not start a block");
        const uint8_t* src = tensor.data + static_cast<uint64_t>(start / traits.block_elements) *
                                               static_cast<uint64_t>(traits.block_bytes);
        dequantize(tensor.type, src, out + done, size);
      } catch (const Error& e) {
        fail(path_, ": tensor '", name, "': ", e.what());
      }
      const size_t bad = first_non_finite(out + done, static_cast<size_t>(size));
      if (bad != static_cast<size_t>(size))
        fail(path_, ": tensor '", name, "' holds a non-finite value (",
             std::isnan(out[done + static_cast<int64_t>(bad)]) ? "NaN" : "infinity",
             ") at element ", start + static_cast<int64_t>(bad));
    }
  }

  // GGUF row 2i+j of a head holds HF row j*(head_dim/2)+i (j in {0,1}); rows of any format are
  // moved whole, `row_bytes` each.
  static void unpermute_rows(uint8_t* data, int64_t rows, size_t row_bytes, int64_t heads) {
    const int64_t rows_per_head = rows / heads;
    const int64_t half = rows_per_head / 2;
    const std::vector<uint8_t> original(data, data + static_cast<size_t>(rows) * row_bytes);
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i)
        for (int64_t j = 0; j < 2; ++j) {
          const uint8_t* from =
              original.data() + static_cast<size_t>(h * rows_per_head + 2 * i + j) * row_bytes;
          std::copy(from, from + row_bytes,
                    data + static_cast<size_t>(h * rows_per_head + j * half + i) * row_bytes);
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
