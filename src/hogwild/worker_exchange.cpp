#include "hogwild/worker_exchange.h"

#include <algorithm>

#include "common/error.h"

namespace hogwild {

WorkerExchange::WorkerExchange(Backend& backend, Communicator& kv, int64_t kv_width,
                               int64_t max_batch_tokens, Communicator* tokens)
    : backend_(backend),
      kv_(kv),
      tokens_(tokens != nullptr ? *tokens : kv),
      direct_(backend.host_memory() || kv.stream_ordered()),
      kv_width_(kv_width),
      max_rows_(max_batch_tokens),
      group_(kv.rank()),
      groups_(kv.size()) {
  HOGWILD_CHECK(!tokens_.stream_ordered(), "WorkerExchange: the tokens need a host communicator");
  HOGWILD_CHECK(tokens_.size() == groups_ && tokens_.rank() == group_,
                "WorkerExchange: the token and K/V communicators join different ranks");
  rows_ = backend_.allocate(static_cast<int64_t>(groups_) * max_rows_, 1, DType::I32);
}

WorkerExchange::~WorkerExchange() {
  for (Tensor* t : {&rows_, &layer_staging_.send, &layer_staging_.receive, &step_staging_.send,
                    &step_staging_.receive})
    backend_.release(*t);
}

size_t WorkerExchange::staging_bytes(int64_t groups, int64_t layers, int64_t kv_width,
                                     DType kv_dtype, int64_t max_batch_tokens, bool step_sync) {
  if (groups <= 1) return 0;
  const int64_t slots = step_sync ? layers : 1;
  const size_t row = dtype_row_bytes(kv_dtype, kv_width);
  const auto slab_rows = static_cast<size_t>(slots * 2 * max_batch_tokens);
  return slab_rows * row * static_cast<size_t>(1 + groups) +
         static_cast<size_t>(groups * max_batch_tokens) * sizeof(int32_t);
}

void WorkerExchange::prepare(const ForwardBatch& full, const ForwardBatch& local) {
  cache_rows_of_group_.assign(static_cast<size_t>(groups_), {});
  for (size_t t = 0; t < full.size(); ++t) {
    const int32_t owner = full.owners[t];
    if (owner >= 0)
      cache_rows_of_group_[static_cast<size_t>(owner % groups_)].push_back(full.cache_rows[t]);
  }
  rows_per_group_ = 0;
  for (const auto& rows : cache_rows_of_group_)
    rows_per_group_ = std::max<int64_t>(rows_per_group_, static_cast<int64_t>(rows.size()));
  HOGWILD_CHECK(rows_per_group_ <= max_rows_, "a worker group has ", rows_per_group_,
                " tokens in one step, more than the ", max_rows_, " planned");
  size_t own_local = 0;
  for (size_t t = 0; t < local.size(); ++t) own_local += local.owners[t] >= 0 ? 1 : 0;
  HOGWILD_ASSERT(own_local == cache_rows_of_group_[static_cast<size_t>(group_)].size());

  // One upload per step: the row indices every layer's gather and scatters use.
  packed_rows_.clear();
  first_row_of_group_.assign(static_cast<size_t>(groups_), 0);
  for (int g = 0; g < groups_; ++g) {
    first_row_of_group_[static_cast<size_t>(g)] = static_cast<int64_t>(packed_rows_.size());
    const auto& rows = cache_rows_of_group_[static_cast<size_t>(g)];
    packed_rows_.insert(packed_rows_.end(), rows.begin(), rows.end());
  }
  if (!packed_rows_.empty())
    backend_.upload_i32(rows_.rows_view(0, static_cast<int64_t>(packed_rows_.size())),
                        packed_rows_.data());
}

WorkerExchange::Staging& WorkerExchange::staging(Staging& staging, int64_t slots, DType dtype) {
  if (!staging.send.empty() && (staging.slots < slots || staging.send.dtype != dtype)) {
    backend_.release(staging.send);
    backend_.release(staging.receive);
  }
  if (staging.send.empty()) {
    // Sized once for the largest step, so that no later step allocates.
    staging.slots = slots;
    staging.send = backend_.allocate(slots * 2 * max_rows_, kv_width_, dtype);
    staging.receive =
        backend_.allocate(static_cast<int64_t>(groups_) * slots * 2 * max_rows_, kv_width_, dtype);
  }
  return staging;
}

void WorkerExchange::gather_own(const KvCache& cache, int64_t layer, const Tensor& send,
                                int64_t slot) {
  const auto& own = cache_rows_of_group_[static_cast<size_t>(group_)];
  if (own.empty()) return;  // padding only: receivers read no row of ours
  const auto count = static_cast<int64_t>(own.size());
  const Tensor rows = rows_.rows_view(first_row_of_group_[static_cast<size_t>(group_)], count);
  const int64_t first = slot * 2 * rows_per_group_;
  backend_.gather_rows(cache.keys(layer), rows, send.rows_view(first, count));
  backend_.gather_rows(cache.values(layer), rows, send.rows_view(first + rows_per_group_, count));
}

void WorkerExchange::scatter_others(KvCache& cache, int64_t layer, const Tensor& receive,
                                    int64_t slots, int64_t slot) {
  for (int g = 0; g < groups_; ++g) {
    const auto& rows = cache_rows_of_group_[static_cast<size_t>(g)];
    if (g == group_ || rows.empty()) continue;  // ours are in the cache already
    const auto count = static_cast<int64_t>(rows.size());
    const Tensor targets = rows_.rows_view(first_row_of_group_[static_cast<size_t>(g)], count);
    const int64_t first = (static_cast<int64_t>(g) * slots + slot) * 2 * rows_per_group_;
    backend_.scatter_rows(receive.rows_view(first, count), targets, cache.keys(layer));
    backend_.scatter_rows(receive.rows_view(first + rows_per_group_, count), targets,
                          cache.values(layer));
  }
}

void WorkerExchange::all_gather_rows(const Tensor& send, const Tensor& receive, int64_t rows) {
  const Tensor from = send.rows_view(0, rows);
  const Tensor to = receive.rows_view(0, static_cast<int64_t>(groups_) * rows);
  HOGWILD_ASSERT(from.contiguous() && to.contiguous());
  if (direct_) {
    kv_.all_gather(from.data, to.data,
                   static_cast<size_t>(rows) * dtype_row_bytes(from.dtype, from.cols));
    return;
  }
  // A device backend with a host communicator: through host memory (correct, not fast).
  host_send_.resize(static_cast<size_t>(from.elements()));
  host_receive_.resize(static_cast<size_t>(to.elements()));
  backend_.download_f32(from, host_send_.data());
  kv_.all_gather(host_send_.data(), host_receive_.data(), host_send_.size() * sizeof(float));
  backend_.upload_f32(to, host_receive_.data());
}

void WorkerExchange::exchange(int64_t layer, const Tensor&, const Tensor&, KvCache& cache) {
  if (rows_per_group_ == 0) return;  // only shared tokens this step: every group has them all
  const Staging& s = staging(layer_staging_, 1, cache.keys(layer).dtype);
  gather_own(cache, layer, s.send, 0);
  all_gather_rows(s.send, s.receive, 2 * rows_per_group_);
  scatter_others(cache, layer, s.receive, 1, 0);
}

void WorkerExchange::exchange_without_tokens(int64_t layers, KvCache& cache) {
  for (int64_t layer = 0; layer < layers; ++layer) exchange(layer, Tensor{}, Tensor{}, cache);
}

void WorkerExchange::exchange_after_step(int64_t layers, KvCache& cache) {
  if (rows_per_group_ == 0 || layers == 0) return;
  // Every layer's slabs side by side: one collective for the whole step.
  const Staging& s = staging(step_staging_, layers, cache.keys(0).dtype);
  for (int64_t layer = 0; layer < layers; ++layer) gather_own(cache, layer, s.send, layer);
  all_gather_rows(s.send, s.receive, layers * 2 * rows_per_group_);
  for (int64_t layer = 0; layer < layers; ++layer)
    scatter_others(cache, layer, s.receive, layers, layer);
}

void WorkerExchange::share_tokens(std::vector<int32_t>& sampled) {
  if (groups_ == 1 || sampled.empty()) return;
  std::vector<int32_t> all(sampled.size() * static_cast<size_t>(groups_));
  tokens_.all_gather(sampled.data(), all.data(), sampled.size() * sizeof(int32_t));
  for (size_t r = 0; r < sampled.size(); ++r)
    for (int g = 0; g < groups_; ++g)
      sampled[r] = std::max(sampled[r], all[static_cast<size_t>(g) * sampled.size() + r]);
}

}  // namespace hogwild
