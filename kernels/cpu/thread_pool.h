// The CPU backend's one thread pool: a fixed set of workers created once, shared by every op of a
// forward. A parallel_for cuts an index range into chunks and gives each thread an equal run of
// consecutive chunks, which it takes front to back, so that on an idle machine every thread reads
// one contiguous stream (a decode matmul's weight rows: each new stream costs a memory latency
// before the hardware prefetcher catches up). A thread that has finished its run takes the
// remaining chunks of the others from their back ends, so a worker that the OS has descheduled
// (a competing busy process) holds up at most the chunk it took while the others take the rest.
// Idle workers spin briefly with pause instructions (the next op of a forward usually comes within
// microseconds), then sleep on a futex, so a busy machine's cores are not burnt at barriers.
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

  // Runs fn over [0, count) in chunks of max(grain, count / (4 * size())) indices rounded up to a
  // multiple of grain, so that every chunk boundary is a multiple of grain (a matmul's 16-row
  // weight groups stay whole). That is about four chunks a thread at most, so a descheduled
  // thread delays about a quarter of its share; thread t's run is chunks
  // [t * chunks / size(), (t + 1) * chunks / size()). Returns when every chunk is done. A range of
  // one chunk, a one-thread pool, or a call from inside a chunk runs on the calling thread alone.
  // An exception from fn is rethrown to the caller once every chunk has run. Calls from several
  // threads are serialised.
  void parallel_for(int64_t count, int64_t grain, const Body& fn);

 private:
  void worker_main(int thread);
  // Takes chunks of the current job until none is left: its own run, then the others' tails.
  void run_chunks(int thread);
  // Runs chunk `index` of the current job and counts it done.
  void run_chunk(int64_t index, int thread);

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one job at a time

  // The job: written by the caller while no worker is inside (users_ == 0), read by workers.
  const Body* body_ = nullptr;
  int64_t count_ = 0;
  int64_t chunk_ = 1;
  // Even: a job is open for workers; odd: closed. Also the futex word sleeping workers wait on.
  std::atomic<uint32_t> generation_{1};  // kFirstGeneration
  // Per thread, the chunks of its run not yet taken: {next (low 32 bits), end (high 32 bits)}, in
  // one word so that the owner (taking `next`) and a thief (taking `end - 1`) agree through one
  // compare-and-swap. Padded to a cache line each: the owner updates its own without sharing.
  struct alignas(64) Run {
    std::atomic<uint64_t> bounds{0};
  };
  std::vector<Run> runs_;
  std::atomic<int64_t> done_chunks_{0};
  std::atomic<int> users_{0};     // workers between entering and leaving the current job
  std::atomic<int> sleepers_{0};  // workers in (or entering) the futex wait
  std::atomic<bool> stopping_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;  // the first exception a chunk threw, rethrown by the caller
};

}  // namespace hogwild::cpu
