// The worker axis of a distributed run (docs/design.md §6): every worker group computes its own
// workers' tokens, and in every layer the groups all-gather their new keys and values (each rank
// with the ranks that hold the same head slice), so each rank's cache holds every token of the
// step before attention. Sampled tokens are all-gathered too, so every rank applies the same
// tokens to every worker and decides step ends, merges and stops identically.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"
#include "engine/forward_batch.h"
#include "engine/kv_exchange.h"
#include "kernels/backend.h"

namespace hogwild {

class WorkerExchange final : public KvExchange {
 public:
  WorkerExchange(Backend& backend, Communicator& workers, int64_t kv_width,
                 int64_t max_batch_tokens);
  ~WorkerExchange() override;
  WorkerExchange(const WorkerExchange&) = delete;
  WorkerExchange& operator=(const WorkerExchange&) = delete;

  // Plans one step: `full` is the step's whole batch (identical on every rank), `local` the
  // subset this rank's group computes.
  void prepare(const ForwardBatch& full, const ForwardBatch& local);
  void exchange(int64_t layer, const Tensor& new_keys, const Tensor& new_values,
                KvCache& cache) override;
  // For a step in which this group computes no token: joins every layer's all-gather anyway.
  void exchange_without_tokens(int64_t layers, KvCache& cache);
  // `sync: step`: after the forward, one all-gather of this step's new K/V of every layer
  // (read back from the cache), so the other groups' tokens are there for the next step.
  void exchange_after_step(int64_t layers, KvCache& cache);
  // sampled[r] is -1 except for the rows this group sampled; afterwards every entry is filled.
  void share_tokens(std::vector<int32_t>& sampled);

 private:
  Backend& backend_;
  Communicator& workers_;
  int64_t kv_width_;
  int64_t max_rows_;
  int32_t group_;
  int64_t rows_per_group_ = 0;           // the largest group's token count this step
  std::vector<int32_t> own_local_rows_;  // rows of the local batch this group owns
  std::vector<std::vector<int32_t>> cache_rows_of_group_;  // each group's tokens' cache rows
  std::vector<float> step_send_, step_receive_;
  std::vector<float> send_, receive_;
  Tensor gather_rows_, scratch_, scatter_rows_;
};

}  // namespace hogwild
