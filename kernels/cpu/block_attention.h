// CPU kernel of Backend::block_attention (see kernels/backend.h). Shapes and dtypes are checked
// by Backend::block_attention; this checks the values it reads (offsets, entries, pages).
#pragma once

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace hogwild::cpu {

// How the keys of a block meet the queries that read it.
//   kPerRow: tasks of (block, 8 pages, kv head); each key row is applied to every (entry, head)
//            query of the block in turn (the decode kernel, and the reference for kTiled).
//   kTiled:  tasks of (block, kv head, tile of entries); scores and values as small GEMMs over
//            key tiles with an online softmax (tiled_attention.h): the prefill kernel.
//   kAuto:   kTiled for the blocks read by at least kTiledEntries entries, kPerRow for the rest.
enum class AttentionKernel { kAuto, kPerRow, kTiled };

// From this many entries reading one block on, kAuto tiles it: a tile is then at least 32
// (entry, head) query rows, enough for a GEMM to beat the per-key vector loop, and a prefill
// chunk fills the pool with (kv head, tile) tasks. Decode batches (one entry per worker and
// block) stay below it and keep the per-row kernel, which splits a block's keys across threads.
constexpr int64_t kTiledEntries = 32;

void block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                     const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                     const Tensor& view_entries, const Tensor& inv_freq,
                     const AttentionShape& shape, const Tensor& out, ThreadPool& pool,
                     AttentionKernel kernel = AttentionKernel::kAuto);

}  // namespace hogwild::cpu
