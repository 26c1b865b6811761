// The packed step inputs and graph buckets (engine/step_inputs.h), and padding a batch to its
// bucket: on the CPU backend a padded step's real logits and the whole cache are bit-identical to
// the unpadded step's, with a tiny random model (Llama, Qwen2, Qwen3 shapes).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/error.h"
#include "engine/batch_builder.h"
#include "engine/step_inputs.h"
#include "engine/transformer.h"
#include "random_model.h"

namespace hogwild {
namespace {

TEST(StepInputs, BucketsArePowersOfTwoCappedByTheBatchLimit) {
  EXPECT_EQ(bucket_of(0, 256), 0);
  EXPECT_EQ(bucket_of(1, 256), 1);
  EXPECT_EQ(bucket_of(2, 256), 2);
  EXPECT_EQ(bucket_of(3, 256), 4);
  EXPECT_EQ(bucket_of(5, 256), 8);
  EXPECT_EQ(bucket_of(17, 256), 32);
  EXPECT_EQ(bucket_of(33, 256), 64);
  EXPECT_EQ(bucket_of(64, 256), 64);
  EXPECT_EQ(bucket_of(5, 6), 6);  // the cap is a bucket of its own
  EXPECT_EQ(bucket_of(6, 6), 6);
  EXPECT_THROW(bucket_of(7, 6), Error);
  EXPECT_THROW(bucket_of(-1, 6), Error);
}

TEST(StepInputs, StepBucketPadsRowsEntriesAndLogitRows) {
  // 3 rows, 7 entries (3 in the last row), 3 logit rows; views of at most 4 blocks.
  const auto shape = step_bucket(3, 7, 3, 3, 256, 4);
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->rows, 4);
  EXPECT_EQ(shape->entries, 16);  // 7 + 1 padded row x 3 = 10 -> 16 (= the worst case 4 x 4)
  EXPECT_EQ(shape->logit_rows, 4);
  // One logit row of five: logit rows have a bucket of their own.
  const auto prefill_like = step_bucket(5, 5, 1, 1, 256, 4);
  ASSERT_TRUE(prefill_like.has_value());
  EXPECT_EQ(prefill_like->rows, 8);
  EXPECT_EQ(prefill_like->entries, 8);  // 5 + 3 padded rows x 1
  EXPECT_EQ(prefill_like->logit_rows, 1);
  // No logit rows, no entries: at least one entry of capacity.
  const auto empty_views = step_bucket(2, 0, 0, 0, 256, 4);
  ASSERT_TRUE(empty_views.has_value());
  EXPECT_EQ(empty_views->entries, 1);
  EXPECT_EQ(empty_views->logit_rows, 0);
  // The largest graph bucket, and past it eager launches (prefill chunks).
  EXPECT_EQ(step_bucket(kMaxGraphRows, kMaxGraphRows, 1, 1, 256, 1)->rows, kMaxGraphRows);
  EXPECT_FALSE(step_bucket(kMaxGraphRows + 1, 1, 1, 1, 256, 1).has_value());
  // Capped by max_batch_tokens.
  EXPECT_EQ(step_bucket(5, 5, 1, 5, 6, 1)->rows, 6);
  EXPECT_EQ(step_bucket(5, 5, 1, 5, 6, 1)->entries, 6);
  // A last row with more entries than max_view_entries: padding would overflow the bucket's
  // worst case, so the step runs eagerly.
  EXPECT_FALSE(step_bucket(3, 9, 7, 3, 256, 3).has_value());
  EXPECT_THROW(step_bucket(0, 0, 0, 0, 256, 3), Error);
  EXPECT_THROW(step_bucket(3, 1, 2, 3, 256, 3), Error);  // last row has more than all
}

TEST(StepInputs, LayoutRegionsAreAlignedAndDisjoint) {
  const StepLayout layout = StepLayout::for_capacity(4, 10, 4);
  EXPECT_EQ(layout.tokens, 0);
  EXPECT_EQ(layout.key_positions, 8);
  EXPECT_EQ(layout.cache_rows, 16);
  EXPECT_EQ(layout.view_offsets, 24);
  EXPECT_EQ(layout.view_entries, 32);   // 5 offsets take 8
  EXPECT_EQ(layout.logit_rows_at, 64);  // 30 entry values take 32
  EXPECT_EQ(layout.total, 72);
  for (int64_t rows : {1, 3, 8, 64, 256})
    for (int64_t entries : {1, 7, 64, 4096}) {
      const StepLayout l = StepLayout::for_capacity(rows, entries, rows);
      const int64_t starts[] = {l.tokens,       l.key_positions, l.cache_rows, l.view_offsets,
                                l.view_entries, l.logit_rows_at, l.total};
      const int64_t sizes[] = {rows, rows, rows, rows + 1, 3 * entries, rows};
      for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(starts[i] % kStepAlign, 0);
        EXPECT_GE(starts[i + 1] - starts[i], sizes[i]) << "region " << i;
        EXPECT_LT(starts[i + 1] - starts[i], sizes[i] + kStepAlign) << "region " << i;
      }
    }
  EXPECT_THROW(StepLayout::for_capacity(-1, 0, 0), Error);
}

