// Command-line flags of the `hogwild` subcommands: declared once with their help text, parsed
// strictly (unknown flags, missing values and malformed numbers are errors naming the flag).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hogwild {

class CliArgs {
 public:
  CliArgs(std::string command, std::string summary);

  // Declares a flag taking a value (`--name VALUE` or `--name=VALUE`) or a switch (`--name`).
  void value(const std::string& name, const std::string& metavar, const std::string& help,
             std::optional<std::string> fallback = std::nullopt);
  void required(const std::string& name, const std::string& metavar, const std::string& help);
  void flag(const std::string& name, const std::string& help);

  // Parses argv (after the subcommand). Returns false when --help was given (help is printed).
  // Throws hogwild::Error for bad flags.
  bool parse(const std::vector<std::string>& argv);
  std::string help() const;

  bool has(const std::string& name) const;
  std::string get(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t min, int64_t max) const;
  double get_float(const std::string& name, double min, double max) const;
  uint64_t get_uint64(const std::string& name) const;
  bool get_flag(const std::string& name) const;

 private:
  struct Option {
    std::string metavar, help;
    bool takes_value = true, is_required = false;
    std::optional<std::string> fallback;
  };
  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Option> options_;
  std::map<std::string, std::string> values_;
};

// The arguments of `run` and `sweep`: one YAML file, key=value overrides, and the flags both
// take (--plain, --quiet, --overwrite, --threads N; --yes where `takes_yes`). --threads becomes
// the override "threads=N", after the others (the flag wins). Errors name the command.
struct JobArgs {
  bool help = false;  // --help or -h: print the command's help and stop
  std::string file;
  std::vector<std::string> overrides;
  bool plain = false, quiet = false, overwrite = false, yes = false;
};
// `missing`: the error when no file is given ("missing the config file (hogwild run CONFIG.yaml)").
JobArgs parse_job_args(const std::string& command, const std::vector<std::string>& argv,
                       bool takes_yes, const std::string& missing);

}  // namespace hogwild
