// Hugging Face checkpoint directories: config.json for the model's numbers, and the weights in
// model.safetensors or in shards listed by model.safetensors.index.json.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/mapped_file.h"
#include "model/model.h"
#include "model/safetensors.h"

namespace hogwild {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// config.json is a few kilobytes and an index about 100 bytes per tensor; a larger file is not one.
constexpr size_t kMaxJsonFileBytes = 64u << 20;

// A config value for an error message: scalars as written (cut short), containers by kind only
// (dump() recurses through any nesting).
std::string describe(const json& value) {
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  std::string text = value.dump();
  return text.size() > 80 ? text.substr(0, 80) + "..." : text;
}

// Typed access to config.json: each error names the file and the key.
class ConfigReader {
 public:
  ConfigReader(const json& root, std::string path) : root_(root), path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  // The value of `key` in `object`, or nullptr when absent or null (HF writes null for "unset").
  static const json* find(const json& object, const std::string& key) {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }

  int64_t integer(const std::string& key) const { return integer_in(root_, key, ""); }
  int64_t integer_or(const std::string& key, int64_t fallback) const {
    return find(root_, key) ? integer(key) : fallback;
  }
  double number_or(const std::string& key, double fallback) const {
    return number_in_or(root_, key, "", fallback);
  }
  bool boolean_or(const std::string& key, bool fallback) const {
    const json* value = find(root_, key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean())
      fail(path_, ": '", key, "' must be true or false, found ", describe(*value));
    return value->get<bool>();
  }

