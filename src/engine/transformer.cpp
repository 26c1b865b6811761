#include "engine/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "common/error.h"
#include "common/float16.h"
#include "common/saturating.h"
#include "engine/step_inputs.h"
#include "kernels/stored_dtype.h"
#include "model/rope.h"

namespace hogwild {

namespace {

// Columns [first, first + count) of a [rows, cols] host tensor.
HostTensor slice_cols(HostTensor t, int64_t first, int64_t count) {
  if (first == 0 && count == t.cols()) return t;
  HostTensor out;
  out.shape = {t.rows(), count};
  out.data.reserve(static_cast<size_t>(t.rows() * count));
  for (int64_t r = 0; r < t.rows(); ++r)
    out.data.insert(out.data.end(), t.data.begin() + r * t.cols() + first,
                    t.data.begin() + r * t.cols() + first + count);
  return out;
}

// The matrices of one layer, sliced for tensor-parallel rank `part` (Megatron split: Q/K/V and
// gate/up by rows, o and down by columns; docs/design.md §6).
struct LayerMatrices {
  std::vector<MatrixPart> qkv, output, gate_up, down;
};

LayerMatrices layer_matrices(const ModelConfig& c, const ModelConfig& shard, int64_t part,
                             int64_t layer) {
  const int64_t q_width = shard.heads * c.head_dim, kv_width = shard.kv_heads * c.head_dim;
  const int64_t full_q = c.heads * c.head_dim, full_kv = c.kv_heads * c.head_dim;
  const int64_t ffn = shard.ffn_hidden;
  auto rows = [&](const char* suffix, int64_t out, int64_t in, int64_t first, int64_t count) {
    return MatrixPart{layer_tensor(layer, suffix), {out, in}, first, count, 0, in};
  };
  auto cols = [&](const char* suffix, int64_t out, int64_t in, int64_t first, int64_t count) {
    return MatrixPart{layer_tensor(layer, suffix), {out, in}, 0, out, first, count};
  };
  LayerMatrices m;
  m.qkv = {rows("self_attn.q_proj.weight", full_q, c.hidden, part * q_width, q_width),
           rows("self_attn.k_proj.weight", full_kv, c.hidden, part * kv_width, kv_width),
           rows("self_attn.v_proj.weight", full_kv, c.hidden, part * kv_width, kv_width)};
  m.output = {cols("self_attn.o_proj.weight", c.hidden, full_q, part * q_width, q_width)};
  m.gate_up = {rows("mlp.gate_proj.weight", c.ffn_hidden, c.hidden, part * ffn, ffn),
               rows("mlp.up_proj.weight", c.ffn_hidden, c.hidden, part * ffn, ffn)};
  m.down = {cols("mlp.down_proj.weight", c.hidden, c.ffn_hidden, part * ffn, ffn)};
  return m;
}

MatrixPart whole_matrix(const std::string& name, int64_t rows, int64_t cols) {
  return MatrixPart{name, {rows, cols}, 0, rows, 0, cols};
}

int64_t tensor_rank(const TransformerOptions& options) {
  return options.tensor != nullptr ? options.tensor->rank() : 0;
}

}  // namespace

const char* weight_format_name(WeightFormat format) {
  return format == WeightFormat::Native ? "native" : "f32";
}

WeightFormat weight_format_on(const Backend& backend, const std::string& name) {
  HOGWILD_CHECK(name == "native" || name == "f32", "weights must be native or f32, not '", name,
                "'");
  return name == "native" && backend.reads_stored_weights() ? WeightFormat::Native
                                                            : WeightFormat::F32;
}

DType compute_dtype_named(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  fail("dtype must be f32 or bf16, not '", name, "'");
}

DType kv_dtype_on(const Backend& backend, DType dtype) {
  HOGWILD_CHECK(dtype == DType::F32 || dtype == DType::BF16, "dtype must be f32 or bf16, not ",
                dtype_name(dtype));
  // cpu::block_attention reads fp32 pools only (a capability query could say this instead).
  return backend.name() == "cpu" ? DType::F32 : dtype;
}

int64_t MatrixGroup::rows() const {
  int64_t total = 0;
  for (const MatrixPart& part : parts) total += part.rows;
  return total;
}

size_t MatrixGroup::bytes() const {
  return saturating_product({saturating_count(rows()), dtype_row_bytes(dtype, parts.front().cols)});
}

std::optional<DType> kept_as_stored(const WeightSource& source, const MatrixPart& part,
                                    WeightFormat format) {
  if (format != WeightFormat::Native) return std::nullopt;
  const std::optional<GgmlType> stored = source.stored_type(part.name);
  const std::optional<DType> native = stored ? stored_dtype(*stored) : std::nullopt;
  // fp32 in the file goes the fp32 path (and so to the compute dtype).
  if (!native || *native == DType::F32) return std::nullopt;
  // A column slice must cut between blocks to stay as stored.
  const int64_t block = dtype_block_elements(*native);
  if (part.first_col % block != 0 || part.cols % block != 0) return std::nullopt;
  return native;
}

std::vector<MatrixGroup> plan_matrix(const WeightSource& source,
                                     const std::vector<MatrixPart>& parts, WeightFormat format,
                                     DType compute) {
  HOGWILD_CHECK(compute == DType::F32 || compute == DType::BF16,
                "weights are converted to f32 or bf16, not ", dtype_name(compute));
  std::vector<MatrixGroup> groups;
  for (const MatrixPart& part : parts) {
    const DType dtype = kept_as_stored(source, part, format).value_or(compute);
    if (groups.empty() || groups.back().dtype != dtype) groups.push_back({dtype, {}});
    groups.back().parts.push_back(part);
  }
  return groups;
}

size_t weight_bytes(const WeightSource& source, const ModelConfig& shard,
                    const TransformerOptions& options) {
  const ModelConfig& c = source.config();
  const int64_t part = tensor_rank(options);
  size_t total = 0;
  auto add_bytes = [&](size_t bytes) { total = saturating_sum({total, bytes}); };
  auto add = [&](const std::vector<MatrixPart>& parts) {
    for (const MatrixGroup& group : plan_matrix(source, parts, options.weights, options.dtype))
      add_bytes(group.bytes());
  };
  add({whole_matrix("model.embed_tokens.weight", c.vocab, c.hidden)});
  if (!c.tied_embeddings) add({whole_matrix("lm_head.weight", c.vocab, c.hidden)});
  const size_t f32 = sizeof(float);
  add_bytes(static_cast<size_t>(c.hidden) * f32);  // output norm (norms and biases stay fp32)
  const int64_t qkv_width = (shard.heads + 2 * shard.kv_heads) * c.head_dim;
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerMatrices m = layer_matrices(c, shard, part, l);
    add(m.qkv);
    add(m.output);
    add(m.gate_up);
    add(m.down);
    add_bytes(2 * static_cast<size_t>(c.hidden) * f32);  // the two norms
    if (c.qkv_bias) add_bytes(static_cast<size_t>(qkv_width) * f32);
    if (c.qk_norm) add_bytes(2 * static_cast<size_t>(c.head_dim) * f32);
  }
  return total;
}

