// One error type for the whole engine. Library code throws hogwild::Error with a message that
// names the file/key/flag at fault; the CLI catches it at the top and prints one line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace hogwild {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates any streamable values: cat("layer ", i, " has ", n, " heads").
template <typename... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(cat(std::forward<Parts>(parts)...));
}

}  // namespace hogwild

// Checks an invariant of the input (not of the code): throws hogwild::Error with the message.
#define HOGWILD_CHECK(condition, ...)               \
  do {                                              \
    if (!(condition)) ::hogwild::fail(__VA_ARGS__); \
  } while (0)

// Checks an internal invariant; a failure is a bug, reported with its place.
#define HOGWILD_ASSERT(condition)                                                              \
  do {                                                                                         \
    if (!(condition))                                                                          \
      ::hogwild::fail("internal error: ", #condition, " failed at ", __FILE__, ":", __LINE__); \
  } while (0)
