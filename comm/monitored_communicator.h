// A communicator wrapper that (1) adds up the seconds spent in each collective, for the timing
// breakdown of a distributed run, and (2) bounds how long any collective may wait: a watchdog
// thread ends the process (and so, through the launcher, the whole job) with a message naming
// the rank and the collective when one takes longer than the timeout — a lost rank never hangs
// the job.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "comm/communicator.h"

namespace hogwild {

struct CollectiveSeconds {
  double all_reduce = 0.0;
  double all_gather = 0.0;
  double other = 0.0;  // broadcast, barrier
  double total() const { return all_reduce + all_gather + other; }
};

class MonitoredCommunicator final : public Communicator {
 public:
  // `label` names the axis in messages ("tensor", "workers"); timeout_seconds <= 0: no watchdog.
  MonitoredCommunicator(std::unique_ptr<Communicator> inner, std::string label, int world_rank,
                        double timeout_seconds);
  ~MonitoredCommunicator() override;

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string describe() const override { return inner_->describe(); }
  void all_reduce_sum(float* data, size_t count) override;
  void all_gather(const void* send, void* recv, size_t bytes) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;

  const CollectiveSeconds& seconds() const { return seconds_; }

 private:
  template <typename Call>
  void timed(const char* name, double& bucket, Call&& call);
  void watch();

  std::unique_ptr<Communicator> inner_;
  std::string label_;
  int world_rank_;
  double timeout_seconds_;
  CollectiveSeconds seconds_;
  // The collective in flight: its name and start (steady clock, ns), 0 when none.
  std::atomic<const char*> current_{nullptr};
  std::atomic<int64_t> started_ns_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace hogwild
