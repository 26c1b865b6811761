// The CPU backend's one thread pool: a fixed set of workers created once, shared by every op of a
// forward. A parallel_for hands out chunks of an index range through one atomic counter, so a
// worker that the OS has descheduled (a competing busy process) holds up at most the chunk it
// took while the others take the rest. Idle workers spin briefly with pause instructions (the
// next op of a forward usually comes within microseconds), then sleep on a futex, so a busy
// machine's cores are not burnt at barriers.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hogwild::cpu {

// Physical cores of this machine (one per set of SMT siblings, from
// /sys/devices/system/cpu/cpu*/topology), else std::thread::hardware_concurrency(), at least 1.
int physical_cores();

class ThreadPool {
 public:
  // fn(begin, end, thread): one chunk [begin, end) of the range, run on pool thread `thread`
  // (0 = the caller, 1..size()-1 = the workers); a thread runs one chunk at a time.
  using Body = std::function<void(int64_t begin, int64_t end, int thread)>;

  // `threads` >= 1 threads in all: the caller and threads - 1 workers.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs fn over [0, count) in chunks of max(grain, count / (4 * size())) indices (about four
  // chunks a thread at most, so a descheduled thread delays about a quarter of its share), and
  // returns when every chunk is done. A range of one chunk, a one-thread pool, or a call from
  // inside a chunk runs on the calling thread alone. An exception from fn is rethrown to the
  // caller once every chunk has run. Calls from several threads are serialised.
  void parallel_for(int64_t count, int64_t grain, const Body& fn);

 private:
  void worker_main(int thread);
  // Takes chunks of the current job until none is left.
  void run_chunks(int thread);

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one job at a time

  // The job: written by the caller while no worker is inside (users_ == 0), read by workers.
  const Body* body_ = nullptr;
  int64_t count_ = 0;
  int64_t chunk_ = 1;
  int64_t chunks_ = 0;
  // Even: a job is open for workers; odd: closed. Also the futex word sleeping workers wait on.
  std::atomic<uint32_t> generation_{1};  // kFirstGeneration
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int64_t> done_chunks_{0};
  std::atomic<int> users_{0};     // workers between entering and leaving the current job
  std::atomic<int> sleepers_{0};  // workers in (or entering) the futex wait
  std::atomic<bool> stopping_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;  // the first exception a chunk threw, rethrown by the caller
};

}  // namespace hogwild::cpu
