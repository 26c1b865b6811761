// The CHECK family (common/check.h) with a fake library status: a failed call throws
// hogwild::Error naming this host, file:line of the check, the call as written and the library's
// error text; a successful call passes, and the call is evaluated exactly once either way.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/check.h"
#include "common/error.h"

namespace hogwild {
namespace {

enum class FakeStatus { Ok, Broken };

const char* fake_text(FakeStatus status) {
  return status == FakeStatus::Ok ? "FAKE_OK" : "FAKE_BROKEN (the fake library broke)";
}

#define FAKE_CHECK(call) HOGWILD_STATUS_CHECK(call, FakeStatus::Ok, fake_text)

int calls = 0;
FakeStatus fake_call(FakeStatus result, int /*argument*/) {
  ++calls;
  return result;
}

std::string this_host() {
  char host[256] = {};
  EXPECT_EQ(gethostname(host, sizeof host - 1), 0);
  return host;
}

TEST(Check, AFailedCallNamesHostPlaceCallAndError) {
  calls = 0;
  int line = 0;
  try {
    line = __LINE__ + 1;
    FAKE_CHECK(fake_call(FakeStatus::Broken, 42));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(this_host() + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(std::string("test_check.cpp:") + std::to_string(line) + ": "),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("fake_call(FakeStatus::Broken, 42) failed: "), std::string::npos)
        << message;
    EXPECT_NE(message.find("FAKE_BROKEN (the fake library broke)"), std::string::npos) << message;
  }
  EXPECT_EQ(calls, 1) << "the call is evaluated once";
}

TEST(Check, ASuccessfulCallPassesAndRunsOnce) {
  calls = 0;
  EXPECT_NO_THROW(FAKE_CHECK(fake_call(FakeStatus::Ok, 1)));
  EXPECT_EQ(calls, 1);
}

TEST(Check, TheMessageIsHostFileLineCallError) {
  EXPECT_EQ(check_failure_message("f(x)", "dir/file.cpp", 12, "E_BAD (bad)"),
            host_name() + ": dir/file.cpp:12: f(x) failed: E_BAD (bad)");
  EXPECT_EQ(host_name(), this_host());
}

}  // namespace
}  // namespace hogwild
