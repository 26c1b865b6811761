// The key table (io/config_keys.h) against configs/README.md and the loader: every key is
// documented with its range, default and meaning, every documented default is the one loading
// gives, every plain key is read into its field, and what the table derives (known-key lists,
// text overrides) is what the hand-kept lists used to say.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/error.h"
#include "io/config.h"
#include "io/config_keys.h"
#include "test_support.h"

namespace hogwild {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// ---- configs/README.md ----

struct ReadmeRow {
  int line = 0;
  std::string type;
  std::string default_text;
  std::string meaning;
};

std::string trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return std::string(text);
}

// "| a | b |" -> {"a", "b"}
std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  std::string_view rest(line);
  rest.remove_prefix(1);
  if (!rest.empty() && rest.back() == '|') rest.remove_suffix(1);
  for (size_t bar; (bar = rest.find('|')) != std::string_view::npos; rest.remove_prefix(bar + 1)) {
    cells.push_back(trimmed(rest.substr(0, bar)));
  }
  cells.push_back(trimmed(rest));
  return cells;
}

// The rows of every README table headed "| key | type, range | default | meaning |", by key.
std::map<std::string, ReadmeRow> readme_key_rows() {
  const std::string path = testing::source_dir() + "/configs/README.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::map<std::string, ReadmeRow> rows;
  bool in_key_table = false;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line.front() != '|') {
      in_key_table = false;
      continue;
    }
    const std::vector<std::string> cells = cells_of(line);
    if (!cells.empty() && cells[0] == "key") {
      EXPECT_EQ(cells, (std::vector<std::string>{"key", "type, range", "default", "meaning"}))
          << path << ":" << number << ": a key table needs these four columns";
      in_key_table = true;
      continue;
    }
    if (!in_key_table || cells[0].starts_with("---")) continue;
    const std::string& key = cells[0];
    if (cells.size() != 4 || key.size() < 3 || key.front() != '`' || key.back() != '`') {
      ADD_FAILURE() << path << ":" << number << ": not a `key` row of four cells: " << line;
      continue;
    }
    const std::string name = key.substr(1, key.size() - 2);
    const auto [row, inserted] =
        rows.emplace(name, ReadmeRow{number, cells[1], cells[2], cells[3]});
    EXPECT_TRUE(inserted) << path << ":" << number << ": " << name << " is documented twice";
  }
  return rows;
}

// The README row a key should have (shown when it differs or is missing).
std::string expected_row(const ConfigKey& key, std::string_view type) {
  std::ostringstream row;
  row << "| `" << key.key << "` | " << type << " | " << key.default_doc << " | " << key.doc << " |";
  return row.str();
}

TEST(ConfigKeysReadme, EveryKeyIsDocumentedWithItsDefaultAndMeaning) {
  const std::map<std::string, ReadmeRow> readme = readme_key_rows();
  for (const ConfigKey& key : config_keys()) {
    if (key.kind == KeyKind::kSection) continue;  // documented by its keys
    const auto row = readme.find(std::string(key.key));
    if (row == readme.end()) {
      ADD_FAILURE() << key.key << " is missing from configs/README.md; add\n"
                    << expected_row(key, "TYPE");
      continue;
    }
    EXPECT_EQ(row->second.default_text, key.default_doc)
        << "configs/README.md:" << row->second.line << ": the default of " << key.key
        << " differs from src/io/config_keys.cpp; expected\n"
        << expected_row(key, row->second.type);
    EXPECT_EQ(row->second.meaning, key.doc)
        << "configs/README.md:" << row->second.line << ": the meaning of " << key.key
        << " differs from src/io/config_keys.cpp; expected\n"
        << expected_row(key, row->second.type);
  }
}

TEST(ConfigKeysReadme, EveryDocumentedKeyExists) {
  for (const auto& [key, row] : readme_key_rows()) {
    const ConfigKey* known = find_config_key(key);
    EXPECT_NE(known, nullptr) << "configs/README.md:" << row.line << ": " << key
                              << " is not a key of src/io/config_keys.cpp";
  }
}

