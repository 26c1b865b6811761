#include "model/model.h"

#include <filesystem>

#include "common/error.h"

namespace hogwild {

const char* architecture_name(Architecture architecture) {
  switch (architecture) {
    case Architecture::Llama:
      return "llama";
    case Architecture::Qwen2:
      return "qwen2";
    case Architecture::Qwen3:
      return "qwen3";
  }
  return "?";
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t value, const char* what) {
    if (value <= 0) fail(source, ": ", what, " must be positive, got ", value);
  };
  positive(layers, "number of layers");
  positive(hidden, "hidden size");
  positive(heads, "number of attention heads");
  positive(kv_heads, "number of key/value heads");
  positive(head_dim, "head dimension");
  positive(ffn_hidden, "feed-forward size");
  positive(vocab, "vocabulary size");
  if (heads % kv_heads != 0)
    fail(source, ": ", heads, " attention heads are not a multiple of ", kv_heads,
         " key/value heads");
  if (head_dim % 2 != 0) fail(source, ": head dimension ", head_dim, " must be even for RoPE");
  if (!(rms_eps > 0.0)) fail(source, ": rms_norm_eps must be positive");
  if (!(rope.theta > 1.0)) fail(source, ": rope theta must be > 1, got ", rope.theta);
  if (rope.scaling != RopeScaling::None && !(rope.factor > 0.0))
    fail(source, ": rope scaling factor must be positive");
  if (rope.scaling == RopeScaling::Llama3 && !(rope.high_freq_factor > rope.low_freq_factor))
    fail(source, ": llama3 rope scaling needs high_freq_factor > low_freq_factor");
  if ((rope.scaling == RopeScaling::Llama3 || rope.scaling == RopeScaling::Yarn) &&
      rope.original_context <= 0)
    fail(source, ": rope scaling needs original_max_position_embeddings > 0");
}

HostTensor WeightSource::load_rows(const std::string& name,
                                   const std::vector<int64_t>& expected_shape, int64_t first,
                                   int64_t count) const {
  HostTensor whole = load(name, expected_shape);
  HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= whole.rows());
  if (first == 0 && count == whole.rows()) return whole;
  const int64_t cols = whole.cols();
  HostTensor part;
  part.shape = whole.shape;
  part.shape[0] = count;
  part.data.assign(whole.data.begin() + first * cols, whole.data.begin() + (first + count) * cols);
  return part;
}

std::string layer_tensor(int64_t layer, const std::string& suffix) {
  return cat("model.layers.", layer, ".", suffix);
}

std::unique_ptr<WeightSource> open_weights(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::is_directory(path, error)) return open_hf_weights(path);
  if (!fs::exists(path, error)) fail(path, ": no such file or directory");
  return open_gguf_weights(path);
}

}  // namespace hogwild
