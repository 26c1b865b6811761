#include "io/key_reader.h"

#include <algorithm>
#include <type_traits>

#include "io/yaml_reader.h"

namespace hogwild {
namespace {

// "contiguous, interleaved or combined"
std::string choice_list(std::span<const std::string_view> choices) {
  std::string list;
  for (size_t i = 0; i < choices.size(); ++i) {
    list += cat(i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ", choices[i]);
  }
  return list;
}

// A choice is stored as its name, or as the enumerator with the name's index.
void store_choice(const ConfigKey& row, size_t index, RunConfig& config) {
  std::visit(
      [&](auto field) {
        if constexpr (!std::is_same_v<decltype(field), std::monostate>) {
          using Value = std::remove_reference_t<decltype(field(config))>;
          if constexpr (std::is_enum_v<Value>) {
            field(config) = static_cast<Value>(index);
          } else if constexpr (std::is_same_v<Value, std::string>) {
            field(config) = std::string(row.choices[index]);
          }
        }
      },
      row.field);
}

void read_value(const ConfigReader& reader, const ConfigKey& row, const YAML::Node& node,
                RunConfig& config) {
  const std::string path(row.key);
  switch (row.kind) {
    case KeyKind::kInteger: {
      const int64_t value = reader.integer(node, path, row.integer.min, row.integer.max, row.range);
      if (row.integer.also != nullptr && !row.integer.also(value)) {
        reader.fail_at(node, path, "must be ", row.range, ", got ", value);
      }
      std::get<FieldOf<int64_t>>(row.field)(config) = value;
      return;
    }
    case KeyKind::kUnsigned:
      std::get<FieldOf<uint64_t>>(row.field)(config) = reader.unsigned_integer(node, path);
      return;
    case KeyKind::kReal:
      std::get<FieldOf<double>>(row.field)(config) = reader.real(
          node, path, row.real.min, row.real.open_min, row.real.max, row.real.open_max, row.range);
      return;
    case KeyKind::kBoolean:
      std::get<FieldOf<bool>>(row.field)(config) = reader.boolean(node, path);
      return;
    case KeyKind::kText:
      std::get<FieldOf<std::string>>(row.field)(config) = reader.text(node, path);
      return;
    case KeyKind::kNonEmptyText:
      std::get<FieldOf<std::string>>(row.field)(config) =
          reader.non_empty_text(node, path, row.what);
      return;
    case KeyKind::kChoice: {
      const std::string value = reader.text(node, path);
      const auto chosen = std::find(row.choices.begin(), row.choices.end(), value);
      if (chosen == row.choices.end()) {
        reader.fail_at(node, path, "must be ", choice_list(row.choices), ", got ", describe(node));
      }
      store_choice(row, static_cast<size_t>(chosen - row.choices.begin()), config);
      return;
    }
    case KeyKind::kSection:
      reader.require_map(node, path, row.what);
      read_keys(reader, node, row.key, config);
      return;
    case KeyKind::kCustom:
      row.read(reader, node, config);
      return;
  }
}

}  // namespace

void read_keys(const ConfigReader& reader, const YAML::Node& map, std::string_view section,
               RunConfig& config) {
  HOGWILD_ASSERT(!section.ends_with("[]"));  // list items are read by their list's hook
  const std::string prefix(section);
  reader.check_keys(map, prefix, keys_of(section));
  for (const ConfigKey& row : config_keys()) {
    if (section_of(row.key) != section) continue;
    const YAML::Node node = map[std::string(name_of(row.key))];
    if (!node.IsDefined()) {
      if (row.required.empty()) continue;
      if (section.empty()) fail(reader.file(), ": ", row.key, " ", row.required);
      reader.fail_at(map, prefix, row.required);
    }
    read_value(reader, row, node, config);
  }
}

}  // namespace hogwild