// The slice of the model one tensor-parallel rank computes (Megatron split, docs/design.md §6).
ModelConfig shard_of(const ModelConfig& c, int64_t parts) {
  auto divisible = [&](int64_t value, const char* what) {
    HOGWILD_CHECK(value % parts == 0, "tensor parallel ", parts, ": the model's ", value, " ", what,
                  " are not divisible by ", parts);
    return value / parts;
  };
  ModelConfig shard = c;
  shard.heads = divisible(c.heads, "attention heads");
  shard.kv_heads = divisible(c.kv_heads, "key/value heads");
  shard.ffn_hidden = divisible(c.ffn_hidden, "feed-forward units");
  return shard;
}

std::vector<WorkspaceTensor> workspace_tensors(const ModelConfig& c, const ModelConfig& shard,
                                               const TransformerOptions& options) {
  const int64_t n = options.max_batch_tokens;
  const int64_t q_width = shard.heads * c.head_dim, kv_width = shard.kv_heads * c.head_dim;
  const DType f32 = DType::F32, i32 = DType::I32;
  return {
      {n, c.hidden, f32},                // x
      {n, c.hidden, f32},                // normed
      {n, q_width + 2 * kv_width, f32},  // qkv
      {n, q_width, f32},                 // attention
      {n, c.hidden, f32},                // projected
      {n, 2 * shard.ffn_hidden, f32},    // gate_up
      {n, shard.ffn_hidden, f32},        // activation
      {n, c.hidden, f32},                // last
      {n, c.hidden, f32},                // last_normed
      {n, c.vocab, f32},                 // logits
      // ids, key positions, cache rows, view offsets and entries, logit rows: one packed buffer
      // for the largest step (a graph bucket never exceeds it, engine/step_inputs.h)
      {StepLayout::for_capacity(n, n * options.max_view_entries, n).total, 1, i32},
  };
}

