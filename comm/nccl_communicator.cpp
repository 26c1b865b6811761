#include "comm/nccl_communicator.h"

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.h"

// CUDA runtime calls here use the same family (kernels/cuda/cuda_check.h is a later layer).
#define HOGWILD_CUDA_RUNTIME_CHECK(call) \
  HOGWILD_STATUS_CHECK(call, cudaSuccess, ::hogwild::cuda_runtime_text)

namespace hogwild {
namespace {

std::string cuda_runtime_text(cudaError_t status) {
  return cat(cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
}

}  // namespace

std::string nccl_status_text(ncclResult_t status) {
  std::string text = ncclGetErrorString(status);
  const char* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') text += cat(" (", last, ")");
  return text;
}

namespace {

class NcclCommunicator;

// The NCCL communicators queued on each stream: a wait on one polls them all, since the stream
// cannot drain while any of them is stuck.
struct StreamRegistry {
  std::mutex mutex;
  std::vector<NcclCommunicator*> members;
};
StreamRegistry& registry() {
  static StreamRegistry instance;
  return instance;
}

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
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().members.push_back(this);
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(registry().mutex);
      std::erase(registry().members, this);
    }
    if (scratch_ != nullptr) cudaFree(scratch_);
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return "NCCL " + name_; }
  bool stream_ordered() const override { return true; }

  void all_reduce_sum(float* data, size_t count) override {
    queue("ncclAllReduce",
          [&] { return ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_); });
  }
  void all_gather(const void* send, void* recv, size_t bytes) override {
    queue("ncclAllGather",
          [&] { return ncclAllGather(send, recv, bytes, ncclChar, comm_, stream_); });
  }
  void broadcast(void* data, size_t bytes, int root) override {
    queue("ncclBroadcast",
          [&] { return ncclBroadcast(data, data, bytes, ncclChar, root, comm_, stream_); });
  }
  void barrier() override {
    all_reduce_sum(scratch_, 1);
    wait();
  }

  void group_start() override {
    HOGWILD_CHECK(!grouped_, describe(), ": group_start inside a group (groups do not nest)");
    HOGWILD_NCCL_CHECK(ncclGroupStart());
    grouped_ = true;
  }
  void group_end() override {
    HOGWILD_CHECK(grouped_, describe(), ": group_end without group_start");
    grouped_ = false;
    queue("ncclGroupEnd", [] { return ncclGroupEnd(); });
  }

  bool poll() override {
    HOGWILD_CHECK(!grouped_, describe(), ": waiting inside a group would never end");
    const cudaError_t state = cudaStreamQuery(stream_);
    if (state == cudaSuccess) return true;
    if (state != cudaErrorNotReady)
      fail(host_name(), ": ", describe(), ": the stream failed: ", cuda_runtime_text(state));
    // Still running: is any communicator on this stream broken (a peer died, a network error)?
    std::vector<NcclCommunicator*> on_stream;
    {
      std::lock_guard<std::mutex> lock(registry().mutex);
      for (NcclCommunicator* member : registry().members)
        if (member->stream_ == stream_) on_stream.push_back(member);
    }
    for (NcclCommunicator* member : on_stream) member->check_async_error();
    return false;
  }

  void wait() override {
    while (!poll()) std::this_thread::yield();
  }

 private:
  template <typename Call>
  void queue(const char* what, Call&& call) {
    HOGWILD_CHECK(comm_ != nullptr, describe(), ": used after an error aborted it");
    const ncclResult_t status = call();
    // ncclInProgress: queued by a non-blocking communicator, not a failure.
    if (status != ncclSuccess && status != ncclInProgress) abort_with(what, status);
  }

  void check_async_error() {
    if (comm_ == nullptr) return;
    ncclResult_t status = ncclSuccess;
    const ncclResult_t asked = ncclCommGetAsyncError(comm_, &status);
    if (asked != ncclSuccess) abort_with("ncclCommGetAsyncError", asked);
    if (status != ncclSuccess && status != ncclInProgress)
      abort_with("an asynchronous NCCL error", status);
  }

  // Aborting releases the peers blocked in this communicator's collectives (and ours).
  [[noreturn]] void abort_with(const char* what, ncclResult_t status) {
    const std::string text = nccl_status_text(status);
    ncclCommAbort(comm_);
    comm_ = nullptr;
    fail(host_name(), ": ", describe(), ": ", what, " failed: ", text,
         status == ncclRemoteError || status == ncclSystemError
             ? "; a peer of this axis failed or left (see its own error)"
             : "");
  }

  int rank_, size_;
  cudaStream_t stream_;
  std::string name_;
  ncclComm_t comm_ = nullptr;
  float* scratch_ = nullptr;
  bool grouped_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& axis, int device,
                                                     cudaStream_t stream) {
  return std::make_unique<NcclCommunicator>(axis, device, stream);
}

}  // namespace hogwild
