#include "kernels/device_memory.h"

#ifdef HOGWILD_CUDA
#include "kernels/cuda/device.h"
#endif

namespace hogwild {

size_t device_free_memory(const std::string& backend, int device) {
#ifdef HOGWILD_CUDA
  if (backend == "cuda") return cuda_free_memory(device);
#endif
  (void)backend;
  (void)device;
  return 0;
}

}  // namespace hogwild