// The type column names the kind and the same bounds the error messages give.
TEST(ConfigKeysReadme, TypeColumnGivesKindAndRange) {
  const std::map<std::string, ReadmeRow> readme = readme_key_rows();
  const std::regex number(R"(-?[0-9]+(\.[0-9]+)?)");
  for (const ConfigKey& key : config_keys()) {
    const auto row = readme.find(std::string(key.key));
    if (row == readme.end()) continue;  // reported above
    const std::string& type = row->second.type;
    const std::string where = cat("configs/README.md:", row->second.line, ": ", key.key, " ");
    switch (key.kind) {
      case KeyKind::kInteger:
        EXPECT_THAT(type, ::testing::AnyOf(HasSubstr("integer"), HasSubstr("power of two")))
            << where;
        break;
      case KeyKind::kUnsigned:
        EXPECT_THAT(type, HasSubstr("unsigned")) << where;
        break;
      case KeyKind::kReal:
        EXPECT_THAT(type, HasSubstr("number")) << where;
        break;
      case KeyKind::kBoolean:
        EXPECT_EQ(type, "boolean") << where;
        break;
      case KeyKind::kText:
      case KeyKind::kNonEmptyText:
        EXPECT_THAT(type, ::testing::AnyOf(HasSubstr("text"), HasSubstr("path"))) << where;
        break;
      case KeyKind::kChoice:
        for (std::string_view choice : key.choices) {
          EXPECT_THAT(type, HasSubstr(cat("`", choice, "`"))) << where;
        }
        break;
      case KeyKind::kSection:
      case KeyKind::kCustom:
        break;
    }
    const std::string range(key.range);
    for (auto bound = std::sregex_iterator(range.begin(), range.end(), number);
         bound != std::sregex_iterator(); ++bound) {
      const std::string text = bound->str();
      const std::regex whole(
          cat("(^|[^0-9.-])", std::regex_replace(text, std::regex("\\."), "\\."), "($|[^0-9.])"));
      EXPECT_TRUE(std::regex_search(type, whole))
          << where << "type '" << type << "' does not give the bound " << text << " of '" << range
          << "'";
    }
  }
}

// ---- Defaults and fields, through the loader ----

class LoadedConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "p.jsonl") << "{\"question\": \"Q1\", \"q\": \"q1\", \"a\": 1}\n"
                                    << "{\"question\": \"Q2\", \"q\": \"q2\", \"a\": 2}\n"
                                    << "{\"question\": \"Q3\", \"q\": \"q3\", \"a\": 3}\n";
    std::ofstream(dir_ / "other.jsonl") << "{\"question\": \"O1\"}\n{\"question\": \"O2\"}\n";
    std::ofstream(inline_yaml()) << "model: m\nproblems: [Q]\n";
    std::ofstream(file_yaml()) << "model: m\nproblems: {file: p.jsonl}\n";
  }
  std::string inline_yaml() const { return dir_ / "inline.yaml"; }
  std::string file_yaml() const { return dir_ / "file.yaml"; }
  // A file of problems for the problems.* keys, an inline list for the others.
  std::string yaml_for(const ConfigKey& key) const {
    return section_of(key.key) == "problems" ? file_yaml() : inline_yaml();
  }

  testing::TempDir dir_;
};

std::string shortest(double value) {
  char buffer[64];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  return std::string(buffer, end);
}

// The value of a plain key in `config`, as an override or the README would write it.
std::string value_text(const ConfigKey& key, RunConfig& config) {
  return std::visit(
      [&](auto field) -> std::string {
        if constexpr (std::is_same_v<decltype(field), std::monostate>) {
          return "";
        } else {
          const auto& value = field(config);
          using Value = std::remove_cvref_t<decltype(value)>;
          if constexpr (std::is_enum_v<Value>) {
            return std::string(key.choices[static_cast<size_t>(value)]);
          } else if constexpr (std::is_same_v<Value, bool>) {
            return value ? "true" : "false";
          } else if constexpr (std::is_same_v<Value, double>) {
            return shortest(value);
          } else if constexpr (std::is_same_v<Value, std::string>) {
            return value;
          } else {
            return std::to_string(value);
          }
        }
      },
      key.field);
}

bool is_plain(const ConfigKey& key) { return !std::holds_alternative<std::monostate>(key.field); }

// "\n\nA \\b" -> "\\n\\nA \\\\b": a text as the README writes it between quotes.
std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        out += c;
    }
  }
  return out;
}

TEST_F(LoadedConfig, DocumentedDefaultsAreTheLoadedOnes) {
  RunConfig inline_config = load_run_config(inline_yaml(), {});
  RunConfig file_config = load_run_config(file_yaml(), {});
  int compared = 0;
  for (const ConfigKey& key : config_keys()) {
    if (!is_plain(key)) continue;
    RunConfig& config = section_of(key.key) == "problems" ? file_config : inline_config;
    const std::string value = value_text(key, config);
    const std::string_view doc = key.default_doc;
    if (key.key == "threads") {  // decided by the machine: the config holds 0 (= not given)
      EXPECT_EQ(value, "0");
      EXPECT_EQ(doc, "physical cores (`OMP_NUM_THREADS` when set)");
      ++compared;
      continue;
    }
    if (key.kind == KeyKind::kInteger || key.kind == KeyKind::kUnsigned ||
        key.kind == KeyKind::kReal) {
      EXPECT_EQ(doc, value) << key.key;
      ++compared;
      continue;
    }
    // Text defaults are compared when the README gives them literally: `text` or `"escaped"`.
    const bool one_literal = doc.size() >= 2 && doc.front() == '`' && doc.back() == '`' &&
                             std::count(doc.begin(), doc.end(), '`') == 2;
    if (!one_literal) continue;
    const std::string_view literal = doc.substr(1, doc.size() - 2);
    if (literal.size() >= 2 && literal.front() == '"' && literal.back() == '"') {
      EXPECT_EQ(literal.substr(1, literal.size() - 2), escaped(value)) << key.key;
    } else {
      EXPECT_EQ(literal, value) << key.key;
    }
    ++compared;
  }
  EXPECT_GE(compared, 30);  // every number, boolean, choice and short text
}

