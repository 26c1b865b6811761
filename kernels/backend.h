// The backend interface: memory and the ops of a transformer decode step. The engine calls only
// this; kernels/cpu is the reference implementation and kernels/cuda implements the same ops
// (tested op by op against the CPU one, like ggml's test-backend-ops).
//
// Conventions: tensors (kernels/tensor.h) are 2-D, row-major, with a row stride. Token ids,
// positions and other per-step integers live in I32 tensors on the backend; a forward packs them
// into one buffer (engine/step_inputs.h) and uploads it with ONE upload_i32, which does not wait
// on a device backend. They stay in the same buffers from step to step, so a device backend can
// replay a decode step as a graph (run_step, below).
//
// The public ops are non-virtual: each checks the shapes and dtypes stated below once, for every
// backend (hogwild::Error naming the op and the shapes), then calls the backend's do_* version.
// A backend checks only its own limits (index ranges, dtypes it lacks, 32-bit sizes).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kernels/sampling_rule.h"  // sampling::pack_row, for sample_tokens
#include "kernels/tensor.h"

namespace hogwild {

// Shape of one attention call; scale already includes any RoPE attention factor (YaRN).
struct AttentionShape {
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;
};

// ---- capabilities: the ops of Backend, named for supports()
enum class BackendOp {
  Embedding,
  RmsNorm,
  HeadRmsNorm,
  Matmul,
  Rope,
  Swiglu,
  Add,
  ScatterRows,
  GatherRows,
  BlockAttention,
};
inline constexpr BackendOp kBackendOps[] = {
    BackendOp::Embedding,  BackendOp::RmsNorm,       BackendOp::HeadRmsNorm, BackendOp::Matmul,
    BackendOp::Rope,       BackendOp::Swiglu,        BackendOp::Add,         BackendOp::ScatterRows,
    BackendOp::GatherRows, BackendOp::BlockAttention};
const char* backend_op_name(BackendOp op);  // "matmul", "block_attention", ...

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // True when tensor memory is host memory (the CPU backend): collectives can work in place.
  virtual bool host_memory() const { return false; }
  // True when matmul weights and embedding tables may be in a storage dtype (F16, BF16 and GGML's
  // block formats, kernels/tensor.h) besides the compute dtypes: the CPU backend's quantized
  // kernels. Others get fp32 weights from the engine.
  virtual bool reads_stored_weights() const { return false; }
  // True when `op` computes with `dtype` tensors made by allocate + upload_f32 (a compute dtype,
  // F32 or BF16): for matmul the weight and the activations, for block_attention the K/V pools
  // (q and out stay F32), for embedding the table, for every other op its float inputs and
  // outputs. Every backend supports F32 everywhere (the default answers only that). Storage
  // formats uploaded as stored bytes are reads_stored_weights()'s question, not this one. Tests
  // and the engine ask this instead of deciding by a backend's name.
  virtual bool supports(BackendOp op, DType dtype) const;

  // ---- memory: tensors are owned by the backend until released
  Tensor allocate(int64_t rows, int64_t cols, DType dtype);
  // Frees the tensor's memory and empties it; an empty tensor is left as it is.
  void release(Tensor& tensor);
  // Host fp32 -> F32/BF16 tensor (converted to its dtype); host int32 -> I32 tensor; F32/BF16
  // tensor -> host fp32. `host` is dense (rows * cols values).
  void upload_f32(const Tensor& dst, const float* host);
  // upload_i32 never waits for the device: the copy is queued before every later op, and `host`
  // may be reused as soon as it returns (a device backend stages it in pinned memory).
  void upload_i32(const Tensor& dst, const int32_t* host);
  void download_f32(const Tensor& src, float* host);
  // Host bytes in dst's storage dtype -> dst (contiguous; rows * dtype_row_bytes bytes): weights
  // kept as the file stores them. Only where reads_stored_weights().
  void upload_stored(const Tensor& dst, const void* host);
  virtual void synchronize() = 0;

