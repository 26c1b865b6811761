#include "comm/monitored_communicator.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace hogwild {
namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

MonitoredCommunicator::MonitoredCommunicator(std::unique_ptr<Communicator> inner, std::string label,
                                             int world_rank, double timeout_seconds)
    : inner_(std::move(inner)),
      label_(std::move(label)),
      world_rank_(world_rank),
      timeout_seconds_(timeout_seconds) {
  if (timeout_seconds_ > 0 && inner_->size() > 1) watchdog_ = std::thread([this] { watch(); });
}

MonitoredCommunicator::~MonitoredCommunicator() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

template <typename Call>
void MonitoredCommunicator::timed(const char* name, double& bucket, Call&& call) {
  const int64_t start = now_ns();
  started_ns_.store(start);
  current_.store(name);
  call();
  current_.store(nullptr);
  bucket += static_cast<double>(now_ns() - start) * 1e-9;
}

void MonitoredCommunicator::all_reduce_sum(float* data, size_t count) {
  timed("all_reduce", seconds_.all_reduce, [&] { inner_->all_reduce_sum(data, count); });
}
void MonitoredCommunicator::all_gather(const void* send, void* recv, size_t bytes) {
  timed("all_gather", seconds_.all_gather, [&] { inner_->all_gather(send, recv, bytes); });
}
void MonitoredCommunicator::broadcast(void* data, size_t bytes, int root) {
  timed("broadcast", seconds_.other, [&] { inner_->broadcast(data, bytes, root); });
}
void MonitoredCommunicator::barrier() {
  timed("barrier", seconds_.other, [&] { inner_->barrier(); });
}

void MonitoredCommunicator::watch() {
  const auto period = std::chrono::milliseconds(200);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
    const char* name = current_.load();
    if (name == nullptr) continue;
    const double waited = static_cast<double>(now_ns() - started_ns_.load()) * 1e-9;
    if (waited < timeout_seconds_) continue;
    // The main thread is stuck inside MPI: no MPI call is safe from here. Exiting makes the
    // launcher end every other rank.
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    std::fprintf(stderr,
                 "hogwild: error: %s rank %d: %s on the %s axis waited %.0f s (timeout %.0f s): "
                 "another rank is lost or stuck; aborting the job\n",
                 host, world_rank_, name, label_.c_str(), waited, timeout_seconds_);
    std::fflush(stderr);
    std::_Exit(3);
  }
}

}  // namespace hogwild