TEST_F(LoadedConfig, DocumentedDefaultNamesAreTheLoadedOnes) {
  const std::vector<std::string> names = load_run_config(inline_yaml(), {"workers=22"}).names;
  std::string listed;
  for (size_t i = 0; i < 20; ++i) listed += names[i] + ", ";
  EXPECT_EQ(find_config_key("names")->default_doc,
            listed + "then " + names[20] + ", " + names[21] + ", …");
}

// A valid value unlike the default, for each plain key: the table must route it to its field.
std::string other_value(const ConfigKey& key, const std::string& default_value) {
  // Prompt files must exist: any regular file is a prompt.
  static const std::map<std::string_view, std::string> kSpecial = {
      {"problems.file", "other.jsonl"},
      {"problems.question_field", "q"},
      {"problems.answer_field", "a"},
      {"prompts.system_file", "other.jsonl"},
      {"prompts.user_file", "other.jsonl"}};
  if (const auto special = kSpecial.find(key.key); special != kSpecial.end()) {
    return special->second;
  }
  switch (key.kind) {
    case KeyKind::kInteger:
      for (int64_t candidate : {key.integer.min, key.integer.min + 1, int64_t{1}, int64_t{2},
                                int64_t{16}, int64_t{300}}) {
        if (candidate < key.integer.min || candidate > key.integer.max) continue;
        if (key.integer.also != nullptr && !key.integer.also(candidate)) continue;
        if (std::to_string(candidate) != default_value) return std::to_string(candidate);
      }
      break;
    case KeyKind::kUnsigned:
      return "42";
    case KeyKind::kReal:
      return default_value == "0.5" ? "0.25" : "0.5";
    case KeyKind::kBoolean:
      return default_value == "true" ? "false" : "true";
    case KeyKind::kText:
    case KeyKind::kNonEmptyText:
      return "some text";
    case KeyKind::kChoice:
      for (std::string_view choice : key.choices) {
        if (choice != default_value) return std::string(choice);
      }
      break;
    case KeyKind::kSection:
    case KeyKind::kCustom:
      break;
  }
  ADD_FAILURE() << "no other value for " << key.key;
  return default_value;
}

TEST_F(LoadedConfig, EveryPlainKeyIsReadIntoItsField) {
  for (const ConfigKey& key : config_keys()) {
    if (!is_plain(key)) continue;
    RunConfig defaults = load_run_config(yaml_for(key), {});
    const std::string value = other_value(key, value_text(key, defaults));
    const std::string override_text = cat(key.key, "=", value);
    // Keys whose other value needs another key to agree.
    static const std::map<std::string_view, std::string> kAlso = {{"vote", "method=independent"}};
    std::vector<std::string> overrides = {override_text};
    if (const auto also = kAlso.find(key.key); also != kAlso.end())
      overrides.push_back(also->second);
    RunConfig config;
    try {
      config = load_run_config(yaml_for(key), overrides);
    } catch (const Error& e) {
      ADD_FAILURE() << override_text << ": " << e.what();
      continue;
    }
    EXPECT_EQ(value_text(key, config), key.key == "problems.file" ? dir_ / value : value)
        << override_text;
  }
}

TEST_F(LoadedConfig, ChoicesAreStoredAsTheirEnumerators) {
  for (std::string_view layout : find_config_key("layout")->choices) {
    EXPECT_EQ(layout_name(load_run_config(inline_yaml(), {cat("layout=", layout)}).layout), layout);
  }
  EXPECT_EQ(load_run_config(inline_yaml(), {"parallel.sync=layer"}).parallel.sync, SyncMode::Layer);
  EXPECT_EQ(load_run_config(inline_yaml(), {"parallel.sync=step"}).parallel.sync, SyncMode::Step);
  EXPECT_EQ(load_run_config(inline_yaml(), {"backend=cuda"}).backend, "cuda");
}

