#include "io/worker_names.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "io/yaml_reader.h"

namespace hogwild {
namespace {

constexpr std::array<std::string_view, 20> kDefaultNames = {
    "Alice",   "Bob",  "Carol",  "Dave",  "Eve",    "Frank", "Grace", "Heidi",  "Ivan",   "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Wendy"};

}  // namespace

std::vector<std::string> default_names(int64_t workers) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < workers; ++i) {
    names.push_back(static_cast<size_t>(i) < kDefaultNames.size()
                        ? std::string(kDefaultNames[static_cast<size_t>(i)])
                        : cat("Worker", i + 1));
  }
  return names;
}

void read_names(const ConfigReader& reader, const YAML::Node& node, RunConfig& config) {
  if (!node.IsSequence()) {
    reader.fail_at(node, "names", "must be a list of worker names, e.g. [Alice, Bob], got ",
                   describe(node));
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = cat("names[", i, "]");
    std::string name = reader.non_empty_text(node[i], path, "a worker's name");
    const bool bad_char = std::any_of(name.begin(), name.end(), [](char c) {
      return c == '/' || std::iscntrl(static_cast<unsigned char>(c)) != 0;
    });
    if (bad_char) reader.fail_at(node[i], path, "must not contain '/' or control characters");
    // A name is an HDF5 group name in the results: "." and ".." cannot be one.
    if (name.find_first_not_of('.') == std::string::npos)
      reader.fail_at(node[i], path, "must not be made of dots only, got '", name, "'");
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      reader.fail_at(node[i], path, "repeats the name '", name, "': names must differ");
    }
    names.push_back(std::move(name));
  }
  if (static_cast<int64_t>(names.size()) != config.workers) {
    reader.fail_at(node, "names", "has ", names.size(), names.size() == 1 ? " name" : " names",
                   " but workers is ", config.workers, ": give exactly one name per worker");
  }
  config.names = std::move(names);
}

}  // namespace hogwild
