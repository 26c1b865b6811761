// CUDA device queries: skip cleanly without a GPU (CI, development machines), check the facts
// the engine relies on when one is there.
#include <gtest/gtest.h>

#include "common/error.h"
#include "kernels/cuda/device.h"

namespace hogwild {
namespace {

TEST(CudaDevice, CountNeverThrows) { EXPECT_GE(cuda_device_count(), 0); }

TEST(CudaDevice, InfoOfEveryDevice) {
  const int count = cuda_device_count();
  if (count == 0) GTEST_SKIP() << "no CUDA device on this machine";
  for (int i = 0; i < count; ++i) {
    const CudaDeviceInfo info = cuda_device_info(i);
    EXPECT_FALSE(info.name.empty());
    EXPECT_GE(info.compute_capability, 80) << "the engine targets sm_80 and sm_90";
    EXPECT_GT(info.memory_bytes, 0);
  }
  EXPECT_THROW(cuda_device_info(count), Error);
}

}  // namespace
}  // namespace hogwild
