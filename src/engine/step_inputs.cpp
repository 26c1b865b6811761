#include "engine/step_inputs.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace hogwild {
namespace {

int64_t aligned(int64_t count) { return (count + kStepAlign - 1) / kStepAlign * kStepAlign; }

int64_t power_of_two_at_least(int64_t count) {
  int64_t bucket = 1;
  while (bucket < count) bucket *= 2;
  return bucket;
}

}  // namespace

StepLayout StepLayout::for_capacity(int64_t rows, int64_t entries, int64_t logit_rows) {
  HOGWILD_CHECK(rows >= 0 && entries >= 0 && logit_rows >= 0, "a step's inputs need a capacity ",
                "of non-negative rows, entries and logit rows, not ", rows, ", ", entries, ", ",
                logit_rows);
  StepLayout layout;
  layout.rows = rows;
  layout.entries = entries;
  layout.logit_rows = logit_rows;
  int64_t at = 0;
  auto take = [&](int64_t count) {
    const int64_t offset = at;
    at += aligned(count);
    return offset;
  };
  layout.tokens = take(rows);
  layout.key_positions = take(rows);
  layout.cache_rows = take(rows);
  layout.view_offsets = take(rows + 1);
  layout.view_entries = take(3 * entries);
  layout.logit_rows_at = take(logit_rows);
  layout.total = at;
  return layout;
}

int64_t bucket_of(int64_t count, int64_t cap) {
  HOGWILD_CHECK(count >= 0 && count <= cap, "cannot bucket ", count, " into at most ", cap);
  if (count == 0) return 0;
  return std::min(power_of_two_at_least(count), cap);
}

std::optional<StepShape> step_bucket(int64_t rows, int64_t entries, int64_t last_row_entries,
                                     int64_t logit_rows, int64_t max_batch_tokens,
                                     int64_t max_view_entries) {
  HOGWILD_CHECK(rows > 0 && rows <= max_batch_tokens && entries >= last_row_entries &&
                    last_row_entries >= 0 && logit_rows >= 0 && logit_rows <= rows,
                "step_bucket: inconsistent batch of ", rows, " rows, ", entries, " entries (",
                last_row_entries, " in the last row), ", logit_rows, " logit rows");
  if (rows > kMaxGraphRows) return std::nullopt;
  StepShape shape;
  shape.rows = bucket_of(rows, max_batch_tokens);
  const int64_t worst = shape.rows * max_view_entries;
  const int64_t padded = entries + (shape.rows - rows) * last_row_entries;
  if (padded > worst) return std::nullopt;
  // At least one entry: the attention's workspace is sized by the capacity.
  shape.entries = bucket_of(std::max<int64_t>(padded, 1), worst);
  shape.logit_rows = bucket_of(logit_rows, shape.rows);
  return shape;
}

void pack_step_inputs(const ForwardBatch& batch, const StepLayout& layout,
                      std::vector<int32_t>& out) {
  const auto n = static_cast<int64_t>(batch.size());
  HOGWILD_CHECK(n > 0, "pack_step_inputs: an empty batch");
  HOGWILD_CHECK(batch.key_positions.size() == batch.size() &&
                    batch.cache_rows.size() == batch.size() &&
                    batch.view_offsets.size() == batch.size() + 1 && batch.view_offsets[0] == 0 &&
                    batch.view_offsets.back() == static_cast<int32_t>(batch.view_entries.size()),
                "pack_step_inputs: the batch's per-row vectors disagree with its ", n, " tokens");
  const int32_t last_first = batch.view_offsets[static_cast<size_t>(n - 1)];
  const int64_t last_entries = batch.view_offsets.back() - last_first;
  const auto entries = static_cast<int64_t>(batch.view_entries.size());
  const auto m = static_cast<int64_t>(batch.logit_rows.size());
  const int64_t padded_entries = entries + (layout.rows - n) * last_entries;
  HOGWILD_CHECK(layout.rows >= n && layout.entries >= padded_entries && layout.logit_rows >= m,
                "pack_step_inputs: a batch of ", n, " rows, ", padded_entries,
                " padded view entries and ", m, " logit rows does not fit a capacity of ",
                layout.rows, " rows, ", layout.entries, " entries and ", layout.logit_rows,
                " logit rows");
  out.assign(static_cast<size_t>(layout.total), 0);
  int32_t* base = out.data();
  auto fill_rows = [&](int64_t at, const std::vector<int32_t>& values) {
    std::copy(values.begin(), values.end(), base + at);
    std::fill(base + at + n, base + at + layout.rows, values.back());
  };
  fill_rows(layout.tokens, batch.tokens);
  fill_rows(layout.key_positions, batch.key_positions);
  fill_rows(layout.cache_rows, batch.cache_rows);

  int32_t* offsets = base + layout.view_offsets;
  std::copy(batch.view_offsets.begin(), batch.view_offsets.end(), offsets);
  auto* view = reinterpret_cast<ViewEntry*>(base + layout.view_entries);
  static_assert(sizeof(ViewEntry) == 3 * sizeof(int32_t));
  if (entries > 0)
    std::memcpy(view, batch.view_entries.data(), static_cast<size_t>(entries) * sizeof(ViewEntry));
  int64_t end = entries;
  for (int64_t r = n; r < layout.rows; ++r) {
    std::copy_n(batch.view_entries.begin() + last_first, last_entries, view + end);
    end += last_entries;
    offsets[r + 1] = static_cast<int32_t>(end);
  }

  int32_t* logits = base + layout.logit_rows_at;
  std::copy(batch.logit_rows.begin(), batch.logit_rows.end(), logits);
  std::fill(logits + m, logits + layout.logit_rows, m > 0 ? batch.logit_rows.back() : 0);
}

ForwardBatch pad_batch(const ForwardBatch& batch, int64_t rows) {
  HOGWILD_CHECK(!batch.tokens.empty() && rows >= static_cast<int64_t>(batch.size()),
                "pad_batch: cannot pad a batch of ", batch.size(), " rows to ", rows);
  ForwardBatch padded = batch;
  const size_t last = batch.size() - 1;
  const auto first = static_cast<size_t>(batch.view_offsets[last]);
  const auto end = static_cast<size_t>(batch.view_offsets[last + 1]);
  for (auto r = static_cast<int64_t>(batch.size()); r < rows; ++r) {
    padded.tokens.push_back(batch.tokens[last]);
    padded.key_positions.push_back(batch.key_positions[last]);
    padded.cache_rows.push_back(batch.cache_rows[last]);
    for (size_t e = first; e < end; ++e) padded.view_entries.push_back(batch.view_entries[e]);
    padded.view_offsets.push_back(static_cast<int32_t>(padded.view_entries.size()));
    if (!batch.owners.empty()) padded.owners.push_back(batch.owners[last]);
  }
  return padded;
}

}  // namespace hogwild
