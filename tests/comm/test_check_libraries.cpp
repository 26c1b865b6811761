// The CHECK family on the real libraries' statuses (no GPU needed: the error names and strings
// come from the libraries themselves): HOGWILD_CUDA_CHECK, HOGWILD_CUBLAS_CHECK and
// HOGWILD_NCCL_CHECK each throw hogwild::Error naming the host, file:line, the call and the
// library's error name.
#include <gtest/gtest.h>

#include <string>

#include "comm/nccl_communicator.h"
#include "common/error.h"
#include "kernels/cuda/cuda_check.h"

namespace hogwild {
namespace {

template <typename Check>
std::string message_of(Check&& check) {
  try {
    check();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_names(const std::string& message, int line, const std::string& call,
                  const std::string& error) {
  EXPECT_EQ(message.rfind(host_name() + ": ", 0), 0u) << message;
  EXPECT_NE(
      message.find("test_check_libraries.cpp:" + std::to_string(line) + ": " + call + " failed: "),
      std::string::npos)
      << message;
  EXPECT_NE(message.find(error), std::string::npos) << message;
}

cudaError_t failing_cuda() { return cudaErrorInvalidValue; }
cublasStatus_t failing_cublas() { return CUBLAS_STATUS_INVALID_VALUE; }
ncclResult_t failing_nccl() { return ncclInvalidArgument; }

TEST(CheckLibraries, CudaCublasAndNcclFailuresNameHostPlaceCallAndError) {
  int line = __LINE__ + 1;
  std::string message = message_of([] { HOGWILD_CUDA_CHECK(failing_cuda()); });
  expect_names(message, line, "failing_cuda()", "cudaErrorInvalidValue (invalid argument)");

  line = __LINE__ + 1;
  message = message_of([] { HOGWILD_CUBLAS_CHECK(failing_cublas()); });
  expect_names(message, line, "failing_cublas()", "CUBLAS_STATUS_INVALID_VALUE");

  line = __LINE__ + 1;
  message = message_of([] { HOGWILD_NCCL_CHECK(failing_nccl()); });
  expect_names(message, line, "failing_nccl()", ncclGetErrorString(ncclInvalidArgument));
}

TEST(CheckLibraries, SuccessPasses) {
  EXPECT_NO_THROW(HOGWILD_CUDA_CHECK(cudaSuccess));
  EXPECT_NO_THROW(HOGWILD_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
  EXPECT_NO_THROW(HOGWILD_NCCL_CHECK(ncclSuccess));
}

}  // namespace
}  // namespace hogwild
