#include "app/cli_args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "common/error.h"

namespace hogwild {

CliArgs::CliArgs(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void CliArgs::value(const std::string& name, const std::string& metavar, const std::string& help,
                    std::optional<std::string> fallback) {
  order_.push_back(name);
  options_[name] = Option{metavar, help, true, false, std::move(fallback)};
}

void CliArgs::required(const std::string& name, const std::string& metavar,
                       const std::string& help) {
  order_.push_back(name);
  options_[name] = Option{metavar, help, true, true, std::nullopt};
}

void CliArgs::flag(const std::string& name, const std::string& help) {
  order_.push_back(name);
  options_[name] = Option{"", help, false, false, std::nullopt};
}

bool CliArgs::parse(const std::vector<std::string>& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--help" || arg == "-h") return false;
    if (!arg.starts_with("--")) fail(command_, ": unexpected argument '", arg, "' (see --help)");
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (const size_t equals = name.find('='); equals != std::string::npos) {
      inline_value = name.substr(equals + 1);
      name.resize(equals);
    }
    const auto option = options_.find(name);
    if (option == options_.end()) fail(command_, ": unknown flag --", name, " (see --help)");
    if (values_.count(name) != 0) fail(command_, ": flag --", name, " given twice");
    if (!option->second.takes_value) {
      if (inline_value) fail(command_, ": flag --", name, " takes no value");
      values_[name] = "1";
      continue;
    }
    if (inline_value) {
      values_[name] = *inline_value;
    } else {
      if (i + 1 >= argv.size()) fail(command_, ": flag --", name, " needs a value");
      values_[name] = argv[++i];
    }
  }
  for (const auto& [name, option] : options_)
    if (option.is_required && values_.count(name) == 0)
      fail(command_, ": missing required flag --", name, " ", option.metavar);
  return true;
}

std::string CliArgs::help() const {
  std::ostringstream out;
  out << "usage: hogwild " << command_ << " [flags]\n\n" << summary_ << "\n\nflags:\n";
  for (const std::string& name : order_) {
    const Option& option = options_.at(name);
    std::string left = "  --" + name + (option.takes_value ? " " + option.metavar : "");
    if (left.size() < 28) left.resize(28, ' ');
    out << left << " " << option.help;
    if (option.is_required) out << " (required)";
    if (option.fallback) out << " (default: " << *option.fallback << ")";
    out << "\n";
  }
  out << "  --help                       show this help\n";
  return out.str();
}

bool CliArgs::has(const std::string& name) const {
  return values_.count(name) != 0 || options_.at(name).fallback.has_value();
}

std::string CliArgs::get(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  const Option& option = options_.at(name);
  if (option.fallback) return *option.fallback;
  fail(command_, ": missing flag --", name);
}

int64_t CliArgs::get_int(const std::string& name, int64_t min, int64_t max) const {
  const std::string text = get(name);
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    fail(command_, ": --", name, " expects an integer, got '", text, "'");
  if (value < min || value > max)
    fail(command_, ": --", name, " must be in [", min, ", ", max, "], got ", value);
  return value;
}

double CliArgs::get_float(const std::string& name, double min, double max) const {
  const std::string text = get(name);
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(value))
    fail(command_, ": --", name, " expects a number, got '", text, "'");
  if (value < min || value > max)
    fail(command_, ": --", name, " must be in [", min, ", ", max, "], got ", value);
  return value;
}

uint64_t CliArgs::get_uint64(const std::string& name) const {
  const std::string text = get(name);
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno == ERANGE)
    fail(command_, ": --", name, " expects a non-negative integer, got '", text, "'");
  return value;
}

bool CliArgs::get_flag(const std::string& name) const { return values_.count(name) != 0; }

JobArgs parse_job_args(const std::string& command, const std::vector<std::string>& argv,
                       bool takes_yes, const std::string& missing) {
  JobArgs job;
  std::string threads_override;  // applied after the key=value overrides: the flag wins
  for (size_t a = 0; a < argv.size(); ++a) {
    const std::string& arg = argv[a];
    if (arg == "--help" || arg == "-h") {
      job.help = true;
      return job;
    }
    if (arg == "--threads" || arg.starts_with("--threads=")) {
      if (arg == "--threads" && a + 1 == argv.size()) fail(command, ": --threads needs a value N");
      threads_override = "threads=" + (arg == "--threads" ? argv[++a] : arg.substr(10));
    } else if (arg == "--plain") {
      job.plain = true;
    } else if (arg == "--overwrite") {
      job.overwrite = true;
    } else if (arg == "--quiet") {
      job.quiet = true;
    } else if (arg == "--yes" && takes_yes) {
      job.yes = true;
    } else if (arg.starts_with("--")) {
      fail(command, ": unknown flag ", arg, " (see hogwild ", command, " --help)");
    } else if (job.file.empty() && arg.find('=') == std::string::npos) {
      job.file = arg;
    } else if (arg.find('=') != std::string::npos) {
      job.overrides.push_back(arg);
    } else {
      fail(command, ": unexpected argument '", arg, "': overrides look like key=value");
    }
  }
  if (job.file.empty()) fail(command, ": ", missing);
  if (!threads_override.empty()) job.overrides.push_back(threads_override);
  return job;
}

}  // namespace hogwild
