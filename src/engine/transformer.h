// The forward pass of a decoder-only transformer (Llama, Qwen2, Qwen3) over a batch of tokens
// from many sequences or workers at once, on any backend. One call = one step: every token's K/V
// is written to the cache before any attention (instant sync, docs/design.md §4), so all tokens of
// the step see each other as their views allow.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "comm/communicator.h"
#include "engine/forward_batch.h"
#include "engine/kv_exchange.h"
#include "kernels/backend.h"
#include "model/model.h"

namespace hogwild {

// How matrix weights are kept on the backend (the `weights:` run key).
enum class WeightFormat {
  Native,  // as the file stores them (Q4_1, Q8_0, F16, …) where the backend's matmul reads the
           // format (the CPU backend's quantized kernels); the compute dtype (fp32 or bf16,
           // TransformerOptions::dtype) for every other matrix
  F32,     // every weight dequantized to fp32 at load: the exact reference path
};
const char* weight_format_name(WeightFormat format);
// What a `weights:` value ("native" or "f32") asks for on `backend`: fp32 where the backend reads
// no stored formats (CUDA, for now). The Transformer and the memory plan both use the result.
WeightFormat weight_format_on(const Backend& backend, const std::string& name);
// The `dtype` key's value ("f32" or "bf16") as a DType; throws naming the key for anything else.
DType compute_dtype_named(const std::string& name);
// The K/V pools' dtype for compute dtype `dtype` on `backend`: BF16 only where the backend's
// block_attention reads bf16 pools (CUDA); the CPU backend's attention is fp32, so its pools stay
// F32 whatever the dtype.
DType kv_dtype_on(const Backend& backend, DType dtype);

struct TransformerOptions {
  WeightFormat weights = WeightFormat::Native;
  int64_t max_batch_tokens = 256;  // tokens per forward call (prefill chunk size)
  int64_t max_view_entries = 64;   // blocks in one token's view, at most
  // Tensor parallelism (docs/design.md §6): this rank holds heads and feed-forward units of slice
  // tensor->rank() of tensor->size(); null = the whole model.
  Communicator* tensor = nullptr;
  bool device_communicator = false;  // `tensor` takes the backend's (device) buffers directly
  // Dtype of the matrices not kept in a stored format (the `dtype:` run key): F32 (exact
  // reference) or BF16, converted once at load, part by part. Only the matrices (embedding,
  // lm_head, QKV, o, gate/up, down) become bf16: the norms, QKV biases and RoPE frequencies stay
  // fp32, as do the activations (the matmuls accumulate in fp32). The KV pools follow
  // kv_dtype_on (CacheOptions::dtype): bf16 on CUDA, fp32 on the CPU, whose matmul reads bf16
  // weights but whose attention reads fp32 pools only.
  DType dtype = DType::F32;
  // Replay decode steps as CUDA graphs per batch-size bucket (backends without graphs ignore it).
  bool graphs = true;
};

// The part of `model` one of `parts` tensor-parallel ranks computes; throws when heads, KV heads
// or feed-forward units do not divide by `parts`.
ModelConfig shard_of(const ModelConfig& model, int64_t parts);

// Rows [first_row, first_row + rows) and columns [first_col, first_col + cols) of one 2-D weight
// of the file (a tensor-parallel shard takes a slice of them).
struct MatrixPart {
  std::string name;  // HF name
  std::vector<int64_t> shape;
  int64_t first_row = 0, rows = 0, first_col = 0, cols = 0;
};
// Consecutive parts (of one fused weight: Q, K, V) kept as one backend tensor of one dtype.
// Each part is either kept as the file stores it or loaded as fp32 and converted to the compute
// dtype (kept_as_stored says which).
struct MatrixGroup {
  DType dtype = DType::F32;
  std::vector<MatrixPart> parts;
  int64_t rows() const;
  size_t bytes() const;
};
// The backend tensors of one fused weight: parts stored in the same format share a tensor, so
// a file that quantizes V unlike Q and K (Q4_K_M) keeps all three as stored.
// `compute`: the dtype of parts not kept as stored (TransformerOptions::dtype).
std::vector<MatrixGroup> plan_matrix(const WeightSource& source,
                                     const std::vector<MatrixPart>& parts, WeightFormat format,
                                     DType compute = DType::F32);
// The stored dtype `part` is kept in (F16, BF16, block formats), or nothing when it is loaded as
// fp32 and converted to the compute dtype (fp32 files, f32 weights, cuts between blocks).
std::optional<DType> kept_as_stored(const WeightSource& source, const MatrixPart& part,
                                    WeightFormat format);
// Bytes of every weight a Transformer with `options` keeps (this shard), as it allocates them.
size_t weight_bytes(const WeightSource& source, const ModelConfig& shard,
                    const TransformerOptions& options);

// One tensor of a forward's workspace (activations, logits, the step's integer inputs).
struct WorkspaceTensor {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::F32;
  size_t bytes() const { return static_cast<size_t>(rows * cols) * dtype_size(dtype); }
};
// The workspace a Transformer allocates for `options`: the one list both the constructor and
// the memory plan use.
std::vector<WorkspaceTensor> workspace_tensors(const ModelConfig& model, const ModelConfig& shard,
                                               const TransformerOptions& options);

class Transformer {
 public:
  // Uploads the weights of `source` to `backend` (fusing QKV and gate/up into single GEMMs).
  Transformer(const WeightSource& source, Backend& backend, const TransformerOptions& options);
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return config_; }
  // The part of the model this rank computes (heads, kv_heads, ffn_hidden divided by the tensor
  // parallel size); KV caches are built with it.
  const ModelConfig& shard_config() const { return shard_; }
  const TransformerOptions& options() const { return options_; }
  Backend& backend() { return backend_; }
  const Tensor& inv_freq() const { return inv_freq_; }  // RoPE frequencies (for cache merges)
  int64_t head_dim() const { return config_.head_dim; }
  size_t weight_bytes() const { return weight_bytes_; }         // on the backend (this shard)
  const Tensor& embedding_table() const { return embedding_; }  // F32 or a stored format
  size_t workspace_bytes() const { return workspace_bytes_; }
  // Another run of a sweep with the same weights: a workspace for its batch and view sizes.
  void resize_workspace(int64_t max_batch_tokens, int64_t max_view_entries);
  // Another run of a sweep, over the same weights, has its own rank grid: the tensor axis to
  // reduce over from now on (same rank and size as the one the weights were sliced for).
  void set_tensor_communicator(Communicator* tensor, bool device_communicator);