Transformer::Transformer(const WeightSource& source, Backend& backend,
                         const TransformerOptions& options)
    : config_(source.config()),
      shard_(shard_of(source.config(), options.tensor != nullptr ? options.tensor->size() : 1)),
      options_(options),
      backend_(backend),
      sliced_for_{options.tensor != nullptr ? options.tensor->rank() : 0,
                  options.tensor != nullptr ? options.tensor->size() : 1} {
  const ModelConfig& c = config_;
  HOGWILD_CHECK(options.max_batch_tokens > 0, "max_batch_tokens must be positive");
  HOGWILD_CHECK(options.max_view_entries > 0, "max_view_entries must be positive");
  const int64_t part = tensor_rank(options);
  // This rank's slice: heads [part*H/T, …), key/value heads and feed-forward units likewise.
  const int64_t q_width = shard_.heads * c.head_dim;
  const int64_t kv_width = shard_.kv_heads * c.head_dim;
  const int64_t q_first = part * q_width, kv_first = part * kv_width;

  HOGWILD_CHECK(options.dtype == DType::F32 || options.dtype == DType::BF16,
                "dtype must be f32 or bf16, not ", dtype_name(options.dtype));
  // Backends without kernels for stored formats (CUDA, for now) get fp32 (or bf16) weights.
  if (!backend_.reads_stored_weights()) options_.weights = WeightFormat::F32;
  const Matrix embedding =
      upload_matrix(source, {whole_matrix("model.embed_tokens.weight", c.vocab, c.hidden)});
  HOGWILD_ASSERT(embedding.parts.size() == 1);
  embedding_ = embedding.parts.front();
  output_norm_ = upload(source.load("model.norm.weight", {c.hidden}));
  lm_head_ = c.tied_embeddings
                 ? embedding
                 : upload_matrix(source, {whole_matrix("lm_head.weight", c.vocab, c.hidden)});
  const std::vector<float> inv_freq = rope_inverse_frequencies(c);
  inv_freq_ = backend_.allocate(1, static_cast<int64_t>(inv_freq.size()), DType::F32);
  owned_.push_back(inv_freq_);
  backend_.upload_f32(inv_freq_, inv_freq.data());

  for (int64_t l = 0; l < c.layers; ++l) {
    auto load = [&](const std::string& suffix, const std::vector<int64_t>& shape) {
      return source.load(layer_tensor(l, suffix), shape);
    };
    auto load_rows = [&](const std::string& suffix, const std::vector<int64_t>& shape,
                         int64_t first, int64_t count) {
      return source.load_rows(layer_tensor(l, suffix), shape, first, count);
    };
    const int64_t full_q = c.heads * c.head_dim, full_kv = c.kv_heads * c.head_dim;
    const LayerMatrices matrices = layer_matrices(c, shard_, part, l);
    Layer layer;
    layer.attn_norm = upload(load("input_layernorm.weight", {c.hidden}));
    layer.qkv = upload_matrix(source, matrices.qkv);
    if (c.qkv_bias) {
      const HostTensor q = load_rows("self_attn.q_proj.bias", {full_q}, q_first, q_width);
      const HostTensor k = load_rows("self_attn.k_proj.bias", {full_kv}, kv_first, kv_width);
      const HostTensor v = load_rows("self_attn.v_proj.bias", {full_kv}, kv_first, kv_width);
      layer.qkv_bias = upload_rows({&q, &k, &v});
      layer.qkv_bias.cols = layer.qkv_bias.rows;  // a bias is one row
      layer.qkv_bias.stride = layer.qkv_bias.cols;
      layer.qkv_bias.rows = 1;
    }
    if (c.qk_norm) {
      layer.q_norm = upload(load("self_attn.q_norm.weight", {c.head_dim}));
      layer.k_norm = upload(load("self_attn.k_norm.weight", {c.head_dim}));
    }
    layer.output = upload_matrix(source, matrices.output);
    layer.ffn_norm = upload(load("post_attention_layernorm.weight", {c.hidden}));
    layer.gate_up = upload_matrix(source, matrices.gate_up);
    layer.down = upload_matrix(source, matrices.down);
    layers_.push_back(layer);
  }

  allocate_workspace();

  attention_shape_ = {
      shard_.heads, shard_.kv_heads, c.head_dim,
      static_cast<float>(rope_score_factor(c) / std::sqrt(static_cast<double>(c.head_dim)))};
}

