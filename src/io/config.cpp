// The run configuration: a YAML file, `dotted.key=value` overrides applied to its tree, then a
// validation pass that reads every key against a fixed schema. Every error names the file, the
// key path and the line (or "(from override)"), so a typo never silently becomes a default.
#include "io/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/error.h"
#include "common/mapped_file.h"
#include "hogwild/text_rules.h"

namespace hogwild {
namespace {

namespace fs = std::filesystem;

// ---- Schema (keep in sync with configs/README.md) ----

using KeyList = std::span<const std::string_view>;

constexpr std::array<std::string_view, 16> kTopKeys = {
    "model",
    "workers",
    "names",
    "layout",
    "budget",
    "seed",
    "sampling",
    "problems",
    "batch_problems",
    "output",
    "transcript",
    "page_size",
    "max_tokens_per_problem",
    "prompts",
    "parallel",
    "backend",
};
constexpr std::array<std::string_view, 4> kParallelKeys = {"tensor", "worker_groups", "sync",
                                                            "timeout_seconds"};
constexpr std::array<std::string_view, 4> kSamplingKeys = {"temperature", "top_k", "top_p",
                                                           "min_p"};
constexpr std::array<std::string_view, 5> kProblemsFileKeys = {"file", "question_field",
                                                               "answer_field", "offset", "limit"};
constexpr std::array<std::string_view, 2> kProblemKeys = {"question", "answer"};
constexpr std::array<std::string_view, 13> kPromptKeys = {
    "system",      "history_header",    "others_header",    "own_header",
    "step_prefix", "first_step_prefix", "incomplete_marker", "redundancy_check", "redundancy_interval",
    "finisher",    "finisher_tokens",   "chat_template",    "collaborate"};

// Keys whose value is text: an override gives them the text after '=' literally (YAML would trim
// spaces, cut at " #" and read "*" as an alias, which breaks prompts such as "**{name}:** ").
constexpr std::array<std::string_view, 18> kTextKeys = {"prompts.first_step_prefix","model",
                                                        "layout",
                                                        "output",
                                                        "transcript",
                                                        "problems.file",
                                                        "problems.question_field",
                                                        "problems.answer_field",
                                                        "prompts.system",
                                                        "prompts.history_header",
                                                        "prompts.others_header",
                                                        "prompts.own_header",
                                                        "prompts.step_prefix",
                                                        "prompts.incomplete_marker",
                                                        "prompts.redundancy_check",
                                                        "prompts.finisher",
                                                        "parallel.sync",
                                                        "backend"};

// The keys of the map at dotted path `section` ("" = the top level); empty if it is not a map.
KeyList keys_of(std::string_view section) {
  if (section.empty()) return kTopKeys;
  if (section == "sampling") return kSamplingKeys;
  if (section == "parallel") return kParallelKeys;
  if (section == "problems") return kProblemsFileKeys;
  if (section == "prompts") return kPromptKeys;
  return {};
}

bool contains(KeyList keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

std::string join(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : cat(prefix, ".", key);
}

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

// " (did you mean sampling.temperature?)" when a known key is close, else the list of known keys.
// At the top level the keys of the sections count too ("temperature: 0.7" -> sampling.temperature).
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
    for (std::string_view section : {"sampling", "prompts", "problems"}) {
      consider(section, keys_of(section));
    }
  }
  if (!best.empty()) return cat(" (did you mean ", best, "?)");
  std::string list;
  for (std::string_view candidate : known) list += cat(list.empty() ? "" : ", ", candidate);
  return cat(" (known keys", prefix.empty() ? "" : cat(" of ", prefix), ": ", list, ")");
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

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

// ---- Overrides ----

YAML::Node parse_override_value(const std::string& override_text, const std::string& key,
                                const std::string& value) {
  const bool quoted = !value.empty() && (value.front() == '"' || value.front() == '\'');
  if (contains(kTextKeys, key) && !quoted) return YAML::Node(value);
  try {
    return YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail("override '", override_text, "': the value is not valid YAML: ", e.msg);
  }
}

// Sets the node at the dotted key of `text` ("sampling.top_p=0.9") in `root`; returns the key.
std::string apply_override(YAML::Node& root, const std::string& text) {
  const size_t equals = text.find('=');
  if (equals == std::string::npos) {
    fail("override '", text, "': expected key=value, e.g. sampling.temperature=0.7");
  }
  const std::string key(trim(std::string_view(text).substr(0, equals)));
  const std::string value = text.substr(equals + 1);

  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::string prefix;
  for (const std::string& part : parts) {
    if (part.empty()) fail("override '", text, "': malformed key '", key, "'");
    const KeyList known = keys_of(prefix);
    if (known.empty()) {
      fail("override '", text, "': unknown key ", key, " (", prefix, " is not a map of keys)");
    }
    if (!contains(known, part)) {
      fail("override '", text, "': unknown key ", join(prefix, part),
           hint_for_unknown(part, known, prefix));
    }
    prefix = join(prefix, part);
  }

  YAML::Node node_value = parse_override_value(text, key, value);
  YAML::Node map = root;
  std::string path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path = join(path, parts[i]);
    YAML::Node child = map[parts[i]];
    if (!child.IsDefined() || child.IsNull()) {
      map[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(map[parts[i]]);
    } else if (!child.IsMap()) {
      fail("override '", text, "': ", path, " is ", describe(child), ", not a map of keys",
           path == "problems" ? " (problems.* keys apply to a problems file)" : "");
    }
    map.reset(child);
  }
  map[parts.back()] = node_value;
  return key;
}

// ---- Validation ----

class ConfigReader {
 public:
  ConfigReader(std::string file, std::set<std::string> overridden)
      : file_(std::move(file)), overridden_(std::move(overridden)) {}

