// Flag parsing shared by the standalone check drivers (forward_check, attention_check,
// bench_cuda_decode), which are built without the CLI library (src/app) so that the device
// build stays small: `--flag value` pairs, integer ranges and comma-separated lists, each bad
// value one error naming the flag and what it takes.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/error.h"

namespace hogwild::bench {

// Calls handle(flag, value) for each `--flag value` pair of argv[1..].
template <typename Handle>
void for_each_flag(int argc, char** argv, const Handle& handle) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    HOGWILD_CHECK(i + 1 < argc, flag, " needs a value");
    handle(flag, std::string(argv[++i]));
  }
}

// A whole decimal integer in [low, high].
inline int64_t parse_count(const std::string& flag, const std::string& text, int64_t low,
                           int64_t high) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  HOGWILD_CHECK(!text.empty() && *end == '\0' && value >= low && value <= high, flag, ": '", text,
                "' is not a count in [", low, ", ", high, "]");
  return value;
}

// Comma-separated counts, each in [low, high].
inline std::vector<int64_t> parse_count_list(const std::string& flag, const std::string& text,
                                             int64_t low, int64_t high) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    values.push_back(parse_count(flag, text.substr(start, comma - start), low, high));
    start = comma + 1;
  }
  return values;
}

// One of `choices`.
inline std::string parse_choice(const std::string& flag, const std::string& text,
                                std::initializer_list<const char*> choices) {
  std::string known;
  for (const char* choice : choices) {
    if (text == choice) return text;
    known += (known.empty() ? "" : ", ") + std::string(choice);
  }
  fail(flag, ": '", text, "' (", known, ")");
}

}  // namespace hogwild::bench