  // ---- step graphs (issue 13; CUDA graphs per batch-size bucket)
  // True when run_step replays steps as graphs (the CUDA backend); the CPU backend just runs them.
  virtual bool step_graphs() const { return false; }
  // Queues one step's ops, which `record` issues, as the graph `key`. Backends without graphs call
  // `record`. The CUDA backend runs the first call of a key eagerly (a warm-up: workspaces grow
  // to the key's sizes), captures `record` into a graph on the second and replays that graph on
  // every later call. A key must therefore always name the same ops on the same tensors (same
  // pointers and shapes): only the contents of the tensors (the step's inputs) may change. Inside
  // `record` nothing may synchronise, allocate or upload. Releasing any tensor drops every graph.
  void run_step(uint64_t key, const std::function<void()>& record);
  // Counts for tests and benchmarks: steps run eagerly (warm-ups included), graphs captured,
  // graph replays.
  struct StepGraphStats {
    int64_t eager = 0, captured = 0, replayed = 0;
  };
  virtual StepGraphStats step_graph_stats() const { return {}; }
  // Forgets every graph (the next call of each key warms up again).
  virtual void drop_step_graphs() {}

  // ---- ops (outputs never alias inputs unless the op says "in place"). Float tensors are F32 or
  // BF16 (as the backend supports), index tensors I32.
  // out[i] = table[ids[i]] (the table may be in a storage dtype, as matmul's weight)
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out);
  // out = x / rms(x) * weight, row by row (weight: 1 x cols)
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
  // In place, each head_dim slice of each row normalised with the shared weight (Qwen3 q/k norm)
  void head_rms_norm(const Tensor& x, const Tensor& weight, float eps);
  // out = x · weightᵀ (+ bias): x [n, k], weight [m, k], bias [1, m] or empty, out [n, m]. The
  // weight may be in a storage dtype where reads_stored_weights(); accumulation is fp32.
  void matmul(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out);
  // In place NeoX (rotate-half) RoPE on every head of x [n, heads*head_dim]; row i is rotated by
  // angle positions[i] * inv_freq[j] (inv_freq: 1 x head_dim/2 F32, positions: n x 1 I32).
  void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, int64_t head_dim);
  // out = silu(gate) * up, where gate_up = [gate | up] along columns
  void swiglu(const Tensor& gate_up, const Tensor& out);
  // In place: x += y
  void add(const Tensor& x, const Tensor& y);
  // dst[rows[i]] = src[i] (rows: n x 1 I32); used to append new K/V to the cache.
  void scatter_rows(const Tensor& src, const Tensor& rows, const Tensor& dst);
  // out[i] = src[rows[i]]
  void gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out);
  // Attention of each query row over several cache blocks with ONE softmax (docs/design.md §3-§4).
  // Keys in the cache are rotated to block-local positions; the query is rotated here, once per
  // (row, block), by that entry's query position (= its position in the row's view minus the
  // block's start). Row i reads entries view_entries[view_offsets[i] .. view_offsets[i+1]), each
  // a ViewEntry {block, query_position, visible} (kernels/view_entry.h): keys 0..visible-1 of
  // that block are visible.
  //   q, out:          [n, heads*head_dim]; q is NOT rotated
  //   keys, values:    one layer's page pool, [pages*page_size, kv_heads*head_dim], one dtype
  //   page_table:      [blocks, max_pages] I32, the pages of each block in order
  //   view_offsets:    [n+1, 1] I32;  view_entries: [E, 3] I32
  //   inv_freq:        [1, head_dim/2] F32
  // GQA: query head h reads kv head h / (heads / kv_heads). A row with no visible key gets 0.
  void block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                       const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                       const Tensor& view_entries, const Tensor& inv_freq,
                       const AttentionShape& shape, const Tensor& out);

  // ---- sampling on the backend (issue 13 item 4; kernels/sampling_rule.h states the rule)
  // One token per row of `logits` [rows, vocab] F32 (vocab < sampling::kMaxVocab):
  //   params:     [rows, sampling::kRowWords] I32, row r packed by sampling::pack_row
  //               (temperature, top_k, top_p, min_p, seed, counter)
  //   suppressed: empty, or [1 or rows, vocab] I32; nonzero: never chosen (one row: every row)
  //   tokens:     [rows, 1] I32, written; -1 where a row has no candidate (all suppressed or NaN)
  //   logprobs:   empty, or [rows, 1] F32, written: log p(token) under log_softmax of the row with
  //               the suppressed tokens at -inf (engine/logprobs.h's definition, before any
  //               temperature or filter); NaN where that row has no distribution.
  // The draw of row r is a function of (logits, params row r) only: same seed and counter, same
  // token, on every backend.
  void sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                     const Tensor& tokens, const Tensor& logprobs);
  // I32 tensor -> host int32 (dense), e.g. the sampled tokens.
  void download_i32(const Tensor& src, int32_t* host);
  // ---- end of sampling

 private:
  void check_weight(const char* op, const char* what, const Tensor& tensor) const;
  // The backend's implementations, called with arguments the public ops have checked.
  virtual Tensor do_allocate(int64_t rows, int64_t cols, DType dtype) = 0;
  virtual void do_release(const Tensor& tensor) = 0;  // never called with an empty tensor
  virtual void do_upload_f32(const Tensor& dst, const float* host) = 0;
  virtual void do_upload_i32(const Tensor& dst, const int32_t* host) = 0;
  virtual void do_download_f32(const Tensor& src, float* host) = 0;
  virtual void do_upload_stored(const Tensor& dst, const void* host);
  virtual void do_run_step(uint64_t key, const std::function<void()>& record);  // step graphs
  virtual void do_embedding(const Tensor& table, const Tensor& ids, const Tensor& out) = 0;
  virtual void do_rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) = 0;
  virtual void do_head_rms_norm(const Tensor& x, const Tensor& weight, float eps) = 0;
  virtual void do_matmul(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& out) = 0;
  virtual void do_rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                       int64_t head_dim) = 0;
  virtual void do_swiglu(const Tensor& gate_up, const Tensor& out) = 0;
  virtual void do_add(const Tensor& x, const Tensor& y) = 0;
  virtual void do_scatter_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) = 0;
  virtual void do_gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) = 0;
  virtual void do_block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                                  const Tensor& page_table, int64_t page_size,
                                  const Tensor& view_offsets, const Tensor& view_entries,
                                  const Tensor& inv_freq, const AttentionShape& shape,
                                  const Tensor& out) = 0;

  // ---- sampling (see the public section)
  virtual void do_sample_tokens(const Tensor& logits, const Tensor& params,
                                const Tensor& suppressed, const Tensor& tokens,
                                const Tensor& logprobs) = 0;
  virtual void do_download_i32(const Tensor& src, int32_t* host) = 0;
  // ---- end of sampling
};

// The CPU backend with `threads` threads in its pool (0: default_cpu_threads()); throws
// hogwild::Error outside [0, 1024].
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);
// OMP_NUM_THREADS when set (the launch scripts set it per rank), else this machine's physical
// cores; throws hogwild::Error when OMP_NUM_THREADS is not a count in [1, 1024].
int default_cpu_threads();
// The CUDA backend on device `device` (kernels/cuda; defined only in builds with HOGWILD_CUDA).
// Throws hogwild::Error when the device does not exist.
std::unique_ptr<Backend> make_cuda_backend(int device);
// "cpu" (with `threads` as make_cpu_backend), or "cuda" on `device` (an error naming the problem
// in builds without CUDA; `threads` is unused there).
std::unique_ptr<Backend> make_backend(const std::string& name, int device = 0, int threads = 0);

}  // namespace hogwild
