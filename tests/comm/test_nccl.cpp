// The NCCL communicator on device buffers, against the values every rank can compute. Runs under
// mpirun with one GPU per rank (a lent single-GPU machine: -np 1); skips without enough GPUs.
#include <gtest/gtest.h>

#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"
#include "kernels/cuda/device.h"
#include "mpi_test_main.h"

namespace hogwild {
namespace {

TEST(Nccl, CollectivesOnDeviceBuffers) {
  const int ranks = mpi_world_size();
  // NCCL wants one GPU per rank (single node here).
  if (cuda_device_count() < ranks) GTEST_SKIP() << "needs a CUDA device per rank";
  RankGrid grid = make_rank_grid(ranks, 1);
  const int device = grid.local_rank % cuda_device_count();
  ASSERT_EQ(cudaSetDevice(device), cudaSuccess);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  auto nccl = make_nccl_communicator(*grid.world, device, stream);

  const size_t count = 1 << 16;
  std::vector<float> host(count);
  for (size_t i = 0; i < count; ++i)
    host[i] = static_cast<float>(grid.world_rank + 1) * 0.5f + static_cast<float>(i % 7);
  float* data = nullptr;
  ASSERT_EQ(cudaMalloc(&data, count * sizeof(float) * static_cast<size_t>(ranks)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(data, host.data(), count * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  nccl->all_reduce_sum(data, count);
  std::vector<float> out(count);
  ASSERT_EQ(cudaMemcpy(out.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (size_t i = 0; i < count; ++i) {
    double expected = 0;
    for (int r = 0; r < ranks; ++r) expected += (r + 1) * 0.5 + static_cast<double>(i % 7);
    ASSERT_NEAR(out[i], expected, 1e-4 * std::abs(expected)) << i;  // NCCL's order, fp32
  }
  // all_gather: rank r's slice holds r's values.
  ASSERT_EQ(cudaMemcpy(data, host.data(), count * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  float* gathered = nullptr;
  ASSERT_EQ(cudaMalloc(&gathered, count * sizeof(float) * static_cast<size_t>(ranks)), cudaSuccess);
  nccl->all_gather(data, gathered, count * sizeof(float));
  std::vector<float> all(count * static_cast<size_t>(ranks));
  ASSERT_EQ(cudaMemcpy(all.data(), gathered, all.size() * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (int r = 0; r < ranks; ++r) EXPECT_EQ(all[static_cast<size_t>(r) * count], (r + 1) * 0.5f);
  nccl->barrier();
  cudaFree(gathered);
  cudaFree(data);
  nccl.reset();
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace hogwild

HOGWILD_MPI_TEST_MAIN()
