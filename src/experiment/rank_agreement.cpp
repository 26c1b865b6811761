#include "experiment/rank_agreement.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <type_traits>
#include <variant>

#include "common/error.h"
#include "common/mapped_file.h"
#include "io/config_keys.h"
#include "model/model.h"

namespace hogwild {
namespace {

// Shortest text that reads back as the same double.
std::string real_text(double value) {
  char text[64];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;
  return std::string(text, end);
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// The value of a plain key, read through its table row from (a copy of) the config.
std::string field_text(const ConfigKey& row, RunConfig& config) {
  return std::visit(
      [&](auto field) -> std::string {
        using F = decltype(field);
        if constexpr (std::is_same_v<F, std::monostate>) {
          fail("internal: config key ", row.key, " has no field for the rank check");
        } else {
          const auto& value = field(config);
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, std::string>) {
            return value;
          } else if constexpr (std::is_same_v<T, bool>) {
            return value ? "true" : "false";
          } else if constexpr (std::is_same_v<T, double>) {
            return real_text(value);
          } else if constexpr (std::is_enum_v<T>) {  // a choice stored as its index
            const auto index = static_cast<size_t>(value);
            return index < row.choices.size() ? std::string(row.choices[index])
                                              : std::to_string(index);
          } else {
            return std::to_string(value);
          }
        }
      },
      row.field);
}

// A file's size and the hashes of its first 4 MiB (GGUF metadata and tensor table; a
// safetensors header) and last 64 KiB: cheap, and any other model differs.
std::string file_fingerprint(const std::string& path) {
  const MappedFile file(path);
  const std::span<const uint8_t> bytes = file.bytes();
  const size_t head = std::min<size_t>(bytes.size(), size_t{4} << 20);
  const size_t tail = std::min<size_t>(bytes.size(), size_t{64} << 10);
  return cat(bytes.size(), " bytes ", hex(fnv1a_64(bytes.first(head))), " ",
             hex(fnv1a_64(bytes.last(tail))));
}

// A GGUF file, or every regular file of a checkpoint folder by name (hidden ones excepted).
AgreementEntry model_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::string value;
  uint64_t total = 0;
  std::error_code error;
  if (fs::is_directory(path, error)) {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with(".") && entry.is_regular_file(error)) names.push_back(name);
    }
    if (error) fail(path, ": cannot list the model folder: ", error.message());
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      value += cat(name, ": ", file_fingerprint((fs::path(path) / name).string()), "\n");
      total += fs::file_size(fs::path(path) / name, error);
    }
  } else {
    value = file_fingerprint(path);
    total = fs::file_size(path, error);
  }
  return {"model (files)", value, cat(total, " bytes, hash ", hex(fnv1a_64(value)))};
}

AgreementEntry model_architecture(const ModelConfig& c) {
  std::string value =
      cat(architecture_name(c.architecture), " layers ", c.layers, " hidden ", c.hidden, " heads ",
          c.heads, " kv_heads ", c.kv_heads, " head_dim ", c.head_dim, " ffn ", c.ffn_hidden,
          " vocab ", c.vocab, " context ", c.max_context, " rms_eps ", real_text(c.rms_eps),
          " rope_theta ", real_text(c.rope.theta), " rope_scaling ",
          static_cast<int>(c.rope.scaling), " rope_factor ", real_text(c.rope.factor), " tied ",
          c.tied_embeddings, " qkv_bias ", c.qkv_bias, " qk_norm ", c.qk_norm);
  uint64_t factors = kFnv1aOffset;
  for (float f : c.rope.frequency_factors) factors = fnv1a_64(real_text(f), factors);
  if (!c.rope.frequency_factors.empty()) value += cat(" rope_factors ", hex(factors));
  return {"model (architecture)", value, {}};
}

}  // namespace

std::vector<AgreementEntry> run_fingerprint(const RunConfig& config) {
  RunConfig copy = config;  // the table's fields take a mutable config
  std::vector<AgreementEntry> entries;
  for (const ConfigKey& row : config_keys()) {
    const std::string_view key = row.key;
    // Sections hold no value; list items and the problems file's path are covered by the
    // problems themselves, the model's path by the model.
    if (row.kind == KeyKind::kSection || section_of(key).ends_with("[]") || key == "model" ||
        key == "problems.file" || key == "prompts.system_file" || key == "prompts.user_file")
      continue;
    AgreementEntry entry{std::string(key), {}, {}};
    const std::string* prompt_file = key == "prompts.system" ? &config.prompt_files.system
                                     : key == "prompts.user" ? &config.prompt_files.user
                                                             : nullptr;
    if (prompt_file && !prompt_file->empty()) {
      // A prompt read from a file counts by its text (read at load): nodes may hold the file
      // under other paths, or other files under the same path; the message names the file.
      entry.value = field_text(row, copy);
      // (The hash first: messages cut long values, and a long path must not hide it.)
      entry.shown = cat(entry.value.size(), " bytes, hash ", hex(fnv1a_64(entry.value)), " from ",
                        key, "_file '", *prompt_file, "'");
    } else if (key == "names") {
      for (const std::string& name : config.names) entry.value += name + "\n";
    } else if (key == "checkpoints") {
      for (int64_t pass : config.checkpoints) entry.value += cat(pass, " ");
    } else if (key == "problems") {
      // The text of every problem (not its id, which names the file it came from).
      for (const Problem& problem : config.problems)
        entry.value += cat(problem.question, '\x1f', problem.answer, '\x1e');
      entry.shown = cat(config.problems.size(), " problems, hash ", hex(fnv1a_64(entry.value)));
    } else if (section_of(key) == "problems" && !config.problems_file) {
      entry.value = "(no problems file)";
    } else if (row.kind == KeyKind::kCustom) {
      fail("internal: the rank check does not know how to compare config key ", key);
    } else {
      entry.value = field_text(row, copy);
    }
    entries.push_back(std::move(entry));
  }
  const auto weights = open_weights(config.model);
  entries.push_back(model_architecture(weights->config()));
  entries.push_back(model_files(config.model));
  return entries;
}

void check_ranks_run_the_same(const RunConfig& config, Communicator& world) {
  if (world.size() == 1) return;
  const std::vector<AgreementEntry> entries = run_fingerprint(config);
  check_ranks_agree(world, entries);
}

}  // namespace hogwild
