// Sampling on the backend (Backend::sample_tokens, kernels/sampling_rule.h): the logits of a step
// stay where Transformer::forward_on_backend left them and only the sampled ids (and, when asked,
// their logprobs) come back. Draws are Philox streams: row r of a call uses its SamplingParams'
// seed as the stream and its counter (the step: tokens the stream has drawn so far) as the
// position, so a stream's tokens do not depend on which rows share a batch.
//
// This is not engine/sampler.h's mt19937 Sampler: greedy rows give the same token (the argmax,
// lowest id at ties), sampled rows draw other tokens from the same distribution. The CPU backend
// keeps the host Sampler in the engine (goldens stay as they are); generate() uses this one where
// tensors are not host memory (GenerationRequest::sampling_on_backend).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/sampler.h"
#include "kernels/backend.h"

namespace hogwild {

// One row's packed parameters: `params` (validated) at step `counter`.
sampling::RowParams device_row_params(const SamplingParams& params, uint64_t counter);

class DeviceSampler {
 public:
  // Up to `max_rows` rows of `vocab` logits per call; the tensors are allocated once here.
  DeviceSampler(Backend& backend, int64_t max_rows, int64_t vocab);
  ~DeviceSampler();
  DeviceSampler(const DeviceSampler&) = delete;
  DeviceSampler& operator=(const DeviceSampler&) = delete;

  // Tokens never sampled from now on, in every row (ids in [0, vocab); empty: none).
  void set_suppressed(std::span<const int32_t> ids);

  // Samples row r of `logits` ([rows <= max_rows, vocab] F32 on the backend) with params[r] at
  // step counters[r]; `tokens` gets rows ids, `logprobs` (when not null) log p(token) of the
  // model's distribution with suppressed tokens at -inf. Throws hogwild::Error when a row has no
  // token to sample (every token suppressed or NaN).
  void sample(const Tensor& logits, std::span<const SamplingParams> params,
              std::span<const uint64_t> counters, std::vector<int32_t>& tokens,
              std::vector<float>* logprobs = nullptr);

 private:
  Backend& backend_;
  int64_t max_rows_, vocab_;
  Tensor params_, suppressed_, tokens_, logprobs_;
  bool has_suppressed_ = false;
  std::vector<int32_t> packed_;
};

}  // namespace hogwild
