// Hogwild attention on the GPU, flash-decoding style (docs/design.md §3-§4). See block_attention.h
// for the three kernels. The work of one call is split into items {cache block b, chunk of b's
// keys, kv head g, query tile}; an item's queries are the (entry, query head) pairs of the entries
// that read b, for the query heads of g's GQA group (the "slots"), each rotated by its entry's
// query position. The item streams its chunk through shared memory in tiles of 32 keys: every key
// and value row is read from HBM once per item and used by up to 32 slots, so the traffic grows
// with the cache, not with the number of workers.
//
// Numerics: scores, softmax and values accumulate in fp32 (K/V may be stored in bf16); softmax
// runs in base 2 with log2(e) folded into the query scale (exp2f is the hardware's native exp).
// Each slot's result is independent of which other slots share its item, so the output does not
// depend on the (atomic, run-to-run varying) order of entries inside a block.
#include <algorithm>

#include "kernels/cuda/block_attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/int_range.h"
#include "kernels/cuda/ops.h"
#include "kernels/view_entry.h"

namespace hogwild::cuda {
namespace {

constexpr int kThreads = 256;  // attention kernel: 8 warps
constexpr int kWarps = kThreads / 32;
constexpr int kTileKeys = 32;  // one key per lane while scoring
constexpr int kPlanThreads = 1024;
constexpr int kMergeWarps = 4;
// A block's keys are split into at most kMaxSplits chunks of at least kMinChunkKeys keys
// (multiples of kTileKeys): 16k keys give 64 chunks of 256, enough items to fill an H100 per kv
// head count of 8. Fewer splits when the partials would pass kPartialBudget (long prefills).
constexpr int kMinChunkKeys = 128;
constexpr int64_t kMaxSplits = 64;
constexpr int64_t kPartialBudget = int64_t{64} << 20;
constexpr float kLog2e = 1.44269504088896340736f;

// Slots per warp: 4 (32 per item) for head dims up to 128; 2 (16 per item) for 256, which keeps
// shared memory under the 99 KiB that sm_86/sm_89 allow.
template <int kHeadDim>
struct TileShape {
  static constexpr int kSlotsPerWarp = kHeadDim >= 256 ? 2 : 4;
  static constexpr int kSlots = kWarps * kSlotsPerWarp;
  static constexpr int kPerLane = kHeadDim / 32;
  // Floats of dynamic shared memory: keys [32][D+1] (padded: lane j reads row j), values [32][D],
  // queries [D][slots] (slot-minor: a warp reads its slots of one dimension as one vector),
  // weights [warps][32][slots per warp].
  static constexpr int kKeysOffset = 0;
  static constexpr int kValuesOffset = kTileKeys * (kHeadDim + 1);
  static constexpr int kQueriesOffset = kValuesOffset + kTileKeys * kHeadDim;
  static constexpr int kWeightsOffset = kQueriesOffset + kHeadDim * kSlots;
  static constexpr int kFloats = kWeightsOffset + kWarps * kTileKeys * kSlotsPerWarp;
  static constexpr size_t kBytes = sizeof(float) * kFloats;
  static_assert(kQueriesOffset % 4 == 0 && kWeightsOffset % 4 == 0, "vector loads need 16 bytes");
};

template <int kCount>
struct alignas(4 * kCount) SlotVector {
  float value[kCount];
};

// Device pointers into the workspace (layout in workspace_layout()).
struct Plan {
  int* entry_count;     // [blocks]  entries reading the block
  int* most_visible;    // [blocks]  the most keys any of them sees
  int* chunk_keys;      // [blocks]  keys per chunk (a multiple of kTileKeys)
  int* chunks;          // [blocks]  chunks of the block (0 when nothing is visible)
  int* entry_start;     // [blocks]  first of the block's entries in sorted_entries
  int* item_start;      // [blocks]  first of the block's work items
  int* entry_row;       // [capacity] the row of each entry; -1: unused or invalid
  int* entry_slot;      // [capacity] its place among its block's entries
  int* sorted_entries;  // [capacity] entries grouped by block
  int* item_count;      // [1]
  int* next_item;       // [1] work counter of the attention kernel, reset by the merge kernel
  int4* items;          // [max_items] {block, chunk, kv head, query tile}
  float2* stats;        // [capacity * splits * heads] (max, sum) of each partial, base 2
  float* partials;      // [capacity * splits * heads * head_dim] unnormalised values
};

struct Params {
  const void* q;
  int64_t q_stride;
  bool q_bf16;
  const void* keys;
  const void* values;
  int64_t kv_stride;
  int64_t kv_rows;
  const int32_t* page_table;
  int64_t table_stride;
  int blocks;
  int max_pages;
  int page_size;
  const int32_t* offsets;
  int64_t offsets_stride;
  const int32_t* entries;
  int64_t entries_stride;
  int rows;
  int entry_capacity;
  const float* inv_freq;
  int heads;
  int kv_heads;
  int group;
  int slots_per_item;
  float query_scale;  // shape.scale * log2(e)
  int splits;
  int max_items;
  void* out;
  int64_t out_stride;
  bool out_bf16;
  int* error_flags;
  Plan plan;
};

__device__ inline float to_float(float value) { return value; }
__device__ inline float to_float(__nv_bfloat16 value) { return __bfloat162float(value); }

__device__ inline bool read_entry(const Params& p, int e, ViewEntry* entry) {
  const int32_t* raw = p.entries + e * p.entries_stride;
  *entry = ViewEntry{raw[0], raw[1], raw[2]};
  return entry->block >= 0 && entry->block < p.blocks && entry->visible >= 0 &&
         static_cast<int64_t>(entry->visible) <= static_cast<int64_t>(p.max_pages) * p.page_size;
}

__device__ inline int clamp_offset(const Params& p, int r) {
  return min(max(p.offsets[r * p.offsets_stride], 0), p.entry_capacity);
}

// Exclusive prefix sum over the kPlanThreads threads of the block; `total` gets the sum.
__device__ int block_exclusive_sum(int value, int* total) {
  __shared__ int warp_sums[kPlanThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int inclusive = value;
  for (int offset = 1; offset < 32; offset *= 2) {
    const int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
    if (lane >= offset) inclusive += other;
  }
  if (lane == 31) warp_sums[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    int sum = warp_sums[lane];  // kPlanThreads / 32 == 32 warps
    for (int offset = 1; offset < 32; offset *= 2) {
      const int other = __shfl_up_sync(0xffffffffu, sum, offset);
      if (lane >= offset) sum += other;
    }
    warp_sums[lane] = sum;  // inclusive sums of the warps
  }
  __syncthreads();
  *total = warp_sums[31];
  const int result = inclusive - value + (warp > 0 ? warp_sums[warp - 1] : 0);
  __syncthreads();  // warp_sums is reused by the next call
  return result;
}

// ---- 1. plan: one block of kPlanThreads threads
__global__ void __launch_bounds__(kPlanThreads) plan_kernel(Params p) {
  const Plan& plan = p.plan;
  const int tid = threadIdx.x;
  for (int b = tid; b < p.blocks; b += kPlanThreads) {
    plan.entry_count[b] = 0;
    plan.most_visible[b] = 0;
  }
  for (int e = tid; e < p.entry_capacity; e += kPlanThreads) plan.entry_row[e] = -1;
  if (tid == 0) {
    const int first = p.offsets[0], last = p.offsets[p.rows * p.offsets_stride];
    if (first != 0 || last < 0 || last > p.entry_capacity) p.error_flags[kBadViewEntry] = 1;
  }
  for (int r = tid; r < p.rows; r += kPlanThreads)
    if (p.offsets[r * p.offsets_stride] > p.offsets[(r + 1) * p.offsets_stride])
      p.error_flags[kBadViewEntry] = 1;
  __syncthreads();

  for (int r = tid; r < p.rows; r += kPlanThreads)
    for (int e = clamp_offset(p, r), end = clamp_offset(p, r + 1); e < end; ++e)
      plan.entry_row[e] = r;
  __syncthreads();

  for (int e = tid; e < p.entry_capacity; e += kPlanThreads) {
    if (plan.entry_row[e] < 0) continue;
    ViewEntry entry;
    if (!read_entry(p, e, &entry)) {
      p.error_flags[kBadViewEntry] = 1;
      plan.entry_row[e] = -1;  // the merge skips it too
      continue;
    }
    plan.entry_slot[e] = atomicAdd(&plan.entry_count[entry.block], 1);
    atomicMax(&plan.most_visible[entry.block], entry.visible);
  }
  __syncthreads();

  // Chunks and items per block, and where each block's entries and items start.
  int entries_before = 0, items_before = 0;
  for (int base = 0; base < p.blocks; base += kPlanThreads) {
    const int b = base + tid;
    int count = 0, items = 0;
    if (b < p.blocks) {
      count = plan.entry_count[b];
      const int visible = plan.most_visible[b];
      int chunk_keys = 0, chunks = 0;
      if (count > 0 && visible > 0) {
        const int wanted = min(p.splits, (visible + kMinChunkKeys - 1) / kMinChunkKeys);
        chunk_keys = ((visible + wanted - 1) / wanted + kTileKeys - 1) / kTileKeys * kTileKeys;
        chunks = (visible + chunk_keys - 1) / chunk_keys;
      }
      plan.chunk_keys[b] = chunk_keys;
      plan.chunks[b] = chunks;
      const int query_tiles = (count * p.group + p.slots_per_item - 1) / p.slots_per_item;
      items = chunks * p.kv_heads * query_tiles;
    }
    int entries_total, items_total;
    const int entry_start = block_exclusive_sum(count, &entries_total);
    const int item_start = block_exclusive_sum(items, &items_total);
    if (b < p.blocks) {
      plan.entry_start[b] = entries_before + entry_start;
      plan.item_start[b] = items_before + item_start;
    }
    entries_before += entries_total;
    items_before += items_total;
  }
  if (tid == 0) {
    // max_items bounds the count by construction (see BlockAttention::run); guard anyway.
    if (items_before > p.max_items) p.error_flags[kBadViewEntry] = 1;
    *plan.item_count = min(items_before, p.max_items);
  }
  __syncthreads();

  for (int e = tid; e < p.entry_capacity; e += kPlanThreads) {
    if (plan.entry_row[e] < 0) continue;
    const int block = p.entries[e * p.entries_stride];
    plan.sorted_entries[plan.entry_start[block] + plan.entry_slot[e]] = e;
  }
  // One warp per block writes the block's items: chunk fastest, then kv head, then query tile.
  const int lane = tid % 32;
  for (int b = tid / 32; b < p.blocks; b += kPlanThreads / 32) {
    const int chunks = plan.chunks[b];
    if (chunks == 0) continue;
    const int query_tiles =
        (plan.entry_count[b] * p.group + p.slots_per_item - 1) / p.slots_per_item;
    const int count = chunks * p.kv_heads * query_tiles, start = plan.item_start[b];
    for (int k = lane; k < count && start + k < p.max_items; k += 32)
      plan.items[start + k] =
          make_int4(b, k % chunks, k / chunks % p.kv_heads, k / (chunks * p.kv_heads));
  }
}

// Loads keys [tile, tile + 32) of block b, kv head g, into shared memory as fp32; keys at or past
// `end` (and keys on a bad page) become zeros, so a masked key can never bring NaN into the sums.
// All global loads of the tile are issued before the first store (16-byte vectors, coalesced:
// a row of one kv head is D contiguous elements).
template <int kHeadDim, typename KV>
__device__ void load_tile(const Params& p, int block, int kv_head, int tile, int end,
                          float* keys_tile, float* values_tile) {
  constexpr int kPerVector = 16 / sizeof(KV);
  constexpr int kVectorsPerRow = kHeadDim / kPerVector;
  constexpr int kLoads = kTileKeys * kVectorsPerRow / kThreads;
  static_assert(kTileKeys * kVectorsPerRow % kThreads == 0, "whole loads per thread");
  uint4 key_raw[kLoads], value_raw[kLoads];
#pragma unroll
  for (int l = 0; l < kLoads; ++l) {
    const int index = threadIdx.x + l * kThreads;
    const int j = index / kVectorsPerRow, vector = index % kVectorsPerRow;
    const int token = tile + j;
    key_raw[l] = value_raw[l] = make_uint4(0, 0, 0, 0);
    if (token < end) {
      const int page = p.page_table[block * p.table_stride + token / p.page_size];
      if (page >= 0 && static_cast<int64_t>(page + 1) * p.page_size <= p.kv_rows) {
        const int64_t offset =
            (static_cast<int64_t>(page) * p.page_size + token % p.page_size) * p.kv_stride +
            static_cast<int64_t>(kv_head) * kHeadDim + vector * kPerVector;
        key_raw[l] = __ldg(reinterpret_cast<const uint4*>(static_cast<const KV*>(p.keys) + offset));
        value_raw[l] =
            __ldg(reinterpret_cast<const uint4*>(static_cast<const KV*>(p.values) + offset));
      } else {
        p.error_flags[kBadPage] = 1;
      }
    }
  }
#pragma unroll
  for (int l = 0; l < kLoads; ++l) {
    const int index = threadIdx.x + l * kThreads;
    const int j = index / kVectorsPerRow, column = index % kVectorsPerRow * kPerVector;
    const KV* key = reinterpret_cast<const KV*>(&key_raw[l]);
    const KV* value = reinterpret_cast<const KV*>(&value_raw[l]);
#pragma unroll
    for (int t = 0; t < kPerVector; ++t) {
      keys_tile[j * (kHeadDim + 1) + column + t] = to_float(key[t]);
      values_tile[j * kHeadDim + column + t] = to_float(value[t]);
    }
  }
}

// ---- 2. attention: persistent blocks, each pulling items until none is left
template <int kHeadDim, typename KV>
__global__ void __launch_bounds__(kThreads) attention_kernel(Params p) {
  using Shape = TileShape<kHeadDim>;
  constexpr int kSlots = Shape::kSlots, kSlotsPerWarp = Shape::kSlotsPerWarp;
  constexpr int kPerLane = Shape::kPerLane, kHalf = kHeadDim / 2;
  extern __shared__ float4 shared_vectors[];
  float* shared = reinterpret_cast<float*>(shared_vectors);
  float* keys_tile = shared + Shape::kKeysOffset;
  float* values_tile = shared + Shape::kValuesOffset;
  float* queries = shared + Shape::kQueriesOffset;
  float* weights = shared + Shape::kWeightsOffset;
  __shared__ int slot_entry[kSlots], slot_row[kSlots], slot_head[kSlots], slot_position[kSlots],
      slot_visible[kSlots];
  __shared__ int item_index, tile_end_shared;

  const Plan& plan = p.plan;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int item_count = *plan.item_count;
  for (;;) {
    if (threadIdx.x == 0) item_index = atomicAdd(plan.next_item, 1);
    __syncthreads();
    const int index = item_index;
    if (index >= item_count) return;  // the same for every thread of the block
    const int4 item = plan.items[index];
    const int block = item.x, chunk = item.y, kv_head = item.z, query_tile = item.w;
    const int chunk_keys = plan.chunk_keys[block];
    const int chunk_begin = chunk * chunk_keys;
    const int chunk_end = min(chunk_begin + chunk_keys, plan.most_visible[block]);

    // The item's slots: (entry, query head) pairs, entry-major.
    if (threadIdx.x < kSlots) {
      const int slot = query_tile * kSlots + threadIdx.x;
      slot_entry[threadIdx.x] = -1;
      slot_visible[threadIdx.x] = 0;
      if (slot < plan.entry_count[block] * p.group) {
        const int e = plan.sorted_entries[plan.entry_start[block] + slot / p.group];
        const int32_t* raw = p.entries + e * p.entries_stride;
        slot_entry[threadIdx.x] = e;
        slot_row[threadIdx.x] = plan.entry_row[e];
        slot_head[threadIdx.x] = kv_head * p.group + slot % p.group;
        slot_position[threadIdx.x] = raw[1];
        slot_visible[threadIdx.x] = raw[2];
      }
    }
    if (threadIdx.x == 0) tile_end_shared = chunk_begin;
    __syncthreads();
    // Keys past every slot's last visible key need no loading.
    if (threadIdx.x < kSlots)
      atomicMax(&tile_end_shared, min(slot_visible[threadIdx.x], chunk_end));
    // Rotated, pre-scaled queries: rot(q, position) * scale * log2(e), NeoX rotate-half.
    // Consecutive threads take consecutive slots, so the shared stores hit distinct banks.
    for (int i = threadIdx.x; i < kSlots * kHalf; i += kThreads) {
      const int slot = i % kSlots, j = i / kSlots;
      float low = 0.0f, high = 0.0f;
      if (slot_entry[slot] >= 0) {
        const int64_t base = slot_row[slot] * p.q_stride + slot_head[slot] * kHeadDim;
        float a, b;
        if (p.q_bf16) {
          const auto* q = static_cast<const __nv_bfloat16*>(p.q);
          a = __bfloat162float(q[base + j]);
          b = __bfloat162float(q[base + j + kHalf]);
        } else {
          const auto* q = static_cast<const float*>(p.q);
          a = q[base + j];
          b = q[base + j + kHalf];
        }
        float c, s;
        rope_cos_sin(slot_position[slot], p.inv_freq[j], &c, &s);
        low = (a * c - b * s) * p.query_scale;
        high = (b * c + a * s) * p.query_scale;
      }
      queries[j * kSlots + slot] = low;
      queries[(j + kHalf) * kSlots + slot] = high;
    }
    __syncthreads();
    const int tile_end = tile_end_shared;

    // Online softmax state of this warp's slots; the sum is kept per lane (its share of the
    // keys) and reduced once at the end.
    const int first_slot = warp * kSlotsPerWarp;
    bool warp_active = false;
    int limit[kSlotsPerWarp];
    float maximum[kSlotsPerWarp], lane_sum[kSlotsPerWarp], o[kSlotsPerWarp][kPerLane];
#pragma unroll
    for (int s = 0; s < kSlotsPerWarp; ++s) {
      warp_active |= slot_entry[first_slot + s] >= 0;
      limit[s] = min(slot_visible[first_slot + s], tile_end);
      maximum[s] = -INFINITY;
      lane_sum[s] = 0.0f;
#pragma unroll
      for (int i = 0; i < kPerLane; ++i) o[s][i] = 0.0f;
    }

    for (int tile = chunk_begin; tile < tile_end; tile += kTileKeys) {
      load_tile<kHeadDim, KV>(p, block, kv_head, tile, tile_end, keys_tile, values_tile);
      __syncthreads();
      if (warp_active) {
        // Scores: lane j scores key j against the warp's slots.
        float score[kSlotsPerWarp] = {};
        const float* key = keys_tile + lane * (kHeadDim + 1);
#pragma unroll 8
        for (int c = 0; c < kHeadDim; ++c) {
          const float k = key[c];
          const SlotVector<kSlotsPerWarp> q = *reinterpret_cast<const SlotVector<kSlotsPerWarp>*>(
              queries + c * kSlots + first_slot);
#pragma unroll
          for (int s = 0; s < kSlotsPerWarp; ++s) score[s] = fmaf(q.value[s], k, score[s]);
        }
        const int token = tile + lane;
        SlotVector<kSlotsPerWarp> weight;
#pragma unroll
        for (int s = 0; s < kSlotsPerWarp; ++s) {
          if (token >= limit[s]) score[s] = -INFINITY;
          const float updated = fmaxf(maximum[s], warp_max(score[s]));
          weight.value[s] = 0.0f;
          if (updated != -INFINITY) {  // else nothing visible yet: the state stays empty
            const float correction = exp2f(maximum[s] - updated);  // 0 while maximum is -inf
            weight.value[s] = exp2f(score[s] - updated);           // 0 for a masked key
            lane_sum[s] = lane_sum[s] * correction + weight.value[s];
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) o[s][i] *= correction;
            maximum[s] = updated;
          }
        }
        *reinterpret_cast<SlotVector<kSlotsPerWarp>*>(weights + (warp * kTileKeys + lane) *
                                                                    kSlotsPerWarp) = weight;
        __syncwarp();
        // Values: lane owns dimensions lane, lane + 32, ...; each value row read once per warp.
        for (int j = 0; j < kTileKeys; ++j) {
          const SlotVector<kSlotsPerWarp> w = *reinterpret_cast<const SlotVector<kSlotsPerWarp>*>(
              weights + (warp * kTileKeys + j) * kSlotsPerWarp);
          const float* value = values_tile + j * kHeadDim + lane;
#pragma unroll
          for (int i = 0; i < kPerLane; ++i) {
            const float v = value[32 * i];
#pragma unroll
            for (int s = 0; s < kSlotsPerWarp; ++s) o[s][i] = fmaf(w.value[s], v, o[s][i]);
          }
        }
      }
      __syncthreads();  // the next tile overwrites keys, values and weights
    }

    // One partial per slot, also when it saw nothing (sum 0): the merge reads every chunk.
#pragma unroll
    for (int s = 0; s < kSlotsPerWarp; ++s) {
      const int slot = first_slot + s;
      const int e = slot_entry[slot];
      const float sum = warp_sum(lane_sum[s]);
      if (e < 0) continue;
      const int64_t partial =
          (static_cast<int64_t>(e) * p.splits + chunk) * p.heads + slot_head[slot];
      if (lane == 0) plan.stats[partial] = make_float2(maximum[s], sum);
#pragma unroll
      for (int i = 0; i < kPerLane; ++i)
        plan.partials[partial * kHeadDim + lane + 32 * i] = o[s][i];
    }
    __syncthreads();  // the slot arrays and item_index are rewritten for the next item
  }
}

// ---- 3. merge: one warp per (row, head)
template <int kHeadDim>
__global__ void __launch_bounds__(kMergeWarps * 32) merge_kernel(Params p) {
  constexpr int kPerLane = kHeadDim / 32;
  const Plan& plan = p.plan;
  if (blockIdx.x == 0 && threadIdx.x == 0) *plan.next_item = 0;  // the attention kernel is done
  const int64_t pair = static_cast<int64_t>(blockIdx.x) * kMergeWarps + threadIdx.x / 32;
  if (pair >= static_cast<int64_t>(p.rows) * p.heads) return;
  const int row = static_cast<int>(pair / p.heads), head = static_cast<int>(pair % p.heads);
  const int lane = threadIdx.x % 32;
  float maximum = -INFINITY, sum = 0.0f, o[kPerLane] = {};
  for (int e = clamp_offset(p, row), end = clamp_offset(p, row + 1); e < end; ++e) {
    if (plan.entry_row[e] != row) continue;  // invalid entry (flagged by the plan)
    const int chunks = plan.chunks[p.entries[e * p.entries_stride]];
    for (int chunk = 0; chunk < chunks; ++chunk) {
      const int64_t partial = (static_cast<int64_t>(e) * p.splits + chunk) * p.heads + head;
      const float2 stats = plan.stats[partial];
      if (stats.y == 0.0f) continue;  // empty partial: its maximum is -inf
      const float merged = fmaxf(maximum, stats.x);
      const float old_scale = exp2f(maximum - merged);  // 0 for the first partial
      const float new_scale = exp2f(stats.x - merged);
#pragma unroll
      for (int i = 0; i < kPerLane; ++i)
        o[i] = o[i] * old_scale + plan.partials[partial * kHeadDim + lane + 32 * i] * new_scale;
      sum = sum * old_scale + stats.y * new_scale;
      maximum = merged;
    }
  }
  const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;  // a row that sees no key gets 0
  const int64_t base = row * p.out_stride + static_cast<int64_t>(head) * kHeadDim + lane;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    if (p.out_bf16) {
      static_cast<__nv_bfloat16*>(p.out)[base + 32 * i] = __float2bfloat16(o[i] * inverse);
    } else {
      static_cast<float*>(p.out)[base + 32 * i] = o[i] * inverse;
    }
  }
}

// ---- host side
struct Layout {
  size_t bytes = 0;
  size_t entry_count, most_visible, chunk_keys, chunks, entry_start, item_start, entry_row,
      entry_slot, sorted_entries, item_count, next_item, items, stats, partials;
};

Layout workspace_layout(int64_t blocks, int64_t capacity, int64_t splits, int64_t heads,
                        int64_t head_dim, int64_t max_items) {
  Layout layout;
  auto take = [&](size_t bytes) {
    const size_t offset = layout.bytes;
    layout.bytes += (bytes + 255) / 256 * 256;
    return offset;
  };
  const auto block_ints = static_cast<size_t>(blocks) * sizeof(int);
  const auto entry_ints = static_cast<size_t>(capacity) * sizeof(int);
  const auto partials = static_cast<size_t>(capacity * splits * heads);
  layout.next_item = take(sizeof(int));  // first: zeroed with the workspace
  layout.item_count = take(sizeof(int));
  layout.entry_count = take(block_ints);
  layout.most_visible = take(block_ints);
  layout.chunk_keys = take(block_ints);
  layout.chunks = take(block_ints);
  layout.entry_start = take(block_ints);
  layout.item_start = take(block_ints);
  layout.entry_row = take(entry_ints);
  layout.entry_slot = take(entry_ints);
  layout.sorted_entries = take(entry_ints);
  layout.items = take(static_cast<size_t>(max_items) * sizeof(int4));
  layout.stats = take(partials * sizeof(float2));
  layout.partials = take(partials * static_cast<size_t>(head_dim) * sizeof(float));
  return layout;
}

// `blocks_per_sm` caches the occupancy of the instantiation on this device (0: not prepared yet;
// preparing sets the shared memory opt-in, which must precede the first launch).
template <int kHeadDim, typename KV>
void launch_attention(const Params& params, int& blocks_per_sm, int multiprocessors,
                      size_t shared_memory_optin, cudaStream_t stream) {
  using Shape = TileShape<kHeadDim>;
  const auto kernel = attention_kernel<kHeadDim, KV>;
  if (blocks_per_sm == 0) {
    HOGWILD_CHECK(Shape::kBytes <= shared_memory_optin, "block_attention with head dim ", kHeadDim,
                  " needs ", Shape::kBytes, " bytes of shared memory per block; this GPU allows ",
                  shared_memory_optin);
    HOGWILD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(Shape::kBytes)));
    HOGWILD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel,
                                                                     kThreads, Shape::kBytes));
    HOGWILD_CHECK(blocks_per_sm > 0, "block_attention (head dim ", kHeadDim,
                  ") cannot run a single block per multiprocessor on this GPU");
  }
  // Persistent: as many blocks as fit at once, but never more than there can be items.
  const int grid = std::max(1, std::min(multiprocessors * blocks_per_sm, params.max_items));
  kernel<<<grid, kThreads, Shape::kBytes, stream>>>(params);
  HOGWILD_CUDA_CHECK(cudaGetLastError());
  const int64_t pairs = static_cast<int64_t>(params.rows) * params.heads;
  const int64_t merge_blocks = (pairs + kMergeWarps - 1) / kMergeWarps;
  HOGWILD_CHECK(merge_blocks <= 0x7fffffff, "too many rows for block_attention: ", params.rows);
  merge_kernel<kHeadDim>
      <<<static_cast<unsigned>(merge_blocks), kMergeWarps * 32, 0, stream>>>(params);
  HOGWILD_CUDA_CHECK(cudaGetLastError());
}

