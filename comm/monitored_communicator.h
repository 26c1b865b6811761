// A communicator wrapper that (1) adds up the seconds spent in each collective, for the timing
// breakdown of a distributed run, and (2) reports its progress to a Watchdog: how many
// collectives this rank has entered on the axis, and the one in flight.
//
// The watchdog thread ends the process (and so, through the launcher, the whole job) when one
// collective waits longer than the timeout: a lost rank never hangs the job. Before it does, it
// asks the other ranks of that axis how far they are (a ProgressExchange, over MPI), so that
// its message names the ranks that have not reached the collective: one that does not answer
// (stopped, lost) or one whose count lags (still computing, or waiting in another collective),
// not the rank that waits for them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "comm/communicator.h"

namespace hogwild {

struct CollectiveSeconds {
  double all_reduce = 0.0;
  double all_gather = 0.0;
  double other = 0.0;  // broadcast, barrier
  // Stream-ordered communicators: the host's waits for the stream (the step's device compute and
  // collectives together, which the host cannot tell apart), not part of total().
  double device_wait = 0.0;
  double total() const { return all_reduce + all_gather + other; }
};

// Wait: the host waiting for a stream-ordered communicator's queued collectives (wait()).
enum class CollectiveKind : int32_t { None = -1, AllReduce, AllGather, Broadcast, Barrier, Wait };
const char* collective_name(CollectiveKind kind);

// One rank's answer to "how far are you?": per axis (in the order every rank adds them), the
// collectives entered so far and the one in flight with its seconds. Sent as bytes.
struct ProgressReport {
  static constexpr int kMaxAxes = 4;
  int32_t world_rank = -1;
  int32_t axes = 0;
  uint64_t entered[kMaxAxes] = {};
  int32_t current[kMaxAxes] = {-1, -1, -1, -1};  // CollectiveKind
  double waited[kMaxAxes] = {};
};
static_assert(std::is_trivially_copyable_v<ProgressReport>);

// How a watchdog asks the other ranks (comm/mpi_communicator.cpp implements it over MPI). Both
// calls run on the watchdog thread only.
class ProgressExchange {
 public:
  virtual ~ProgressExchange() = default;
  // Answers the questions that other ranks have sent since the last call with `mine`.
  virtual void serve(const ProgressReport& mine) = 0;
  // Asks `world_ranks` and waits up to `seconds` for them (answering the others meanwhile with
  // mine()); an answer per rank, in order, nullopt for a rank that did not answer.
  virtual std::vector<std::optional<ProgressReport>> ask(
      const std::vector<int>& world_ranks, double seconds,
      const std::function<ProgressReport()>& mine) = 0;
};

class Watchdog {
 public:
  // `exchange` may be null (the watchdog can then only say that it waited). Axes are added, then
  // start() runs the thread; with timeout_seconds <= 0 there is no thread, only the counts.
  Watchdog(int world_rank, double timeout_seconds, std::unique_ptr<ProgressExchange> exchange);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // An axis ("world", "tensor", "workers") and its members' world ranks in axis-rank order;
  // returns its index. Every rank adds the same axes in the same order.
  int add_axis(std::string label, std::vector<int> members);
  void start();

  void enter(int axis, CollectiveKind kind);  // called by the main thread around a collective
  void leave(int axis);
  ProgressReport report() const;

  // The line printed when `axis`'s collective timed out, from this rank's report and the
  // answers of the axis's other members (`peers`, world ranks). Public for tests.
  std::string stall_message(int axis, const ProgressReport& mine, const std::vector<int>& peers,
                            const std::vector<std::optional<ProgressReport>>& answers) const;

 private:
  struct Axis {
    std::string label;
    std::vector<int> members;
    std::atomic<uint64_t> entered{0};
    std::atomic<int32_t> current{-1};
    std::atomic<int64_t> started_ns{0};
  };
  void watch();
  void check_stalled(int axis);  // exits the process unless the collective ended meanwhile

  int world_rank_;
  double timeout_seconds_;
  std::unique_ptr<ProgressExchange> exchange_;
  std::vector<std::unique_ptr<Axis>> axes_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Stream-ordered collectives return once queued: their seconds here are the queueing only (the
// waiting shows in wait()).
class MonitoredCommunicator final : public Communicator {
 public:
  // Reports to `watchdog` as its axis `axis`; a null watchdog: timing only.
  MonitoredCommunicator(std::unique_ptr<Communicator> inner, std::shared_ptr<Watchdog> watchdog,
                        int axis);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string describe() const override { return inner_->describe(); }
  void all_reduce_sum(float* data, size_t count) override;
  void all_gather(const void* send, void* recv, size_t bytes) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;
  bool stream_ordered() const override { return inner_->stream_ordered(); }
  void group_start() override { inner_->group_start(); }
  void group_end() override { inner_->group_end(); }
  bool poll() override { return inner_->poll(); }
  // Watched like a collective on the axis when the inner communicator is stream-ordered: the
  // host blocks here when a peer is lost, so the watchdog names it as for a host collective.
  void wait() override;

  const CollectiveSeconds& seconds() const { return seconds_; }

 private:
  template <typename Call>
  void timed(CollectiveKind kind, double& bucket, Call&& call);

  std::unique_ptr<Communicator> inner_;
  std::shared_ptr<Watchdog> watchdog_;
  int axis_;
  CollectiveSeconds seconds_;
};

}  // namespace hogwild
