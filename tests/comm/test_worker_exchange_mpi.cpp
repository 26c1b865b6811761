// The worker axis as the CUDA backend runs it with NCCL, exercised under mpirun with MPI: every
// rank is one worker group with its own cache; WorkerExchange gets the MPI worker axis presented
// as a stream-ordered communicator (stream_ordered_recorder.h), so it takes the device path
// (backend buffers straight into the collective, no host staging, no waits of its own). Each
// rank's cache must then hold every group's K/V of the step exactly as one process computing
// every token would (checked row by row against the values each token was given), with one
// collective per layer (`sync: layer`) or per step (`sync: step`), and the sampled tokens shared
// with one small all-gather. Valid for any world size (np 1: the axis of one group).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "comm/mpi_communicator.h"
#include "common/error.h"
#include "engine/batch_builder.h"
#include "hogwild/worker_exchange.h"
#include "mpi_test_main.h"
#include "stream_ordered_recorder.h"

namespace hogwild {
namespace {

using testing::StreamOrderedRecorder;

constexpr int64_t kLayers = 3;
constexpr int64_t kKvHeads = 2, kHeadDim = 4, kWidth = kKvHeads * kHeadDim;
constexpr int64_t kMaxTokens = 32;

float key_of(int64_t layer, size_t token, int64_t column) {
  return 1000.0f * static_cast<float>(layer + 1) + 10.0f * static_cast<float>(token) +
         0.125f * static_cast<float>(column);
}
float value_of(int64_t layer, size_t token, int64_t column) {
  return -key_of(layer, token, column) - 0.5f;
}
float before_step(int64_t row, int64_t column) {
  return 0.25f + static_cast<float>(row * kWidth + column);
}

// The CPU backend seen as a device one (host_memory() false): a host communicator must then
// not touch its buffers, and WorkerExchange stages the slabs through host memory, the CUDA
// backend's path when the build has no NCCL.
class DeviceLikeBackend final : public Backend {
 public:
  DeviceLikeBackend() : inner_(make_cpu_backend(1)) {}
  std::string name() const override { return "device-like cpu"; }
  bool host_memory() const override { return false; }
  void synchronize() override { inner_->synchronize(); }
  int downloads = 0, uploads = 0;

 private:
  Tensor do_allocate(int64_t rows, int64_t cols, DType dtype) override {
    return inner_->allocate(rows, cols, dtype);
  }
  void do_release(const Tensor& tensor) override {
    Tensor copy = tensor;
    inner_->release(copy);
  }
  void do_upload_f32(const Tensor& dst, const float* host) override {
    ++uploads;
    inner_->upload_f32(dst, host);
  }
  void do_upload_i32(const Tensor& dst, const int32_t* host) override {
    inner_->upload_i32(dst, host);
  }
  void do_download_f32(const Tensor& src, float* host) override {
    ++downloads;
    inner_->download_f32(src, host);
  }
  void do_embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override {
    inner_->embedding(table, ids, out);
  }
  void do_rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
    inner_->rms_norm(x, weight, eps, out);
  }
  void do_head_rms_norm(const Tensor& x, const Tensor& weight, float eps) override {
    inner_->head_rms_norm(x, weight, eps);
  }
  void do_matmul(const Tensor& x, const Tensor& weight, const Tensor& bias,
                 const Tensor& out) override {
    inner_->matmul(x, weight, bias, out);
  }
  void do_rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
               int64_t head_dim) override {
    inner_->rope(x, positions, inv_freq, head_dim);
  }
  void do_swiglu(const Tensor& gate_up, const Tensor& out) override {
    inner_->swiglu(gate_up, out);
  }
  void do_add(const Tensor& x, const Tensor& y) override { inner_->add(x, y); }
  void do_scatter_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) override {
    inner_->scatter_rows(src, rows, dst);
  }
  void do_gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) override {
    inner_->gather_rows(src, rows, out);
  }
  void do_block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                          const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                          const Tensor& view_entries, const Tensor& inv_freq,
                          const AttentionShape& shape, const Tensor& out) override {
    inner_->block_attention(q, keys, values, page_table, page_size, view_offsets, view_entries,
                            inv_freq, shape, out);
  }
  void do_sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                        const Tensor& tokens, const Tensor& logprobs) override {
    inner_->sample_tokens(logits, params, suppressed, tokens, logprobs);
  }
  void do_download_i32(const Tensor& src, int32_t* host) override {
    inner_->download_i32(src, host);
  }

  std::unique_ptr<Backend> inner_;
};

// Runs of new tokens: (owner group or -1 for every group, count). The owners wrap around the
// world size, so every world gets groups of different sizes and padding.
struct StepRun {
  int32_t owner;
  int64_t tokens;
};
std::vector<StepRun> step_for(int groups) {
  return {{-1, 2}, {0, 3}, {1 % groups, 1}, {2 % groups, 4}, {0, 2}, {3 % groups, 1}};
}

