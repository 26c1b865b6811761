#include "kernels/cpu/host_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace hogwild::cpu {

HostMemory::~HostMemory() {
  for (void* block : small_) std::free(block);
  for (auto& [base, slab] : slabs_) std::free(base);
}

void* HostMemory::allocate(size_t bytes) {
  bytes = std::max<size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  if (bytes >= kSlabThreshold) return from_slab(bytes);
  void* block = std::aligned_alloc(kAlignment, bytes);
  if (block == nullptr) return nullptr;
  std::memset(block, 0, bytes);
  small_.insert(block);
  return block;
}

void* HostMemory::from_slab(size_t bytes) {
  Slab* slab = current_ != nullptr ? &slabs_.at(current_) : nullptr;
  if (slab == nullptr || slab->bytes - slab->used < bytes) {
    if (slab != nullptr && slab->live == 0) {  // the old current slab holds nothing: return it
      std::free(current_);
      slabs_.erase(current_);
    }
    current_ = nullptr;
    const size_t slab_bytes = std::max(kSlabBytes, (bytes + kHugePage - 1) / kHugePage * kHugePage);
    auto* base = static_cast<char*>(std::aligned_alloc(kHugePage, slab_bytes));
    if (base == nullptr) return nullptr;
    // Advice only: without transparent huge pages (or with them off) the memory is plain pages.
    static_cast<void>(madvise(base, slab_bytes, MADV_HUGEPAGE));
    current_ = base;
    slab = &slabs_.emplace(base, Slab{slab_bytes, 0, 0}).first->second;
  }
  char* block = current_ + slab->used;
  slab->used += bytes;
  ++slab->live;
  std::memset(block, 0, bytes);
  in_slab_.emplace(block, current_);
  return block;
}

bool HostMemory::release(void* block) {
  if (const auto small = small_.find(block); small != small_.end()) {
    std::free(block);
    small_.erase(small);
    return true;
  }
  const auto entry = in_slab_.find(block);
  if (entry == in_slab_.end()) return false;
  char* base = entry->second;
  in_slab_.erase(entry);
  Slab& slab = slabs_.at(base);
  if (--slab.live == 0) {
    if (base == current_) {
      slab.used = 0;  // empty again: reuse it from the start
    } else {
      std::free(base);
      slabs_.erase(base);
    }
  }
  return true;
}

}  // namespace hogwild::cpu
