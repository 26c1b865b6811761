// Protocol (see thread_pool.h): generation_ is even while a job is open. The caller writes the job
// only while the generation is odd and no worker is inside (users_ == 0); a worker enters by
// incrementing users_ and then re-reading the generation, so (both sequentially consistent) either
// the caller sees the worker inside, or the worker sees the job closed or the next one opened.
// Sleeping uses the same Dekker pattern on sleepers_ and the generation, with a futex on the
// generation word.
#include "kernels/cpu/thread_pool.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <exception>
#include <fstream>
#include <set>
#include <string>

#include "common/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HOGWILD_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define HOGWILD_PAUSE() asm volatile("yield")
#else
#define HOGWILD_PAUSE() ((void)0)
#endif

namespace hogwild::cpu {
namespace {

using Clock = std::chrono::steady_clock;
// How long an idle worker spins before it sleeps, and how long the caller spins on unfinished
// chunks before it yields its core: ops of one forward follow each other within microseconds.
constexpr auto kSpin = std::chrono::microseconds(100);
constexpr auto kCallerSpin = std::chrono::microseconds(50);

// The pool thread running a chunk on this thread, or -1: a nested parallel_for runs inline.
thread_local int tls_thread = -1;

constexpr uint32_t kFirstGeneration = 1;  // closed, no job yet

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  // Returns on a wake, a signal, or at once when *word != expected; the caller re-checks.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

// Spins (pause) until done() holds; after `spin` it yields the core between checks.
template <typename Done>
void spin_then_yield(Done done, std::chrono::microseconds spin) {
  const auto start = Clock::now();
  for (int i = 1; !done(); ++i) {
    HOGWILD_PAUSE();
    if (i % 32 == 0 && Clock::now() - start > spin) {
      while (!done()) sched_yield();
      return;
    }
  }
}

}  // namespace

int physical_cores() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  const bool have_mask = sched_getaffinity(0, sizeof allowed, &allowed) == 0;
  std::set<std::string> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (have_mask && !CPU_ISSET(cpu, &allowed)) continue;
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string siblings;
    for (const char* name : {"core_cpus_list", "thread_siblings_list"}) {
      std::ifstream file(topology + name);
      if (file && std::getline(file, siblings) && !siblings.empty()) break;
      siblings.clear();
    }
    if (!siblings.empty()) cores.insert(siblings);
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  if (have_mask && CPU_COUNT(&allowed) > 0) return CPU_COUNT(&allowed);
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  HOGWILD_CHECK(threads >= 1 && threads <= 1024,
                "the CPU backend's threads must be in [1, 1024], not ", threads);
  runs_ = std::vector<Run>(static_cast<size_t>(threads));
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
  {
    const std::lock_guard<std::mutex> lock(call_mutex_);
    stopping_.store(true);
    generation_.fetch_add(2);  // stays closed (odd) but changes: spinning workers see it
    futex_wake_all(&generation_);
  }
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::parallel_for(int64_t count, int64_t grain, const Body& fn) {
  if (count <= 0) return;
  const int64_t per_thread_chunks = 4;
  grain = std::max<int64_t>(grain, 1);
  const int64_t wanted =
      (count + threads_ * per_thread_chunks - 1) / (threads_ * per_thread_chunks);
  const int64_t chunk = (std::max(grain, wanted) + grain - 1) / grain * grain;
  const int64_t chunks = (count + chunk - 1) / chunk;
  if (threads_ == 1 || chunks <= 1 || tls_thread >= 0) {
    fn(0, count, tls_thread >= 0 ? tls_thread : 0);
    return;
  }

  const std::lock_guard<std::mutex> lock(call_mutex_);
  // A worker may still be leaving the previous job (it entered late and found nothing to take).
  spin_then_yield([&] { return users_.load() == 0; }, kCallerSpin);
  body_ = &fn;
  count_ = count;
  chunk_ = chunk;
  for (int t = 0; t < threads_; ++t) {
    const auto first = static_cast<uint64_t>(chunks * t / threads_);
    const auto end = static_cast<uint64_t>(chunks * (t + 1) / threads_);
    runs_[static_cast<size_t>(t)].bounds.store(first | end << 32, std::memory_order_relaxed);
  }
  done_chunks_.store(0, std::memory_order_relaxed);
  error_ = nullptr;
  generation_.fetch_add(1);  // open (even)
  if (sleepers_.load() > 0) futex_wake_all(&generation_);

  run_chunks(0);
  spin_then_yield([&] { return done_chunks_.load(std::memory_order_acquire) == chunks; },
                  kCallerSpin);
  generation_.fetch_add(1);  // closed (odd): late workers leave without touching the job
  if (error_) std::rethrow_exception(error_);
}

namespace {

// Takes one chunk of a run: its front (the owner) or its back (a thief); -1 when it is empty.
int64_t take_chunk(std::atomic<uint64_t>& bounds, bool front) {
  uint64_t seen = bounds.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t next = seen & 0xffffffffu, end = seen >> 32;
    if (next >= end) return -1;
    const uint64_t taken = front ? next : end - 1;
    const uint64_t left = front ? (next + 1) | end << 32 : next | (end - 1) << 32;
    if (bounds.compare_exchange_weak(seen, left, std::memory_order_relaxed))
      return static_cast<int64_t>(taken);
  }
}

}  // namespace

void ThreadPool::run_chunk(int64_t index, int thread) {
  const int64_t begin = index * chunk_;
  try {
    (*body_)(begin, std::min(count_, begin + chunk_), thread);
  } catch (...) {
    const std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
  done_chunks_.fetch_add(1, std::memory_order_release);
}

void ThreadPool::run_chunks(int thread) {
  tls_thread = thread;
  for (int64_t index; (index = take_chunk(runs_[static_cast<size_t>(thread)].bounds, true)) >= 0;)
    run_chunk(index, thread);
  // Then the others' tails, the next thread's first (the likeliest to be behind, as it started
  // last), round the pool until every run is empty.
  for (int step = 1; step < threads_; ++step) {
    auto& bounds = runs_[static_cast<size_t>((thread + step) % threads_)].bounds;
    for (int64_t index; (index = take_chunk(bounds, false)) >= 0;) run_chunk(index, thread);
  }
  tls_thread = -1;
}

void ThreadPool::worker_main(int thread) {
  // The constructor's value, not a fresh load: a worker that starts late must not skip a job
  // that opened before it ran.
  uint32_t seen = kFirstGeneration;
  for (;;) {
    // Wait for an open job we have not taken part in: spin first, then sleep on the futex.
    uint32_t current = 0;
    const auto is_new = [&] {
      current = generation_.load(std::memory_order_acquire);
      return current != seen && current % 2 == 0;
    };
    const auto start = Clock::now();
    bool found = false;
    for (int i = 1; !stopping_.load(std::memory_order_relaxed); ++i) {
      if (is_new()) {
        found = true;
        break;
      }
      HOGWILD_PAUSE();
      if (i % 32 == 0 && Clock::now() - start > kSpin) break;
    }
    while (!found && !stopping_.load()) {
      sleepers_.fetch_add(1);
      if (is_new()) {
        sleepers_.fetch_sub(1);
        found = true;
        break;
      }
      if (!stopping_.load()) futex_wait(&generation_, current);
      sleepers_.fetch_sub(1);
      found = is_new();
    }
    if (stopping_.load()) return;

    users_.fetch_add(1);
    if (generation_.load() == current) run_chunks(thread);
    users_.fetch_sub(1);
    seen = current;
  }
}

}  // namespace hogwild::cpu
