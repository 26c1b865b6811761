// The workers' names: the `names` key, or the default Alice, Bob, Carol, … (one per worker).
// Internal to hogwild_io_config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/config_keys.h"

namespace hogwild {

// Alice, Bob, … Wendy, then Worker21, Worker22, …
std::vector<std::string> default_names(int64_t workers);

// The `names` hook of the key table: a list of distinct names, exactly one per worker (`workers`
// is read before it).
void read_names(const ConfigReader& reader, const YAML::Node& node, RunConfig& config);

}  // namespace hogwild