TEST_F(LoadedConfig, WrongChoiceListsTheChoices) {
  const auto error_of = [&](const std::string& override_text) -> std::string {
    try {
      load_run_config(inline_yaml(), {override_text});
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(error_of("backend=gpu"),
              HasSubstr("(from override): backend must be cpu or cuda, got 'gpu'"));
  EXPECT_THAT(error_of("parallel.sync=both"),
              HasSubstr("parallel.sync must be layer or step, got 'both'"));
  // An empty value in the file is "nothing", as for every other key.
  std::ofstream(dir_ / "empty.yaml") << "model: m\nproblems: [Q]\nbackend:\n";
  try {
    load_run_config(dir_ / "empty.yaml", {});
    ADD_FAILURE() << "an empty backend was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(":3: backend must be cpu or cuda, got nothing"));
  }
}

// ---- What the table derives, against the lists it replaced ----

std::vector<std::string_view> listed(KeyList keys) { return {keys.begin(), keys.end()}; }

TEST(ConfigKeys, KnownKeysKeepTheirOrder) {
  EXPECT_THAT(listed(keys_of("")), ElementsAreArray<std::string_view>({"model",
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
                                                                       "method",
                                                                       "vote",
                                                                       "checkpoints",
                                                                       "record_logprobs",
                                                                       "prompts",
                                                                       "parallel",
                                                                       "backend",
                                                                       "threads",
                                                                       "weights",
                                                                       "dtype",
                                                                       "cuda_graphs"}));
  EXPECT_THAT(listed(keys_of("sampling")),
              ElementsAreArray<std::string_view>({"temperature", "top_k", "top_p", "min_p"}));
  EXPECT_THAT(
      listed(keys_of("parallel")),
      ElementsAreArray<std::string_view>({"tensor", "worker_groups", "sync", "timeout_seconds"}));
  EXPECT_THAT(listed(keys_of("problems")),
              ElementsAreArray<std::string_view>(
                  {"file", "question_field", "answer_field", "offset", "limit"}));
  EXPECT_THAT(listed(keys_of("problems[]")),
              ElementsAreArray<std::string_view>({"question", "answer"}));
  EXPECT_THAT(listed(keys_of("prompts")), ElementsAreArray<std::string_view>({"style",
                                                                              "system",
                                                                              "system_file",
                                                                              "user",
                                                                              "user_file",
                                                                              "history_header",
                                                                              "others_header",
                                                                              "own_header",
                                                                              "step_prefix",
                                                                              "first_step_prefix",
                                                                              "lead_step_prefix",
                                                                              "incomplete_marker",
                                                                              "redundancy_check",
                                                                              "redundancy_interval",
                                                                              "finisher",
                                                                              "finisher_mode",
                                                                              "finisher_tokens",
                                                                              "stop_rule",
                                                                              "step_end",
                                                                              "chat_template",
                                                                              "collaborate",
                                                                              "parse_special"}));
  EXPECT_TRUE(keys_of("workers").empty());
  EXPECT_TRUE(keys_of("sampling.top_p").empty());
  EXPECT_THAT(listed(sections_hinted_at_top_level()),
              ElementsAreArray<std::string_view>({"sampling", "problems", "prompts"}));
}

TEST(ConfigKeys, TextKeysTakeOverridesLiterally) {
  std::set<std::string> literal;
  for (const ConfigKey& key : config_keys()) {
    if (takes_literal_text(key.key) && !section_of(key.key).ends_with("[]")) {
      literal.emplace(key.key);
    }
  }
  EXPECT_EQ(literal, (std::set<std::string>{"model",
                                            "dtype",
                                            "layout",
                                            "method",
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
                                            "prompts.first_step_prefix",
                                            "prompts.incomplete_marker",
                                            "prompts.redundancy_check",
                                            "prompts.finisher",
                                            "parallel.sync",
                                            "backend",
                                            "prompts.style",
                                            "prompts.system_file",
                                            "prompts.user",
                                            "prompts.user_file",
                                            "prompts.lead_step_prefix",
                                            "prompts.stop_rule",
                                            "prompts.step_end",
                                            "prompts.finisher_mode",
                                            "weights"}));
  EXPECT_FALSE(takes_literal_text("workers"));
  EXPECT_FALSE(takes_literal_text("names"));
  EXPECT_FALSE(takes_literal_text("problems"));
  EXPECT_FALSE(takes_literal_text("no.such.key"));
}

TEST(ConfigKeys, Lookups) {
  ASSERT_NE(find_config_key("sampling.top_p"), nullptr);
  EXPECT_EQ(find_config_key("sampling.top_p")->range, "(0, 1]");
  EXPECT_EQ(find_config_key("top_p"), nullptr);
  EXPECT_EQ(section_of("sampling.top_p"), "sampling");
  EXPECT_EQ(section_of("model"), "");
  EXPECT_EQ(section_of("problems[].answer"), "problems[]");
  EXPECT_EQ(name_of("sampling.top_p"), "top_p");
  EXPECT_EQ(name_of("model"), "model");
}

}  // namespace
}  // namespace hogwild