Transformer::~Transformer() {
  for (Tensor& t : workspace_) backend_.release(t);
  for (Tensor& t : owned_) backend_.release(t);
}

// The workspace, exactly as workspace_tensors lists it (the memory plan counts the same list).
void Transformer::allocate_workspace() {
  for (Tensor& t : workspace_) backend_.release(t);
  workspace_.clear();
  workspace_bytes_ = 0;
  const std::vector<WorkspaceTensor> shapes = workspace_tensors(config_, shard_, options_);
  Tensor* const slots[] = {&work_.x,           &work_.normed,  &work_.qkv,        &work_.attention,
                           &work_.projected,   &work_.gate_up, &work_.activation, &work_.last,
                           &work_.last_normed, &work_.logits,  &work_.step_inputs};
  HOGWILD_ASSERT(shapes.size() == std::size(slots));
  for (size_t i = 0; i < shapes.size(); ++i) {
    *slots[i] = backend_.allocate(shapes[i].rows, shapes[i].cols, shapes[i].dtype);
    workspace_.push_back(*slots[i]);
    workspace_bytes_ += shapes[i].bytes();
  }
}

void Transformer::resize_workspace(int64_t max_batch_tokens, int64_t max_view_entries) {
  HOGWILD_CHECK(max_batch_tokens > 0 && max_view_entries > 0,
                "the workspace needs a positive batch and view size");
  if (max_batch_tokens == options_.max_batch_tokens &&
      max_view_entries == options_.max_view_entries)
    return;
  options_.max_batch_tokens = max_batch_tokens;
  options_.max_view_entries = max_view_entries;
  allocate_workspace();
}

void Transformer::set_tensor_communicator(Communicator* tensor, bool device_communicator) {
  // The old communicator may be gone: compare with the slice the weights were cut for.
  const int size = tensor != nullptr ? tensor->size() : 1;
  const int rank = tensor != nullptr ? tensor->rank() : 0;
  HOGWILD_CHECK(size == sliced_for_.size && rank == sliced_for_.rank,
                "the weights were sliced for tensor rank ", sliced_for_.rank, " of ",
                sliced_for_.size, ", not ", rank, " of ", size);
  options_.tensor = tensor;
  options_.device_communicator = device_communicator;
}

Tensor Transformer::upload(const HostTensor& host) {
  Tensor t = backend_.allocate(host.rows(), host.cols(), DType::F32);
  owned_.push_back(t);
  weight_bytes_ += static_cast<size_t>(t.elements()) * dtype_size(t.dtype);
  backend_.upload_f32(t, host.data.data());
  return t;
}

Tensor Transformer::upload_rows(const std::vector<const HostTensor*>& parts) {
  int64_t rows = 0;
  for (const HostTensor* part : parts) {
    HOGWILD_ASSERT(part->cols() == parts.front()->cols());
    rows += part->rows();
  }
  Tensor t = backend_.allocate(rows, parts.front()->cols(), DType::F32);
  owned_.push_back(t);
  weight_bytes_ += static_cast<size_t>(t.elements()) * dtype_size(t.dtype);
  int64_t first = 0;
  for (const HostTensor* part : parts) {
    backend_.upload_f32(t.rows_view(first, part->rows()), part->data.data());
    first += part->rows();
  }
  return t;
}

Tensor Transformer::allocate_weight(int64_t rows, int64_t cols, DType dtype, size_t bytes) {
  Tensor t = backend_.allocate(rows, cols, dtype);
  owned_.push_back(t);
  weight_bytes_ += bytes;
  return t;
}

void Transformer::upload_converted(const Tensor& dst, const HostTensor& host) {
  HOGWILD_ASSERT(host.rows() == dst.rows && host.cols() == dst.cols);
  backend_.upload_f32(dst, host.data.data());  // the backend rounds to dst's dtype (bf16)
}

