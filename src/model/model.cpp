#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

void ModelConfig::validate(const std::string& source, const ConfigKeys& keys) const {
  auto positive = [&](int64_t value, const std::string& key) {
    if (value <= 0) fail(source, ": ", key, " must be positive, got ", value);
  };
  // NaN fails every comparison, so `!(value > bound)` refuses it along with small values.
  auto finite_above = [&](double value, double bound, const std::string& key) {
    if (!std::isfinite(value) || !(value > bound))
      fail(source, ": ", key, " must be a finite number above ", bound, ", got ", value);
  };
  positive(layers, keys.layers);
  positive(hidden, keys.hidden);
  positive(heads, keys.heads);
  positive(kv_heads, keys.kv_heads);
  positive(head_dim, keys.head_dim);
  positive(ffn_hidden, keys.ffn_hidden);
  positive(vocab, keys.vocab);
  positive(max_context, keys.max_context);
  if (heads % kv_heads != 0)
    fail(source, ": ", keys.heads, " (", heads, " attention heads) is not a multiple of ",
         keys.kv_heads, " (", kv_heads, " key/value heads)");
  if (head_dim % 2 != 0)
    fail(source, ": ", keys.head_dim, " is ", head_dim, ", but RoPE needs an even head dimension");
  finite_above(rms_eps, 0.0, keys.rms_eps);
  finite_above(rope.theta, 1.0, keys.rope_theta);
  if (rope.scaling != RopeScaling::None) finite_above(rope.factor, 0.0, keys.rope_factor);
  if (rope.scaling == RopeScaling::Llama3) {
    finite_above(rope.low_freq_factor, 0.0, keys.low_freq_factor);
    finite_above(rope.high_freq_factor, 0.0, keys.high_freq_factor);
    if (!(rope.high_freq_factor > rope.low_freq_factor))
      fail(source, ": llama3 rope scaling needs ", keys.high_freq_factor, " (",
           rope.high_freq_factor, ") > ", keys.low_freq_factor, " (", rope.low_freq_factor, ")");
  }
  if (rope.scaling == RopeScaling::Llama3 || rope.scaling == RopeScaling::Yarn)
    positive(rope.original_context, keys.original_context);
  if (rope.scaling == RopeScaling::Yarn) {
    finite_above(rope.beta_fast, 0.0, keys.beta_fast);
    finite_above(rope.beta_slow, 0.0, keys.beta_slow);
    if (!std::isfinite(rope.attention_factor) || rope.attention_factor < 0.0)
      fail(source, ": ", keys.attention_factor, " must be a finite number >= 0, got ",
           rope.attention_factor);
  }
  for (size_t i = 0; i < rope.frequency_factors.size(); ++i)
    if (!std::isfinite(rope.frequency_factors[i]) || !(rope.frequency_factors[i] > 0.0f))
      fail(source, ": rope frequency factor ", i, " is ", rope.frequency_factors[i],
           ", expected a finite number above 0");
  if (!rope.frequency_factors.empty() &&
      static_cast<int64_t>(rope.frequency_factors.size()) != head_dim / 2)
    fail(source, ": ", rope.frequency_factors.size(), " rope frequency factors for ", keys.head_dim,
         " ", head_dim, ", expected ", head_dim / 2);
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

std::optional<GgmlType> WeightSource::stored_type(const std::string&) const { return std::nullopt; }

std::optional<StoredTensor> WeightSource::load_stored_rows(const std::string&,
                                                           const std::vector<int64_t>&, int64_t,
                                                           int64_t) const {
  return std::nullopt;
}

size_t first_non_finite(const float* values, size_t count) {
  // A value is NaN or infinite when its bits, sign cleared, are at least 0x7f800000, that is
  // when 0x7f7fffff minus them wraps around. OR-ing those differences over a chunk is plain
  // integer arithmetic that vectorizes; only a chunk that holds one is searched value by value.
  constexpr uint32_t kLargestFinite = 0x7f7fffffu;
  auto magnitude = [&](size_t i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    return bits & 0x7fffffffu;
  };
  constexpr size_t kChunk = 4096;
  for (size_t begin = 0; begin < count; begin += kChunk) {
    const size_t end = std::min(count, begin + kChunk);
    uint32_t wrapped = 0;
    for (size_t i = begin; i < end; ++i) wrapped |= kLargestFinite - magnitude(i);
    if ((wrapped >> 31) == 0) continue;
    for (size_t i = begin; i < end; ++i)
      if (magnitude(i) > kLargestFinite) return i;
  }
  return count;
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
