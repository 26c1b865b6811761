#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"

namespace hogwild {

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return count;
}

CudaDeviceInfo cuda_device_info(int index) {
  const int count = cuda_device_count();
  HOGWILD_CHECK(index >= 0 && index < count, "CUDA device ", index, " does not exist (", count,
                " devices)");
  cudaDeviceProp properties{};
  HOGWILD_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  CudaDeviceInfo info;
  info.index = index;
  info.name = properties.name;
  info.compute_capability = properties.major * 10 + properties.minor;
  info.memory_bytes = static_cast<int64_t>(properties.totalGlobalMem);
  info.multiprocessors = properties.multiProcessorCount;
  return info;
}

size_t cuda_free_memory(int device) {
  const int count = cuda_device_count();
  HOGWILD_CHECK(device >= 0 && device < count, "CUDA device ", device, " does not exist (", count,
                " devices)");
  int previous = 0;
  HOGWILD_CUDA_CHECK(cudaGetDevice(&previous));
  HOGWILD_CUDA_CHECK(cudaSetDevice(device));
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t status = cudaMemGetInfo(&free_bytes, &total_bytes);
  HOGWILD_CUDA_CHECK(cudaSetDevice(previous));
  HOGWILD_CUDA_CHECK(status);
  return free_bytes;
}

}  // namespace hogwild