// One part at a time: a part's fp32 host copy (one projection of one layer, this rank's slice)
// is the most the host holds at once, never the whole model in fp32.
Transformer::Matrix Transformer::upload_matrix(const WeightSource& source,
                                               const std::vector<MatrixPart>& parts) {
  Matrix matrix;
  for (const MatrixGroup& group : plan_matrix(source, parts, options_.weights, options_.dtype)) {
    const Tensor t =
        allocate_weight(group.rows(), group.parts.front().cols, group.dtype, group.bytes());
    int64_t first = 0;
    for (const MatrixPart& p : group.parts) {
      const Tensor rows = t.rows_view(first, p.rows);
      first += p.rows;
      if (!kept_as_stored(source, p, options_.weights)) {
        upload_converted(rows, slice_cols(source.load_rows(p.name, p.shape, p.first_row, p.rows),
                                          p.first_col, p.cols));
        continue;
      }
      std::optional<StoredTensor> stored =
          source.load_stored_rows(p.name, p.shape, p.first_row, p.rows);
      HOGWILD_ASSERT(stored.has_value());
      if (p.first_col != 0 || p.cols != p.shape[1]) {
        // Whole blocks of each row (plan_matrix checked the cut).
        const size_t skip = dtype_row_bytes(group.dtype, p.first_col);
        const size_t keep = dtype_row_bytes(group.dtype, p.cols);
        const size_t row_bytes = stored->row_bytes();
        std::vector<uint8_t> sliced(static_cast<size_t>(p.rows) * keep);
        for (int64_t r = 0; r < p.rows; ++r)
          std::copy_n(stored->bytes.begin() + static_cast<std::ptrdiff_t>(r * row_bytes + skip),
                      keep, sliced.begin() + static_cast<std::ptrdiff_t>(r * keep));
        stored->bytes = std::move(sliced);
      }
      if (group.dtype == DType::BF16) {
        // bf16 is a compute dtype, not a storage one (upload_stored refuses it): widened to fp32
        // here and narrowed again by upload_f32, which is exact.
        std::vector<float> widened(static_cast<size_t>(p.rows * p.cols));
        const auto* bits = reinterpret_cast<const uint16_t*>(stored->bytes.data());
        for (size_t i = 0; i < widened.size(); ++i) widened[i] = bf16_to_float(bits[i]);
        backend_.upload_f32(rows, widened.data());
        continue;
      }
      backend_.upload_stored(rows, stored->bytes.data());
    }
    matrix.parts.push_back(t);
  }
  return matrix;
}

void Transformer::matmul(const Tensor& x, const Matrix& weight, const Tensor& bias,
                         const Tensor& out) {
  if (weight.parts.size() == 1) {
    backend_.matmul(x, weight.parts.front(), bias, out);
    return;
  }
  int64_t first = 0;
  for (const Tensor& part : weight.parts) {
    backend_.matmul(x, part, bias.empty() ? Tensor{} : bias.cols_view(first, part.rows),
                    out.cols_view(first, part.rows));
    first += part.rows;
  }
}

void Transformer::reduce_across_shards(const Tensor& partial) {
  if (options_.tensor == nullptr || options_.tensor->size() == 1) return;
  HOGWILD_ASSERT(partial.contiguous() && partial.dtype == DType::F32);
  const auto count = static_cast<size_t>(partial.elements());
  if (backend_.host_memory() || options_.device_communicator || options_.tensor->stream_ordered()) {
    // In place: host buffers with MPI, or device buffers with a device (NCCL) communicator, which
    // queues the sum on the backend's stream (no host synchronisation; the runner waits, polling
    // for errors, where it reads the step's results).
    options_.tensor->all_reduce_sum(static_cast<float*>(partial.data), count);
    return;
  }
  // A device backend with a host communicator: stage through host memory (correct, not fast).
  staging_.resize(count);
  backend_.download_f32(partial, staging_.data());
  options_.tensor->all_reduce_sum(staging_.data(), count);
  backend_.upload_f32(partial, staging_.data());
}

void Transformer::forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>& logits,
                          KvExchange* exchange) {
  const Tensor& on_backend = forward_on_backend(batch, cache, exchange);
  logits.resize(static_cast<size_t>(on_backend.rows * config_.vocab));
  if (on_backend.rows > 0) backend_.download_f32(on_backend, logits.data());
}