  const std::string& file() const { return file_; }

  // "x.yaml:7" for a node of the file, "x.yaml (from override)" for one an override set.
  std::string where(const YAML::Node& node, const std::string& path) const {
    if (from_override(path)) return cat(file_, " (from override)");
    // A key's own line: the mark of an empty value ("workers:") is on the line after it.
    if (const auto key = key_lines_.find(path); key != key_lines_.end()) {
      return cat(file_, ":", key->second);
    }
    return at_mark(node);
  }

  template <typename... Parts>
  [[noreturn]] void fail_at(const YAML::Node& node, const std::string& path,
                            Parts&&... parts) const {
    fail(where(node, path), ": ", path, " ", std::forward<Parts>(parts)...);
  }

  // Every key of `map` must be known and appear once.
  void check_keys(const YAML::Node& map, const std::string& prefix, KeyList known) const {
    std::map<std::string, int> first_line;
    for (const auto& entry : map) {
      const YAML::Node key_node = entry.first;  // a copy: iterators hand out temporaries
      if (!key_node.IsScalar()) {
        fail(from_override(prefix) ? where(key_node, prefix) : at_mark(key_node), ": keys",
             prefix.empty() ? "" : cat(" of ", prefix), " must be plain names, got ",
             describe(key_node));
      }
      const std::string key = key_node.Scalar();
      const std::string path = join(prefix, key);
      if (!contains(known, key)) {
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

  void require_map(const YAML::Node& node, const std::string& path, std::string_view what) const {
    if (!node.IsMap())
      fail_at(node, path, "must be a map of keys (", what, "), got ", describe(node));
  }

  int64_t integer(const YAML::Node& node, const std::string& path, int64_t min, int64_t max,
                  std::string_view range) const {
    int64_t value = 0;
    if (!parse_number(node, value)) fail_at(node, path, "must be an integer, got ", describe(node));
    if (value < min || value > max) fail_at(node, path, "must be ", range, ", got ", value);
    return value;
  }

  uint64_t unsigned_integer(const YAML::Node& node, const std::string& path) const {
    uint64_t value = 0;
    if (!parse_number(node, value)) {
      fail_at(node, path, "must be an unsigned 64-bit integer, got ", describe(node));
    }
    return value;
  }

  // A finite number in [min, max]; `open_min`/`open_max` exclude the bound.
  double real(const YAML::Node& node, const std::string& path, double min, bool open_min,
              double max, bool open_max, std::string_view range) const {
    double value = 0;
    if (!parse_number(node, value) || !std::isfinite(value)) {
      fail_at(node, path, "must be a finite number, got ", describe(node));
    }
    if ((open_min ? value <= min : value < min) || (open_max ? value >= max : value > max)) {
      fail_at(node, path, "must be in ", range, ", got ", node.Scalar());
    }
    return value;
  }

  bool boolean(const YAML::Node& node, const std::string& path) const {
    if (node.IsScalar() && node.Tag() != "!") {
      std::string text = node.Scalar();
      std::transform(text.begin(), text.end(), text.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (text == "true" || text == "yes" || text == "on") return true;
      if (text == "false" || text == "no" || text == "off") return false;
    }
    fail_at(node, path, "must be true or false, got ", describe(node));
  }

  // A scalar as text; an empty value ("key:" or "~") reads as "".
  std::string text(const YAML::Node& node, const std::string& path) const {
    if (node.IsNull()) return "";
    if (!node.IsScalar()) fail_at(node, path, "must be text, got ", describe(node));
    return node.Scalar();
  }

  std::string non_empty_text(const YAML::Node& node, const std::string& path,
                             std::string_view what) const {
    std::string value = text(node, path);
    if (trim(value).empty()) fail_at(node, path, "must not be empty (", what, ")");
    return value;
  }

 private:
  bool from_override(const std::string& path) const {
    for (const std::string& key : overridden_) {
      if (path == key || (path.size() > key.size() && path.compare(0, key.size(), key) == 0 &&
                          (path[key.size()] == '.' || path[key.size()] == '['))) {
        return true;
      }
    }
    return false;
  }

  std::string at_mark(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? file_ : cat(file_, ":", mark.line + 1);
  }

  // Plain (unquoted) decimal scalars only: "4" yes; "\"4\"", "0x10", "1e3" (for integers) no.
  template <typename Number>
  static bool parse_number(const YAML::Node& node, Number& value) {
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

  std::string file_;
  std::set<std::string> overridden_;
  mutable std::map<std::string, int> key_lines_;  // dotted path -> line, filled by check_keys
};

constexpr std::array<std::string_view, 20> kDefaultNames = {
    "Alice",   "Bob",  "Carol",  "Dave",  "Eve",    "Frank", "Grace", "Heidi",  "Ivan",   "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Wendy"};

std::vector<std::string> default_names(int64_t workers) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < workers; ++i) {
    names.push_back(static_cast<size_t>(i) < kDefaultNames.size()
                        ? std::string(kDefaultNames[static_cast<size_t>(i)])
                        : cat("Worker", i + 1));
  }
  return names;
}

std::vector<std::string> read_names(const ConfigReader& reader, const YAML::Node& node,
                                    int64_t workers) {
  if (!node.IsSequence()) {
    reader.fail_at(node, "names", "must be a list of worker names, e.g. [Alice, Bob], got ",
                   describe(node));
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = cat("names[", i, "]");
    std::string name = reader.non_empty_text(node[i], path, "a worker's name");
    const bool bad_char = std::any_of(name.begin(), name.end(), [](char c) {
      return c == '/' || std::iscntrl(static_cast<unsigned char>(c)) != 0;
    });
    if (bad_char) reader.fail_at(node[i], path, "must not contain '/' or control characters");
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      reader.fail_at(node[i], path, "repeats the name '", name, "': names must differ");
    }
    names.push_back(std::move(name));
  }
  if (static_cast<int64_t>(names.size()) != workers) {
    reader.fail_at(node, "names", "has ", names.size(), names.size() == 1 ? " name" : " names",
                   " but workers is ", workers, ": give exactly one name per worker");
  }
  return names;
}

Layout read_layout(const ConfigReader& reader, const YAML::Node& node) {
  const std::string value = reader.text(node, "layout");
  for (Layout layout : {Layout::Contiguous, Layout::Interleaved, Layout::Combined}) {
    if (value == layout_name(layout)) return layout;
  }
  reader.fail_at(node, "layout", "must be contiguous, interleaved or combined, got ",
                 describe(node));
}

ParallelConfig read_parallel(const ConfigReader& reader, const YAML::Node& node) {
  reader.require_map(node, "parallel", "tensor, worker_groups");
  reader.check_keys(node, "parallel", kParallelKeys);
  ParallelConfig parallel;
  if (const YAML::Node n = node["tensor"]; n.IsDefined())
    parallel.tensor = reader.integer(n, "parallel.tensor", 1, 4096, ">= 1");
  if (const YAML::Node n = node["worker_groups"]; n.IsDefined())
    parallel.worker_groups = reader.integer(n, "parallel.worker_groups", 1, 4096, ">= 1");
  if (const YAML::Node n = node["sync"]; n.IsDefined()) {
    const std::string sync = reader.text(n, "parallel.sync");
    if (sync == "layer") {
      parallel.sync = SyncMode::Layer;
    } else if (sync == "step") {
      parallel.sync = SyncMode::Step;
    } else {
      reader.fail_at(n, "parallel.sync", cat("must be layer or step, got '", sync, "'"));
    }
  }
  if (const YAML::Node n = node["timeout_seconds"]; n.IsDefined())
    parallel.timeout_seconds =
        reader.real(n, "parallel.timeout_seconds", 0, false, 1e9, true, "> 0");
  return parallel;
}

SamplingParams read_sampling(const ConfigReader& reader, const YAML::Node& node) {
  reader.require_map(node, "sampling", "temperature, top_k, top_p, min_p");
  reader.check_keys(node, "sampling", kSamplingKeys);
  SamplingParams sampling;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (const YAML::Node n = node["temperature"]; n.IsDefined()) {
    sampling.temperature = reader.real(n, "sampling.temperature", 0, false, kInf, true, ">= 0");
  }
  if (const YAML::Node n = node["top_k"]; n.IsDefined()) {
    sampling.top_k = reader.integer(n, "sampling.top_k", 0, std::numeric_limits<int64_t>::max(),
                                    ">= 0 (0 = off)");
  }
  if (const YAML::Node n = node["top_p"]; n.IsDefined()) {
    sampling.top_p = reader.real(n, "sampling.top_p", 0, true, 1, false, "(0, 1]");
  }
  if (const YAML::Node n = node["min_p"]; n.IsDefined()) {
    sampling.min_p = reader.real(n, "sampling.min_p", 0, false, 1, true, "[0, 1)");
  }
  return sampling;
}

PromptConfig read_prompts(const ConfigReader& reader, const YAML::Node& node) {
  reader.require_map(node, "prompts", "system, step_prefix, finisher, ...");
  reader.check_keys(node, "prompts", kPromptKeys);
  PromptConfig prompts = default_prompts();
  const std::pair<std::string_view, std::string PromptConfig::*> texts[] = {
      {"system", &PromptConfig::system},
      {"history_header", &PromptConfig::history_header},
      {"others_header", &PromptConfig::others_header},
      {"own_header", &PromptConfig::own_header},
      {"step_prefix", &PromptConfig::step_prefix},
      {"first_step_prefix", &PromptConfig::first_step_prefix},
      {"incomplete_marker", &PromptConfig::incomplete_marker},
      {"redundancy_check", &PromptConfig::redundancy_check},
      {"finisher", &PromptConfig::finisher}};
  for (const auto& [key, field] : texts) {
    if (const YAML::Node n = node[std::string(key)]; n.IsDefined()) {
      prompts.*field = reader.text(n, cat("prompts.", key));
    }
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (const YAML::Node n = node["redundancy_interval"]; n.IsDefined()) {
    prompts.redundancy_interval =
        reader.integer(n, "prompts.redundancy_interval", 0, kMax, ">= 0 (0 = never)");
  }
  if (const YAML::Node n = node["finisher_tokens"]; n.IsDefined()) {
    prompts.finisher_tokens = reader.integer(n, "prompts.finisher_tokens", 0, kMax, ">= 0");
  }
  if (const YAML::Node n = node["chat_template"]; n.IsDefined()) {
    prompts.chat_template = reader.boolean(n, "prompts.chat_template");
  }
  if (const YAML::Node n = node["collaborate"]; n.IsDefined()) {
    prompts.collaborate = reader.boolean(n, "prompts.collaborate");
  }
  return prompts;
}

std::vector<Problem> read_inline_problems(const ConfigReader& reader, const YAML::Node& list) {
  if (list.size() == 0) reader.fail_at(list, "problems", "is empty: give at least one problem");
  std::vector<Problem> problems;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string path = cat("problems[", i, "]");
    Problem problem;
    problem.id = cat("inline-", i);
    if (item.IsMap()) {
      reader.check_keys(item, path, kProblemKeys);
      const YAML::Node question = item["question"];
      if (!question.IsDefined()) reader.fail_at(item, path, "has no question");
      problem.question = reader.non_empty_text(question, path + ".question", "the problem's text");
      if (const YAML::Node answer = item["answer"]; answer.IsDefined()) {
        problem.answer = final_answer_of_reference(reader.text(answer, path + ".answer"));
      }
    } else if (item.IsScalar() || item.IsNull()) {
      problem.question = reader.non_empty_text(item, path, "the problem's text");
    } else {
      reader.fail_at(item, path, "must be a question or a map {question: ..., answer: ...}, got ",
                     describe(item));
    }
    problems.push_back(std::move(problem));
  }
  return problems;
}

// Relative to the current folder first (users run from the repository root), then to the YAML's.
std::string resolve_problems_path(const ConfigReader& reader, const YAML::Node& node,
                                  const std::string& given) {
  const fs::path path(given);
  std::error_code error;
  if (path.is_absolute() || fs::exists(path, error)) {
    if (!fs::is_regular_file(path, error)) {
      reader.fail_at(node, "problems.file", "'", given, "' is not a readable file");
    }
    return given;
  }
  const fs::path beside = (fs::path(reader.file()).parent_path() / path).lexically_normal();
  if (fs::is_regular_file(beside, error)) return beside.string();
  reader.fail_at(node, "problems.file", "'", given, "' not found (looked in the current folder ",
                 fs::current_path(error).string(), " and beside the config: ", beside.string(),
                 ")");
}

std::vector<Problem> read_problems_file(const ConfigReader& reader, const YAML::Node& map,
                                        ProblemsFile& source) {
  reader.check_keys(map, "problems", kProblemsFileKeys);
  const YAML::Node file = map["file"];
  if (!file.IsDefined()) {
    reader.fail_at(map, "problems",
                   "needs a file (problems.file: PATH.jsonl) or a list of questions");
  }
  const std::string given = reader.non_empty_text(file, "problems.file", "a JSONL file");
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (const YAML::Node n = map["question_field"]; n.IsDefined()) {
    source.question_field = reader.non_empty_text(n, "problems.question_field", "a JSON key");
  }
  if (const YAML::Node n = map["answer_field"]; n.IsDefined()) {
    source.answer_field = reader.text(n, "problems.answer_field");  // "" = no reference answers
  }
  if (const YAML::Node n = map["offset"]; n.IsDefined()) {
    source.offset = reader.integer(n, "problems.offset", 0, kMax, ">= 0");
  }
  if (const YAML::Node n = map["limit"]; n.IsDefined()) {
    source.limit = reader.integer(n, "problems.limit", -1, kMax, ">= 1, or -1 for all");
    if (source.limit == 0)
      reader.fail_at(n, "problems.limit", "must be >= 1, or -1 for all, got 0");
  }
  source.path = resolve_problems_path(reader, file, given);

  const std::string content = read_text_file(source.path);
  const std::string id_prefix = fs::path(source.path).filename().string();
  std::vector<Problem> problems;
  int64_t records = 0;
  size_t line_number = 0;
  for (size_t start = 0; start < content.size();) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    std::string_view line(content.data() + start, end - start);
    start = end + 1;
    ++line_number;
    if (line_number == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    if (trim(line).empty()) continue;  // blank lines are not problems
    if (records++ < source.offset) continue;
    if (source.limit >= 0 && static_cast<int64_t>(problems.size()) >= source.limit) break;

    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line.begin(), line.end());
    } catch (const nlohmann::json::parse_error& e) {
      std::string_view what = e.what();
      if (const size_t bracket = what.find("] "); bracket != std::string_view::npos) {
        what.remove_prefix(bracket + 2);
      }
      fail(source.path, ":", line_number, ": not valid JSON: ", what);
    }
    if (!record.is_object()) {
      fail(source.path, ":", line_number, ": expected a JSON object, got ", record.type_name());
    }
    const auto question = record.find(source.question_field);
    if (question == record.end() || !question->is_string()) {
      fail(source.path, ":", line_number, ": no text field '", source.question_field,
           "' (problems.question_field in ", reader.file(), ")");
    }
    Problem problem;
    problem.id = cat(id_prefix, ":", line_number);
    problem.question = question->get<std::string>();
    if (!source.answer_field.empty()) {
      if (const auto answer = record.find(source.answer_field); answer != record.end()) {
        if (answer->is_string()) {
          problem.answer = final_answer_of_reference(answer->get<std::string>());
        } else if (answer->is_number()) {
          problem.answer = answer->dump();
        } else if (!answer->is_null()) {
          fail(source.path, ":", line_number, ": field '", source.answer_field,
               "' must be text or a number, got ", answer->type_name());
        }
      }
    }
    problems.push_back(std::move(problem));
  }
  if (problems.empty()) {
    reader.fail_at(file, "problems.file", "'", source.path, "' has no problems",
                   source.offset > 0 ? cat(" after skipping ", source.offset) : "");
  }
  return problems;
}

RunConfig read_config(const ConfigReader& reader, const YAML::Node& root) {
  reader.check_keys(root, "", kTopKeys);
  RunConfig config;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

  const YAML::Node model = root["model"];
  if (!model.IsDefined()) {
    fail(reader.file(), ": model is required (a .gguf file or a Hugging Face checkpoint folder)");
  }
  config.model = reader.non_empty_text(model, "model", "the model's path");
  if (const YAML::Node n = root["workers"]; n.IsDefined()) {
    config.workers = reader.integer(n, "workers", 1, 64, "in [1, 64]");
  }
  if (const YAML::Node n = root["names"]; n.IsDefined()) {
    config.names = read_names(reader, n, config.workers);
  } else {
    config.names = default_names(config.workers);
  }
  if (const YAML::Node n = root["layout"]; n.IsDefined()) config.layout = read_layout(reader, n);
  if (const YAML::Node n = root["budget"]; n.IsDefined()) {
    config.budget = reader.integer(n, "budget", 1, kMax, ">= 1");
  }
  if (const YAML::Node n = root["seed"]; n.IsDefined()) {
    config.seed = reader.unsigned_integer(n, "seed");
  }
  if (const YAML::Node n = root["backend"]; n.IsDefined()) {
    config.backend = reader.text(n, "backend");
    if (config.backend != "cpu" && config.backend != "cuda")
      reader.fail_at(n, "backend", cat("must be cpu or cuda, got '", config.backend, "'"));
  }
  if (const YAML::Node n = root["parallel"]; n.IsDefined()) {
    config.parallel = read_parallel(reader, n);
  }
  if (const YAML::Node n = root["sampling"]; n.IsDefined()) {
    config.sampling = read_sampling(reader, n);
  }

  const YAML::Node problems = root["problems"];
  if (!problems.IsDefined()) {
    fail(reader.file(), ": problems is required: a list of questions, or {file: PATH.jsonl}");
  }
  if (problems.IsSequence()) {
    config.problems = read_inline_problems(reader, problems);
  } else if (problems.IsMap()) {
    config.problems_file.emplace();
    config.problems = read_problems_file(reader, problems, *config.problems_file);
  } else if (problems.IsNull()) {
    reader.fail_at(problems, "problems", "is empty: give at least one problem");
  } else {
    reader.fail_at(problems, "problems", "must be a list of questions or a map {file: ...}, got ",
                   describe(problems));
  }

  if (const YAML::Node n = root["batch_problems"]; n.IsDefined()) {
    config.batch_problems = reader.integer(n, "batch_problems", 1, kMax, ">= 1");
  }
  if (const YAML::Node n = root["output"]; n.IsDefined()) {
    config.output = reader.non_empty_text(n, "output", "the results file, e.g. results/run.h5");
  }
  if (const YAML::Node n = root["transcript"]; n.IsDefined()) {
    config.transcript = reader.text(n, "transcript");
  }
  if (trim(config.transcript).empty()) {
    config.transcript = fs::path(config.output).replace_extension(".txt").string();
  }
  if (const YAML::Node n = root["page_size"]; n.IsDefined()) {
    config.page_size = reader.integer(n, "page_size", 8, 256, "a power of two in [8, 256]");
    if ((config.page_size & (config.page_size - 1)) != 0) {
      reader.fail_at(n, "page_size", "must be a power of two in [8, 256], got ", config.page_size);
    }
  }
  if (const YAML::Node n = root["max_tokens_per_problem"]; n.IsDefined()) {
    config.max_tokens_per_problem =
        reader.integer(n, "max_tokens_per_problem", 256, kMax, ">= 256");
  }
  config.prompts = default_prompts();
  if (const YAML::Node n = root["prompts"]; n.IsDefined()) config.prompts = read_prompts(reader, n);
  return config;
}

}  // namespace

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string text = read_text_file(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    fail(path, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg);
  } catch (const YAML::Exception& e) {
    fail(path, ": cannot read YAML: ", e.what());
  }
  if (!root.IsDefined() || root.IsNull()) root.reset(YAML::Node(YAML::NodeType::Map));
  if (!root.IsMap()) {
    fail(ConfigReader(path, {}).where(root, ""),
         ": the configuration must be a map of keys "
         "(model: ..., workers: ..., problems: ...), got ",
         describe(root));
  }

  std::set<std::string> overridden;
  for (const std::string& override_text : overrides) {
    overridden.insert(apply_override(root, override_text));
  }
  const ConfigReader reader(path, std::move(overridden));
  RunConfig config = read_config(reader, root);

  YAML::Emitter emitter;
  emitter << root;
  config.source_text = cat(emitter.c_str(), "\n");
  return config;
}

}  // namespace hogwild
