// Hogwild attention on the CPU: every worker's query attends to the shared blocks of its view
// with one softmax. Blocks read by few entries (decode) are split into tasks of (block, chunk of
// pages, kv head); a task loads each key/value row once and applies it to every query row whose
// view holds the block and to every query head of the GQA group, so the traffic grows with the
// cache, not with the workers (decode_attention.h computes a task with AVX2 where the CPU has it,
// else the portable loops below). Blocks read by many entries (prefill) are split into tasks of
// (block, kv head, tile of entries) that run tiled_attention.h's GEMM tiles over all the block's
// keys. Either leaves a partial (max, sum, weighted values) per (entry, head) and piece of the
// block; partials are merged with the log-sum-exp rule, which is associative, so the split
// changes nothing but rounding.
#include "kernels/cpu/block_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "common/error.h"
#include "kernels/cpu/decode_attention.h"
#include "kernels/cpu/tiled_attention.h"
#include "kernels/view_entry.h"

namespace hogwild::cpu {
namespace {

constexpr int64_t kPagesPerTask = 8;
// From this many (entry, head) queries per task on, scores are computed key by key across the
// queries (transposed layout, no horizontal sums); below it, query by query.
constexpr int64_t kTransposedWidth = 16;
constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();
// (entry, head) query rows per tiled task at most: with kTileKeys keys, the scores (64 KiB), the
// queries and the values of a task stay in L2.
constexpr int64_t kTileRows = 128;

struct Task {
  int32_t block;
  int32_t first_page;  // index into the block's page list
  int32_t pages;
  int32_t kv_head;
  int64_t partial_offset;  // first partial of this task: entries_of_block * group partials
};

// A tiled task: entries [first, first + count) of the block's entry list, one kv head.
struct TiledTask {
  int32_t block;
  int32_t kv_head;
  int64_t first;
  int64_t count;
};

// Running softmax state of one (query, head) over some keys.
struct Partial {
  float maximum;
  float sum;
};

}  // namespace

void block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                     const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                     const Tensor& view_entries, const Tensor& inv_freq,
                     const AttentionShape& shape, const Tensor& out, ThreadPool& pool,
                     AttentionKernel kernel) {
  const int64_t d = shape.head_dim, half = d / 2;
  const int64_t heads = shape.heads, group = heads / shape.kv_heads;
  const int64_t rows = q.rows;
  const auto* offsets = static_cast<const int32_t*>(view_offsets.data);
  const auto* raw_entries = static_cast<const int32_t*>(view_entries.data);
  const auto* table = static_cast<const int32_t*>(page_table.data);
  const auto* freq = static_cast<const float*>(inv_freq.data);
  const auto* q_data = static_cast<const float*>(q.data);
  const auto* k_data = static_cast<const float*>(keys.data);
  const auto* v_data = static_cast<const float*>(values.data);
  auto* out_data = static_cast<float*>(out.data);

  // ---- group the entries by block (validated here, before the threads start)
  const int64_t total_entries = offsets[rows];
  HOGWILD_ASSERT(offsets[0] == 0 && total_entries <= view_entries.rows);
  std::vector<std::vector<int64_t>> entries_of_block(static_cast<size_t>(page_table.rows));
  std::vector<ViewEntry> entries(static_cast<size_t>(total_entries));
  std::vector<int64_t> row_of_entry(static_cast<size_t>(total_entries));
  std::vector<int64_t> slot_in_block(static_cast<size_t>(total_entries));
  for (int64_t r = 0; r < rows; ++r) {
    HOGWILD_ASSERT(offsets[r] <= offsets[r + 1]);
    for (int64_t e = offsets[r]; e < offsets[r + 1]; ++e) {
      const int32_t* raw = raw_entries + e * view_entries.stride;
      const ViewEntry entry{raw[0], raw[1], raw[2]};
      HOGWILD_ASSERT(entry.block >= 0 && entry.block < page_table.rows);
      HOGWILD_ASSERT(entry.visible >= 0 && entry.visible <= page_table.cols * page_size);
      entries[static_cast<size_t>(e)] = entry;
      row_of_entry[static_cast<size_t>(e)] = r;
      auto& list = entries_of_block[static_cast<size_t>(entry.block)];
      slot_in_block[static_cast<size_t>(e)] = static_cast<int64_t>(list.size());
      list.push_back(e);
    }
  }

  // ---- tasks: (block, chunk of pages, kv head), or (block, kv head, tile of entries) when tiled
  std::vector<Task> tasks;
  std::vector<TiledTask> tiled_tasks;
  std::vector<std::vector<int64_t>> tasks_of_block(entries_of_block.size());
  std::vector<char> tiled(entries_of_block.size(), 0);
  int64_t partial_count = 0;
  for (size_t b = 0; b < entries_of_block.size(); ++b) {
    const auto readers = static_cast<int64_t>(entries_of_block[b].size());
    if (readers == 0) continue;
    int32_t most_visible = 0;
    for (int64_t e : entries_of_block[b])
      most_visible = std::max(most_visible, entries[static_cast<size_t>(e)].visible);
    const int64_t pages = (most_visible + page_size - 1) / page_size;
    for (int64_t p = 0; p < pages; ++p) {
      const int32_t page = table[static_cast<int64_t>(b) * page_table.stride + p];
      HOGWILD_ASSERT(page >= 0 && (page + 1) * page_size <= keys.rows);
    }
    tiled[b] = kernel == AttentionKernel::kTiled ||
               (kernel == AttentionKernel::kAuto && readers >= kTiledEntries);
    if (tiled[b]) {
      // Tiles of at most kTileRows query rows; smaller when that leaves threads idle (a short
      // batch), down to one entry per tile.
      int64_t tile = std::max<int64_t>(1, kTileRows / group);
      const int64_t wanted_tiles =
          (2 * static_cast<int64_t>(pool.size()) + shape.kv_heads - 1) / shape.kv_heads;
      tile = std::max<int64_t>(1, std::min(tile, (readers + wanted_tiles - 1) / wanted_tiles));
      for (int64_t first = 0; first < readers; first += tile)
        for (int64_t g = 0; g < shape.kv_heads; ++g)
          tiled_tasks.push_back({static_cast<int32_t>(b), static_cast<int32_t>(g), first,
                                 std::min(tile, readers - first)});
      continue;
    }
    for (int64_t first = 0; first < pages; first += kPagesPerTask) {
      for (int64_t g = 0; g < shape.kv_heads; ++g) {
        tasks_of_block[b].push_back(static_cast<int64_t>(tasks.size()));
        tasks.push_back({static_cast<int32_t>(b), static_cast<int32_t>(first),
                         static_cast<int32_t>(std::min(kPagesPerTask, pages - first)),
                         static_cast<int32_t>(g), partial_count});
        partial_count += static_cast<int64_t>(entries_of_block[b].size()) * group;
      }
    }
  }

  // ---- queries rotated once per (entry, head): rot(q, query_position), NeoX rotate-half
  std::vector<float> rotated(static_cast<size_t>(total_entries * heads * d));
  pool.parallel_for(total_entries, std::max<int64_t>(1, 4096 / (heads * d)),
                    [&](int64_t first_entry, int64_t end_entry, int) {
                      for (int64_t e = first_entry; e < end_entry; ++e) {
                        const ViewEntry& entry = entries[static_cast<size_t>(e)];
                        const float* source =
                            q_data + row_of_entry[static_cast<size_t>(e)] * q.stride;
                        float* target = rotated.data() + e * heads * d;
                        for (int64_t j = 0; j < half; ++j) {
                          const double angle = static_cast<double>(entry.query_position) * freq[j];
                          const auto c = static_cast<float>(std::cos(angle)),
                                     s = static_cast<float>(std::sin(angle));
                          for (int64_t h = 0; h < heads; ++h) {
                            const float a = source[h * d + j], b = source[h * d + j + half];
                            target[h * d + j] = a * c - b * s;
                            target[h * d + j + half] = b * c + a * s;
                          }
                        }
                      }
                    });

  // ---- per task: scores, softmax statistics and weighted values for each (entry, head)
  std::vector<Partial> partials(static_cast<size_t>(partial_count));
  std::vector<float> partial_values(static_cast<size_t>(partial_count * d));
  const int64_t chunk_tokens = kPagesPerTask * page_size;
  // Scratch per pool thread; chunks of tasks are taken as threads become free (sizes differ).
  struct Scratch {
    std::vector<float> scores, queries, row_queries, accumulator, maxima, sums;
    std::vector<int64_t> rows;
    std::vector<int32_t> visible;
  };
  const bool simd_chunks = decode_chunk_supported(d);
  HOGWILD_ASSERT(keys.stride == values.stride);
  std::vector<Scratch> scratch(static_cast<size_t>(pool.size()));
  pool.parallel_for(
      static_cast<int64_t>(tasks.size()), 1, [&](int64_t first_task, int64_t end_task, int thread) {
        auto& [scores, queries, row_queries, accumulator, maxima, sums, pool_rows, visible] =
            scratch[static_cast<size_t>(thread)];
        for (auto t = static_cast<size_t>(first_task); t < static_cast<size_t>(end_task); ++t) {
          const Task& task = tasks[t];
          const auto& block_entries = entries_of_block[static_cast<size_t>(task.block)];
          const int64_t first_token = task.first_page * page_size;
          const int64_t width = static_cast<int64_t>(block_entries.size()) * group;
          // The task's queries, transposed [d][width] and pre-scaled: a key row then updates all
          // (entry, head) scores with d vector FMAs across `width`, with no horizontal sums.
          queries.resize(static_cast<size_t>(d * width));
          row_queries.resize(static_cast<size_t>(d * width));
          for (size_t i = 0; i < block_entries.size(); ++i)
            for (int64_t h = 0; h < group; ++h) {
              const float* query =
                  rotated.data() + (block_entries[i] * heads + task.kv_head * group + h) * d;
              const int64_t column = static_cast<int64_t>(i) * group + h;
              for (int64_t c = 0; c < d; ++c) {
                if (!simd_chunks)
                  queries[static_cast<size_t>(c * width + column)] = query[c] * shape.scale;
                row_queries[static_cast<size_t>(column * d + c)] = query[c] * shape.scale;
              }
            }
          int32_t most_visible = 0;
          for (int64_t e : block_entries)
            most_visible = std::max(most_visible, entries[static_cast<size_t>(e)].visible);
          const int64_t tokens =
              std::min<int64_t>(task.pages * page_size, most_visible - first_token);
          if (simd_chunks) {  // decode_attention.h: the same partials, with AVX2
            pool_rows.resize(static_cast<size_t>(tokens));
            for (int64_t j = 0; j < tokens; ++j)
              pool_rows[static_cast<size_t>(j)] =
                  table[task.block * page_table.stride + task.first_page + j / page_size] *
                      page_size +
                  j % page_size;
            visible.resize(static_cast<size_t>(width));
            for (size_t i = 0; i < block_entries.size(); ++i)
              for (int64_t h = 0; h < group; ++h)
                visible[i * static_cast<size_t>(group) + static_cast<size_t>(h)] =
                    entries[static_cast<size_t>(block_entries[i])].visible -
                    static_cast<int32_t>(first_token);
            maxima.resize(static_cast<size_t>(width));
            sums.resize(static_cast<size_t>(width));
            const DecodeChunk chunk{row_queries.data(),
                                    visible.data(),
                                    width,
                                    d,
                                    pool_rows.data(),
                                    tokens,
                                    k_data + task.kv_head * d,
                                    v_data + task.kv_head * d,
                                    keys.stride};
            attend_decode_chunk(chunk, scores, maxima.data(), sums.data(),
                                partial_values.data() + task.partial_offset * d);
            for (int64_t w = 0; w < width; ++w)
              partials[static_cast<size_t>(task.partial_offset + w)] = {
                  maxima[static_cast<size_t>(w)], sums[static_cast<size_t>(w)]};
            continue;
          }
          scores.assign(static_cast<size_t>(width * chunk_tokens), kNegativeInfinity);
          accumulator.resize(static_cast<size_t>(width));
          for (int64_t j = 0; j < tokens; ++j) {
            const int32_t page =
                table[task.block * page_table.stride + task.first_page + j / page_size];
            const float* key =
                k_data + (page * page_size + j % page_size) * keys.stride + task.kv_head * d;
            float* acc = accumulator.data();
            if (width >= kTransposedWidth) {
              std::fill(acc, acc + width, 0.0f);
              for (int64_t c = 0; c < d; ++c) {
                const float k = key[c];
                const float* column = queries.data() + c * width;
#pragma omp simd
                for (int64_t w = 0; w < width; ++w) acc[w] += column[w] * k;
              }
            } else {  // few queries: one vectorised dot product each is faster
              for (int64_t w = 0; w < width; ++w) {
                const float* query = row_queries.data() + w * d;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int64_t c = 0; c < d; ++c) dot += query[c] * key[c];
                acc[w] = dot;
              }
            }
            for (size_t i = 0; i < block_entries.size(); ++i) {
              if (first_token + j >= entries[static_cast<size_t>(block_entries[i])].visible)
                continue;
              for (int64_t h = 0; h < group; ++h) {
                const int64_t w = static_cast<int64_t>(i) * group + h;
                scores[static_cast<size_t>(w * chunk_tokens + j)] = acc[w];
              }
            }
          }
          // Softmax statistics per (entry, head), then the values: each value row is read once.
          for (int64_t w = 0; w < width; ++w) {
            float* row_scores = scores.data() + w * chunk_tokens;
            float maximum = kNegativeInfinity;
            for (int64_t j = 0; j < tokens; ++j) maximum = std::max(maximum, row_scores[j]);
            Partial& partial = partials[static_cast<size_t>(task.partial_offset + w)];
            partial = {maximum, 0.0f};
            float* o = partial_values.data() + (task.partial_offset + w) * d;
            std::fill(o, o + d, 0.0f);
            for (int64_t j = 0; j < tokens; ++j) {
              // exp(-inf) = 0: invisible keys get no weight.
              row_scores[j] =
                  maximum == kNegativeInfinity ? 0.0f : std::exp(row_scores[j] - maximum);
              partial.sum += row_scores[j];
            }
          }
          for (int64_t j = 0; j < tokens; ++j) {
            const int32_t page =
                table[task.block * page_table.stride + task.first_page + j / page_size];
            const float* value =
                v_data + (page * page_size + j % page_size) * values.stride + task.kv_head * d;
            for (int64_t w = 0; w < width; ++w) {
              const float weight = scores[static_cast<size_t>(w * chunk_tokens + j)];
              if (weight == 0.0f) continue;
              float* o = partial_values.data() + (task.partial_offset + w) * d;
#pragma omp simd
              for (int64_t c = 0; c < d; ++c) o[c] += weight * value[c];
            }
          }
        }
      });

  // ---- tiled tasks: one partial per (entry, head) over all the block's visible keys
  std::vector<SoftmaxPartial> tiled_partials;
  std::vector<float> tiled_values;
  if (!tiled_tasks.empty()) {
    tiled_partials.resize(static_cast<size_t>(total_entries * heads));
    tiled_values.resize(static_cast<size_t>(total_entries * heads * d));
    struct TiledScratch {
      TileScratch tile;
      std::vector<float> queries, values;
      std::vector<int32_t> visible;
      std::vector<SoftmaxPartial> partials;
    };
    std::vector<TiledScratch> tiled_scratch(static_cast<size_t>(pool.size()));
    const SimdLevel level = best_simd_level();
    // The register-tiled kernels where the CPU has them, else the BLAS tile.
    std::optional<TileIsa> tile_isa;
    if (tile_isa_available(TileIsa::kAvx512, d))
      tile_isa = TileIsa::kAvx512;
    else if (tile_isa_available(TileIsa::kAvx2, d))
      tile_isa = TileIsa::kAvx2;
    pool.parallel_for(
        static_cast<int64_t>(tiled_tasks.size()), 1,
        [&](int64_t first_task, int64_t end_task, int thread) {
          TiledScratch& ts = tiled_scratch[static_cast<size_t>(thread)];
          for (auto t = static_cast<size_t>(first_task); t < static_cast<size_t>(end_task); ++t) {
            const TiledTask& task = tiled_tasks[t];
            const auto& block_entries = entries_of_block[static_cast<size_t>(task.block)];
            const int64_t count = task.count * group;
            // Query row i * group + h: entry first + i, head kv_head * group + h; pre-scaled as
            // the per-row kernel's queries (the same products).
            ts.queries.resize(static_cast<size_t>(count * d));
            ts.visible.resize(static_cast<size_t>(count));
            ts.values.resize(static_cast<size_t>(count * d));
            ts.partials.resize(static_cast<size_t>(count));
            for (int64_t i = 0; i < task.count; ++i) {
              const int64_t e = block_entries[static_cast<size_t>(task.first + i)];
              for (int64_t h = 0; h < group; ++h) {
                const float* query = rotated.data() + (e * heads + task.kv_head * group + h) * d;
                float* target = ts.queries.data() + (i * group + h) * d;
                for (int64_t c = 0; c < d; ++c) target[c] = query[c] * shape.scale;
                ts.visible[static_cast<size_t>(i * group + h)] =
                    entries[static_cast<size_t>(e)].visible;
              }
            }
            const AttentionTile tile{ts.queries.data(),
                                     ts.visible.data(),
                                     count,
                                     d,
                                     k_data + task.kv_head * d,
                                     v_data + task.kv_head * d,
                                     keys.stride,
                                     table + task.block * page_table.stride,
                                     page_size};
            if (tile_isa)
              attend_tile_simd(tile, ts.tile, *tile_isa, ts.partials.data(), ts.values.data());
            else
              attend_tile(tile, ts.tile, level, ts.partials.data(), ts.values.data());
            for (int64_t i = 0; i < task.count; ++i) {
              const int64_t e = block_entries[static_cast<size_t>(task.first + i)];
              const int64_t index = e * heads + task.kv_head * group;
              std::copy_n(ts.partials.data() + i * group, group, tiled_partials.data() + index);
              std::copy_n(ts.values.data() + i * group * d, group * d,
                          tiled_values.data() + index * d);
            }
          }
        });
  }

  // ---- merge the partials of each (row, head) over its entries and chunks (log-sum-exp)
  pool.parallel_for(
      rows * heads, std::max<int64_t>(1, 1024 / d), [&](int64_t first, int64_t end, int) {
        for (int64_t i = first; i < end; ++i) {
          const int64_t r = i / heads, h = i % heads;
          {
            float maximum = kNegativeInfinity, sum = 0.0f;
            float* o = out_data + r * out.stride + h * d;
            std::fill(o, o + d, 0.0f);
            const int64_t g = h / group;
            const auto merge = [&](float partial_maximum, float partial_sum, const float* po) {
              if (partial_sum == 0.0f) return;  // empty partial: its maximum is -inf
              const float merged = std::max(maximum, partial_maximum);
              const float old_scale = sum == 0.0f ? 0.0f : std::exp(maximum - merged);
              const float new_scale = std::exp(partial_maximum - merged);
              for (int64_t c = 0; c < d; ++c) o[c] = o[c] * old_scale + po[c] * new_scale;
              sum = sum * old_scale + partial_sum * new_scale;
              maximum = merged;
            };
            for (int64_t e = offsets[r]; e < offsets[r + 1]; ++e) {
              const int32_t block = entries[static_cast<size_t>(e)].block;
              if (tiled[static_cast<size_t>(block)]) {
                const int64_t index = e * heads + h;
                const SoftmaxPartial& partial = tiled_partials[static_cast<size_t>(index)];
                merge(partial.maximum, partial.sum, tiled_values.data() + index * d);
                continue;
              }
              for (int64_t t : tasks_of_block[static_cast<size_t>(block)]) {
                const Task& task = tasks[static_cast<size_t>(t)];
                if (task.kv_head != g) continue;
                const int64_t index =
                    task.partial_offset + slot_in_block[static_cast<size_t>(e)] * group + h % group;
                const Partial& partial = partials[static_cast<size_t>(index)];
                merge(partial.maximum, partial.sum, partial_values.data() + index * d);
              }
            }
            if (sum > 0.0f) {
              const float inverse = 1.0f / sum;
              for (int64_t c = 0; c < d; ++c) o[c] *= inverse;
            }
          }
        }
      });
}

}  // namespace hogwild::cpu
