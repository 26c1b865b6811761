#include "comm/nccl_communicator.h"

#include <nccl.h>

#include "common/error.h"

// NCCL and CUDA failures name the call and file:line; an NCCL failure also aborts the
// communicator so that peers blocked in the same collective are released.
#define HOGWILD_NCCL_CHECK(call)                                              \
  do {                                                                        \
    const ncclResult_t hogwild_status_ = (call);                              \
    if (hogwild_status_ != ncclSuccess)                                       \
      ::hogwild::fail(__FILE__, ":", __LINE__, ": ", #call,                   \
                      " failed: ", ncclGetErrorString(hogwild_status_), " (", \
                      ncclGetLastError(nullptr), ")");                        \
  } while (0)

#define HOGWILD_CUDA_RUNTIME_CHECK(call)                               \
  do {                                                                 \
    const cudaError_t hogwild_status_ = (call);                        \
    if (hogwild_status_ != cudaSuccess)                                \
      ::hogwild::fail(__FILE__, ":", __LINE__, ": ", #call,            \
                      " failed: ", cudaGetErrorName(hogwild_status_)); \
  } while (0)

namespace hogwild {
namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& axis, int device, cudaStream_t stream)
      : rank_(axis.rank()), size_(axis.size()), stream_(stream), name_(axis.describe()) {
    ncclUniqueId id{};
    if (axis.rank() == 0) HOGWILD_NCCL_CHECK(ncclGetUniqueId(&id));
    axis.broadcast(&id, sizeof id, 0);
    HOGWILD_CUDA_RUNTIME_CHECK(cudaSetDevice(device));
    HOGWILD_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    HOGWILD_CUDA_RUNTIME_CHECK(cudaMalloc(&scratch_, sizeof(float)));
  }

  ~NcclCommunicator() override {
    if (scratch_ != nullptr) cudaFree(scratch_);
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return "NCCL " + name_; }

  void all_reduce_sum(float* data, size_t count) override {
    run([&] { return ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_); });
  }
  void all_gather(const void* send, void* recv, size_t bytes) override {
    run([&] { return ncclAllGather(send, recv, bytes, ncclChar, comm_, stream_); });
  }
  void broadcast(void* data, size_t bytes, int root) override {
    run([&] { return ncclBroadcast(data, data, bytes, ncclChar, root, comm_, stream_); });
  }
  void barrier() override { all_reduce_sum(scratch_, 1); }

 private:
  template <typename Call>
  void run(Call&& call) {
    const ncclResult_t status = call();
    if (status != ncclSuccess) {
      ncclCommAbort(comm_);  // releases the peers waiting in this collective
      comm_ = nullptr;
      fail(name_, ": NCCL collective failed: ", ncclGetErrorString(status));
    }
    HOGWILD_CUDA_RUNTIME_CHECK(cudaStreamSynchronize(stream_));
  }

  int rank_, size_;
  cudaStream_t stream_;
  std::string name_;
  ncclComm_t comm_ = nullptr;
  float* scratch_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& axis, int device,
                                                     cudaStream_t stream) {
  return std::make_unique<NcclCommunicator>(axis, device, stream);
}

}  // namespace hogwild
