// The CPU backend's thread pool (kernels/cpu/thread_pool.h) and its small GEMM
// (kernels/cpu/small_gemm.h) against plain references: every index run exactly once on a valid
// thread, whatever the threads (1, 2, 3, 7: more than the cores of most machines), sleeping
// workers woken, exceptions carried back; the GEMM against a double-precision product for both
// code paths (scalar, AVX2) and several thread counts.
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/small_gemm.h"
#include "kernels/cpu/thread_pool.h"

namespace hogwild::cpu {
namespace {

constexpr int kThreadCounts[] = {1, 2, 3, 7};

// Runs one parallel_for and checks that each index of [0, count) ran once, on a thread of the
// pool, never on two threads at once with the same id, and in chunks that start and end on
// multiples of the grain (but the range's end).
void expect_each_index_once(ThreadPool& pool, int64_t count, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
  std::vector<std::atomic<int>> busy(static_cast<size_t>(pool.size()));
  std::atomic<bool> bad_thread{false}, overlap{false}, off_grain{false};
  pool.parallel_for(count, grain, [&](int64_t begin, int64_t end, int thread) {
    if (thread < 0 || thread >= pool.size() || begin < 0 || end > count || begin >= end) {
      bad_thread = true;
      return;
    }
    if (begin % grain != 0 || (end % grain != 0 && end != count)) off_grain = true;
    if (busy[static_cast<size_t>(thread)].fetch_add(1) != 0) overlap = true;
    for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    busy[static_cast<size_t>(thread)].fetch_sub(1);
  });
  EXPECT_FALSE(bad_thread) << "a chunk outside the range or on a thread outside the pool";
  EXPECT_FALSE(overlap) << "two chunks ran at once under one thread id";
  EXPECT_FALSE(off_grain) << "a chunk boundary off the grain";
  for (int64_t i = 0; i < count; ++i)
    ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << count;
}

TEST(ThreadPool, EveryIndexRunsOnceForAnyThreadsAndGrain) {
  for (const int threads : kThreadCounts) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (const int64_t count : {1, 2, 3, 7, 64, 1000, 4097})
      for (const int64_t grain : {1, 3, 16, 5000}) {
        SCOPED_TRACE(cat("threads=", threads, " count=", count, " grain=", grain));
        expect_each_index_once(pool, count, grain);
      }
    pool.parallel_for(0, 1, [](int64_t, int64_t, int) { FAIL() << "an empty range ran"; });
  }
}

TEST(ThreadPool, ManyShortJobsBackToBackAndAfterWorkersSleep) {
  // Back to back: workers are still spinning; after a pause: they sleep on the futex and must
  // be woken. Both must give complete, correct results every time.
  for (const int threads : kThreadCounts) {
    ThreadPool pool(threads);
    std::atomic<int64_t> sum{0};
    for (int job = 0; job < 3000; ++job)
      pool.parallel_for(64, 1, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) sum.fetch_add(i);
      });
    EXPECT_EQ(sum.load(), 3000 * (63 * 64 / 2)) << threads << " threads";
    for (int job = 0; job < 5; ++job) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3));  // past the spin: asleep
      expect_each_index_once(pool, 100, 1);
    }
  }
}

TEST(ThreadPool, WorkersTakePartWhenThereIsEnoughWork) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> used(3);
  // Chunks slow enough that the caller cannot take them all before the workers wake.
  pool.parallel_for(40, 1, [&](int64_t, int64_t, int thread) {
    used[static_cast<size_t>(thread)] = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  });
  EXPECT_EQ(used[0] + used[1] + used[2], 3) << "some pool thread never ran a chunk";
}

