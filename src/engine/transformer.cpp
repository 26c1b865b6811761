#include "engine/transformer.h"

#include <cmath>

#include "common/error.h"
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

}  // namespace

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
      {n, c.hidden, f32},                      // x
      {n, c.hidden, f32},                      // normed
      {n, q_width + 2 * kv_width, f32},        // qkv
      {n, q_width, f32},                       // attention
      {n, c.hidden, f32},                      // projected
      {n, 2 * shard.ffn_hidden, f32},          // gate_up
      {n, shard.ffn_hidden, f32},              // activation
      {n, c.hidden, f32},                      // last
      {n, c.hidden, f32},                      // last_normed
      {n, c.vocab, f32},                       // logits
      {n, 1, i32},                             // ids
      {n, 1, i32},                             // key_positions
      {n, 1, i32},                             // cache_rows
      {n + 1, 1, i32},                         // view_offsets
      {n * options.max_view_entries, 3, i32},  // view_entries
      {n, 1, i32},                             // logit_rows
  };
}

Transformer::Transformer(const WeightSource& source, Backend& backend,
                         const TransformerOptions& options)
    : config_(source.config()),
      shard_(shard_of(source.config(), options.tensor != nullptr ? options.tensor->size() : 1)),
      options_(options),
      backend_(backend) {
  const ModelConfig& c = config_;
  HOGWILD_CHECK(options.max_batch_tokens > 0, "max_batch_tokens must be positive");
  HOGWILD_CHECK(options.max_view_entries > 0, "max_view_entries must be positive");
  const int64_t part = options.tensor != nullptr ? options.tensor->rank() : 0;
  // This rank's slice: heads [part*H/T, …), key/value heads and feed-forward units likewise.
  const int64_t q_width = shard_.heads * c.head_dim;
  const int64_t kv_width = shard_.kv_heads * c.head_dim;
  const int64_t q_first = part * q_width, kv_first = part * kv_width;
  const int64_t ffn_first = part * shard_.ffn_hidden;

  embedding_ = upload(source.load("model.embed_tokens.weight", {c.vocab, c.hidden}));
  output_norm_ = upload(source.load("model.norm.weight", {c.hidden}));
  if (c.tied_embeddings) {
    lm_head_ = embedding_;
  } else {
    lm_head_ = upload(source.load("lm_head.weight", {c.vocab, c.hidden}));
  }
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
    Layer layer;
    layer.attn_norm = upload(load("input_layernorm.weight", {c.hidden}));
    {
      // Row-split tensors are read shard-only; column-split ones (o, down) whole, then sliced.
      const HostTensor q =
          load_rows("self_attn.q_proj.weight", {full_q, c.hidden}, q_first, q_width);
      const HostTensor k =
          load_rows("self_attn.k_proj.weight", {full_kv, c.hidden}, kv_first, kv_width);
      const HostTensor v =
          load_rows("self_attn.v_proj.weight", {full_kv, c.hidden}, kv_first, kv_width);
      layer.qkv = upload_rows({&q, &k, &v});
    }
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
    layer.output =
        upload(slice_cols(load("self_attn.o_proj.weight", {c.hidden, full_q}), q_first, q_width));
    layer.ffn_norm = upload(load("post_attention_layernorm.weight", {c.hidden}));
    {
      const HostTensor gate =
          load_rows("mlp.gate_proj.weight", {c.ffn_hidden, c.hidden}, ffn_first, shard_.ffn_hidden);
      const HostTensor up =
          load_rows("mlp.up_proj.weight", {c.ffn_hidden, c.hidden}, ffn_first, shard_.ffn_hidden);
      layer.gate_up = upload_rows({&gate, &up});
    }
    layer.down = upload(slice_cols(load("mlp.down_proj.weight", {c.hidden, c.ffn_hidden}),
                                   ffn_first, shard_.ffn_hidden));
    layers_.push_back(layer);
  }

  // The workspace, exactly as workspace_tensors lists it (the memory plan counts the same list).
  const std::vector<WorkspaceTensor> shapes = workspace_tensors(c, shard_, options);
  Tensor* const slots[] = {
      &work_.x,           &work_.normed,       &work_.qkv,          &work_.attention,
      &work_.projected,   &work_.gate_up,      &work_.activation,   &work_.last,
      &work_.last_normed, &work_.logits,       &work_.ids,          &work_.key_positions,
      &work_.cache_rows,  &work_.view_offsets, &work_.view_entries, &work_.logit_rows};
  HOGWILD_ASSERT(shapes.size() == std::size(slots));
  for (size_t i = 0; i < shapes.size(); ++i) {
    *slots[i] = backend_.allocate(shapes[i].rows, shapes[i].cols, shapes[i].dtype);
    owned_.push_back(*slots[i]);
    workspace_bytes_ += shapes[i].bytes();
  }

  attention_shape_ = {
      shard_.heads, shard_.kv_heads, c.head_dim,
      static_cast<float>(rope_score_factor(c) / std::sqrt(static_cast<double>(c.head_dim)))};
}