// One rank's part: a cache whose step rows of other groups are stale, its own (and the shared)
// rows written as the forward writes them.
class Rank {
 public:
  Rank(Backend& backend, int group, int groups, bool step_sync) : backend_(backend), group_(group) {
    ModelConfig config;
    config.layers = kLayers;
    config.heads = kKvHeads;
    config.kv_heads = kKvHeads;
    config.head_dim = kHeadDim;
    cache_ = std::make_unique<KvCache>(backend_, config, CacheOptions{24, 4, 8, 6});
    BatchBuilder builder(*cache_);
    std::vector<int32_t> rows;
    const std::vector<StepRun> runs = step_for(groups);
    for (size_t r = 0; r < runs.size(); ++r) {
      const BlockId block = cache_->create_block();
      cache_->extend(block, static_cast<int64_t>(r) + 1, rows);  // rows are not 0, 1, 2, …
      const std::vector<int32_t> tokens(static_cast<size_t>(runs[r].tokens), 1);
      const BlockId view[] = {block};
      builder.add(block, tokens, view, true, runs[r].owner);
    }
    builder.build(full_, step_sync);
    builder.commit();
    std::vector<int32_t> local_logit_row;
    local_ = full_.subset_for_group(group_, local_logit_row);
    for (int64_t layer = 0; layer < kLayers; ++layer) {
      std::vector<float> pool(static_cast<size_t>(cache_->keys(layer).rows * kWidth));
      for (size_t i = 0; i < pool.size(); ++i)
        pool[i] = before_step(static_cast<int64_t>(i) / kWidth, static_cast<int64_t>(i) % kWidth);
      backend_.upload_f32(cache_->keys(layer), pool.data());
      backend_.upload_f32(cache_->values(layer), pool.data());
    }
  }

  // What the forward writes in `layer` before any exchange: the local tokens' K/V.
  void write_local(int64_t layer) {
    std::vector<float> keys, values;
    std::vector<int32_t> rows;
    for (size_t t = 0; t < full_.size(); ++t) {
      if (full_.owners[t] != -1 && full_.owners[t] != group_) continue;
      rows.push_back(full_.cache_rows[t]);
      for (int64_t c = 0; c < kWidth; ++c) {
        keys.push_back(key_of(layer, t, c));
        values.push_back(value_of(layer, t, c));
      }
    }
    if (rows.empty()) return;
    const auto n = static_cast<int64_t>(rows.size());
    Tensor k = backend_.allocate(n, kWidth, DType::F32),
           v = backend_.allocate(n, kWidth, DType::F32);
    Tensor r = backend_.allocate(n, 1, DType::I32);
    backend_.upload_f32(k, keys.data());
    backend_.upload_f32(v, values.data());
    backend_.upload_i32(r, rows.data());
    backend_.scatter_rows(k, r, cache_->keys(layer));
    backend_.scatter_rows(v, r, cache_->values(layer));
    for (Tensor* t : {&k, &v, &r}) backend_.release(*t);
  }

  // Every row of every pool: the step's rows hold their token's K/V, whichever group computed
  // it; the others are untouched.
  void expect_every_row_in_place() const {
    for (int64_t layer = 0; layer < kLayers; ++layer) {
      const int64_t pool_rows = cache_->keys(layer).rows;
      std::vector<float> expected_keys(static_cast<size_t>(pool_rows * kWidth));
      for (size_t i = 0; i < expected_keys.size(); ++i)
        expected_keys[i] =
            before_step(static_cast<int64_t>(i) / kWidth, static_cast<int64_t>(i) % kWidth);
      std::vector<float> expected_values = expected_keys;
      for (size_t t = 0; t < full_.size(); ++t)
        for (int64_t c = 0; c < kWidth; ++c) {
          const size_t at = static_cast<size_t>(full_.cache_rows[t] * kWidth + c);
          expected_keys[at] = key_of(layer, t, c);
          expected_values[at] = value_of(layer, t, c);
        }
      std::vector<float> keys(expected_keys.size()), values(expected_values.size());
      backend_.download_f32(cache_->keys(layer), keys.data());
      backend_.download_f32(cache_->values(layer), values.data());
      EXPECT_EQ(keys, expected_keys) << "group " << group_ << ", layer " << layer << " keys";
      EXPECT_EQ(values, expected_values) << "group " << group_ << ", layer " << layer << " values";
    }
  }

  const ForwardBatch& full() const { return full_; }
  const ForwardBatch& local() const { return local_; }
  KvCache& cache() { return *cache_; }

 private:
  Backend& backend_;
  int group_;
  std::unique_ptr<KvCache> cache_;
  ForwardBatch full_, local_;
};

// The largest group's token count: each collective carries [K | V] padded to it.
size_t rows_per_group(const ForwardBatch& full, int groups) {
  std::vector<size_t> counts(static_cast<size_t>(groups), 0);
  for (int32_t owner : full.owners)
    if (owner >= 0) ++counts[static_cast<size_t>(owner % groups)];
  size_t largest = 0;
  for (size_t c : counts) largest = std::max(largest, c);
  return largest;
}