  // Runs the batch over `cache`; `logits` receives config().vocab values per logit row.
  // Throws hogwild::Error for bad tokens or batch shapes.
  void forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits,
               KvExchange* exchange = nullptr);
  // The same step, leaving the logits on the backend: the returned tensor holds one row of
  // config().vocab values per batch.logit_rows entry (valid until the next forward), for sampling
  // on the device. forward() is this plus one download.
  const Tensor& forward_on_backend(const ForwardBatch& batch, KvCache& cache,
                                   KvExchange* exchange = nullptr);

 private:
  // A fused weight as one or more backend tensors, each computing consecutive output columns.
  struct Matrix {
    std::vector<Tensor> parts;
  };
  struct Layer {
    Tensor attn_norm, qkv_bias, q_norm, k_norm, ffn_norm;
    Matrix qkv, output, gate_up, down;
  };
  struct Workspace {
    Tensor x, normed, qkv, attention, projected, gate_up, activation, last, last_normed, logits;
    Tensor step_inputs;  // the packed i32 inputs of a step (engine/step_inputs.h), [total, 1]
  };

  Tensor upload(const HostTensor& host);
  Tensor upload_rows(const std::vector<const HostTensor*>& parts);
  Tensor allocate_weight(int64_t rows, int64_t cols, DType dtype, size_t bytes);
  // An fp32 host part into `dst` (F32 or BF16), converted on the way.
  void upload_converted(const Tensor& dst, const HostTensor& host);
  Matrix upload_matrix(const WeightSource& source, const std::vector<MatrixPart>& parts);
  // out = x · weightᵀ (+ bias), one backend matmul per tensor of the weight.
  void matmul(const Tensor& x, const Matrix& weight, const Tensor& bias, const Tensor& out);
  void reduce_across_shards(const Tensor& partial);

  const ModelConfig config_;
  const ModelConfig shard_;
  TransformerOptions options_;
  Backend& backend_;
  struct TensorSlice {
    int rank = 0, size = 1;
  } sliced_for_;  // the tensor-parallel slice the weights hold
  void allocate_workspace();

  std::vector<Tensor> owned_;
  std::vector<Tensor> workspace_;  // work_'s tensors (resize_workspace replaces them)
  Tensor embedding_, output_norm_, inv_freq_;
  Matrix lm_head_;
  size_t weight_bytes_ = 0, workspace_bytes_ = 0;
  std::vector<float> staging_;  // host copy for collectives when the backend is a device
  std::vector<Layer> layers_;
  Workspace work_;
  Tensor step_logits_;                  // rows of work_.logits the last forward_on_backend filled
  std::vector<int32_t> packed_inputs_;  // host side of work_.step_inputs, reused every step
  bool graphs_off_said_ = false;        // the "graphs off" note was printed
  // Whether this step may run as a graph (run_step), and its graph key.
  bool step_graphs_allowed(const KvExchange* exchange);
  uint64_t step_graph_key(int64_t rows, int64_t entries, int64_t logit_rows, KvCache& cache);
  AttentionShape attention_shape_;
};

}  // namespace hogwild