// Graphs need every op of the step on the backend's stream. A KV exchange between worker groups
// sizes its staging per step, and a tensor-parallel all-reduce through host memory (MPI) cannot be
// captured; NCCL's stream-ordered calls could be, but that is untested: those runs launch eagerly.
bool Transformer::step_graphs_allowed(const KvExchange* exchange) {
  if (!options_.graphs || !backend_.step_graphs()) return false;
  const bool tensor_parallel = options_.tensor != nullptr && options_.tensor->size() > 1;
  if (exchange == nullptr && !tensor_parallel) return true;
  if (!graphs_off_said_) {
    graphs_off_said_ = true;
    std::fprintf(stderr, "note: CUDA graphs are off for this run: %s\n",
                 tensor_parallel
                     ? "tensor-parallel steps are not captured yet"
                     : "steps with a KV exchange between worker groups are not captured yet");
  }
  return false;
}

// A graph holds pointers and shapes: the bucket, this model's tensors and the cache's pools and
// page table. Equal keys mean equal graphs (the workspace is this model's; releasing any tensor
// drops every graph, so a reused address is never replayed stale).
uint64_t Transformer::step_graph_key(int64_t rows, int64_t entries, int64_t logit_rows,
                                     KvCache& cache) {
  uint64_t key = 0xcbf29ce484222325ull;
  auto mix = [&](uint64_t value) {
    key ^= value + 0x9e3779b97f4a7c15ull + (key << 6) + (key >> 2);
  };
  auto mix_pointer = [&](const void* pointer) { mix(reinterpret_cast<uintptr_t>(pointer)); };
  mix(static_cast<uint64_t>(rows));
  mix(static_cast<uint64_t>(entries));
  mix(static_cast<uint64_t>(logit_rows));
  mix_pointer(this);
  mix_pointer(work_.x.data);
  mix_pointer(embedding_.data);
  const Tensor& table = cache.page_table();
  mix_pointer(table.data);
  mix(static_cast<uint64_t>(table.rows));
  mix(static_cast<uint64_t>(table.cols));
  mix(static_cast<uint64_t>(cache.page_size()));
  for (int64_t l = 0; l < cache.layers(); ++l) {
    mix_pointer(cache.keys(l).data);
    mix_pointer(cache.values(l).data);
    mix(static_cast<uint64_t>(cache.keys(l).rows));
    mix(static_cast<uint64_t>(cache.keys(l).dtype));
  }
  return key;
}

