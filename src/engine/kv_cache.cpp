#include "engine/kv_cache.h"

#include "common/error.h"

namespace hogwild {

KvCache::KvCache(Backend& backend, const ModelConfig& config, int64_t slots, int64_t capacity)
    : backend_(backend), slots_(slots), capacity_(capacity) {
  HOGWILD_CHECK(slots > 0 && capacity > 0, "KV cache needs slots > 0 and capacity > 0, got ",
                slots, " and ", capacity);
  const int64_t width = config.kv_heads * config.head_dim;
  for (int64_t layer = 0; layer < config.layers; ++layer) {
    keys_.push_back(backend_.allocate(slots * capacity, width, DType::F32));
    values_.push_back(backend_.allocate(slots * capacity, width, DType::F32));
  }
}

KvCache::~KvCache() {
  for (Tensor& t : keys_) backend_.release(t);
  for (Tensor& t : values_) backend_.release(t);
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const Tensor& t : keys_) total += static_cast<size_t>(t.elements()) * dtype_size(t.dtype);
  return 2 * total;
}

}  // namespace hogwild
