// Reads the keys of one YAML map as the key table declares them: required keys, typed values
// stored into RunConfig, nested sections and the hooks of custom keys. Internal to
// hogwild_io_config.
#pragma once

#include <string_view>

#include "io/config_keys.h"

namespace hogwild {

// Checks that every key of `map` (the map at dotted path `section`, "" = the top level) is known
// and given once, then reads the table's keys of that section in table order. Keys that are
// absent keep the value already in `config`.
void read_keys(const ConfigReader& reader, const YAML::Node& map, std::string_view section,
               RunConfig& config);

}  // namespace hogwild
