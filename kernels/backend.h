// The backend interface: memory and the ops of a transformer decode step. The engine calls only
// this; kernels/cpu is the reference implementation and kernels/cuda implements the same ops
// (tested op by op against the CPU one, like ggml's test-backend-ops).
//
// Conventions: tensors are 2-D, row-major, with a row stride (so column slices of a fused QKV
// output are views, not copies). Token ids, positions and other per-step integers live in I32
// tensors on the backend, so a step's inputs are one upload and a step can be replayed (CUDA
// graphs) with new values in the same buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/tensor.h"

namespace hogwild {

// Shape of one attention call; scale already includes any RoPE attention factor (YaRN).
struct AttentionShape {
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // True when tensor memory is host memory (the CPU backend): collectives can work in place.
  virtual bool host_memory() const { return false; }

  // ---- memory: tensors are owned by the backend until released
  virtual Tensor allocate(int64_t rows, int64_t cols, DType dtype) = 0;
  virtual void release(Tensor& tensor) = 0;
  // Host fp32 -> tensor (converted to its dtype); host int32 -> I32 tensor. `host` is dense.
  virtual void upload_f32(const Tensor& dst, const float* host) = 0;
  virtual void upload_i32(const Tensor& dst, const int32_t* host) = 0;
  virtual void download_f32(const Tensor& src, float* host) = 0;
  virtual void synchronize() = 0;

  // ---- ops (outputs never alias inputs unless the op says "in place")
  // out[i] = table[ids[i]]
  virtual void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) = 0;
  // out = x / rms(x) * weight, row by row (weight: 1 x cols)
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) = 0;
  // In place, each head_dim slice of each row normalised with the shared weight (Qwen3 q/k norm)
  virtual void head_rms_norm(const Tensor& x, const Tensor& weight, float eps) = 0;
  // out = x · weightᵀ (+ bias): x [n, k], weight [m, k], bias [1, m] or empty, out [n, m]
  virtual void matmul(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& out) = 0;
  // In place NeoX (rotate-half) RoPE on every head of x [n, heads*head_dim]; row i is rotated by
  // angle positions[i] * inv_freq[j] (inv_freq: 1 x head_dim/2 F32, positions: n x 1 I32).
  virtual void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                    int64_t head_dim) = 0;
  // out = silu(gate) * up, where gate_up = [gate | up] along columns
  virtual void swiglu(const Tensor& gate_up, const Tensor& out) = 0;
  // In place: x += y
  virtual void add(const Tensor& x, const Tensor& y) = 0;
  // dst[rows[i]] = src[i] (rows: n x 1 I32); used to append new K/V to the cache.
  virtual void scatter_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) = 0;
  // out[i] = src[rows[i]]
  virtual void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) = 0;
  // Attention of each query row over several cache blocks with ONE softmax (DESIGN §3-§4).
  // Keys in the cache are rotated to block-local positions; the query is rotated here, once per
  // (row, block), by that entry's query position (= its position in the row's view minus the
  // block's start). Row i reads entries view_entries[view_offsets[i] .. view_offsets[i+1]), each
  // {block, query_position, visible}: keys 0..visible-1 of that block are visible.
  //   q, out:          [n, heads*head_dim]; q is NOT rotated
  //   keys, values:    one layer's page pool, [pages*page_size, kv_heads*head_dim]
  //   page_table:      [blocks, max_pages] I32, the pages of each block in order
  //   view_offsets:    [n+1, 1] I32;  view_entries: [E, 3] I32
  //   inv_freq:        [1, head_dim/2] F32
  // GQA: query head h reads kv head h / (heads / kv_heads). A row with no visible key gets 0.
  virtual void block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                               const Tensor& page_table, int64_t page_size,
                               const Tensor& view_offsets, const Tensor& view_entries,
                               const Tensor& inv_freq, const AttentionShape& shape,
                               const Tensor& out) = 0;
};

std::unique_ptr<Backend> make_cpu_backend();
// The CUDA backend on device `device` (kernels/cuda; defined only in builds with HOGWILD_CUDA).
// Throws hogwild::Error when the device does not exist.
std::unique_ptr<Backend> make_cuda_backend(int device);
// "cpu", or "cuda" on `device` (an error naming the problem in builds without CUDA).
std::unique_ptr<Backend> make_backend(const std::string& name, int device = 0);

}  // namespace hogwild
