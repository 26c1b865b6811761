#include "engine/cache_merge.h"

#include <vector>

#include "common/error.h"

namespace hogwild {

CacheMerger::CacheMerger(Backend& backend, KvCache& cache, const Tensor& inv_freq, int64_t head_dim)
    : backend_(backend), cache_(cache), inv_freq_(inv_freq), head_dim_(head_dim) {
  const int64_t rows = cache.max_rows_per_block();
  from_ = backend_.allocate(rows, 1, DType::I32);
  to_ = backend_.allocate(rows, 1, DType::I32);
  rotation_ = backend_.allocate(rows, 1, DType::I32);
  scratch_ = backend_.allocate(rows, cache.keys(0).cols, cache.keys(0).dtype);
}

CacheMerger::~CacheMerger() {
  for (Tensor* t : {&from_, &to_, &rotation_, &scratch_}) backend_.release(*t);
}

void CacheMerger::apply(const MergePlan& plan) {
  if (plan.empty()) return;
  HOGWILD_ASSERT(plan.from.size() == plan.to.size());
  const auto count = static_cast<int64_t>(plan.from.size());
  HOGWILD_ASSERT(count <= from_.rows);
  const Tensor from = from_.rows_view(0, count);
  const Tensor to = to_.rows_view(0, count);
  const Tensor rotation = rotation_.rows_view(0, count);
  const Tensor scratch = scratch_.rows_view(0, count);
  backend_.upload_i32(from, plan.from.data());
  backend_.upload_i32(to, plan.to.data());
  const std::vector<int32_t> shift(static_cast<size_t>(count), plan.rotation);
  backend_.upload_i32(rotation, shift.data());
  const bool moves = plan.moves_rows();
  for (int64_t layer = 0; layer < cache_.layers(); ++layer) {
    backend_.gather_rows(cache_.keys(layer), from, scratch);
    backend_.rope(scratch, rotation, inv_freq_, head_dim_);
    backend_.scatter_rows(scratch, to, cache_.keys(layer));
    if (moves) {
      backend_.gather_rows(cache_.values(layer), from, scratch);
      backend_.scatter_rows(scratch, to, cache_.values(layer));
    }
  }
}

}  // namespace hogwild
