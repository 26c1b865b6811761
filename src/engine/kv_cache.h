// Key/value storage for every layer: `slots` independent sequences of up to `capacity` tokens.
// Keys are stored already rotated to their positions; values are raw. (The paged, block-based
// cache of the Hogwild core replaces this fixed-slot layout.)
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "model/model.h"

namespace hogwild {

class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& config, int64_t slots, int64_t capacity);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t slots() const { return slots_; }
  int64_t capacity() const { return capacity_; }
  // Cache row of token `position` of the sequence in `slot`.
  int64_t row(int64_t slot, int64_t position) const { return slot * capacity_ + position; }
  const Tensor& keys(int64_t layer) const { return keys_[static_cast<size_t>(layer)]; }
  const Tensor& values(int64_t layer) const { return values_[static_cast<size_t>(layer)]; }
  size_t bytes() const;

 private:
  Backend& backend_;
  int64_t slots_;
  int64_t capacity_;
  std::vector<Tensor> keys_;
  std::vector<Tensor> values_;
};

}  // namespace hogwild
