// CUDA devices as the engine sees them. Safe to call on machines without a GPU or a driver:
// cuda_device_count() is then 0, so GPU tests skip cleanly and CPU runs are unaffected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hogwild {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_capability = 0;  // e.g. 90 for sm_90
  int64_t memory_bytes = 0;
  int multiprocessors = 0;
};

int cuda_device_count();                     // 0 when no device or no driver; never throws
CudaDeviceInfo cuda_device_info(int index);  // throws hogwild::Error for a bad index
// Bytes of device memory free now (cudaMemGetInfo), for sizing the KV cache and batches before
// allocating them. Leaves the calling thread's current device as it was.
size_t cuda_free_memory(int device);

}  // namespace hogwild
