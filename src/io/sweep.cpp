#include "io/sweep.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/mapped_file.h"
#include "io/config_keys.h"

namespace hogwild {
namespace {

std::string where(const std::string& path, const YAML::Node& node) {
  return node.IsDefined() && node.Mark().line >= 0 ? cat(path, ":", node.Mark().line + 1) : path;
}

// A value as override text: a scalar as written, a list or map in flow style.
std::string value_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter emitter;
  emitter << YAML::Flow << node;
  return emitter.c_str();
}

// The run key a varied key names; sections and the sweep's own outputs are not run keys here.
void check_run_key(const std::string& path, const YAML::Node& node, const std::string& key,
                   const std::string& list) {
  const ConfigKey* row = find_config_key(key);
  if (row == nullptr || row->kind == KeyKind::kSection || key.find("[]") != std::string::npos)
    fail(where(path, node), ": ", list, ".", key,
         " is not a run key (configs/README.md lists them; dotted, e.g. sampling.temperature)");
  if (key == "output" || key == "transcript")
    fail(where(path, node), ": ", list, ".", key,
         " cannot vary: the sweep names each run's files itself (the sweep's output: is a folder)");
}

std::vector<YAML::Node> values_of(const std::string& path, const YAML::Node& list,
                                  const std::string& name) {
  if (!list.IsSequence())
    fail(where(path, list), ": ", name, " must be a list of values, e.g. [2, 4]");
  if (list.size() == 0)
    fail(where(path, list), ": ", name, " is an empty list: no run would vary it");
  std::vector<YAML::Node> values;
  for (const YAML::Node& value : list) values.push_back(value);
  return values;
}

std::string file_name(std::string id) {
  for (char& c : id)
    if (c == '/' || c == '\0') c = '_';
  return id.empty() ? std::string("run") : id;
}

}  // namespace

