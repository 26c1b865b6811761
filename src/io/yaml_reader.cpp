#include "io/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <system_error>
#include <type_traits>
#include <vector>

namespace hogwild {
namespace {

// Optimal string alignment distance: Levenshtein plus swaps of neighbours ("tempreature").
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// Plain (unquoted) decimal scalars only: "4" yes; "\"4\"", "0x10", "1e3" (for integers) no.
template <typename Number>
bool parse_number(const YAML::Node& node, Number& value) {
  if (!node.IsScalar() || node.Tag() == "!") return false;
  std::string_view text = node.Scalar();
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return false;
  if constexpr (std::is_unsigned_v<Number>) {
    if (text.front() == '-') return false;
  }
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string join(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : cat(prefix, ".", key);
}

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Scalar:
      return cat("'", node.Scalar(), "'");
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
  }
  return "something else";
}

std::string hint_for_unknown(std::string_view key, KeyList known, std::string_view prefix) {
  std::string best;
  size_t best_distance = 3;  // suggest only within an edit distance of 2
  const auto consider = [&](std::string_view section, KeyList candidates) {
    for (std::string_view candidate : candidates) {
      const size_t distance = edit_distance(key, candidate);
      if (distance < best_distance) {
        best = join(section, candidate);
        best_distance = distance;
      }
    }
  };
  consider(prefix, known);
  if (prefix.empty()) {
    for (std::string_view section : sections_hinted_at_top_level()) {
      consider(section, keys_of(section));
    }
  }
  if (!best.empty()) return cat(" (did you mean ", best, "?)");
  std::string list;
  for (std::string_view candidate : known) list += cat(list.empty() ? "" : ", ", candidate);
  return cat(" (known keys", prefix.empty() ? "" : cat(" of ", prefix), ": ", list, ")");
}

std::string ConfigReader::where(const YAML::Node& node, const std::string& path) const {
  if (from_override(path)) return cat(file_, " (from override)");
  // A key's own line: the mark of an empty value ("workers:") is on the line after it.
  if (const auto key = key_lines_.find(path); key != key_lines_.end()) {
    return cat(file_, ":", key->second);
  }
  return at_mark(node);
}

void ConfigReader::check_keys(const YAML::Node& map, const std::string& prefix,
                              KeyList known) const {
  std::map<std::string, int> first_line;
  for (const auto& entry : map) {
    const YAML::Node key_node = entry.first;  // a copy: iterators hand out temporaries
    if (!key_node.IsScalar()) {
      fail(from_override(prefix) ? where(key_node, prefix) : at_mark(key_node), ": keys",
           prefix.empty() ? "" : cat(" of ", prefix), " must be plain names, got ",
           describe(key_node));
    }
    const std::string& key = key_node.Scalar();
    const std::string path = join(prefix, key);
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      fail(where(key_node, path), ": unknown key ", path, hint_for_unknown(key, known, prefix));
    }
    const int line = key_node.Mark().is_null() ? 0 : key_node.Mark().line + 1;
    const auto [previous, inserted] = first_line.emplace(key, line);
    if (!inserted) {
      fail(from_override(path) ? where(key_node, path) : at_mark(key_node), ": duplicate key ",
           path,
           previous->second > 0 && !from_override(path)
               ? cat(" (first given at line ", previous->second, ")")
               : "");
    }
    if (line > 0) key_lines_[path] = line;
  }
}

void ConfigReader::require_map(const YAML::Node& node, const std::string& path,
                               std::string_view what) const {
  if (!node.IsMap()) {
    fail_at(node, path, "must be a map of keys (", what, "), got ", describe(node));
  }
}

int64_t ConfigReader::integer(const YAML::Node& node, const std::string& path, int64_t min,
                              int64_t max, std::string_view range) const {
  int64_t value = 0;
  if (!parse_number(node, value)) fail_at(node, path, "must be an integer, got ", describe(node));
  if (value < min || value > max) fail_at(node, path, "must be ", range, ", got ", value);
  return value;
}

uint64_t ConfigReader::unsigned_integer(const YAML::Node& node, const std::string& path) const {
  uint64_t value = 0;
  if (!parse_number(node, value)) {
    fail_at(node, path, "must be an unsigned 64-bit integer, got ", describe(node));
  }
  return value;
}

double ConfigReader::real(const YAML::Node& node, const std::string& path, double min,
                          bool open_min, double max, bool open_max, std::string_view range) const {
  double value = 0;
  if (!parse_number(node, value) || !std::isfinite(value)) {
    fail_at(node, path, "must be a finite number, got ", describe(node));
  }
  if ((open_min ? value <= min : value < min) || (open_max ? value >= max : value > max)) {
    fail_at(node, path, "must be in ", range, ", got ", node.Scalar());
  }
  return value;
}

bool ConfigReader::boolean(const YAML::Node& node, const std::string& path) const {
  if (node.IsScalar() && node.Tag() != "!") {
    std::string text = node.Scalar();
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (text == "true" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "no" || text == "off") return false;
  }
  fail_at(node, path, "must be true or false, got ", describe(node));
}

std::string ConfigReader::text(const YAML::Node& node, const std::string& path) const {
  if (node.IsNull()) return "";
  if (!node.IsScalar()) fail_at(node, path, "must be text, got ", describe(node));
  return node.Scalar();
}

std::string ConfigReader::non_empty_text(const YAML::Node& node, const std::string& path,
                                         std::string_view what) const {
  std::string value = text(node, path);
  if (trim(value).empty()) fail_at(node, path, "must not be empty (", what, ")");
  return value;
}

bool ConfigReader::from_override(const std::string& path) const {
  for (const std::string& key : overridden_) {
    if (path == key || (path.size() > key.size() && path.compare(0, key.size(), key) == 0 &&
                        (path[key.size()] == '.' || path[key.size()] == '['))) {
      return true;
    }
  }
  return false;
}

std::string ConfigReader::at_mark(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? file_ : cat(file_, ":", mark.line + 1);
}

}  // namespace hogwild
