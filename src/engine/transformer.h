// The forward pass of a decoder-only transformer (Llama, Qwen2, Qwen3) over a batch of tokens
// from several sequences at once, on any backend. One call = one step: every token's K/V is
// appended to the cache before attention, so tokens of the same sequence in the batch (a prefill
// chunk) attend causally to each other.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/kv_cache.h"
#include "kernels/backend.h"
#include "model/model.h"

namespace hogwild {

struct BatchToken {
  int32_t token = 0;
  int32_t position = 0;      // position in its sequence (== number of tokens before it)
  int32_t slot = 0;          // which cache slot (sequence) it belongs to
  bool want_logits = false;  // return next-token logits for this token
};

struct TransformerOptions {
  int64_t max_batch_tokens = 256;  // tokens per forward call (prefill chunk size)
  int64_t slots = 1;               // sequences that can be cached at once
  int64_t context = 4096;          // tokens per sequence
};

class Transformer {
 public:
  // Uploads the weights of `source` to `backend` (fusing QKV and gate/up into single GEMMs).
  Transformer(const WeightSource& source, Backend& backend, const TransformerOptions& options);
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return config_; }
  const TransformerOptions& options() const { return options_; }
  Backend& backend() { return backend_; }

  // Runs the batch; `logits` receives one row of config().vocab values per token with
  // want_logits, in batch order. Throws hogwild::Error for bad tokens, positions or slots.
  void forward(std::span<const BatchToken> batch, std::vector<float>& logits);

 private:
  struct Layer {
    Tensor attn_norm, qkv, qkv_bias, q_norm, k_norm, output, ffn_norm, gate_up, down;
  };
  struct Workspace {
    Tensor x, normed, qkv, attention, projected, gate_up, activation, last, last_normed, logits;
    Tensor ids, positions, cache_rows, spans, logit_rows;
  };

  Tensor upload(const HostTensor& host);
  Tensor upload_rows(const std::vector<const HostTensor*>& parts);

  const ModelConfig config_;
  TransformerOptions options_;
  Backend& backend_;
  std::vector<Tensor> owned_;
  Tensor embedding_, output_norm_, lm_head_, inv_freq_;
  std::vector<Layer> layers_;
  Workspace work_;
  std::unique_ptr<KvCache> cache_;
  AttentionShape attention_shape_;
};

}  // namespace hogwild