template <int kHeadDim>
void dispatch_kv(bool kv_bf16, const Params& params, int (&blocks_per_sm)[2], int multiprocessors,
                 size_t shared_memory_optin, cudaStream_t stream) {
  if (kv_bf16) {
    launch_attention<kHeadDim, __nv_bfloat16>(params, blocks_per_sm[1], multiprocessors,
                                              shared_memory_optin, stream);
  } else {
    launch_attention<kHeadDim, float>(params, blocks_per_sm[0], multiprocessors,
                                      shared_memory_optin, stream);
  }
}

int slots_per_item(int64_t head_dim) {
  switch (head_dim) {
    case 64:
      return TileShape<64>::kSlots;
    case 128:
      return TileShape<128>::kSlots;
    case 256:
      return TileShape<256>::kSlots;
  }
  return 0;
}

}  // namespace

bool BlockAttention::PlanKey::operator==(const PlanKey& other) const {
  return offsets == other.offsets && entries == other.entries && rows == other.rows &&
         entry_capacity == other.entry_capacity && offsets_stride == other.offsets_stride &&
         entries_stride == other.entries_stride && blocks == other.blocks &&
         max_pages == other.max_pages && page_size == other.page_size && heads == other.heads &&
         kv_heads == other.kv_heads && head_dim == other.head_dim &&
         inputs_version == other.inputs_version && workspace == other.workspace;
}

