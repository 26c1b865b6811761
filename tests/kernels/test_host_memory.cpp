// The CPU backend's tensor memory (kernels/cpu/host_memory.h): every block zeroed, 64-byte
// aligned and disjoint from every other live block, small and large alike; slabs returned once all
// their blocks are released (and the current one reused); foreign pointers refused; and the huge
// page advice taken where the kernel offers transparent huge pages on request.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/host_memory.h"

namespace hogwild::cpu {
namespace {

TEST(HostMemory, BlocksAreZeroedAlignedAndDisjoint) {
  HostMemory memory;
  std::mt19937 rng(5);
  std::vector<std::pair<char*, size_t>> live;
  for (int i = 0; i < 200; ++i) {
    // Sizes from a byte to 40 MiB (past a slab), most of them near the slab threshold.
    size_t bytes = i % 50 == 49 ? (size_t{40} << 20)
                                : std::uniform_int_distribution<size_t>(
                                      1, 3 * HostMemory::kSlabThreshold)(rng);
    auto* block = static_cast<char*>(memory.allocate(bytes));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % HostMemory::kAlignment, 0u) << bytes;
    EXPECT_TRUE(std::all_of(block, block + bytes, [](char c) { return c == 0; })) << bytes;
    std::memset(block, 0x5A, bytes);  // dirty it: a reused block must come back zeroed
    live.emplace_back(block, bytes);
    if (i % 3 == 2) {  // release one at random now and then
      const size_t victim = std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng);
      EXPECT_TRUE(memory.release(live[victim].first));
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
    }
  }
  EXPECT_EQ(memory.blocks(), live.size());
  std::sort(live.begin(), live.end());
  for (size_t i = 1; i < live.size(); ++i)
    EXPECT_LE(live[i - 1].first + live[i - 1].second, live[i].first) << "blocks overlap";
  for (auto& [block, bytes] : live) EXPECT_TRUE(memory.release(block));
  EXPECT_EQ(memory.blocks(), 0u);
  EXPECT_LE(memory.slabs(), 1u) << "slabs kept after all their blocks were released";
}

TEST(HostMemory, RefusesWhatItDidNotGiveAndReusesAnEmptySlab) {
  HostMemory memory;
  int local = 0;
  EXPECT_FALSE(memory.release(&local));
  void* a = memory.allocate(HostMemory::kSlabThreshold);
  EXPECT_TRUE(memory.release(a));
  EXPECT_FALSE(memory.release(a)) << "released twice";
  void* b = memory.allocate(HostMemory::kSlabThreshold);
  EXPECT_EQ(a, b) << "the emptied current slab is reused from its start";
  EXPECT_EQ(memory.slabs(), 1u);
  EXPECT_TRUE(memory.release(b));
}

// Where THP is "madvise" or "always", a touched 2 MiB-aligned slab is backed by huge pages (the
// kernel may still refuse under memory pressure or fragmentation, so only "none at all" fails).
TEST(HostMemory, SlabsGetHugePagesWhereTheKernelOffersThem) {
  std::ifstream setting("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(setting, modes);
  if (modes.find("[never]") != std::string::npos || modes.empty())
    GTEST_SKIP() << "transparent huge pages are off here";
  const auto huge_kib = [] {
    std::ifstream smaps("/proc/self/smaps_rollup");
    for (std::string line; std::getline(smaps, line);)
      if (line.rfind("AnonHugePages:", 0) == 0) return std::stoll(line.substr(14));
    return -1LL;
  };
  const long long before = huge_kib();
  if (before < 0) GTEST_SKIP() << "no AnonHugePages in /proc/self/smaps_rollup";
  HostMemory memory;
  void* block = memory.allocate(size_t{16} << 20);  // zeroed: every page touched
  ASSERT_NE(block, nullptr);
  EXPECT_GT(huge_kib(), before) << "no huge page behind a 16 MiB slab block (THP: " << modes << ")";
  EXPECT_TRUE(memory.release(block));
}

}  // namespace
}  // namespace hogwild::cpu
