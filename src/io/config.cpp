// The run configuration: a YAML file, `dotted.key=value` overrides applied to its tree, then a
// validation pass that reads every key as the key table (config_keys.cpp) declares it. Every
// error names the file, the key path and the line (or "(from override)"), so a typo never
// silently becomes a default.
#include "io/config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/mapped_file.h"
#include "io/key_reader.h"
#include "io/output_paths.h"
#include "io/overrides.h"
#include "io/worker_names.h"
#include "io/yaml_reader.h"

namespace hogwild {
namespace {

// The style whose defaults the other prompts.* keys replace. Read ahead of the keys (which
// check it again, with the message for a bad value); anything but "compact" leaves the paper's.
PromptStyle style_ahead(const YAML::Node& root) {
  const YAML::Node prompts = root["prompts"];
  if (!prompts.IsDefined() || !prompts.IsMap()) return PromptStyle::Paper;
  const YAML::Node style = prompts["style"];
  return style.IsDefined() && style.IsScalar() && style.Scalar() == "compact" ? PromptStyle::Compact
                                                                              : PromptStyle::Paper;
}

// A prompt text from a file (prompts.system_file or prompts.user_file): relative paths from the
// current folder first, then beside the YAML (as problems.file). Every failure is one line naming
// the key and the path.
std::string read_prompt_file(const ConfigReader& reader, const YAML::Node& node,
                             const std::string& key, const std::string& given) {
  namespace fs = std::filesystem;
  // A prompt is text a model reads: a few MiB is already far more than any context.
  constexpr size_t kMaxPromptBytes = size_t{16} << 20;
  if (trim(given).empty()) reader.fail_at(node, key, "is empty: give a file path or leave it out");
  std::error_code error;
  fs::path path(given);
  if (!path.is_absolute() && !fs::exists(path, error)) {
    const fs::path beside = (fs::path(reader.file()).parent_path() / path).lexically_normal();
    if (!fs::exists(beside, error))
      reader.fail_at(node, key, "'", given, "' not found (looked in the current folder ",
                     fs::current_path(error).string(), " and beside the config: ", beside.string(),
                     ")");
    path = beside;
  }
  if (!fs::is_regular_file(path, error))
    reader.fail_at(node, key, "'", path.string(), "' is not a regular file");
  try {
    return read_regular_text_file(path.string(), kMaxPromptBytes);
  } catch (const Error& e) {
    reader.fail_at(node, key, "cannot read the prompt: ", e.what());
  }
}

void read_prompt_files(const ConfigReader& reader, const YAML::Node& root, RunConfig& config) {
  const YAML::Node prompts = root["prompts"];
  const std::pair<const char*, std::string*> texts[] = {{"system", &config.prompts.system},
                                                        {"user", &config.prompts.user}};
  const std::string* files[] = {&config.prompt_files.system, &config.prompt_files.user};
  for (size_t i = 0; i < 2; ++i) {
    const std::string name = texts[i].first;
    const YAML::Node file = prompts[name + "_file"];
    if (!file.IsDefined()) continue;
    if (prompts[name].IsDefined())
      reader.fail_at(file, "prompts." + name + "_file", "and prompts.", name,
                     " are both given: keep one");
    *texts[i].second = read_prompt_file(reader, file, "prompts." + name + "_file", *files[i]);
  }
}

// What each method implies for the other keys (settings.h, Method): the baselines decode without
// collaboration prompts; `single` is one worker; `self_consistency` samples and votes. A key that
// contradicts its method is an error naming both.
void check_method(const ConfigReader& reader, const YAML::Node& root, RunConfig& config) {
  if (config.method == Method::Hogwild) {
    if (config.vote)
      reader.fail_at(root["vote"], "vote",
                     "applies to method independent (self_consistency always votes), not to "
                     "method hogwild");
    return;
  }
  // The baselines' workers decode without collaboration prompts, whatever prompts.* say (a base
  // config shared with hogwild runs keeps its prompts).
  config.prompts.collaborate = false;
  switch (config.method) {
    case Method::Single:
      if (root["workers"].IsDefined() && config.workers != 1)
        reader.fail_at(root["workers"], "workers", "must be 1 with method single, got ",
                       config.workers, " (independent workers: method independent)");
      if (config.vote)
        reader.fail_at(root["vote"], "vote", "needs several workers: not with method single");
      config.workers = 1;
      break;
    case Method::SelfConsistency:
      if (config.sampling.temperature <= 0)
        reader.fail_at(root["sampling"].IsDefined() ? root["sampling"]["temperature"] : root,
                       "sampling.temperature",
                       "must be above 0 with method self_consistency (greedy samples would all be "
                       "the same), got ",
                       config.sampling.temperature);
      if (root["vote"].IsDefined() && !config.vote)
        reader.fail_at(root["vote"], "vote", "cannot be false with method self_consistency");
      config.vote = true;
      break;
    default:
      break;
  }
}

RunConfig read_config(const ConfigReader& reader, const YAML::Node& root) {
  RunConfig config;
  // prompts.* keys replace single texts of the built-in ones of the chosen style.
  config.prompts = default_prompts(style_ahead(root));
  read_keys(reader, root, "", config);
  if (const YAML::Node prompts = root["prompts"]; prompts.IsDefined() && prompts.IsMap())
    read_prompt_files(reader, root, config);
  // A worker's logits are on its group's ranks only, and the results are written on rank 0.
  if (config.record_logprobs > 0 && config.parallel.worker_groups > 1)
    reader.fail_at(root["record_logprobs"], "record_logprobs",
                   "needs parallel.worker_groups: 1 (got ", config.parallel.worker_groups,
                   "): the logits of other groups' workers never reach rank 0, which writes the "
                   "results");
  check_method(reader, root, config);
  if (!config.checkpoints.empty() && config.checkpoints.back() > config.budget)
    reader.fail_at(root["checkpoints"], "checkpoints", "has ", config.checkpoints.back(),
                   ", more than the budget (", config.budget,
                   "): a checkpoint is a budget the run also reaches");
  // Defaults that depend on other keys.
  if (config.names.empty()) config.names = default_names(config.workers);
  if (trim(config.transcript).empty()) {
    config.transcript = std::filesystem::path(config.output).replace_extension(".txt").string();
  }
  return config;
}

}  // namespace

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  return load_run_config_text(read_text_file(path), path, overrides);
}

RunConfig load_run_config_text(const std::string& text, const std::string& path,
                               const std::vector<std::string>& overrides) {
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
  check_output_paths(config, path);

  YAML::Emitter emitter;
  emitter << root;
  config.source_text = cat(emitter.c_str(), "\n");
  return config;
}

TeamSettings team_settings(const RunConfig& config) {
  TeamSettings settings;
  settings.layout = config.layout;
  settings.names = config.names;
  settings.prompts = config.prompts;
  settings.sampling = config.sampling;
  settings.budget = config.budget;
  settings.max_tokens = config.max_tokens_per_problem;
  settings.seed = config.seed;
  settings.worker_groups = static_cast<int32_t>(config.parallel.worker_groups);
  settings.record_logprobs = config.record_logprobs;
  settings.method = config.method;
  settings.vote = config.vote;
  settings.checkpoints = config.checkpoints;
  return settings;
}

}  // namespace hogwild
