// Reading the YAML tree of a run configuration: typed scalars, known keys, and errors that name
// the file, the dotted key and its line (or "(from override)"). Internal to hogwild_io_config.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.h"
#include "io/config_keys.h"

namespace hogwild {

// "sampling" + "top_p" -> "sampling.top_p"; "" + "model" -> "model".
std::string join(std::string_view prefix, std::string_view key);

std::string_view trim(std::string_view text);

// A node as error messages show it: 'text', nothing, a list, a map.
std::string describe(const YAML::Node& node);

// " (did you mean sampling.temperature?)" when a known key is close, else the list of known keys.
// At the top level the keys of some sections count too ("temperature: 0.7" ->
// sampling.temperature).
std::string hint_for_unknown(std::string_view key, KeyList known, std::string_view prefix);

class ConfigReader {
 public:
  // `overridden`: the dotted keys that overrides set; errors below them say "(from override)".
  ConfigReader(std::string file, std::set<std::string> overridden)
      : file_(std::move(file)), overridden_(std::move(overridden)) {}

  const std::string& file() const { return file_; }

  // "x.yaml:7" for a node of the file, "x.yaml (from override)" for one an override set.
  std::string where(const YAML::Node& node, const std::string& path) const;

  template <typename... Parts>
  [[noreturn]] void fail_at(const YAML::Node& node, const std::string& path,
                            Parts&&... parts) const {
    fail(where(node, path), ": ", path, " ", std::forward<Parts>(parts)...);
  }

  // Every key of `map` must be known and appear once.
  void check_keys(const YAML::Node& map, const std::string& prefix, KeyList known) const;

  void require_map(const YAML::Node& node, const std::string& path, std::string_view what) const;

  // An integer in [min, max]; `range` says it in the error ("in [1, 64]", ">= 1").
  int64_t integer(const YAML::Node& node, const std::string& path, int64_t min, int64_t max,
                  std::string_view range) const;

  uint64_t unsigned_integer(const YAML::Node& node, const std::string& path) const;

  // A finite number in [min, max]; `open_min`/`open_max` exclude the bound.
  double real(const YAML::Node& node, const std::string& path, double min, bool open_min,
              double max, bool open_max, std::string_view range) const;

  bool boolean(const YAML::Node& node, const std::string& path) const;

  // A scalar as text; an empty value ("key:" or "~") reads as "".
  std::string text(const YAML::Node& node, const std::string& path) const;

  std::string non_empty_text(const YAML::Node& node, const std::string& path,
                             std::string_view what) const;

 private:
  bool from_override(const std::string& path) const;
  std::string at_mark(const YAML::Node& node) const;

  std::string file_;
  std::set<std::string> overridden_;
  mutable std::map<std::string, int> key_lines_;  // dotted path -> line, filled by check_keys
};

}  // namespace hogwild
