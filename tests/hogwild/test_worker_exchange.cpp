// WorkerExchange in one process: a fake worker axis plays the other worker groups. Its
// all_gather fills their slots with the payload they would send (their own tokens' new K/V in
// batch order, padded to the largest group), and records every call, so the test checks what
// this rank sends, where the others' rows land in every layer (against a naive copy of the whole
// step into the pools), and that every rank joins the same collectives whatever it computes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "comm/communicator.h"
#include "engine/batch_builder.h"
#include "engine/forward_batch.h"
#include "hogwild/worker_exchange.h"

namespace hogwild {
namespace {

constexpr int kGroups = 3;
constexpr int64_t kLayers = 2;
constexpr int64_t kKvHeads = 2, kHeadDim = 3, kWidth = kKvHeads * kHeadDim;
constexpr float kPadding = 7.25e6f;  // what the fake groups put in padding rows: never read

// The K and V a token's row holds in a layer, distinct for every (layer, token, column).
float key_of(int64_t layer, size_t token, int64_t column) {
  return 10000.0f * static_cast<float>(layer + 1) + 100.0f * static_cast<float>(token) +
         static_cast<float>(column);
}
float value_of(int64_t layer, size_t token, int64_t column) {
  return -key_of(layer, token, column);
}
// What every pool row holds before the step: a row the step must not touch keeps it.
float before_step(int64_t row, int64_t column) {
  return 0.5f + static_cast<float>(row * kWidth + column);
}

template <typename T>
std::vector<std::byte> as_bytes(const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

template <typename T>
std::vector<T> from_bytes(const std::vector<std::byte>& bytes) {
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

// The worker axis seen from rank `rank`: the other groups are simulated.
class FakeWorkerAxis final : public Communicator {
 public:
  struct Call {
    size_t bytes = 0;
    std::vector<std::byte> sent;  // this rank's contribution
  };
  // The bytes group `group` contributes to the all_gather numbered `call` (from 0).
  using OtherGroups = std::function<std::vector<std::byte>(size_t call, int group)>;

  FakeWorkerAxis(int rank, int size, OtherGroups others)
      : rank_(rank), size_(size), others_(std::move(others)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return "fake worker axis"; }

  void all_gather(const void* send, void* recv, size_t bytes) override {
    const size_t call = calls_.size();
    const auto* send_bytes = static_cast<const std::byte*>(send);
    calls_.push_back({bytes, {send_bytes, send_bytes + bytes}});
    auto* out = static_cast<std::byte*>(recv);
    for (int group = 0; group < size_; ++group) {
      std::byte* slot = out + static_cast<size_t>(group) * bytes;
      if (group == rank_) {
        std::memcpy(slot, send, bytes);
        continue;
      }
      const std::vector<std::byte> theirs = others_(call, group);
      EXPECT_EQ(theirs.size(), bytes)
          << "group " << group << " sends another size at call " << call;
      std::memcpy(slot, theirs.data(), std::min(bytes, theirs.size()));
    }
  }
  void all_reduce_sum(float*, size_t) override {
    ADD_FAILURE() << "no all_reduce on the worker axis";
  }
  void broadcast(void*, size_t, int) override {
    ADD_FAILURE() << "no broadcast on the worker axis";
  }
  void barrier() override { ADD_FAILURE() << "no barrier on the worker axis"; }

  const std::vector<Call>& calls() const { return calls_; }

 private:
  int rank_, size_;
  OtherGroups others_;
  std::vector<Call> calls_;
};

// One run of the step: `tokens` new tokens of one block, computed by worker group `owner` (-1:
// every group, like a prompt).
struct StepRun {
  int32_t owner;
  int64_t tokens;
};

// The global batch indices of the tokens `group` computes itself (owner == group).
std::vector<size_t> owned_by(const ForwardBatch& full, int group) {
  std::vector<size_t> tokens;
  for (size_t t = 0; t < full.size(); ++t)
    if (full.owners[t] == group) tokens.push_back(t);
  return tokens;
}

size_t largest_group(const ForwardBatch& full) {
  size_t largest = 0;
  for (int g = 0; g < kGroups; ++g) largest = std::max(largest, owned_by(full, g).size());
  return largest;
}

// What `group` sends for `layer` with sync: layer: its own tokens' K rows in batch order, padded
// with `padding` to the largest group's count, then the V rows the same way.
std::vector<float> layer_payload(const ForwardBatch& full, int group, int64_t layer,
                                 float padding) {
  const size_t rows = largest_group(full);
  std::vector<float> payload;
  for (auto* value : {&key_of, &value_of}) {
    const std::vector<size_t> mine = owned_by(full, group);
    for (size_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < kWidth; ++c)
        payload.push_back(r < mine.size() ? (*value)(layer, mine[r], c) : padding);
  }
  return payload;
}

// sync: step: every layer's payload, layer after layer, in one message.
std::vector<float> step_payload(const ForwardBatch& full, int group, float padding) {
  std::vector<float> payload;
  for (int64_t layer = 0; layer < kLayers; ++layer) {
    const std::vector<float> one = layer_payload(full, group, layer, padding);
    payload.insert(payload.end(), one.begin(), one.end());
  }
  return payload;
}

// One rank of worker group `group`, driven as the runner drives it: every rank builds the same
// full batch over its own cache, computes its subset, and exchanges the rest.
class ExchangeRank {
 public:
  ExchangeRank(Backend& backend, int group, const std::vector<StepRun>& runs,
               FakeWorkerAxis::OtherGroups others)
      : backend_(backend), group_(group), axis_(group, kGroups, std::move(others)) {
    ModelConfig config;
    config.layers = kLayers;
    config.heads = kKvHeads;
    config.kv_heads = kKvHeads;
    config.head_dim = kHeadDim;
    cache_ = std::make_unique<KvCache>(backend_, config, CacheOptions{32, 4, 8, 8});
    // Blocks that already hold a few tokens, so the step's rows are not simply 0, 1, 2, ...
    std::vector<int32_t> rows;
    BatchBuilder builder(*cache_);
    for (size_t r = 0; r < runs.size(); ++r) {
      const BlockId block = cache_->create_block();
      cache_->extend(block, static_cast<int64_t>(r) + 3, rows);
      const std::vector<int32_t> tokens(static_cast<size_t>(runs[r].tokens), 1);
      const BlockId view[] = {block};
      builder.add(block, tokens, view, true, runs[r].owner);
    }
    builder.build(full_);
    builder.commit();
    local_ = full_.subset_for_group(group_, local_logit_row_);
    for (int64_t layer = 0; layer < kLayers; ++layer) {
      std::vector<float> pool(static_cast<size_t>(cache_->keys(layer).rows * kWidth));
      for (size_t i = 0; i < pool.size(); ++i)
        pool[i] = before_step(static_cast<int64_t>(i) / kWidth, static_cast<int64_t>(i) % kWidth);
      backend_.upload_f32(cache_->keys(layer), pool.data());
      backend_.upload_f32(cache_->values(layer), pool.data());
    }
    exchange_ = std::make_unique<WorkerExchange>(backend_, axis_, kWidth, 64);
    exchange_->prepare(full_, local_);
  }
  ~ExchangeRank() {
    exchange_.reset();
    for (Tensor* t : {&new_keys_, &new_values_, &rows_}) backend_.release(*t);
  }

  // What Transformer::forward does in one layer before attention: the new K/V of the local
  // tokens go into the cache, then (sync: layer) the exchange brings the others' in.
  void compute_layer(int64_t layer, bool exchange) {
    const auto n = static_cast<int64_t>(local_.size());
    ASSERT_GT(n, 0);
    if (new_keys_.empty()) {
      new_keys_ = backend_.allocate(n, kWidth, DType::F32);
      new_values_ = backend_.allocate(n, kWidth, DType::F32);
      rows_ = backend_.allocate(n, 1, DType::I32);
      backend_.upload_i32(rows_, local_.cache_rows.data());
    }
    std::vector<float> keys, values;
    for (size_t t = 0; t < full_.size(); ++t) {
      if (full_.owners[t] != -1 && full_.owners[t] != group_) continue;  // not computed here
      for (int64_t c = 0; c < kWidth; ++c) {
        keys.push_back(key_of(layer, t, c));
        values.push_back(value_of(layer, t, c));
      }
    }
    ASSERT_EQ(keys.size(), static_cast<size_t>(n * kWidth));
    backend_.upload_f32(new_keys_, keys.data());
    backend_.upload_f32(new_values_, values.data());
    backend_.scatter_rows(new_keys_, rows_, cache_->keys(layer));
    backend_.scatter_rows(new_values_, rows_, cache_->values(layer));
    if (exchange) exchange_->exchange(layer, new_keys_, new_values_, *cache_);
  }

  // Every pool of every layer, compared with a naive copy: rows of the step's tokens hold those
  // tokens' K/V, whichever group computed them; every other row is as before the step.
  void expect_every_row_in_place() {
    for (int64_t layer = 0; layer < kLayers; ++layer) {
      const Tensor& pool = cache_->keys(layer);
      std::vector<float> expected_keys(static_cast<size_t>(pool.rows * kWidth));
      for (size_t i = 0; i < expected_keys.size(); ++i)
        expected_keys[i] =
            before_step(static_cast<int64_t>(i) / kWidth, static_cast<int64_t>(i) % kWidth);
      std::vector<float> expected_values = expected_keys;
      for (size_t t = 0; t < full_.size(); ++t) {
        const auto row = static_cast<size_t>(full_.cache_rows[t]);
        for (int64_t c = 0; c < kWidth; ++c) {
          expected_keys[row * kWidth + static_cast<size_t>(c)] = key_of(layer, t, c);
          expected_values[row * kWidth + static_cast<size_t>(c)] = value_of(layer, t, c);
        }
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
  WorkerExchange& exchange() { return *exchange_; }
  KvCache& cache() { return *cache_; }
  const FakeWorkerAxis& axis() const { return axis_; }

 private:
  Backend& backend_;
  int group_;
  FakeWorkerAxis axis_;
  std::unique_ptr<KvCache> cache_;
  ForwardBatch full_, local_;
  std::vector<int32_t> local_logit_row_;
  std::unique_ptr<WorkerExchange> exchange_;
  Tensor new_keys_, new_values_, rows_;
};

// The step's full batch, identical on every rank: built once here to tell what each simulated
// group holds.
ForwardBatch full_batch_of(const std::vector<StepRun>& runs) {
  auto backend = make_cpu_backend();
  ExchangeRank any(*backend, 0, runs, nullptr);
  return any.full();
}

// The other groups send what they computed for the layer of this call (one call per layer).
FakeWorkerAxis::OtherGroups per_layer_groups(const std::vector<StepRun>& runs) {
  return [full = full_batch_of(runs)](size_t call, int group) {
    return as_bytes(layer_payload(full, group, static_cast<int64_t>(call), kPadding));
  };
}

// sync: step: the others send every layer at once, after the forward.
FakeWorkerAxis::OtherGroups after_step_groups(const std::vector<StepRun>& runs) {
  return [full = full_batch_of(runs)](size_t call, int group) {
    EXPECT_EQ(call, 0u) << "sync: step exchanges once per step";
    return as_bytes(step_payload(full, group, kPadding));
  };
}

// Workers 0..3 in groups 0, 1, 2, 0, and a shared run: group 0 owns 3 + 2 tokens, group 1 one,
// group 2 two, so groups 1 and 2 pad their payloads.
const std::vector<StepRun> kStep = {{-1, 2}, {0, 3}, {1, 1}, {2, 2}, {0, 2}};

class WorkerExchangeTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> backend_ = make_cpu_backend();
};

TEST_F(WorkerExchangeTest, TheFakeStepIsWhatTheTestAssumes) {
  ExchangeRank rank(*backend_, 1, kStep, per_layer_groups(kStep));
  EXPECT_EQ(rank.full().owners, (std::vector<int32_t>{-1, -1, 0, 0, 0, 1, 2, 2, 0, 0}));
  EXPECT_EQ(owned_by(rank.full(), 0).size(), 5u);
  EXPECT_EQ(rank.local().size(), 3u) << "group 1: the two shared tokens and its own";
}

TEST_F(WorkerExchangeTest, LayerSyncPutsTheOtherGroupsRowsInEveryLayer) {
  for (int group = 0; group < kGroups; ++group) {
    SCOPED_TRACE("rank of group " + std::to_string(group));
    ExchangeRank rank(*backend_, group, kStep, per_layer_groups(kStep));
    for (int64_t layer = 0; layer < kLayers; ++layer) rank.compute_layer(layer, true);
    rank.expect_every_row_in_place();
    // One all-gather per layer, each of the padded K and V slabs.
    const auto& calls = rank.axis().calls();
    ASSERT_EQ(calls.size(), static_cast<size_t>(kLayers));
    for (int64_t layer = 0; layer < kLayers; ++layer) {
      const auto& call = calls[static_cast<size_t>(layer)];
      EXPECT_EQ(call.bytes, 2 * 5 * kWidth * sizeof(float));
      // What this rank sent is its own tokens only (not the shared ones), zero-padded.
      EXPECT_EQ(from_bytes<float>(call.sent), layer_payload(rank.full(), group, layer, 0.0f))
          << "layer " << layer;
    }
  }
}

TEST_F(WorkerExchangeTest, AGroupWithoutTokensJoinsEveryLayersCollective) {
  // Only workers 0 and 1 write: group 2 computes nothing, not even a shared token.
  const std::vector<StepRun> step = {{0, 2}, {1, 3}};
  ExchangeRank busy(*backend_, 0, step, per_layer_groups(step));
  for (int64_t layer = 0; layer < kLayers; ++layer) busy.compute_layer(layer, true);
  busy.expect_every_row_in_place();

  ExchangeRank idle(*backend_, 2, step, per_layer_groups(step));
  ASSERT_EQ(idle.local().size(), 0u);
  idle.exchange().exchange_without_tokens(kLayers, idle.cache());
  idle.expect_every_row_in_place();

  // Both ranks join the same collectives with the same sizes: neither waits forever.
  ASSERT_EQ(idle.axis().calls().size(), busy.axis().calls().size());
  for (size_t c = 0; c < busy.axis().calls().size(); ++c) {
    EXPECT_EQ(idle.axis().calls()[c].bytes, busy.axis().calls()[c].bytes);
    EXPECT_EQ(idle.axis().calls()[c].bytes, 2 * 3 * kWidth * sizeof(float));
    const std::vector<float> sent = from_bytes<float>(idle.axis().calls()[c].sent);
    EXPECT_TRUE(std::all_of(sent.begin(), sent.end(), [](float v) { return v == 0.0f; }))
        << "an idle group sends padding only";
  }
}

TEST_F(WorkerExchangeTest, AStepOfSharedTokensOnlyNeedsNoCollective) {
  // A prompt or header step: every group computes every token, nothing to exchange.
  const std::vector<StepRun> step = {{-1, 4}, {-1, 2}};
  for (int group = 0; group < kGroups; ++group) {
    ExchangeRank rank(*backend_, group, step, per_layer_groups(step));
    for (int64_t layer = 0; layer < kLayers; ++layer) rank.compute_layer(layer, true);
    // A rank would call one of these, if any; none may start a collective here.
    rank.exchange().exchange_without_tokens(kLayers, rank.cache());
    rank.exchange().exchange_after_step(kLayers, rank.cache());
    rank.expect_every_row_in_place();
    EXPECT_TRUE(rank.axis().calls().empty()) << "group " << group;
  }
}

TEST_F(WorkerExchangeTest, StepSyncSendsEveryLayerOnceAfterTheForward) {
  for (int group = 0; group < kGroups; ++group) {
    SCOPED_TRACE("rank of group " + std::to_string(group));
    ExchangeRank rank(*backend_, group, kStep, after_step_groups(kStep));
    // The forward writes only this group's tokens (no exchange during the pass) ...
    for (int64_t layer = 0; layer < kLayers; ++layer) rank.compute_layer(layer, false);
    EXPECT_TRUE(rank.axis().calls().empty());
    // ... and one all-gather afterwards brings in every layer of the others'.
    rank.exchange().exchange_after_step(kLayers, rank.cache());
    rank.expect_every_row_in_place();
    const auto& calls = rank.axis().calls();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].bytes, kLayers * 2 * 5 * kWidth * sizeof(float));
    // Read back from the cache, this rank's own rows only, every layer, zero-padded.
    EXPECT_EQ(from_bytes<float>(calls[0].sent), step_payload(rank.full(), group, 0.0f));
  }
  // A group without tokens joins the same single collective.
  const std::vector<StepRun> step = {{0, 2}, {1, 3}};
  ExchangeRank busy(*backend_, 1, step, after_step_groups(step));
  for (int64_t layer = 0; layer < kLayers; ++layer) busy.compute_layer(layer, false);
  busy.exchange().exchange_after_step(kLayers, busy.cache());
  busy.expect_every_row_in_place();
  ExchangeRank idle(*backend_, 2, step, after_step_groups(step));
  idle.exchange().exchange_after_step(kLayers, idle.cache());
  idle.expect_every_row_in_place();
  ASSERT_EQ(idle.axis().calls().size(), 1u);
  ASSERT_EQ(busy.axis().calls().size(), 1u);
  EXPECT_EQ(idle.axis().calls()[0].bytes, busy.axis().calls()[0].bytes);
}

TEST_F(WorkerExchangeTest, ShareTokensFillsEveryRowFromTheGroupThatSampledIt) {
  // Logit rows 0..4 of workers in groups 0, 1, 2, 0, 1; each group sampled its own rows.
  const std::vector<int32_t> group_of_row = {0, 1, 2, 0, 1};
  const std::vector<int32_t> tokens = {101, 7, 0, 55, 3};  // 0 is a valid token id
  auto sampled_by = [&](int group) {
    std::vector<int32_t> sampled(tokens.size(), -1);
    for (size_t r = 0; r < tokens.size(); ++r)
      if (group_of_row[r] == group) sampled[r] = tokens[r];
    return sampled;
  };
  for (int group = 0; group < kGroups; ++group) {
    FakeWorkerAxis axis(group, kGroups,
                        [&](size_t, int other) { return as_bytes(sampled_by(other)); });
    WorkerExchange exchange(*backend_, axis, kWidth, 16);
    std::vector<int32_t> sampled = sampled_by(group);
    exchange.share_tokens(sampled);
    EXPECT_EQ(sampled, tokens) << "group " << group;
    ASSERT_EQ(axis.calls().size(), 1u);
    EXPECT_EQ(axis.calls()[0].bytes, tokens.size() * sizeof(int32_t));
  }
}

TEST_F(WorkerExchangeTest, ShareTokensNeedsNoCollectiveForOneGroupOrNoRows) {
  FakeWorkerAxis alone(0, 1, nullptr);
  WorkerExchange exchange(*backend_, alone, kWidth, 16);
  std::vector<int32_t> sampled = {4, 5};
  exchange.share_tokens(sampled);
  EXPECT_EQ(sampled, (std::vector<int32_t>{4, 5}));
  EXPECT_TRUE(alone.calls().empty());

  FakeWorkerAxis axis(1, kGroups, nullptr);
  WorkerExchange shared(*backend_, axis, kWidth, 16);
  std::vector<int32_t> none;
  shared.share_tokens(none);
  EXPECT_TRUE(axis.calls().empty());
}

}  // namespace
}  // namespace hogwild
