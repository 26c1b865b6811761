#include "io/fingerprint.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <sstream>

#include "common/error.h"

namespace hogwild {
namespace {

// Keys that change how a run is executed or where it writes, not its tokens (dtype does change
// them, so it stays; cuda_graphs replays the same kernels).
constexpr const char* kIgnored[][2] = {{"threads", nullptr},
                                       {"output", nullptr},
                                       {"transcript", nullptr},
                                       {"cuda_graphs", nullptr},
                                       {"parallel", "timeout_seconds"},
                                       {"problems", "offset"},
                                       {"problems", "limit"}};

void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& item : node)
      flatten(item.second, cat(prefix, prefix.empty() ? "" : ".", item.first.as<std::string>()),
              out);
    return;
  }
  YAML::Emitter emitter;
  emitter << YAML::Flow << node;
  out[prefix] = emitter.c_str();
}

std::map<std::string, std::string> flat(const std::string& text) {
  std::map<std::string, std::string> out;
  try {
    flatten(YAML::Load(text), "", out);
  } catch (const YAML::Exception&) {
    out[""] = text;
  }
  return out;
}

}  // namespace

std::string run_fingerprint(const RunConfig& config) {
  YAML::Node root = YAML::Load(config.source_text);
  for (const auto& key : kIgnored) {
    if (key[1] == nullptr) {
      root.remove(key[0]);
    } else if (root[key[0]].IsMap()) {
      YAML::Node section = root[key[0]];
      section.remove(key[1]);
    }
  }
  YAML::Emitter emitter;
  emitter << root;
  return cat(emitter.c_str(), "\n");
}

std::string fingerprint_difference(const std::string& was, const std::string& now) {
  const auto before = flat(was), after = flat(now);
  std::ostringstream text;
  int shown = 0;
  auto add = [&](const std::string& key, const std::string& old_value,
                 const std::string& new_value) {
    if (shown++ == 4) {
      text << ", …";
      return;
    }
    if (shown > 4) return;
    text << (shown > 1 ? ", " : "") << key << " (was " << old_value << ", now " << new_value << ")";
  };
  for (const auto& [key, value] : before) {
    const auto other = after.find(key);
    const std::string now_value = other == after.end() ? "not set" : other->second;
    if (now_value != value) add(key, value, now_value);
  }
  for (const auto& [key, value] : after)
    if (!before.contains(key)) add(key, "not set", value);
  return shown == 0 ? std::string("its texts") : text.str();
}

}  // namespace hogwild
