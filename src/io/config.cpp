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

RunConfig read_config(const ConfigReader& reader, const YAML::Node& root) {
  RunConfig config;
  config.prompts = default_prompts();  // prompts.* keys replace single texts of the built-in ones
  read_keys(reader, root, "", config);
  // A worker's logits are on its group's ranks only, and the results are written on rank 0.
  if (config.record_logprobs > 0 && config.parallel.worker_groups > 1)
    reader.fail_at(root["record_logprobs"], "record_logprobs",
                   "needs parallel.worker_groups: 1 (got ", config.parallel.worker_groups,
                   "): the logits of other groups' workers never reach rank 0, which writes the "
                   "results");
  // Defaults that depend on other keys.
  if (config.names.empty()) config.names = default_names(config.workers);
  if (trim(config.transcript).empty()) {
    config.transcript = std::filesystem::path(config.output).replace_extension(".txt").string();
  }
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
  return settings;
}

}  // namespace hogwild
