// `dotted.key=value` overrides from the command line, applied to the YAML tree before it is
// read. Internal to hogwild_io_config.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace hogwild {

// Sets the node at the dotted key of `text` ("sampling.top_p=0.9") in `root`, creating missing
// sections; returns the key. Unknown keys and malformed overrides throw hogwild::Error.
std::string apply_override(YAML::Node& root, const std::string& text);

}  // namespace hogwild
