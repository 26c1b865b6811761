// The problems of a run: inline questions, or a JSONL file read here. Internal to
// hogwild_io_config.
#pragma once

#include "io/config_keys.h"

namespace hogwild {

// The `problems` hook of the key table. A list: each item is a question or a map of the
// problems[].* keys. A map: the problems.* keys, then the problems of the JSONL file they name
// (config.problems_file says where they came from).
void read_problems(const ConfigReader& reader, const YAML::Node& node, RunConfig& config);

}  // namespace hogwild
