#include "io/output_paths.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <vector>

#include "common/error.h"

namespace hogwild {
namespace {

namespace fs = std::filesystem;

// The path with every link of its existing part resolved ("." and ".." too).
fs::path real_path(const std::string& path) {
  std::error_code error;
  fs::path resolved = fs::weakly_canonical(fs::absolute(path, error), error);
  return error ? fs::absolute(path).lexically_normal() : resolved;
}

// Same file: the same real path, or two names of one existing file (a hard link).
bool same_file(const fs::path& a, const fs::path& b) {
  if (a == b) return true;
  std::error_code error;
  return fs::exists(a, error) && fs::exists(b, error) && fs::equivalent(a, b, error);
}

bool inside(const fs::path& file, const fs::path& folder) {
  std::error_code error;
  if (!fs::is_directory(folder, error)) return false;
  const auto [end, unused] = std::mismatch(folder.begin(), folder.end(), file.begin(), file.end());
  return end == folder.end();
}

struct NamedPath {
  const char* what;
  std::string given;
  fs::path real;
};

}  // namespace

void check_output_paths(const RunConfig& config, const std::string& config_path) {
  std::vector<NamedPath> inputs = {{"the model", config.model, real_path(config.model)},
                                   {"the config", config_path, real_path(config_path)}};
  if (config.problems_file)
    inputs.push_back(
        {"the problems file", config.problems_file->path, real_path(config.problems_file->path)});
  const NamedPath outputs[] = {{"output", config.output, real_path(config.output)},
                               {"transcript", config.transcript, real_path(config.transcript)}};
  for (const NamedPath& output : outputs) {
    for (const NamedPath& input : inputs) {
      if (same_file(output.real, input.real))
        fail(output.what, " '", output.given, "' is ", input.what, " ('", input.given,
             "'): writing it would destroy it; choose another ", output.what, "=");
      if (inside(output.real, input.real))
        fail(output.what, " '", output.given, "' lies inside ", input.what, " folder '",
             input.given, "'; choose another ", output.what, "=");
    }
  }
  if (same_file(outputs[0].real, outputs[1].real))
    fail("output '", config.output, "' and transcript '", config.transcript,
         "' are the same file; give them different paths (transcript= sets the transcript)");
}

void check_outputs_free(const RunConfig& config) {
  if (config.overwrite) return;
  struct Output {
    const char* what;
    const char* key;
    const std::string& path;
  };
  for (const Output& output : {Output{"results file", "output", config.output},
                               Output{"transcript", "transcript", config.transcript}}) {
    std::error_code error;
    if (fs::exists(output.path, error))
      fail(output.what, " '", output.path,
           "' exists and would be replaced: add --overwrite to replace it, or choose another ",
           output.key, "=");
  }
}

}  // namespace hogwild
