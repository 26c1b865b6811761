#include "engine/generation.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "common/error.h"
#include "engine/batch_builder.h"
#include "engine/device_sampler.h"

namespace hogwild {
namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Releases the block however generation ends.
struct BlockGuard {
  KvCache& cache;
  BlockId block;
  ~BlockGuard() { cache.release_block(block); }
};

// The one loop of both overloads; `want_logits`: the callback reads the logits (downloaded from
// the backend when sampling there).
GenerationStats generate_tokens(
    Transformer& model, KvCache& cache, Sampler& sampler, const GenerationRequest& request,
    bool want_logits, const std::function<void(int32_t, std::span<const float>)>& on_token) {
  HOGWILD_CHECK(!request.prompt.empty(), "the prompt is empty: nothing to continue");
  using Place = GenerationRequest::Sampling;
  const bool on_backend = request.sampling == Place::on_backend ||
                          (request.sampling == Place::automatic && !model.backend().host_memory());
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  const BlockId block = cache.create_block();
  BlockGuard guard{cache, block};
  const BlockId view[] = {block};
  BatchBuilder builder(cache);
  ForwardBatch batch;
  std::vector<float> logits;
  std::unique_ptr<DeviceSampler> device_sampler;
  const Tensor* device_logits = nullptr;
  std::vector<int32_t> sampled;
  auto forward = [&] {
    builder.build(batch);
    if (!on_backend) {
      model.forward(batch, cache, logits);
      return;
    }
    device_logits = &model.forward_on_backend(batch, cache);
  };
  // Step `step`'s token, and the logits the callback gets.
  auto sample = [&](int64_t step) {
    if (!on_backend) return sampler.sample(logits);
    if (!device_sampler)
      device_sampler = std::make_unique<DeviceSampler>(model.backend(), 1, device_logits->cols);
    const uint64_t counter = static_cast<uint64_t>(step);
    device_sampler->sample(*device_logits, {&sampler.params(), 1}, {&counter, 1}, sampled);
    if (want_logits) {
      logits.resize(static_cast<size_t>(device_logits->cols));
      model.backend().download_f32(*device_logits, logits.data());
    }
    return sampled.front();
  };

  auto start = std::chrono::steady_clock::now();
  const auto chunk = static_cast<size_t>(model.options().max_batch_tokens);
  for (size_t first = 0; first < request.prompt.size(); first += chunk) {
    const size_t count = std::min(chunk, request.prompt.size() - first);
    builder.add(block, {request.prompt.data() + first, count}, view,
                first + count == request.prompt.size());
    forward();
  }
  stats.prefill_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  while (stats.generated_tokens < request.max_tokens) {
    const int32_t token = sample(stats.generated_tokens);
    ++stats.generated_tokens;
    on_token(token, logits);
    if (std::find(request.stop_tokens.begin(), request.stop_tokens.end(), token) !=
        request.stop_tokens.end()) {
      stats.stopped_by_eos = true;
      break;
    }
    if (stats.generated_tokens == request.max_tokens) break;
    builder.add(block, {&token, 1}, view, true);
    forward();
    ++stats.decode_steps;
  }
  stats.decode_seconds = seconds_since(start);
  return stats;
}

}  // namespace

GenerationStats generate(Transformer& model, KvCache& cache, Sampler& sampler,
                         const GenerationRequest& request,
                         const std::function<void(int32_t, std::span<const float>)>& on_token) {
  return generate_tokens(model, cache, sampler, request, true, on_token);
}

GenerationStats generate(Transformer& model, KvCache& cache, Sampler& sampler,
                         const GenerationRequest& request,
                         const std::function<void(int32_t)>& on_token) {
  return generate_tokens(model, cache, sampler, request, false,
                         [&](int32_t token, std::span<const float>) { on_token(token); });
}

}  // namespace hogwild
