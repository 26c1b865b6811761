// Plain single-sequence generation: chunked prefill, then one token per step until a stop token
// or the token limit. The sequence is one cache block whose view is itself.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "cache/kv_cache.h"
#include "engine/sampler.h"
#include "engine/transformer.h"

namespace hogwild {

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
  int64_t decode_steps = 0;  // forward passes after the prefill
  bool stopped_by_eos = false;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 128;
  std::vector<int32_t> stop_tokens;  // generation ends after emitting one of these
  // Where tokens are sampled. automatic: on the backend (engine/device_sampler.h: the logits stay
  // there, Philox draws seeded by the sampler's seed, counter = tokens generated so far) when its
  // tensors are not host memory, else by the host Sampler (mt19937), as before. Greedy decoding
  // gives the same tokens either way.
  enum class Sampling { automatic, on_backend, on_host };
  Sampling sampling = Sampling::automatic;
};

// Generates into a new block of `cache` (released at the end). Calls on_token for each generated
// token (stop token included) as soon as it is sampled, with the logits it was sampled from (valid
// during the call only; when sampling on the backend they are downloaded for the callback, which
// the overload without logits avoids).
GenerationStats generate(Transformer& model, KvCache& cache, Sampler& sampler,
                         const GenerationRequest& request,
                         const std::function<void(int32_t, std::span<const float>)>& on_token);
GenerationStats generate(Transformer& model, KvCache& cache, Sampler& sampler,
                         const GenerationRequest& request,
                         const std::function<void(int32_t)>& on_token);

}  // namespace hogwild
