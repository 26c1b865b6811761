#include "io/overrides.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "io/config_keys.h"
#include "io/yaml_reader.h"

namespace hogwild {
namespace {

YAML::Node parse_override_value(const std::string& override_text, const std::string& key,
                                const std::string& value) {
  const bool quoted = !value.empty() && (value.front() == '"' || value.front() == '\'');
  if (takes_literal_text(key) && !quoted) return YAML::Node(value);
  try {
    return YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail("override '", override_text, "': the value is not valid YAML: ", e.msg);
  }
}

}  // namespace

std::string apply_override(YAML::Node& root, const std::string& text) {
  const size_t equals = text.find('=');
  if (equals == std::string::npos) {
    fail("override '", text, "': expected key=value, e.g. sampling.temperature=0.7");
  }
  std::string key(trim(std::string_view(text).substr(0, equals)));
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
    if (std::find(known.begin(), known.end(), part) == known.end()) {
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

}  // namespace hogwild
