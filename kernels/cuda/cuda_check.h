// Every CUDA and cuBLAS call is checked through the one CHECK family of common/check.h: a failure
// throws hogwild::Error naming the host, file:line, the call and the library's own error name and
// text (as nccl-tests' CUDACHECK reports them), so the top level decides how to abort.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "common/check.h"
#include "common/error.h"

namespace hogwild {

inline std::string cuda_status_text(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

inline std::string cublas_status_text(cublasStatus_t status) {
  return std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")";
}

}  // namespace hogwild

#define HOGWILD_CUDA_CHECK(call) \
  HOGWILD_STATUS_CHECK(call, cudaSuccess, ::hogwild::cuda_status_text)
#define HOGWILD_CUBLAS_CHECK(call) \
  HOGWILD_STATUS_CHECK(call, CUBLAS_STATUS_SUCCESS, ::hogwild::cublas_status_text)
