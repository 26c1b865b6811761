// The CPU backend's tensor memory. Blocks of 64 KiB and more come from slabs of 2 MiB-aligned
// memory that Linux is asked to back with transparent huge pages (madvise MADV_HUGEPAGE; machines
// set to "madvise" give none otherwise): a decode step streams ~100 MB of weights and cache, and
// with 4 KiB pages every 4 KiB of it is a TLB miss and a new stream for the hardware prefetcher
// (measured: the step's matmuls 4-8% faster). Smaller blocks come from aligned_alloc. Tensors are
// long-lived (weights, the cache, the forward's workspace), so a slab is bump-allocated and
// returned whole once all its blocks are released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace hogwild::cpu {

class HostMemory {
 public:
  static constexpr size_t kAlignment = 64;  // every block: for vector loads
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kSlabThreshold = size_t{64} << 10;  // smaller blocks: aligned_alloc
  static constexpr size_t kSlabBytes = size_t{32} << 20;      // or one block's size, rounded up

  HostMemory() = default;
  ~HostMemory();
  HostMemory(const HostMemory&) = delete;
  HostMemory& operator=(const HostMemory&) = delete;

  // `bytes` (> 0) of zeroed memory aligned to kAlignment; nullptr when the system has none.
  void* allocate(size_t bytes);
  // A block from allocate(), once. Returns false (and does nothing) for any other pointer.
  bool release(void* block);

  size_t slabs() const { return slabs_.size(); }  // for tests
  size_t blocks() const { return small_.size() + in_slab_.size(); }

 private:
  struct Slab {
    size_t bytes = 0;
    size_t used = 0;   // bump offset
    int64_t live = 0;  // blocks not yet released
  };
  void* from_slab(size_t bytes);

  std::unordered_set<void*> small_;           // aligned_alloc blocks
  std::map<char*, Slab> slabs_;               // by base address
  std::unordered_map<void*, char*> in_slab_;  // slab block -> its slab's base
  char* current_ = nullptr;                   // the slab new blocks come from
};

}  // namespace hogwild::cpu
