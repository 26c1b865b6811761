#include "hogwild/worker_exchange.h"

#include <algorithm>

#include "common/error.h"

namespace hogwild {

WorkerExchange::WorkerExchange(Backend& backend, Communicator& workers, int64_t kv_width,
                               int64_t max_batch_tokens)
    : backend_(backend),
      workers_(workers),
      kv_width_(kv_width),
      max_rows_(max_batch_tokens),
      group_(workers.rank()) {
  gather_rows_ = backend_.allocate(max_rows_, 1, DType::I32);
  scratch_ = backend_.allocate(max_rows_, kv_width_, DType::F32);
  scatter_rows_ = backend_.allocate(max_rows_, 1, DType::I32);
}

WorkerExchange::~WorkerExchange() {
  for (Tensor* t : {&gather_rows_, &scratch_, &scatter_rows_}) backend_.release(*t);
}

void WorkerExchange::prepare(const ForwardBatch& full, const ForwardBatch& local) {
  const int groups = workers_.size();
  cache_rows_of_group_.assign(static_cast<size_t>(groups), {});
  for (size_t t = 0; t < full.size(); ++t) {
    const int32_t owner = full.owners[t];
    if (owner >= 0)
      cache_rows_of_group_[static_cast<size_t>(owner % groups)].push_back(full.cache_rows[t]);
  }
  rows_per_group_ = 0;
  for (const auto& rows : cache_rows_of_group_)
    rows_per_group_ = std::max<int64_t>(rows_per_group_, static_cast<int64_t>(rows.size()));
  HOGWILD_CHECK(rows_per_group_ <= max_rows_, "a worker group has ", rows_per_group_,
                " tokens in one step, more than the ", max_rows_, " planned");
  own_local_rows_.clear();
  for (size_t t = 0; t < local.size(); ++t)
    if (local.owners[t] >= 0) own_local_rows_.push_back(static_cast<int32_t>(t));
  HOGWILD_ASSERT(own_local_rows_.size() ==
                 cache_rows_of_group_[static_cast<size_t>(group_)].size());
}

void WorkerExchange::exchange(int64_t layer, const Tensor& new_keys, const Tensor& new_values,
                              KvCache& cache) {
  if (rows_per_group_ == 0) return;  // only shared tokens this step: every group has them all
  const int groups = workers_.size();
  const auto own = static_cast<int64_t>(own_local_rows_.size());
  const size_t slab = static_cast<size_t>(rows_per_group_ * kv_width_);  // one of K or V
  send_.assign(2 * slab, 0.0f);
  if (own > 0) {
    const Tensor rows = gather_rows_.rows_view(0, own);
    const Tensor scratch = scratch_.rows_view(0, own);
    backend_.upload_i32(rows, own_local_rows_.data());
    backend_.gather_rows(new_keys, rows, scratch);
    backend_.download_f32(scratch, send_.data());
    backend_.gather_rows(new_values, rows, scratch);
    backend_.download_f32(scratch, send_.data() + slab);
  }
  receive_.resize(2 * slab * static_cast<size_t>(groups));
  workers_.all_gather(send_.data(), receive_.data(), 2 * slab * sizeof(float));
  for (int g = 0; g < groups; ++g) {
    if (g == group_) continue;  // ours are in the cache already
    const auto& rows = cache_rows_of_group_[static_cast<size_t>(g)];
    if (rows.empty()) continue;
    const auto count = static_cast<int64_t>(rows.size());
    const Tensor targets = scatter_rows_.rows_view(0, count);
    const Tensor scratch = scratch_.rows_view(0, count);
    backend_.upload_i32(targets, rows.data());
    const float* received = receive_.data() + 2 * slab * static_cast<size_t>(g);
    backend_.upload_f32(scratch, received);
    backend_.scatter_rows(scratch, targets, cache.keys(layer));
    backend_.upload_f32(scratch, received + slab);
    backend_.scatter_rows(scratch, targets, cache.values(layer));
  }
}

void WorkerExchange::exchange_without_tokens(int64_t layers, KvCache& cache) {
  const Tensor empty = scratch_.rows_view(0, 0);
  for (int64_t layer = 0; layer < layers; ++layer) exchange(layer, empty, empty, cache);
}

void WorkerExchange::exchange_after_step(int64_t layers, KvCache& cache) {
  if (rows_per_group_ == 0) return;
  const int groups = workers_.size();
  const auto& own_rows = cache_rows_of_group_[static_cast<size_t>(group_)];
  const auto own = static_cast<int64_t>(own_rows.size());
  const size_t slab = static_cast<size_t>(rows_per_group_ * kv_width_);
  const size_t per_rank = 2 * slab * static_cast<size_t>(layers);
  step_send_.assign(per_rank, 0.0f);
  if (own > 0) {
    const Tensor rows = gather_rows_.rows_view(0, own);
    const Tensor scratch = scratch_.rows_view(0, own);
    backend_.upload_i32(rows, own_rows.data());
    for (int64_t layer = 0; layer < layers; ++layer) {
      float* out = step_send_.data() + 2 * slab * static_cast<size_t>(layer);
      backend_.gather_rows(cache.keys(layer), rows, scratch);
      backend_.download_f32(scratch, out);
      backend_.gather_rows(cache.values(layer), rows, scratch);
      backend_.download_f32(scratch, out + slab);
    }
  }
  step_receive_.resize(per_rank * static_cast<size_t>(groups));
  workers_.all_gather(step_send_.data(), step_receive_.data(), per_rank * sizeof(float));
  for (int g = 0; g < groups; ++g) {
    const auto& rows = cache_rows_of_group_[static_cast<size_t>(g)];
    if (g == group_ || rows.empty()) continue;
    const auto count = static_cast<int64_t>(rows.size());
    const Tensor targets = scatter_rows_.rows_view(0, count);
    const Tensor scratch = scratch_.rows_view(0, count);
    backend_.upload_i32(targets, rows.data());
    for (int64_t layer = 0; layer < layers; ++layer) {
      const float* in = step_receive_.data() + per_rank * static_cast<size_t>(g) +
                        2 * slab * static_cast<size_t>(layer);
      backend_.upload_f32(scratch, in);
      backend_.scatter_rows(scratch, targets, cache.keys(layer));
      backend_.upload_f32(scratch, in + slab);
      backend_.scatter_rows(scratch, targets, cache.values(layer));
    }
  }
}

void WorkerExchange::share_tokens(std::vector<int32_t>& sampled) {
  if (workers_.size() == 1 || sampled.empty()) return;
  std::vector<int32_t> all(sampled.size() * static_cast<size_t>(workers_.size()));
  workers_.all_gather(sampled.data(), all.data(), sampled.size() * sizeof(int32_t));
  for (size_t r = 0; r < sampled.size(); ++r)
    for (int g = 0; g < workers_.size(); ++g)
      sampled[r] = std::max(sampled[r], all[static_cast<size_t>(g) * sampled.size() + r]);
}

}  // namespace hogwild
