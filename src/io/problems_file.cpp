#include "io/problems_file.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/mapped_file.h"
#include "hogwild/text_rules.h"
#include "io/key_reader.h"
#include "io/yaml_reader.h"

namespace hogwild {
namespace {

namespace fs = std::filesystem;

std::vector<Problem> read_inline_problems(const ConfigReader& reader, const YAML::Node& list) {
  if (list.size() == 0) reader.fail_at(list, "problems", "is empty: give at least one problem");
  std::vector<Problem> problems;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string path = cat("problems[", i, "]");
    Problem problem;
    problem.id = cat("inline-", i);
    if (item.IsMap()) {
      reader.check_keys(item, path, keys_of("problems[]"));
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

// The problems of `source` (its keys already read); `file` is the problems.file node.
std::vector<Problem> load_jsonl(const ConfigReader& reader, const YAML::Node& file,
                                ProblemsFile& source) {
  source.path = resolve_problems_path(reader, file, source.path);

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

}  // namespace

void read_problems(const ConfigReader& reader, const YAML::Node& node, RunConfig& config) {
  if (node.IsSequence()) {
    config.problems = read_inline_problems(reader, node);
  } else if (node.IsMap()) {
    config.problems_file.emplace();  // the problems.* fields are stored into it
    read_keys(reader, node, "problems", config);
    config.problems = load_jsonl(reader, node["file"], *config.problems_file);
  } else if (node.IsNull()) {
    reader.fail_at(node, "problems", "is empty: give at least one problem");
  } else {
    reader.fail_at(node, "problems", "must be a list of questions or a map {file: ...}, got ",
                   describe(node));
  }
}

}  // namespace hogwild