  // `prefix` names the enclosing object in messages ("rope_scaling.").
  int64_t integer_in(const json& object, const std::string& key, const std::string& prefix) const {
    const json* value = find(object, key);
    if (value == nullptr) fail(path_, ": missing '", prefix, key, "'");
    if (!value->is_number_integer())
      fail(path_, ": '", prefix, key, "' must be an integer, found ", describe(*value));
    if (value->is_number_unsigned() &&
        value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(path_, ": '", prefix, key, "' is out of range: ", describe(*value));
    return value->get<int64_t>();
  }
  double number_in(const json& object, const std::string& key, const std::string& prefix) const {
    const json* value = find(object, key);
    if (value == nullptr) fail(path_, ": missing '", prefix, key, "'");
    if (!value->is_number())
      fail(path_, ": '", prefix, key, "' must be a number, found ", describe(*value));
    return value->get<double>();
  }
  double number_in_or(const json& object, const std::string& key, const std::string& prefix,
                      double fallback) const {
    return find(object, key) ? number_in(object, key, prefix) : fallback;
  }

 private:
  const json& root_;
  std::string path_;
};

struct ArchitectureName {
  const char* hf_class;    // config.json "architectures"
  const char* model_type;  // config.json "model_type"
  Architecture architecture;
};

// Mistral is Llama's architecture (sliding-window attention aside, handled in read_config).
constexpr ArchitectureName kArchitectures[] = {
    {"LlamaForCausalLM", "llama", Architecture::Llama},
    {"MistralForCausalLM", "mistral", Architecture::Llama},
    {"Qwen2ForCausalLM", "qwen2", Architecture::Qwen2},
    {"Qwen3ForCausalLM", "qwen3", Architecture::Qwen3},
};

std::string supported_architectures() {
  std::string names;
  for (const ArchitectureName& name : kArchitectures)
    names += cat(names.empty() ? "" : ", ", name.hf_class);
  return names;
}

Architecture read_architecture(const ConfigReader& reader, const json& root) {
  // "architectures" names the class that loads the weights, so it decides; "model_type" is the
  // fallback for configs without it.
  if (const json* classes = ConfigReader::find(root, "architectures")) {
    if (!classes->is_array() || classes->empty() || !(*classes)[0].is_string())
      fail(reader.path(), ": 'architectures' must be a non-empty array of strings");
    const auto hf_class = (*classes)[0].get<std::string>();
    for (const ArchitectureName& name : kArchitectures)
      if (hf_class == name.hf_class) return name.architecture;
    fail(reader.path(), ": unsupported architecture '", hf_class,
         "' (supported: ", supported_architectures(), ")");
  }
  if (const json* model_type = ConfigReader::find(root, "model_type")) {
    if (!model_type->is_string()) fail(reader.path(), ": 'model_type' must be a string");
    const auto type = model_type->get<std::string>();
    for (const ArchitectureName& name : kArchitectures)
      if (type == name.model_type) return name.architecture;
    fail(reader.path(), ": unsupported model_type '", type,
         "' (supported: llama, mistral, qwen2, qwen3)");
  }
  fail(reader.path(), ": neither 'architectures' nor 'model_type' says which model this is");
}

// transformers 5 writes the RoPE settings, theta included, as one "rope_parameters" object;
// earlier versions a top-level "rope_theta" and a "rope_scaling" object (or null).
void read_rope_scaling(const ConfigReader& reader, const json& root, ModelConfig& config) {
  const char* key = "rope_scaling";
  const json* scaling = ConfigReader::find(root, key);
  if (scaling == nullptr) {  // absent or null
    key = "rope_parameters";
    scaling = ConfigReader::find(root, key);
    if (scaling == nullptr) return;
  }
  if (!scaling->is_object()) fail(reader.path(), ": '", key, "' must be an object or null");
  const std::string prefix = std::string(key) + ".";
  if (std::string(key) == "rope_parameters" && ConfigReader::find(root, "rope_theta") == nullptr &&
      ConfigReader::find(*scaling, "rope_theta") != nullptr)
    config.rope.theta = reader.number_in(*scaling, "rope_theta", prefix);
  // Newer transformers write "rope_type"; older configs "type".
  const json* type_json = ConfigReader::find(*scaling, "rope_type");
  if (type_json == nullptr) type_json = ConfigReader::find(*scaling, "type");
  if (type_json == nullptr) fail(reader.path(), ": '", key, "' has neither 'rope_type' nor 'type'");
  if (!type_json->is_string()) fail(reader.path(), ": '", prefix, "rope_type' must be a string");
  const auto type = type_json->get<std::string>();
  RopeConfig& rope = config.rope;
  if (type == "default") {
    rope.scaling = RopeScaling::None;
  } else if (type == "linear") {
    rope.scaling = RopeScaling::Linear;
    rope.factor = reader.number_in(*scaling, "factor", prefix);
  } else if (type == "llama3") {
    rope.scaling = RopeScaling::Llama3;
    rope.factor = reader.number_in(*scaling, "factor", prefix);
    rope.low_freq_factor = reader.number_in(*scaling, "low_freq_factor", prefix);
    rope.high_freq_factor = reader.number_in(*scaling, "high_freq_factor", prefix);
    rope.original_context = reader.integer_in(*scaling, "original_max_position_embeddings", prefix);
  } else if (type == "yarn") {
    rope.scaling = RopeScaling::Yarn;
    rope.factor = reader.number_in(*scaling, "factor", prefix);
    // transformers falls back to max_position_embeddings when the original length is not given.
    rope.original_context =
        ConfigReader::find(*scaling, "original_max_position_embeddings")
            ? reader.integer_in(*scaling, "original_max_position_embeddings", prefix)
            : config.max_context;
    rope.beta_fast = reader.number_in_or(*scaling, "beta_fast", prefix, rope.beta_fast);
    rope.beta_slow = reader.number_in_or(*scaling, "beta_slow", prefix, rope.beta_slow);
    rope.attention_factor =
        reader.number_in_or(*scaling, "attention_factor", prefix, rope.attention_factor);
  } else {
    fail(reader.path(), ": unsupported ", key, " type '", type,
         "' (supported: default, linear, llama3, yarn)");
  }
}

ModelConfig read_config(const std::string& path) {
  json root;
  try {
    root = json::parse(read_regular_text_file(path, kMaxJsonFileBytes));
  } catch (const json::exception& error) {
    fail(path, ": not valid JSON: ", error.what());
  }
  if (!root.is_object()) fail(path, ": expected a JSON object");
  const ConfigReader reader(root, path);

  if (ConfigReader::find(root, "quantization_config"))
    fail(path,
         ": quantized Hugging Face checkpoints (quantization_config) are not supported; "
         "use a GGUF file or an fp16/bf16/fp32 checkpoint");

  ModelConfig config;
  config.architecture = read_architecture(reader, root);
  config.hidden = reader.integer("hidden_size");
  config.ffn_hidden = reader.integer("intermediate_size");
  config.heads = reader.integer("num_attention_heads");
  config.kv_heads = reader.integer_or("num_key_value_heads", config.heads);
  if (ConfigReader::find(root, "head_dim")) {
    config.head_dim = reader.integer("head_dim");
  } else if (config.heads > 0) {
    if (config.hidden % config.heads != 0)
      fail(path, ": hidden_size (", config.hidden, ") is not a multiple of num_attention_heads (",
           config.heads, "), and no head_dim gives the head dimension");
    config.head_dim = config.hidden / config.heads;
  }
  config.layers = reader.integer("num_hidden_layers");
  config.vocab = reader.integer("vocab_size");
  config.max_context = reader.integer("max_position_embeddings");
  config.rms_eps = reader.number_or("rms_norm_eps", config.rms_eps);
  config.rope.theta = reader.number_or("rope_theta", config.rope.theta);
  config.tied_embeddings = reader.boolean_or("tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases; elsewhere "attention_bias" turns them on (and an o_proj bias,
  // which open_hf_weights rejects).
  config.qkv_bias = reader.boolean_or("attention_bias", config.architecture == Architecture::Qwen2);
  config.qk_norm = config.architecture == Architecture::Qwen3;
  read_rope_scaling(reader, root, config);

  // Sliding-window attention equals full attention up to the window, so a window is honoured by
  // not going past it. Mistral uses its window whenever one is set; Qwen2/3 only with
  // use_sliding_window.
  const bool windowed = config.architecture == Architecture::Llama
                            ? ConfigReader::find(root, "sliding_window") != nullptr
                            : reader.boolean_or("use_sliding_window", false);
  if (windowed) {
    const int64_t window = reader.integer("sliding_window");
    if (window > 0 && window < config.max_context) config.max_context = window;
  }

  ConfigKeys keys;
  keys.layers = "num_hidden_layers";
  keys.hidden = "hidden_size";
  keys.heads = "num_attention_heads";
  keys.kv_heads = "num_key_value_heads";
  keys.head_dim = "head_dim";
  keys.ffn_hidden = "intermediate_size";
  keys.vocab = "vocab_size";
  keys.max_context = "max_position_embeddings";  // a sliding window only ever lowers it
  keys.rms_eps = "rms_norm_eps";
  keys.rope_theta = "rope_theta";
  keys.rope_factor = "rope_scaling.factor";
  keys.low_freq_factor = "rope_scaling.low_freq_factor";
  keys.high_freq_factor = "rope_scaling.high_freq_factor";
  keys.original_context = "rope_scaling.original_max_position_embeddings";
  keys.beta_fast = "rope_scaling.beta_fast";
  keys.beta_slow = "rope_scaling.beta_slow";
  keys.attention_factor = "rope_scaling.attention_factor";
  config.validate(path, keys);
  return config;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += cat(i == 0 ? "" : ", ", shape[i]);
  return text + "]";
}

class HfCheckpoint final : public WeightSource {
 public:
  explicit HfCheckpoint(const std::string& directory) : directory_(directory) {
    std::error_code error;
    if (!fs::is_directory(directory, error))
      fail(directory, ": not a directory (expected a Hugging Face checkpoint with config.json)");
    const fs::path root(directory);
    const fs::path config_path = root / "config.json";
    if (!fs::exists(config_path, error))
      fail(directory, ": no config.json in this Hugging Face checkpoint directory");
    config_ = read_config(config_path.string());

    const fs::path index_path = root / "model.safetensors.index.json";
    const fs::path single_path = root / "model.safetensors";
    if (fs::exists(index_path, error)) {
      read_index(index_path.string());
    } else if (fs::exists(single_path, error)) {
      shards_.push_back({single_path.string(), nullptr});
      const SafetensorsFile& file = shard(0);
      for (const auto& [name, tensor] : file.tensors()) tensor_shard_.emplace(name, 0);
    } else {
      fail(directory, ": no model.safetensors or model.safetensors.index.json");
    }

    check_config_against_tensors(config_path.string());

    const std::string output_bias = layer_tensor(0, "self_attn.o_proj.bias");
    if (has(output_bias))
      fail(directory, ": tensor '", output_bias, "' (attention output bias) is not supported");
  }

  const ModelConfig& config() const override { return config_; }
  const std::string& path() const override { return directory_; }
  bool has(const std::string& name) const override { return tensor_shard_.count(name) != 0; }
  std::string tokenizer_path() const override { return directory_; }

  HostTensor load(const std::string& name,
                  const std::vector<int64_t>& expected_shape) const override {
    const auto it = tensor_shard_.find(name);
    if (it == tensor_shard_.end()) fail(directory_, ": missing tensor '", name, "'");
    const SafetensorsFile& file = shard(it->second);
    const SafetensorsTensor* tensor = file.find(name);
    if (tensor == nullptr)
      fail(file.name(), ": tensor '", name,
           "' is listed in model.safetensors.index.json but absent");
    if (tensor->shape != expected_shape)
      fail(file.name(), ": tensor '", name, "' has shape ", shape_text(tensor->shape),
           ", expected ", shape_text(expected_shape));
    HostTensor result;
    result.shape = tensor->shape;
    result.data.resize(static_cast<size_t>(tensor->element_count()));
    // NaN or infinity in a weight decodes to garbage, so each chunk is checked as it is
    // converted, while still in cache.
    constexpr int64_t kChunk = int64_t{1} << 14;
    for (int64_t done = 0; done < tensor->element_count(); done += kChunk) {
      const int64_t size = std::min(kChunk, tensor->element_count() - done);
      float* out = result.data.data() + done;
      safetensors_to_float(*tensor, file.name(), done, size, out);
      const size_t bad = first_non_finite(out, static_cast<size_t>(size));
      if (bad != static_cast<size_t>(size))
        fail(file.name(), ": tensor '", name, "' holds a non-finite value (",
             std::isnan(out[bad]) ? "NaN" : "infinity", ") at element ",
             done + static_cast<int64_t>(bad));
    }
    return result;
  }

 private:
  struct Shard {
    std::string path;
    std::unique_ptr<SafetensorsFile> file;  // opened on first use
  };

  // config.json numbers that contradict the tensors are refused at open, naming the key: fewer
  // num_hidden_layers than the checkpoint's layers would silently drop some; more, or another
  // vocab_size than the embedding's rows, would fail later, while loading.
  void check_config_against_tensors(const std::string& config_path) const {
    int64_t layers_present = 0;
    std::string highest;
    const std::string prefix = "model.layers.";
    for (const auto& [name, shard_index] : tensor_shard_) {
      if (!name.starts_with(prefix)) continue;
      int64_t layer = 0;
      size_t digits = 0;
      for (size_t i = prefix.size(); i < name.size() && digits < 10; ++i, ++digits) {
        if (name[i] < '0' || name[i] > '9') break;
        layer = layer * 10 + (name[i] - '0');
      }
      if (digits == 0 || digits == 10) continue;  // not a layer tensor the engine reads
      if (layer + 1 > layers_present) {
        layers_present = layer + 1;
        highest = name;
      }
    }
    if (layers_present > config_.layers)
      fail(config_path, ": num_hidden_layers is ", config_.layers,
           " but the checkpoint has tensors for ", layers_present, " layers (up to '", highest,
           "')");
    if (layers_present != 0 && layers_present < config_.layers)
      fail(config_path, ": num_hidden_layers is ", config_.layers,
           " but the checkpoint has tensors for only ", layers_present, " layers");
    const std::string embedding = "model.embed_tokens.weight";
    const auto it = tensor_shard_.find(embedding);
    if (it == tensor_shard_.end()) return;  // reported as missing when the weights load
    const SafetensorsFile& file = shard(it->second);
    const SafetensorsTensor* tensor = file.find(embedding);
    if (tensor != nullptr && tensor->shape.size() == 2 && tensor->shape[0] != config_.vocab)
      fail(config_path, ": vocab_size is ", config_.vocab, " but tensor '", embedding, "' in ",
           file.name(), " has ", tensor->shape[0], " rows");
  }

  void read_index(const std::string& index_path) {
    json index;
    try {
      index = json::parse(read_regular_text_file(index_path, kMaxJsonFileBytes));
    } catch (const json::exception& error) {
      fail(index_path, ": not valid JSON: ", error.what());
    }
    const json* weight_map = index.is_object() ? ConfigReader::find(index, "weight_map") : nullptr;
    if (weight_map == nullptr || !weight_map->is_object())
      fail(index_path, ": expected an object with a 'weight_map' object");
    std::map<std::string, size_t> shard_of_file;
    for (const auto& [name, file_json] : weight_map->items()) {
      if (!file_json.is_string())
        fail(index_path, ": weight_map entry '", name, "' is not a string");
      const auto file = file_json.get<std::string>();
      // Shards live next to the index; a path that climbs out of the directory is refused.
      const fs::path relative(file);
      if (file.empty() || file == "." || file == ".." || relative.is_absolute() ||
          relative.has_parent_path())
        fail(index_path, ": weight_map entry '", name, "' names the file '", file,
             "', expected a file name in the same directory");
      auto [shard_it, added] = shard_of_file.emplace(file, shards_.size());
      if (added) shards_.push_back({(fs::path(directory_) / relative).string(), nullptr});
      tensor_shard_.emplace(name, shard_it->second);
    }
    if (shards_.empty()) fail(index_path, ": weight_map lists no tensors");
  }

  const SafetensorsFile& shard(size_t index) const {
    std::lock_guard<std::mutex> lock(shards_mutex_);
    Shard& entry = shards_[index];
    if (!entry.file)
      entry.file = std::make_unique<SafetensorsFile>(SafetensorsFile::open(entry.path));
    return *entry.file;
  }

  std::string directory_;
  ModelConfig config_;
  std::map<std::string, size_t> tensor_shard_;  // tensor name -> index in shards_
  mutable std::vector<Shard> shards_;
  mutable std::mutex shards_mutex_;
};

}  // namespace

std::unique_ptr<WeightSource> open_hf_weights(const std::string& directory) {
  return std::make_unique<HfCheckpoint>(directory);
}

}  // namespace hogwild