const Tensor& Transformer::forward_on_backend(const ForwardBatch& batch, KvCache& cache,
                                              KvExchange* exchange) {
  const ModelConfig& c = config_;
  const auto n = static_cast<int64_t>(batch.size());
  const auto entries = static_cast<int64_t>(batch.view_entries.size());
  HOGWILD_CHECK(n > 0 && n <= options_.max_batch_tokens, "a batch holds 1..",
                options_.max_batch_tokens, " tokens, got ", n);
  HOGWILD_ASSERT(
      batch.key_positions.size() == batch.size() && batch.cache_rows.size() == batch.size() &&
      batch.view_offsets.size() == batch.size() + 1 && batch.view_offsets.back() == entries);
  HOGWILD_CHECK(entries <= n * options_.max_view_entries, "views of ", entries,
                " blocks exceed the workspace for ", n * options_.max_view_entries);
  for (int32_t token : batch.tokens)
    HOGWILD_CHECK(token >= 0 && token < c.vocab, "token id ", token, " is outside the vocabulary (",
                  c.vocab, " tokens)");
  const auto m = static_cast<int64_t>(batch.logit_rows.size());

  // The step's shape: its graph bucket (rows padded with copies of the last one), or its own size
  // when it runs eagerly (prefill chunks, odd shapes, backends without graphs).
  std::optional<StepShape> bucket;
  if (step_graphs_allowed(exchange)) {
    const int64_t last_entries = entries - batch.view_offsets[static_cast<size_t>(n - 1)];
    bucket = step_bucket(n, entries, last_entries, m, options_.max_batch_tokens,
                         options_.max_view_entries);
  }
  const StepShape shape = bucket ? *bucket : StepShape{n, entries, m};
  const StepLayout layout = StepLayout::for_capacity(shape.rows, shape.entries, shape.logit_rows);
  pack_step_inputs(batch, layout, packed_inputs_);
  HOGWILD_ASSERT(layout.total <= work_.step_inputs.rows);
  const Tensor inputs = work_.step_inputs.rows_view(0, layout.total);
  backend_.upload_i32(inputs, packed_inputs_.data());  // the step's only upload
  auto region = [&](int64_t offset, int64_t rows, int64_t cols) {
    return Tensor{static_cast<int32_t*>(inputs.data) + offset, DType::I32, rows, cols, cols};
  };
  const int64_t rows = shape.rows;
  const Tensor ids = region(layout.tokens, rows, 1);
  const Tensor key_positions = region(layout.key_positions, rows, 1);
  const Tensor cache_rows = region(layout.cache_rows, rows, 1);
  const Tensor view_offsets = region(layout.view_offsets, rows + 1, 1);
  const Tensor view_entries = region(layout.view_entries, shape.entries, 3);
  const Tensor logit_rows = region(layout.logit_rows_at, shape.logit_rows, 1);
  // Uploads the page table if blocks changed: before the step, which must only queue ops.
  const Tensor& page_table = cache.page_table();

  const Tensor x = work_.x.rows_view(0, rows);
  const Tensor normed = work_.normed.rows_view(0, rows);
  const Tensor qkv = work_.qkv.rows_view(0, rows);
  const Tensor attention = work_.attention.rows_view(0, rows);
  const Tensor projected = work_.projected.rows_view(0, rows);
  const Tensor gate_up = work_.gate_up.rows_view(0, rows);
  const Tensor activation = work_.activation.rows_view(0, rows);
  const Tensor logits = work_.logits.rows_view(0, shape.logit_rows);

  const int64_t q_width = shard_.heads * c.head_dim;
  const int64_t kv_width = shard_.kv_heads * c.head_dim;
  const Tensor q = qkv.cols_view(0, q_width);
  const Tensor k = qkv.cols_view(q_width, kv_width);
  const Tensor v = qkv.cols_view(q_width + kv_width, kv_width);
  const auto eps = static_cast<float>(c.rms_eps);

  auto record = [&] {
    backend_.embedding(embedding_, ids, x);
    for (int64_t l = 0; l < c.layers; ++l) {
      const Layer& layer = layers_[static_cast<size_t>(l)];
      backend_.rms_norm(x, layer.attn_norm, eps, normed);
      matmul(normed, layer.qkv, layer.qkv_bias, qkv);
      if (c.qk_norm) {
        backend_.head_rms_norm(q, layer.q_norm, eps);
        backend_.head_rms_norm(k, layer.k_norm, eps);
      }
      // Keys are rotated to their block-local position; queries are rotated inside the
      // attention, once per block of their view (docs/design.md §3).
      backend_.rope(k, key_positions, inv_freq_, c.head_dim);
      backend_.scatter_rows(k, cache_rows, cache.keys(l));
      backend_.scatter_rows(v, cache_rows, cache.values(l));
      if (exchange != nullptr) exchange->exchange(l, k, v, cache);
      backend_.block_attention(q, cache.keys(l), cache.values(l), page_table, cache.page_size(),
                               view_offsets, view_entries, inv_freq_, attention_shape_, attention);
      matmul(attention, layer.output, Tensor{}, projected);
      reduce_across_shards(projected);  // each shard holds a partial sum over its heads
      backend_.add(x, projected);
      backend_.rms_norm(x, layer.ffn_norm, eps, normed);
      matmul(normed, layer.gate_up, Tensor{}, gate_up);
      backend_.swiglu(gate_up, activation);
      matmul(activation, layer.down, Tensor{}, projected);
      reduce_across_shards(projected);  // … and over its feed-forward units
      backend_.add(x, projected);
    }
    if (shape.logit_rows == 0) return;
    const Tensor last = work_.last.rows_view(0, shape.logit_rows);
    const Tensor last_normed = work_.last_normed.rows_view(0, shape.logit_rows);
    backend_.gather_rows(x, logit_rows, last);
    backend_.rms_norm(last, output_norm_, eps, last_normed);
    matmul(last_normed, lm_head_, Tensor{}, logits);
  };
  if (bucket) {
    backend_.run_step(step_graph_key(shape.rows, shape.entries, shape.logit_rows, cache), record);
  } else {
    record();
  }
  step_logits_ = work_.logits.rows_view(0, m);  // padded logit rows are not the caller's
  return step_logits_;
}

}  // namespace hogwild