ForwardBatch hand_batch() {
  ForwardBatch b;
  b.tokens = {11, 12, 13};
  b.key_positions = {4, 2, 7};
  b.cache_rows = {40, 50, 60};
  b.view_offsets = {0, 2, 3, 5};
  b.view_entries = {{0, 4, 5}, {1, 4, 3}, {1, 2, 3}, {0, 9, 2}, {2, 7, 8}};
  b.logit_rows = {0, 2};
  return b;
}

TEST(StepInputs, PackWritesEveryRegionAndPadsWithTheLastRow) {
  const ForwardBatch b = hand_batch();
  const StepLayout layout = StepLayout::for_capacity(4, 8, 4);
  std::vector<int32_t> packed(3, -5);  // resized and overwritten
  pack_step_inputs(b, layout, packed);
  ASSERT_EQ(static_cast<int64_t>(packed.size()), layout.total);
  auto region = [&](int64_t at, int64_t count) {
    return std::vector<int32_t>(packed.begin() + at, packed.begin() + at + count);
  };
  EXPECT_EQ(region(layout.tokens, 4), (std::vector<int32_t>{11, 12, 13, 13}));
  EXPECT_EQ(region(layout.key_positions, 4), (std::vector<int32_t>{4, 2, 7, 7}));
  EXPECT_EQ(region(layout.cache_rows, 4), (std::vector<int32_t>{40, 50, 60, 60}));
  EXPECT_EQ(region(layout.view_offsets, 5), (std::vector<int32_t>{0, 2, 3, 5, 7}));
  EXPECT_EQ(region(layout.view_entries, 24),
            (std::vector<int32_t>{0, 4, 5, 1, 4, 3, 1, 2, 3, 0, 9, 2, 2, 7, 8,  // the batch's
                                  0, 9, 2, 2, 7, 8,                             // padded row
                                  0, 0, 0}));                                   // unused
  EXPECT_EQ(region(layout.logit_rows_at, 4), (std::vector<int32_t>{0, 2, 2, 2}));
  // pad_batch describes the same padded rows as a batch.
  const ForwardBatch padded = pad_batch(b, 4);
  EXPECT_EQ(padded.tokens, region(layout.tokens, 4));
  EXPECT_EQ(padded.view_offsets, region(layout.view_offsets, 5));
  ASSERT_EQ(padded.view_entries.size(), 7u);
  EXPECT_EQ(padded.view_entries[6].visible, 8);
  EXPECT_EQ(padded.logit_rows, b.logit_rows);
  // Too small a capacity: entries (5 + 2 padded) into 6, rows, logit rows.
  EXPECT_THROW(pack_step_inputs(b, StepLayout::for_capacity(4, 6, 4), packed), Error);
  EXPECT_THROW(pack_step_inputs(b, StepLayout::for_capacity(2, 8, 4), packed), Error);
  EXPECT_THROW(pack_step_inputs(b, StepLayout::for_capacity(4, 8, 1), packed), Error);
  EXPECT_THROW(pack_step_inputs(ForwardBatch{}, layout, packed), Error);
  ForwardBatch broken = b;
  broken.cache_rows.pop_back();
  EXPECT_THROW(pack_step_inputs(broken, layout, packed), Error);
}

