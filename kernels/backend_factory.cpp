// Backend by name: the one place that knows which backends this build has.
#include "common/error.h"
#include "kernels/backend.h"

namespace hogwild {

std::unique_ptr<Backend> make_backend(const std::string& name, int device, int threads) {
  if (name == "cpu") return make_cpu_backend(threads);
  if (name == "cuda") {
#ifdef HOGWILD_CUDA
    return make_cuda_backend(device);
#else
    (void)device;
    fail("this build has no CUDA backend (build it with: cmake --preset cuda)");
#endif
  }
  fail("unknown backend '", name, "' (cpu, cuda)");
}

}  // namespace hogwild
