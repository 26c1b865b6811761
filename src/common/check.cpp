#include "common/check.h"

#include <unistd.h>

#include "common/error.h"

namespace hogwild {

std::string host_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "unknown host";
  return host;
}

std::string check_failure_message(const char* call, const char* file, int line,
                                  const std::string& error) {
  return cat(host_name(), ": ", file, ":", line, ": ", call, " failed: ", error);
}

void check_failed(const char* call, const char* file, int line, const std::string& error) {
  throw Error(check_failure_message(call, file, line, error));
}

}  // namespace hogwild