TEST(StepInputs, WorkspaceHoldsOnePackedBufferForTheLargestStep) {
  const ModelConfig c = testing::tiny_random_config();
  TransformerOptions options;
  options.max_batch_tokens = 48;
  options.max_view_entries = 5;
  const std::vector<WorkspaceTensor> tensors = workspace_tensors(c, c, options);
  int i32_tensors = 0;
  for (const WorkspaceTensor& t : tensors) {
    if (t.dtype != DType::I32) continue;
    ++i32_tensors;
    EXPECT_EQ(t.rows, StepLayout::for_capacity(48, 48 * 5, 48).total);
    // Every bucket a step may take fits.
    for (int64_t n = 1; n <= 48; ++n) {
      const auto shape = step_bucket(n, n * 5 - 4, 1, n, 48, 5);
      ASSERT_TRUE(shape.has_value());
      EXPECT_LE(StepLayout::for_capacity(shape->rows, shape->entries, shape->logit_rows).total,
                t.rows);
    }
  }
  EXPECT_EQ(i32_tensors, 1);
}

// ---- padding on the CPU backend: three workers decode over a shared cache, each step run once
// as it is and once padded to a bucket; logits and caches must be bit-identical.
struct ModelRun {
  std::unique_ptr<Backend> backend = make_cpu_backend(2);
  Transformer model;
  KvCache cache;
  std::vector<BlockId> blocks;
  ModelRun(const WeightSource& weights, const TransformerOptions& options)
      : model(weights, *backend, options),
        cache(*backend, model.shard_config(), cache_options_for(4, 64, 8)) {}
};