Transformer::~Transformer() {
  for (Tensor& t : owned_) backend_.release(t);
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

void Transformer::reduce_across_shards(const Tensor& partial) {
  if (options_.tensor == nullptr || options_.tensor->size() == 1) return;
  HOGWILD_ASSERT(partial.contiguous() && partial.dtype == DType::F32);
  const auto count = static_cast<size_t>(partial.elements());
  if (backend_.host_memory() || options_.device_communicator) {
    // In place: host buffers with MPI, or device buffers with a device (NCCL) communicator.
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

  const Tensor x = work_.x.rows_view(0, n);
  const Tensor normed = work_.normed.rows_view(0, n);
  const Tensor qkv = work_.qkv.rows_view(0, n);
  const Tensor attention = work_.attention.rows_view(0, n);
  const Tensor projected = work_.projected.rows_view(0, n);
  const Tensor gate_up = work_.gate_up.rows_view(0, n);
  const Tensor activation = work_.activation.rows_view(0, n);
  const Tensor ids = work_.ids.rows_view(0, n);
  const Tensor key_positions = work_.key_positions.rows_view(0, n);
  const Tensor cache_rows = work_.cache_rows.rows_view(0, n);
  const Tensor view_offsets = work_.view_offsets.rows_view(0, n + 1);
  const Tensor view_entries = work_.view_entries.rows_view(0, entries);
  backend_.upload_i32(ids, batch.tokens.data());
  backend_.upload_i32(key_positions, batch.key_positions.data());
  backend_.upload_i32(cache_rows, batch.cache_rows.data());
  backend_.upload_i32(view_offsets, batch.view_offsets.data());
  static_assert(sizeof(ViewEntry) == 3 * sizeof(int32_t));
  backend_.upload_i32(view_entries, reinterpret_cast<const int32_t*>(batch.view_entries.data()));
  const Tensor& page_table = cache.page_table();

  const int64_t q_width = shard_.heads * c.head_dim;
  const int64_t kv_width = shard_.kv_heads * c.head_dim;
  const Tensor q = qkv.cols_view(0, q_width);
  const Tensor k = qkv.cols_view(q_width, kv_width);
  const Tensor v = qkv.cols_view(q_width + kv_width, kv_width);
  const auto eps = static_cast<float>(c.rms_eps);

  backend_.embedding(embedding_, ids, x);
  for (int64_t l = 0; l < c.layers; ++l) {
    const Layer& layer = layers_[static_cast<size_t>(l)];
    backend_.rms_norm(x, layer.attn_norm, eps, normed);
    backend_.matmul(normed, layer.qkv, layer.qkv_bias, qkv);
    if (c.qk_norm) {
      backend_.head_rms_norm(q, layer.q_norm, eps);
      backend_.head_rms_norm(k, layer.k_norm, eps);
    }
    // Keys are rotated to their block-local position; queries are rotated inside the attention,
    // once per block of their view (docs/design.md §3).
    backend_.rope(k, key_positions, inv_freq_, c.head_dim);
    backend_.scatter_rows(k, cache_rows, cache.keys(l));
    backend_.scatter_rows(v, cache_rows, cache.values(l));
    if (exchange != nullptr) exchange->exchange(l, k, v, cache);
    backend_.block_attention(q, cache.keys(l), cache.values(l), page_table, cache.page_size(),
                             view_offsets, view_entries, inv_freq_, attention_shape_, attention);
    backend_.matmul(attention, layer.output, Tensor{}, projected);
    reduce_across_shards(projected);  // each shard holds a partial sum over its heads
    backend_.add(x, projected);
    backend_.rms_norm(x, layer.ffn_norm, eps, normed);
    backend_.matmul(normed, layer.gate_up, Tensor{}, gate_up);
    backend_.swiglu(gate_up, activation);
    backend_.matmul(activation, layer.down, Tensor{}, projected);
    reduce_across_shards(projected);  // … and over its feed-forward units
    backend_.add(x, projected);
  }

  const auto m = static_cast<int64_t>(batch.logit_rows.size());
  logits.resize(static_cast<size_t>(m * c.vocab));
  if (m == 0) return;
  const Tensor rows = work_.logit_rows.rows_view(0, m);
  backend_.upload_i32(rows, batch.logit_rows.data());
  const Tensor last = work_.last.rows_view(0, m);
  const Tensor last_normed = work_.last_normed.rows_view(0, m);
  const Tensor logits_t = work_.logits.rows_view(0, m);
  backend_.gather_rows(x, rows, last);
  backend_.rms_norm(last, output_norm_, eps, last_normed);
  backend_.matmul(last_normed, lm_head_, Tensor{}, logits_t);
  backend_.download_f32(logits_t, logits.data());
}

}  // namespace hogwild