SweepPlan load_sweep(const std::string& path, const std::vector<std::string>& overrides) {
  SweepPlan plan;
  plan.path = path;
  YAML::Node root;
  try {
    root = YAML::Load(read_text_file(path));
  } catch (const YAML::ParserException& e) {
    fail(path, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg);
  }
  if (!root.IsMap())
    fail(path, ": a sweep is a map of keys (base_config or base, output, grid, zip, seeds)");
  static const std::set<std::string> kKeys = {"base", "base_config", "output",
                                              "grid", "zip",         "seeds"};
  for (const auto& item : root) {
    const std::string key = item.first.as<std::string>();
    if (!kKeys.contains(key))
      fail(where(path, item.first), ": unknown sweep key '", key,
           "' (sweep keys: base_config, base, output, grid, zip, seeds; run keys go under base: "
           "or in the base config)");
  }
  const YAML::Node base = root["base"], base_config = root["base_config"];
  if (base.IsDefined() == base_config.IsDefined())
    fail(path, ": give exactly one of base_config: (a run config file) or base: (its keys inline)");
  if (base_config.IsDefined()) {
    if (!base_config.IsScalar() || base_config.Scalar().empty())
      fail(where(path, base_config), ": base_config must be a path");
    std::filesystem::path file = base_config.Scalar();
    if (file.is_relative()) file = std::filesystem::path(path).parent_path() / file;
    plan.base_path = file.lexically_normal().string();
    try {
      plan.base_text = read_text_file(plan.base_path);
    } catch (const Error& e) {
      fail(where(path, base_config), ": base_config: ", e.what());
    }
  } else {
    if (!base.IsMap()) fail(where(path, base), ": base must be a map of run keys");
    YAML::Emitter emitter;
    emitter << base;
    plan.base_path = path;
    plan.base_text = cat(emitter.c_str(), "\n");
  }
  const YAML::Node output = root["output"];
  if (!output.IsDefined() || !output.IsScalar() || output.Scalar().empty())
    fail(path, ": output is required: the folder for the runs' results (e.g. results/sweep)");
  plan.output = output.Scalar();

  // The axes, in the file's order: each grid key, the zip (one axis), the seeds.
  struct Axis {
    std::vector<std::string> keys;
    std::vector<std::vector<YAML::Node>> values;  // [choice][key]
  };
  std::vector<Axis> axes;
  std::map<std::string, std::string> varied_in;  // key -> "grid" / "zip" / "seeds"
  auto claim = [&](const std::string& key, const char* list, const YAML::Node& node) {
    if (const auto other = varied_in.find(key); other != varied_in.end())
      fail(where(path, node), ": ", key, " is varied twice (in ", other->second, " and ", list,
           ")");
    varied_in[key] = list;
  };
  if (const YAML::Node grid = root["grid"]; grid.IsDefined()) {
    if (!grid.IsMap()) fail(where(path, grid), ": grid must map run keys to lists of values");
    for (const auto& item : grid) {
      const std::string key = item.first.as<std::string>();
      check_run_key(path, item.first, key, "grid");
      claim(key, "grid", item.first);
      Axis axis{{key}, {}};
      for (const YAML::Node& value : values_of(path, item.second, "grid." + key))
        axis.values.push_back({value});
      axes.push_back(axis);
    }
  }
  if (const YAML::Node zip = root["zip"]; zip.IsDefined()) {
    if (!zip.IsMap() || zip.size() == 0)
      fail(where(path, zip), ": zip must map run keys to lists of one length");
    Axis axis;
    size_t length = 0;
    for (const auto& item : zip) {
      const std::string key = item.first.as<std::string>();
      check_run_key(path, item.first, key, "zip");
      claim(key, "zip", item.first);
      const std::vector<YAML::Node> values = values_of(path, item.second, "zip." + key);
      if (axis.keys.empty()) {
        length = values.size();
        axis.values.resize(length);
      } else if (values.size() != length) {
        fail(where(path, item.second), ": zip.", key, " has ", values.size(), " values but zip.",
             axis.keys.front(), " has ", length, ": zipped lists vary together, one length");
      }
      axis.keys.push_back(key);
      for (size_t i = 0; i < length; ++i) axis.values[i].push_back(values[i]);
    }
    axes.push_back(axis);
  }
  if (const YAML::Node seeds = root["seeds"]; seeds.IsDefined()) {
    claim("seed", "seeds", seeds);
    Axis axis{{"seed"}, {}};
    for (const YAML::Node& value : values_of(path, seeds, "seeds")) axis.values.push_back({value});
    axes.push_back(axis);
  }
  std::vector<std::string> run_overrides;
  for (const std::string& text : overrides) {
    const size_t equals = text.find('=');
    if (equals == std::string::npos || equals == 0)
      fail("sweep: '", text, "' is not an override (key=value)");
    const std::string key = text.substr(0, equals);
    // output= moves the sweep's folder; the runs' own files are named by the sweep.
    if (key == "output") {
      if (equals + 1 == text.size()) fail("sweep: output= needs a folder");
      plan.output = text.substr(equals + 1);
      continue;
    }
    if (key == "transcript")
      fail("sweep: transcript= cannot be set: each run's transcript is beside its results");
    run_overrides.push_back(text);
    if (const auto varied = varied_in.find(key); varied != varied_in.end())
      fail("sweep: ", key, " is both overridden (", text, ") and varied in ", varied->second,
           " of ", path, ": keep one");
  }

  // The cartesian product, the first axis slowest.
  int64_t total = 1;
  for (const Axis& axis : axes) {
    total *= static_cast<int64_t>(axis.values.size());
    if (total > 100 * kMaxRunsWithoutYes)
      fail(path, ": the sweep has more than ", 100 * kMaxRunsWithoutYes, " runs");
  }
  std::vector<size_t> choice(axes.size(), 0);
  for (int64_t r = 0; r < total; ++r) {
    SweepRun run;
    nlohmann::ordered_json varied = nlohmann::ordered_json::object();
    std::string id;
    for (size_t a = 0; a < axes.size(); ++a) {
      for (size_t k = 0; k < axes[a].keys.size(); ++k) {
        const std::string& key = axes[a].keys[k];
        const std::string value = value_text(axes[a].values[choice[a]][k]);
        run.overrides.push_back(cat(key, "=", value));
        varied[key] = value;
        if (!id.empty()) id += ',';
        id += cat(key, "=", value);
      }
    }
    for (const std::string& text : run_overrides) run.overrides.push_back(text);
    run.id = file_name(id);
    run.varied = varied.dump();
    plan.runs.push_back(std::move(run));
    for (size_t a = axes.size(); a-- > 0;) {
      if (++choice[a] < axes[a].values.size()) break;
      choice[a] = 0;
    }
  }
  std::set<std::string> ids;
  for (const SweepRun& run : plan.runs)
    if (!ids.insert(run.id).second)
      fail(path, ": two runs would share the id '", run.id, "' (a list repeats a value?)");

  YAML::Node identity = YAML::Clone(root);
  identity.remove("output");
  YAML::Emitter emitter;
  emitter << identity;
  // What makes the sweep: its file (less where it writes) and the overrides that change results.
  plan.identity = cat(emitter.c_str(), "\n");
  for (const std::string& text : run_overrides)
    if (!text.starts_with("threads=")) plan.identity += "# override: " + text + "\n";
  return plan;
}

}  // namespace hogwild
