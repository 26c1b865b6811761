// The worker axis of a distributed run (docs/design.md §6): every worker group computes its own
// workers' tokens, and in every layer the groups all-gather their new keys and values (each rank
// with the ranks that hold the same head slice), so each rank's cache holds every token of the
// step before attention. Sampled tokens are all-gathered too, so every rank applies the same
// tokens to every worker and decides step ends, merges and stops identically.
//
// The K/V move between backend buffers: this group's new rows are gathered from the cache into a
// staging tensor on the backend, [K rows | V rows] padded to the step's largest group (one
// collective per layer with `sync: layer`, every layer's slabs packed in one with `sync: step`),
// all-gathered into a receive tensor on the backend, and scattered into the other groups' cache
// rows by the backend. With host memory (CPU) or a stream-ordered communicator (NCCL on the CUDA
// backend's stream) the collective reads and writes those tensors directly: nothing synchronises
// the host, and the code path NCCL takes is the one the CPU tests run under MPI. Only a device
// backend with a host communicator stages the slabs through host memory.
//
// The rows each group owns are uploaded once per step (prepare), into fixed backend buffers.
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
  // `kv` carries the K/V (a device communicator with the CUDA backend, else the host one);
  // `tokens` the sampled token ids, host buffers (null: `kv`, which must then be a host one).
  // Both join the same ranks in the same order.
  WorkerExchange(Backend& backend, Communicator& kv, int64_t kv_width, int64_t max_batch_tokens,
                 Communicator* tokens = nullptr);
  ~WorkerExchange() override;
  WorkerExchange(const WorkerExchange&) = delete;
  WorkerExchange& operator=(const WorkerExchange&) = delete;

  // Backend bytes of the staging tensors for `groups` worker groups (the memory plan's share):
  // one layer's slabs with `sync: layer`, every layer's with `sync: step`, plus the row indices.
  static size_t staging_bytes(int64_t groups, int64_t layers, int64_t kv_width, DType kv_dtype,
                              int64_t max_batch_tokens, bool step_sync);

  // Plans one step: `full` is the step's whole batch (identical on every rank), `local` the
  // subset this rank's group computes. Uploads every group's cache rows (one upload).
  void prepare(const ForwardBatch& full, const ForwardBatch& local);
  // `sync: layer`, once this rank's new K/V of `layer` are in the cache (they are read from
  // there, in the cache's dtype; new_keys/new_values are not needed).
  void exchange(int64_t layer, const Tensor& new_keys, const Tensor& new_values,
                KvCache& cache) override;
  // For a step in which this group computes no token: joins every layer's all-gather anyway.
  void exchange_without_tokens(int64_t layers, KvCache& cache);
  // `sync: step`: after the forward, one all-gather of this step's new K/V of every layer
  // (read back from the cache), so the other groups' tokens are there for the next step.
  void exchange_after_step(int64_t layers, KvCache& cache);
  // sampled[r] is -1 except for the rows this group sampled; afterwards every entry is filled
  // (one small all-gather on the host communicator).
  void share_tokens(std::vector<int32_t>& sampled);

 private:
  // Staging for `slots` layers of the cache's dtype, allocated on first use, for the largest
  // step (max_batch_tokens rows per group).
  struct Staging {
    int64_t slots = 0;
    Tensor send, receive;
  };
  Staging& staging(Staging& staging, int64_t slots, DType dtype);
  // Gathers this group's rows of `layer` into slot `slot` of `send` ([K | V], rows_per_group_
  // rows each).
  void gather_own(const KvCache& cache, int64_t layer, const Tensor& send, int64_t slot);
  // The other groups' rows of `layer` from slot `slot` of their part of `receive` to the cache.
  void scatter_others(KvCache& cache, int64_t layer, const Tensor& receive, int64_t slots,
                      int64_t slot);
  // All-gathers the first `rows` rows of send into receive (groups × rows rows).
  void all_gather_rows(const Tensor& send, const Tensor& receive, int64_t rows);

  Backend& backend_;
  Communicator& kv_;
  Communicator& tokens_;
  const bool direct_;  // the collective works on backend buffers (host memory or stream-ordered)
  int64_t kv_width_;
  int64_t max_rows_;
  int32_t group_, groups_;
  int64_t rows_per_group_ = 0;  // the largest group's token count this step
  std::vector<std::vector<int32_t>> cache_rows_of_group_;  // each group's tokens' cache rows
  std::vector<int64_t> first_row_of_group_;                // where each group's rows start in rows_
  std::vector<int32_t> packed_rows_;  // every group's rows, in group order (host)
  Tensor rows_;                       // packed_rows_ on the backend
  Staging layer_staging_, step_staging_;
  std::vector<float> host_send_, host_receive_;  // staging through the host only
};

}  // namespace hogwild
