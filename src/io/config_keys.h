// The one table of run-configuration keys. Each row says what a key holds, its range, its default
// as configs/README.md shows it, a line of documentation and where the value goes in RunConfig.
// Reading the YAML, the known-key lists and "did you mean" hints, and which overrides take their
// text literally all come from this table; a test checks configs/README.md against it.
//
// A new simple key is one row in config_keys.cpp, its RunConfig field, and its README row.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/config.h"

namespace YAML {
class Node;
}

namespace hogwild {

class ConfigReader;

using KeyList = std::span<const std::string_view>;

enum class KeyKind {
  kInteger,       // a signed 64-bit integer within `integer`
  kUnsigned,      // an unsigned 64-bit integer
  kReal,          // a finite number within `real`
  kBoolean,       // true/false (also yes/no, on/off)
  kText,          // a scalar read as text; an empty value is ""
  kNonEmptyText,  // text that must not be blank; `what` says what it names
  kChoice,        // one of `choices`
  kSection,       // a map of the keys "<key>.<name>"; `what` lists the main ones
  kCustom,        // read by `read` (it may read the keys below it too)
};

struct IntegerRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
  // A further condition on values in [min, max], reported like the range (page_size: a power of
  // two); nullptr = none.
  bool (*also)(int64_t value) = nullptr;
};

struct RealRange {
  double min = -std::numeric_limits<double>::infinity();
  bool open_min = true;  // true: min itself is out of range
  double max = std::numeric_limits<double>::infinity();
  bool open_max = true;
};

// Where a plain key's value is stored: a function returning the RunConfig field. A choice's
// value is stored as its name (text) or as the enumerator at the same index as the name.
template <typename T>
using FieldOf = T& (*)(RunConfig& config);
using Field = std::variant<std::monostate, FieldOf<int64_t>, FieldOf<uint64_t>, FieldOf<double>,
                           FieldOf<bool>, FieldOf<std::string>, FieldOf<Layout>, FieldOf<SyncMode>,
                           FieldOf<PromptStyle>, FieldOf<StopRule>, FieldOf<FinisherMode>,
                           FieldOf<Method>, FieldOf<StepEndRule>>;

// Reads the value of a kCustom key into `config`.
using ReadHook = void (*)(const ConfigReader& reader, const YAML::Node& node, RunConfig& config);

struct ConfigKey {
  // Dotted path: "model", "sampling.top_p"; "problems[].answer" is a key of each list item.
  std::string_view key;
  KeyKind kind = KeyKind::kCustom;
  // The range as errors say it after "must be" (integers) or "must be in" (reals): "in [1, 64]",
  // ">= 1", "(0, 1]". configs/README.md must give the same numbers.
  std::string_view range = {};
  IntegerRange integer = {};
  RealRange real = {};
  std::span<const std::string_view> choices = {};
  std::string_view what = {};         // kNonEmptyText: what the text names; kSection: its main keys
  std::string_view required = {};     // the error when the key is absent ("is required (...)")
  bool hinted_at_top_level = false;   // section: a top-level typo may be one of its keys
  std::string_view default_doc = {};  // the default, as configs/README.md's table shows it
  std::string_view doc = {};          // the README's "meaning" column
  Field field = {};                   // plain kinds: where the value goes
  ReadHook read = nullptr;            // kCustom: reads the value
};

// Every key, in the order they are read and listed in messages ("known keys: model, workers, …").
std::span<const ConfigKey> config_keys();

// The row of a dotted key; nullptr if there is none.
const ConfigKey* find_config_key(std::string_view key);

// "sampling.top_p" -> "sampling", "model" -> ""; name_of: "sampling.top_p" -> "top_p".
std::string_view section_of(std::string_view key);
std::string_view name_of(std::string_view key);

// The key names of the map at dotted path `section` ("" = the top level), in table order; empty
// if there is no such map.
KeyList keys_of(std::string_view section);

// The sections whose keys a top-level typo is matched against ("temperature" -> sampling.*).
KeyList sections_hinted_at_top_level();

// Whether an override gives `key` the text after '=' literally instead of parsing it as YAML
// (YAML would trim spaces, cut at " #" and read "*" as an alias, breaking "**{name}:** ").
bool takes_literal_text(std::string_view key);

}  // namespace hogwild
