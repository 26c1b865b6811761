// The NCCL communicator on device buffers, against the values every rank can compute, element by
// element. Runs under mpirun with one GPU per rank: -np 1 (where an all-reduce is the identity
// and an all-gather a copy) and -np 2 (a real exchange); skips without a GPU per rank. The
// collectives are stream-ordered: queued on the stream, read after wait() (which polls NCCL's
// asynchronous errors); a group launches its collectives together at group_end().
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
  EXPECT_TRUE(nccl->stream_ordered());
  nccl->all_reduce_sum(data, count);
  nccl->wait();
  EXPECT_TRUE(nccl->poll()) << "nothing is queued after wait()";
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
  nccl->wait();
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
  // A group: an all-gather and an all-reduce launched together; both results after the wait.
  ASSERT_EQ(cudaMemcpy(data, host.data(), count * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(cudaMemset(gathered, 0xff, total * sizeof(float)), cudaSuccess);
  float* summed = nullptr;
  ASSERT_EQ(cudaMalloc(&summed, count * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(summed, host.data(), count * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  nccl->group_start();
  nccl->all_gather(data, gathered, count * sizeof(float));
  nccl->all_reduce_sum(summed, count);
  nccl->group_end();
  nccl->wait();
  ASSERT_EQ(cudaMemcpy(all.data(), gathered, total * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(out.data(), summed, count * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  wrong = 0;
  for (int r = 0; r < ranks; ++r)
    for (size_t i = 0; i < count; ++i)
      if (all[static_cast<size_t>(r) * count + i] != value(r, i)) ++wrong;
  for (size_t i = 0; i < count; ++i) {
    float expected = 0;
    for (int r = 0; r < ranks; ++r) expected += value(r, i);
    if (out[i] != expected) ++wrong;
  }
  EXPECT_EQ(wrong, 0u) << "grouped collectives: elements wrong";
  nccl->barrier();
  cudaFree(summed);
  cudaFree(gathered);
  cudaFree(data);
  nccl.reset();
  cudaStreamDestroy(stream);
}

// The grid's device axes as the runner makes them: NCCL over the tensor axis, monitored by the
// grid's watchdog (a wait is watched like a collective), a real all-reduce through it.
TEST(Nccl, DeviceAxesOfTheRankGrid) {
  const int ranks = mpi_world_size();
  if (cuda_device_count() < ranks) GTEST_SKIP() << "needs a CUDA device per rank";
  RankGrid grid = make_rank_grid(ranks, 1, 60.0);
  const int device = grid.local_rank % cuda_device_count();
  ASSERT_EQ(cudaSetDevice(device), cudaSuccess);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  add_device_communicators(
      grid, [&](Communicator& axis) { return make_nccl_communicator(axis, device, stream); });
  if (ranks == 1) {
    EXPECT_EQ(grid.device_tensor, nullptr) << "an axis of one rank needs no communicator";
  } else {
    ASSERT_NE(grid.device_tensor, nullptr);
    EXPECT_TRUE(grid.device_tensor->stream_ordered());
    float* data = nullptr;
    ASSERT_EQ(cudaMalloc(&data, sizeof(float)), cudaSuccess);
    const float mine = static_cast<float>(grid.world_rank + 1);
    ASSERT_EQ(cudaMemcpy(data, &mine, sizeof mine, cudaMemcpyHostToDevice), cudaSuccess);
    grid.device_tensor->all_reduce_sum(data, 1);
    grid.device_tensor->wait();
    float sum = 0;
    ASSERT_EQ(cudaMemcpy(&sum, data, sizeof sum, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(sum, static_cast<float>(ranks * (ranks + 1) / 2));
    cudaFree(data);
  }
  grid.device_tensor.reset();
  grid.device_workers.reset();
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace hogwild

HOGWILD_MPI_TEST_MAIN()
