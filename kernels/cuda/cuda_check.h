// Every CUDA and cuBLAS call is checked; a failure throws hogwild::Error naming the call, the
// file:line and the library's own error name, so the top level decides how to abort (as
// nccl-tests' CUDACHECK reports place and message).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "common/error.h"

#define HOGWILD_CUDA_CHECK(call)                                            \
  do {                                                                      \
    const cudaError_t hogwild_status_ = (call);                             \
    if (hogwild_status_ != cudaSuccess)                                     \
      ::hogwild::fail(__FILE__, ":", __LINE__, ": ", #call,                 \
                      " failed: ", cudaGetErrorName(hogwild_status_), " (", \
                      cudaGetErrorString(hogwild_status_), ")");            \
  } while (0)

#define HOGWILD_CUBLAS_CHECK(call)                                        \
  do {                                                                    \
    const cublasStatus_t hogwild_status_ = (call);                        \
    if (hogwild_status_ != CUBLAS_STATUS_SUCCESS)                         \
      ::hogwild::fail(__FILE__, ":", __LINE__, ": ", #call,               \
                      " failed: ", cublasGetStatusName(hogwild_status_)); \
  } while (0)