TEST(WorkerExchangeMpi, LayerSyncOnBackendBuffersMatchesOneProcess) {
  RankGrid grid = make_rank_grid(1, mpi_world_size());
  StreamOrderedRecorder axis(*grid.workers);
  const auto backend = make_cpu_backend(1);
  Rank rank(*backend, grid.group, grid.worker_groups, false);
  WorkerExchange exchange(*backend, axis, kWidth, kMaxTokens, grid.workers.get());
  exchange.prepare(rank.full(), rank.local());
  for (int64_t layer = 0; layer < kLayers; ++layer) {
    if (rank.local().size() > 0) {
      rank.write_local(layer);
      exchange.exchange(layer, Tensor{}, Tensor{}, rank.cache());
    }
  }
  if (rank.local().size() == 0) exchange.exchange_without_tokens(kLayers, rank.cache());
  EXPECT_EQ(axis.waits, 0) << "the exchange never waits: the runner does, at the step's end";
  EXPECT_EQ(axis.queued, kLayers);
  axis.wait();  // as the runner does before reading the step's results
  rank.expect_every_row_in_place();
  ASSERT_EQ(axis.all_gathers, kLayers) << "one collective per layer, K and V together";
  const size_t slab = rows_per_group(rank.full(), grid.worker_groups) * kWidth * sizeof(float);
  for (size_t bytes : axis.gathered_bytes) EXPECT_EQ(bytes, 2 * slab);
}

TEST(WorkerExchangeMpi, StepSyncIsOneCollectivePerStep) {
  RankGrid grid = make_rank_grid(1, mpi_world_size());
  StreamOrderedRecorder axis(*grid.workers);
  const auto backend = make_cpu_backend(1);
  Rank rank(*backend, grid.group, grid.worker_groups, true);
  WorkerExchange exchange(*backend, axis, kWidth, kMaxTokens, grid.workers.get());
  exchange.prepare(rank.full(), rank.local());
  for (int64_t layer = 0; layer < kLayers; ++layer) rank.write_local(layer);
  exchange.exchange_after_step(kLayers, rank.cache());
  EXPECT_EQ(axis.waits, 0);
  axis.wait();
  rank.expect_every_row_in_place();
  ASSERT_EQ(axis.all_gathers, 1) << "every layer's K/V in one collective";
  EXPECT_EQ(axis.gathered_bytes[0],
            kLayers * 2 * rows_per_group(rank.full(), grid.worker_groups) * kWidth * sizeof(float));
}

// A device backend with a host communicator (no NCCL): the same caches, the slabs staged
// through host memory, one download and one upload per collective.
TEST(WorkerExchangeMpi, ADeviceBackendWithAHostAxisStagesThroughTheHost) {
  RankGrid grid = make_rank_grid(1, mpi_world_size());
  for (const bool step_sync : {false, true}) {
    SCOPED_TRACE(step_sync ? "sync: step" : "sync: layer");
    DeviceLikeBackend backend;
    Rank rank(backend, grid.group, grid.worker_groups, step_sync);
    WorkerExchange exchange(backend, *grid.workers, kWidth, kMaxTokens);
    exchange.prepare(rank.full(), rank.local());
    for (int64_t layer = 0; layer < kLayers; ++layer) rank.write_local(layer);
    backend.downloads = backend.uploads = 0;
    if (step_sync) {
      exchange.exchange_after_step(kLayers, rank.cache());
    } else {
      for (int64_t layer = 0; layer < kLayers; ++layer)
        exchange.exchange(layer, Tensor{}, Tensor{}, rank.cache());
    }
    const int collectives = step_sync ? 1 : static_cast<int>(kLayers);
    EXPECT_EQ(backend.downloads, collectives);
    EXPECT_EQ(backend.uploads, collectives);
    rank.expect_every_row_in_place();
  }
}

TEST(WorkerExchangeMpi, TokensAreSharedWithOneSmallAllGather) {
  RankGrid grid = make_rank_grid(1, mpi_world_size());
  StreamOrderedRecorder axis(*grid.workers);
  const auto backend = make_cpu_backend(1);
  WorkerExchange exchange(*backend, axis, kWidth, kMaxTokens, grid.workers.get());
  const std::vector<int32_t> tokens = {17, 0, 4, 99, 23, 8, 61};  // 0 is a valid id
  std::vector<int32_t> sampled(tokens.size(), -1);
  for (size_t r = 0; r < tokens.size(); ++r)
    if (static_cast<int>(r) % grid.worker_groups == grid.group) sampled[r] = tokens[r];
  exchange.share_tokens(sampled);
  EXPECT_EQ(sampled, tokens);
  // Host ids on the host axis: the stream-ordered (device) axis carries none of it.
  EXPECT_EQ(axis.all_gathers, 0);
}

TEST(WorkerExchangeMpi, TheTokenAxisMustBeAHostOne) {
  RankGrid grid = make_rank_grid(1, mpi_world_size());
  StreamOrderedRecorder axis(*grid.workers);
  const auto backend = make_cpu_backend(1);
  try {
    WorkerExchange exchange(*backend, axis, kWidth, kMaxTokens);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("host communicator"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hogwild

HOGWILD_MPI_TEST_MAIN()
