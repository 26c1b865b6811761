// One CHECK family for every library that reports failures as status codes (CUDA, cuBLAS, NCCL,
// MPI): a failed call throws hogwild::Error naming this host, file:line, the call as written and
// the library's own error name and text, as nccl-tests' CUDACHECK/NCCLCHECK report them. On a
// multi-node job the host says which node failed; the top level decides how to abort.
//
// Each library defines its macro in one line over HOGWILD_STATUS_CHECK, next to its headers:
//   #define HOGWILD_CUDA_CHECK(call) HOGWILD_STATUS_CHECK(call, cudaSuccess, cuda_status_text)
// where the describer turns a failed status into text. Plain C++17 (nvcc includes it).
#pragma once

#include <string>

namespace hogwild {

// This machine's name (gethostname), "unknown host" when it has none.
std::string host_name();

// The message of a failed check: "HOST: FILE:LINE: CALL failed: ERROR".
std::string check_failure_message(const char* call, const char* file, int line,
                                  const std::string& error);

// Throws hogwild::Error with check_failure_message(...).
[[noreturn]] void check_failed(const char* call, const char* file, int line,
                               const std::string& error);

}  // namespace hogwild

// Evaluates `call` once; when its status differs from `success`, throws hogwild::Error with the
// status described by `describe(status)` (anything convertible to std::string).
#define HOGWILD_STATUS_CHECK(call, success, describe)                    \
  do {                                                                   \
    const auto hogwild_status_ = (call);                                 \
    if (hogwild_status_ != (success))                                    \
      ::hogwild::check_failed(#call, __FILE__, __LINE__,                 \
                              ::std::string(describe(hogwild_status_))); \
  } while (0)
