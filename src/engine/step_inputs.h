// A forward step's integer inputs as ONE packed int32 buffer (one upload per step into fixed
// backend memory), and the batch-size buckets a step is padded to so that the CUDA backend can
// replay it as a graph (kernels/backend.h, run_step). Host logic only: no backend calls.
//
// Layout of the buffer for a capacity of R rows, E view entries and L logit rows (int32 offsets,
// each region starting on a multiple of kStepAlign values):
//   tokens [R] | key positions [R] | cache rows [R] | view offsets [R+1] | view entries [E x 3]
//   | logit rows [L]
// New per-step inputs (e.g. sampling parameters) are appended as further regions after the
// logit rows; code that reads a region goes through StepLayout's offsets, never through sizes.
//
// Padding: a batch of n rows runs as a bucket of b >= n rows. Each padded row is a copy of the
// last real row (its token, key position, cache row and view): it computes exactly what that row
// computes and writes the same K/V values to the same cache row, so the cache and every real
// row's result are unchanged (the ops are row-independent: no op mixes rows except attention,
// which reads the cache, and scatter_rows, whose duplicate writes carry equal values). Padded
// logit rows repeat the last real logit row; callers read only the first m logit rows.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/forward_batch.h"

namespace hogwild {

inline constexpr int64_t kStepAlign = 8;  // 32 bytes: each region starts on a sector
// The largest bucket replayed as a graph; bigger batches (prefill chunks) run eagerly.
inline constexpr int64_t kMaxGraphRows = 64;

struct StepLayout {
  int64_t rows = 0, entries = 0, logit_rows = 0;  // the capacity
  // Offsets (in int32 values) of each region.
  int64_t tokens = 0, key_positions = 0, cache_rows = 0, view_offsets = 0, view_entries = 0,
          logit_rows_at = 0;
  int64_t total = 0;  // int32 values of the whole buffer

  // Throws hogwild::Error for a negative capacity.
  static StepLayout for_capacity(int64_t rows, int64_t entries, int64_t logit_rows);
};

// The capacity a step runs with: its bucket (graphs) or its exact size (eager).
struct StepShape {
  int64_t rows = 0, entries = 0, logit_rows = 0;
  bool operator==(const StepShape&) const = default;
};

// The smallest of 1, 2, 4, ... that holds `count`, capped at `cap` (itself a bucket then);
// 0 for a count of 0. Throws when count is negative or exceeds cap.
int64_t bucket_of(int64_t count, int64_t cap);

// The bucket of a batch of `rows` rows, `entries` view entries of which the last row has
// `last_row_entries`, and `logit_rows` logit rows: rows to bucket_of(rows, max_batch_tokens);
// entries (after padding the rows with copies of the last one) to a power of two capped at the
// bucket's worst case, rows * max_view_entries; logit rows to a power of two capped at the rows.
// nullopt when the batch runs eagerly instead: more than kMaxGraphRows rows (prefill chunks), or
// padded views that exceed the bucket's worst case (an odd shape).
std::optional<StepShape> step_bucket(int64_t rows, int64_t entries, int64_t last_row_entries,
                                     int64_t logit_rows, int64_t max_batch_tokens,
                                     int64_t max_view_entries);

// Packs `batch` into `out` (resized to layout.total) for a capacity `layout` of at least the
// batch's size: rows past the batch's are copies of its last row, view entries past the padded
// views are zero, logit rows past the batch's repeat its last one (row 0 when it has none).
// Throws hogwild::Error when the batch is empty, inconsistent or does not fit the layout.
void pack_step_inputs(const ForwardBatch& batch, const StepLayout& layout,
                      std::vector<int32_t>& out);

// The batch as `rows` rows (>= its size): the padded rows pack_step_inputs writes, as a batch of
// its own (tests run it to show padding is harmless). Logit rows are left as they are.
ForwardBatch pad_batch(const ForwardBatch& batch, int64_t rows);

}  // namespace hogwild