BlockAttention::BlockAttention(int device) {
  HOGWILD_CUDA_CHECK(
      cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device));
  int optin = 0;
  HOGWILD_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  shared_memory_optin_ = static_cast<size_t>(optin);
}

BlockAttention::~BlockAttention() {
  if (workspace_ != nullptr) (void)cudaFree(workspace_);  // no throwing from a destructor
}

void BlockAttention::run(const Tensor& q, const Tensor& keys, const Tensor& values,
                         const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                         const Tensor& view_entries, const Tensor& inv_freq,
                         const AttentionShape& shape, const Tensor& out, uint64_t inputs_version,
                         int* error_flags, cudaStream_t stream) {
  const int64_t d = shape.head_dim, heads = shape.heads, kv_heads = shape.kv_heads;
  const int64_t rows = q.rows;
  HOGWILD_CHECK(d == 64 || d == 128 || d == 256,
                "the CUDA block_attention supports head dims 64, 128 and 256, not ", d);
  // Shapes and dtypes are checked by Backend::block_attention; these are this kernel's limits.
  HOGWILD_CHECK(values.stride == keys.stride,
                "the CUDA block_attention needs keys and values with one row stride (", keys.stride,
                " and ", values.stride, ")");
  // Tiles are read as 16-byte vectors; the cache pools (whole allocations) always qualify.
  const size_t element = dtype_size(keys.dtype);
  HOGWILD_CHECK(reinterpret_cast<uintptr_t>(keys.data) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(values.data) % 16 == 0 &&
                    keys.stride * element % 16 == 0,
                "block_attention needs 16-byte aligned key/value rows");
  HOGWILD_CHECK(fits_int(rows + 1) && fits_int(view_entries.rows) && fits_int(page_table.rows) &&
                    fits_int(page_table.cols) && fits_int(page_table.cols * page_size),
                "block_attention: view or page table too large for 32-bit indices");
  if (rows == 0) return;

  const int64_t capacity = view_entries.rows, blocks = page_table.rows;
  const int64_t group = heads / kv_heads, slots = slots_per_item(d);
  const int64_t bytes_per_split = std::max<int64_t>(1, capacity * heads * (d + 2) * 4);
  const int64_t splits = std::clamp<int64_t>(kPartialBudget / bytes_per_split, 1, kMaxSplits);
  // Items: sum over blocks of chunks * kv_heads * query tiles, with chunks <= splits and
  // sum(query tiles) <= capacity * group / slots + (blocks that have an entry).
  const int64_t max_items =
      splits * kv_heads * ((capacity * group + slots - 1) / slots + std::min(blocks, capacity));
  HOGWILD_CHECK(fits_int(max_items) && fits_int(capacity * splits * heads),
                "block_attention: too many view entries for one call (", capacity, ")");

  const Layout layout = workspace_layout(blocks, capacity, splits, heads, d, max_items);
  if (layout.bytes > workspace_bytes_) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    HOGWILD_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
    HOGWILD_CHECK(capture == cudaStreamCaptureStatusNone, "block_attention would grow its ",
                  "workspace from ", workspace_bytes_, " to ", layout.bytes,
                  " bytes inside a CUDA graph capture (the key's warm-up run must reserve it)");
    // Grow only (the first calls of a run); kernels still queued may use the old workspace.
    HOGWILD_CUDA_CHECK(cudaStreamSynchronize(stream));
    ++workspace_generation_;
    if (workspace_ != nullptr) HOGWILD_CUDA_CHECK(cudaFree(workspace_));
    workspace_ = nullptr;
    workspace_bytes_ = 0;
    plan_valid_ = false;
    HOGWILD_CUDA_CHECK(cudaMalloc(&workspace_, layout.bytes));
    workspace_bytes_ = layout.bytes;
    HOGWILD_CUDA_CHECK(cudaMemsetAsync(workspace_, 0, layout.bytes, stream));
  }
  char* base = static_cast<char*>(workspace_);
  Params params{};
  params.q = q.data;
  params.q_stride = q.stride;
  params.q_bf16 = q.dtype == DType::BF16;
  params.keys = keys.data;
  params.values = values.data;
  params.kv_stride = keys.stride;
  params.kv_rows = keys.rows;
  params.page_table = static_cast<const int32_t*>(page_table.data);
  params.table_stride = page_table.stride;
  params.blocks = static_cast<int>(blocks);
  params.max_pages = static_cast<int>(page_table.cols);
  params.page_size = static_cast<int>(page_size);
  params.offsets = static_cast<const int32_t*>(view_offsets.data);
  params.offsets_stride = view_offsets.stride;
  params.entries = static_cast<const int32_t*>(view_entries.data);
  params.entries_stride = view_entries.stride;
  params.rows = static_cast<int>(rows);
  params.entry_capacity = static_cast<int>(capacity);
  params.inv_freq = static_cast<const float*>(inv_freq.data);
  params.heads = static_cast<int>(heads);
  params.kv_heads = static_cast<int>(kv_heads);
  params.group = static_cast<int>(group);
  params.slots_per_item = static_cast<int>(slots);
  params.query_scale = shape.scale * kLog2e;
  params.splits = static_cast<int>(splits);
  params.max_items = static_cast<int>(max_items);
  params.out = out.data;
  params.out_stride = out.stride;
  params.out_bf16 = out.dtype == DType::BF16;
  params.error_flags = error_flags;
  Plan& plan = params.plan;
  plan.entry_count = reinterpret_cast<int*>(base + layout.entry_count);
  plan.most_visible = reinterpret_cast<int*>(base + layout.most_visible);
  plan.chunk_keys = reinterpret_cast<int*>(base + layout.chunk_keys);
  plan.chunks = reinterpret_cast<int*>(base + layout.chunks);
  plan.entry_start = reinterpret_cast<int*>(base + layout.entry_start);
  plan.item_start = reinterpret_cast<int*>(base + layout.item_start);
  plan.entry_row = reinterpret_cast<int*>(base + layout.entry_row);
  plan.entry_slot = reinterpret_cast<int*>(base + layout.entry_slot);
  plan.sorted_entries = reinterpret_cast<int*>(base + layout.sorted_entries);
  plan.item_count = reinterpret_cast<int*>(base + layout.item_count);
  plan.next_item = reinterpret_cast<int*>(base + layout.next_item);
  plan.items = reinterpret_cast<int4*>(base + layout.items);
  plan.stats = reinterpret_cast<float2*>(base + layout.stats);
  plan.partials = reinterpret_cast<float*>(base + layout.partials);

  PlanKey key;
  key.offsets = view_offsets.data;
  key.entries = view_entries.data;
  key.rows = rows;
  key.entry_capacity = capacity;
  key.offsets_stride = view_offsets.stride;
  key.entries_stride = view_entries.stride;
  key.blocks = blocks;
  key.max_pages = page_table.cols;
  key.page_size = page_size;
  key.heads = heads;
  key.kv_heads = kv_heads;
  key.head_dim = d;
  key.inputs_version = inputs_version;
  key.workspace = workspace_;
  if (!plan_valid_ || !(key == plan_)) {
    plan_kernel<<<1, kPlanThreads, 0, stream>>>(params);
    HOGWILD_CUDA_CHECK(cudaGetLastError());
    plan_ = key;
    plan_valid_ = true;
  }

  const bool kv_bf16 = keys.dtype == DType::BF16;
  switch (d) {
    case 64:
      dispatch_kv<64>(kv_bf16, params, blocks_per_sm_[0], multiprocessors_, shared_memory_optin_,
                      stream);
      break;
    case 128:
      dispatch_kv<128>(kv_bf16, params, blocks_per_sm_[1], multiprocessors_, shared_memory_optin_,
                       stream);
      break;
    default:
      dispatch_kv<256>(kv_bf16, params, blocks_per_sm_[2], multiprocessors_, shared_memory_optin_,
                       stream);
      break;
  }
}

}  // namespace hogwild::cuda