// Each thread takes its own run of chunks front to back and then the others' tails: a thread held
// up inside a chunk (as one the OS has descheduled) delays only that chunk while the others run
// the rest, and each thread's own chunks come in order.
TEST(ThreadPool, AStalledThreadHoldsUpOnlyTheChunkItTook) {
  for (const int threads : {2, 3}) {
    SCOPED_TRACE(cat("threads=", threads));
    ThreadPool pool(threads);
    const int64_t chunks = 4 * threads;  // thread t's run: [4t, 4t + 4)
    std::vector<std::vector<int64_t>> taken(static_cast<size_t>(threads));
    std::atomic<int> stalled{-1};
    pool.parallel_for(chunks, 1, [&](int64_t begin, int64_t, int thread) {
      taken[static_cast<size_t>(thread)].push_back(begin);  // one chunk at a time per thread
      int none = -1;
      if (thread != 0 && stalled.compare_exchange_strong(none, thread))
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      else  // slow enough that the workers wake before the caller has run everything
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    });
    int64_t all = 0;
    for (int t = 0; t < threads; ++t) {
      const auto& list = taken[static_cast<size_t>(t)];
      all += static_cast<int64_t>(list.size());
      std::vector<int64_t> own;
      for (int64_t c : list)
        if (c / 4 == t) own.push_back(c);
      EXPECT_TRUE(std::is_sorted(own.begin(), own.end())) << "thread " << t << "'s own run";
    }
    EXPECT_EQ(all, chunks);
    EXPECT_GE(stalled.load(), 1) << "no worker took part";
    if (stalled >= 0) {
      EXPECT_EQ(taken[static_cast<size_t>(stalled.load())].size(), 1u)
          << "the stalled thread ran more than the chunk it held";
    }
    if (threads == 2) {
      EXPECT_GE(taken[0].size(), static_cast<size_t>(chunks - 1));
    }
  }
}

TEST(ThreadPool, NestedCallRunsInlineOnTheSameThread) {
  ThreadPool pool(3);
  std::atomic<int64_t> inner{0};
  std::atomic<bool> wrong_thread{false};
  pool.parallel_for(8, 1, [&](int64_t, int64_t, int outer_thread) {
    pool.parallel_for(10, 1, [&](int64_t begin, int64_t end, int thread) {
      if (thread != outer_thread) wrong_thread = true;
      inner += end - begin;
    });
  });
  EXPECT_EQ(inner.load(), 80);
  EXPECT_FALSE(wrong_thread);
}

