// The NCCL communicator on device buffers, against the values every rank can compute, element by
// element. Runs under mpirun with one GPU per rank: -np 1 (where an all-reduce is the identity
// and an all-gather a copy) and -np 2 (a real exchange); skips without a GPU per rank.
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

  // Distinct, exactly representable values (multiples of 0.25 far below 2^24 quarters): every
  // sum is exact in any order, so every element is compared exactly, and a shifted or repeated
  // slice cannot match by chance.
  const size_t count = 1 << 16;
  auto value = [](int rank, size_t i) {
    return static_cast<float>(rank + 1) * 0.5f + static_cast<float>(i) * 0.25f;
  };
  std::vector<float> host(count);
  for (size_t i = 0; i < count; ++i) host[i] = value(grid.world_rank, i);
  float* data = nullptr;
  ASSERT_EQ(cudaMalloc(&data, count * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(data, host.data(), count * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  nccl->all_reduce_sum(data, count);
  std::vector<float> out(count);
  ASSERT_EQ(cudaMemcpy(out.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    float expected = 0;
    for (int r = 0; r < ranks; ++r) expected += value(r, i);
    if (out[i] != expected && wrong++ < 5)
      ADD_FAILURE() << "all_reduce element " << i << ": " << out[i] << " != " << expected;
  }
  EXPECT_EQ(wrong, 0u) << "all_reduce elements wrong out of " << count;
  // all_gather: slice r holds rank r's values, every element of it; the buffer starts as NaN so
  // that an element left unwritten cannot pass.
  ASSERT_EQ(cudaMemcpy(data, host.data(), count * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  float* gathered = nullptr;
  const size_t total = count * static_cast<size_t>(ranks);
  ASSERT_EQ(cudaMalloc(&gathered, total * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemset(gathered, 0xff, total * sizeof(float)), cudaSuccess);
  nccl->all_gather(data, gathered, count * sizeof(float));
  std::vector<float> all(total);
  ASSERT_EQ(cudaMemcpy(all.data(), gathered, total * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  wrong = 0;
  for (int r = 0; r < ranks; ++r)
    for (size_t i = 0; i < count; ++i) {
      const float got = all[static_cast<size_t>(r) * count + i];
      if (got != value(r, i) && wrong++ < 5)
        ADD_FAILURE() << "all_gather slice " << r << " element " << i << ": " << got
                      << " != " << value(r, i);
    }
  EXPECT_EQ(wrong, 0u) << "all_gather elements wrong out of " << total;
  nccl->barrier();
  cudaFree(gathered);
  cudaFree(data);
  nccl.reset();
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace hogwild

HOGWILD_MPI_TEST_MAIN()