std::vector<float> pools(ModelRun& run) {
  std::vector<float> all;
  for (int64_t l = 0; l < run.cache.layers(); ++l)
    for (const Tensor* t : {&run.cache.keys(l), &run.cache.values(l)}) {
      std::vector<float> host(static_cast<size_t>(t->elements()));
      run.backend->download_f32(*t, host.data());
      all.insert(all.end(), host.begin(), host.end());
    }
  return all;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The step's batch: each worker adds `tokens[w]` (one or more) viewing the others' blocks, then
// its own (hogwild's layout).
ForwardBatch build_step(ModelRun& run, const std::vector<std::vector<int32_t>>& tokens) {
  BatchBuilder builder(run.cache);
  const auto workers = static_cast<int32_t>(run.blocks.size());
  for (int32_t w = 0; w < workers; ++w) {
    std::vector<BlockId> view;
    for (int32_t o = 0; o < workers; ++o)
      if (o != w) view.push_back(run.blocks[static_cast<size_t>(o)]);
    view.push_back(run.blocks[static_cast<size_t>(w)]);
    builder.add(run.blocks[static_cast<size_t>(w)], tokens[static_cast<size_t>(w)], view, true);
  }
  ForwardBatch batch;
  builder.build(batch);
  builder.commit();
  return batch;
}

// The CPU attention is row-independent only within one of its layouts: from 16 (entry, head)
// queries per (block, kv head) on (kTransposedWidth) it sums scores in another order, and from 32
// entries per block it tiles. The step sizes and buckets below keep every block under 16 entries
// with one query head per kv head, so any difference is the padding's. (The CUDA kernel's slots
// are independent whatever shares their work item; tests/engine/test_cuda_graphs.cpp.)
void expect_padding_is_harmless(Architecture architecture) {
  ModelConfig config = testing::tiny_random_config(architecture);
  config.kv_heads = config.heads;
  const testing::RandomWeights weights(config);
  TransformerOptions options;
  options.max_batch_tokens = 32;
  options.max_view_entries = 4;
  ModelRun plain(weights, options), padded(weights, options);
  for (ModelRun* run : {&plain, &padded})
    for (int w = 0; w < 3; ++w) run->blocks.push_back(run->cache.create_block());
  // Step 0 is a prompt per worker (5, 2 and 3 tokens); then single tokens, and a step where one
  // worker adds two.
  const std::vector<std::vector<std::vector<int32_t>>> steps = {
      {{1, 5, 9, 2, 7}, {3, 3}, {8, 6, 4}},
      {{10}, {20}, {30}},
      {{40}, {50, 51}, {60}},
      {{70}, {80}, {90}},
  };
  // Step 0 reads each block with 10 entries (+3 padded), later steps with 3 or 4 (+4 or more).
  const int64_t buckets[] = {13, 8, 8, 15};
  for (size_t s = 0; s < steps.size(); ++s) {
    const ForwardBatch batch = build_step(plain, steps[s]);
    const ForwardBatch same = build_step(padded, steps[s]);
    ASSERT_EQ(batch.cache_rows, same.cache_rows);
    std::vector<float> expected, actual;
    plain.model.forward(batch, plain.cache, expected);
    padded.model.forward(pad_batch(same, buckets[s]), padded.cache, actual);
    EXPECT_TRUE(bitwise_equal(expected, actual))
        << architecture_name(architecture) << " step " << s << ": logits differ";
    EXPECT_TRUE(bitwise_equal(pools(plain), pools(padded)))
        << architecture_name(architecture) << " step " << s << ": caches differ";
  }
}

TEST(StepInputs, PaddedRowsChangeNoRealLogitNorTheCache) {
  for (Architecture a : {Architecture::Llama, Architecture::Qwen2, Architecture::Qwen3})
    expect_padding_is_harmless(a);
}

// The check must be able to fail: a padded row that writes its own K/V (another token) into the
// last real row's cache row changes the cache.
TEST(StepInputs, APaddedRowWithAnotherTokenWouldChangeTheCache) {
  const testing::RandomWeights weights(testing::tiny_random_config());
  TransformerOptions options;
  options.max_batch_tokens = 32;
  options.max_view_entries = 4;
  ModelRun plain(weights, options), padded(weights, options);
  for (ModelRun* run : {&plain, &padded})
    for (int w = 0; w < 3; ++w) run->blocks.push_back(run->cache.create_block());
  const std::vector<std::vector<int32_t>> step = {{1, 2}, {3}, {4, 5, 6}};
  std::vector<float> logits;
  plain.model.forward(build_step(plain, step), plain.cache, logits);
  ForwardBatch wrong = pad_batch(build_step(padded, step), 8);
  wrong.tokens.back() = 99;
  padded.model.forward(wrong, padded.cache, logits);
  EXPECT_FALSE(bitwise_equal(pools(plain), pools(padded)));
}

TEST(StepInputs, CpuBackendRunsStepsDirectly) {
  const auto backend = make_cpu_backend(1);
  EXPECT_FALSE(backend->step_graphs());
  int calls = 0;
  for (int i = 0; i < 3; ++i) backend->run_step(7, [&] { ++calls; });
  EXPECT_EQ(calls, 3);  // no warm-up, no capture: every call runs the function
  const Backend::StepGraphStats stats = backend->step_graph_stats();
  EXPECT_EQ(stats.captured + stats.replayed + stats.eager, 0);
  EXPECT_THROW(backend->run_step(7, nullptr), Error);
  backend->drop_step_graphs();  // nothing to drop
}

}  // namespace
}  // namespace hogwild