TEST(ThreadPool, ExceptionInAChunkReachesTheCallerAfterEveryChunk) {
  ThreadPool pool(3);
  std::atomic<int> ran{0};
  EXPECT_THROW(pool.parallel_for(30, 1,
                                 [&](int64_t begin, int64_t end, int) {
                                   ran += static_cast<int>(end - begin);
                                   if (begin <= 7 && 7 < end) throw std::runtime_error("7");
                                 }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 30);
  expect_each_index_once(pool, 50, 1);  // still usable
}

TEST(ThreadPool, RefusesThreadCountsOutsideTheRange) {
  EXPECT_THROW(ThreadPool(0), Error);
  EXPECT_THROW(ThreadPool(1025), Error);
  EXPECT_THROW(make_cpu_backend(-1), Error);
  EXPECT_THROW(make_cpu_backend(1025), Error);
}

TEST(ThreadPool, PhysicalCoresIsPlausible) {
  const int cores = physical_cores();
  EXPECT_GE(cores, 1);
  const unsigned logical = std::thread::hardware_concurrency();
  if (logical > 0) {
    EXPECT_LE(cores, static_cast<int>(logical));
  }
}

int threads_of_this_process() {
  int count = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (const dirent* entry = readdir(dir))
    if (entry->d_name[0] != '.') ++count;
  closedir(dir);
  return count;
}

// OpenBLAS must run inside our pool: a large matmul (the BLAS path) starts no threads of its own.
TEST(ThreadPool, LargeMatmulStartsNoBlasThreads) {
  const int before = threads_of_this_process();
  if (before < 0) GTEST_SKIP() << "no /proc/self/task";
  const auto backend = make_cpu_backend(2);
  const int64_t n = 64, k = 512, m = 512;
  Tensor x = backend->allocate(n, k, DType::F32), w = backend->allocate(m, k, DType::F32),
         out = backend->allocate(n, m, DType::F32);
  std::vector<float> ones(static_cast<size_t>(m * k), 1.0f);
  backend->upload_f32(x, ones.data());
  backend->upload_f32(w, ones.data());
  for (int i = 0; i < 3; ++i) backend->matmul(x, w, Tensor{}, out);
  std::vector<float> result(static_cast<size_t>(n * m));
  backend->download_f32(out, result.data());
  EXPECT_EQ(result[0], static_cast<float>(k));
  EXPECT_EQ(result.back(), static_cast<float>(k));
  EXPECT_EQ(threads_of_this_process(), before + 1) << "expected only the pool's one worker";
  backend->release(x);
  backend->release(w);
  backend->release(out);
}

struct Problem {
  int64_t n, m, k, pad;  // pad: extra floats per row (strides larger than k and m)
  bool bias;
};

void expect_gemm_matches_double(const Problem& p, ThreadPool& pool, SimdLevel level,
                                std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int64_t xs = p.k + p.pad, ws = p.k + p.pad, os = p.m + p.pad;
  std::vector<float> x(static_cast<size_t>(p.n * xs)), w(static_cast<size_t>(p.m * ws)),
      bias(static_cast<size_t>(p.m));
  for (float& v : x) v = uniform(rng);
  for (float& v : w) v = uniform(rng);
  for (float& v : bias) v = uniform(rng);
  const float poison = std::nanf("");
  std::vector<float> out(static_cast<size_t>(p.n * os), poison);
  const GemmArgs args{x.data(),   xs, p.n, w.data(), ws, p.m, p.k, p.bias ? bias.data() : nullptr,
                      out.data(), os};
  small_gemm(args, pool, level);
  for (int64_t i = 0; i < p.n; ++i) {
    for (int64_t r = 0; r < p.m; ++r) {
      double exact = p.bias ? bias[static_cast<size_t>(r)] : 0.0, magnitude = std::abs(exact);
      for (int64_t c = 0; c < p.k; ++c) {
        const double term =
            double{x[static_cast<size_t>(i * xs + c)]} * w[static_cast<size_t>(r * ws + c)];
        exact += term;
        magnitude += std::abs(term);
      }
      // fp32 summation in any order: |error| <= (k + 1) * u * sum |terms| (u = 2^-24), doubled
      // for the products' own rounding; a wrong index or a missed term is far above it.
      const double bound = 2.0 * static_cast<double>(p.k + 1) * 0x1p-24 * magnitude + 1e-30;
      const float got = out[static_cast<size_t>(i * os + r)];
      ASSERT_LE(std::abs(got - exact), bound)
          << "out[" << i << "][" << r << "] = " << got << ", exact " << exact;
    }
    for (int64_t r = p.m; r < os; ++r)  // the padding past m is never written
      ASSERT_TRUE(std::isnan(out[static_cast<size_t>(i * os + r)])) << "wrote past m";
  }
}

TEST(SmallGemm, MatchesDoublePrecisionForShapesPathsAndThreads) {
  std::mt19937 rng(11);
  std::vector<SimdLevel> levels = {SimdLevel::kScalar};
  if (best_simd_level() == SimdLevel::kAvx2) levels.push_back(SimdLevel::kAvx2);
  const Problem problems[] = {
      {1, 1, 1, 0, false},   {1, 576, 576, 0, false},  {1, 37, 9, 3, true},
      {2, 130, 64, 0, true}, {3, 5, 257, 1, false},    {4, 64, 8, 0, true},
      {5, 4, 7, 2, true},    {8, 1536, 576, 0, false}, {16, 33, 129, 5, true},
  };
  for (const int threads : kThreadCounts) {
    ThreadPool pool(threads);
    for (const SimdLevel level : levels)
      for (const Problem& p : problems) {
        SCOPED_TRACE(cat("threads=", threads,
                         " simd=", level == SimdLevel::kAvx2 ? "avx2" : "scalar", " n=", p.n,
                         " m=", p.m, " k=", p.k, " pad=", p.pad, " bias=", p.bias));
        expect_gemm_matches_double(p, pool, level, rng);
      }
  }
}

// The result of an output does not depend on how the rows were split: the same bits for any
// thread count (each output is one thread's dot product).
TEST(SmallGemm, SameBitsForAnyThreadCount) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int64_t n = 3, m = 301, k = 200;
  std::vector<float> x(static_cast<size_t>(n * k)), w(static_cast<size_t>(m * k));
  for (float& v : x) v = uniform(rng);
  for (float& v : w) v = uniform(rng);
  std::vector<std::vector<float>> results;
  for (const int threads : kThreadCounts) {
    ThreadPool pool(threads);
    std::vector<float> out(static_cast<size_t>(n * m));
    small_gemm({x.data(), k, n, w.data(), k, m, k, nullptr, out.data(), m}, pool);
    results.push_back(out);
  }
  for (size_t i = 1; i < results.size(); ++i) EXPECT_EQ(results[i], results[0]);
}

}  // namespace
}  // namespace hogwild::cpu
