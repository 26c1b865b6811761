// CPU kernel of Backend::block_attention (see kernels/backend.h). Shapes and dtypes are checked
// by Backend::block_attention; this checks the values it reads (offsets, entries, pages).
#pragma once

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace hogwild::cpu {

void block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                     const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                     const Tensor& view_entries, const Tensor& inv_freq,
                     const AttentionShape& shape, const Tensor& out, ThreadPool& pool);

}  // namespace hogwild::cpu
