#include "engine/generation.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "engine/batch_builder.h"

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
}  // namespace

GenerationStats generate(Transformer& model, KvCache& cache, Sampler& sampler,
                         const GenerationRequest& request,
                         const std::function<void(int32_t, std::span<const float>)>& on_token) {
  HOGWILD_CHECK(!request.prompt.empty(), "the prompt is empty: nothing to continue");
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  const BlockId block = cache.create_block();
  BlockGuard guard{cache, block};
  const BlockId view[] = {block};
  BatchBuilder builder(cache);
  ForwardBatch batch;
  std::vector<float> logits;

  auto start = std::chrono::steady_clock::now();
  const auto chunk = static_cast<size_t>(model.options().max_batch_tokens);
  for (size_t first = 0; first < request.prompt.size(); first += chunk) {
    const size_t count = std::min(chunk, request.prompt.size() - first);
    builder.add(block, {request.prompt.data() + first, count}, view,
                first + count == request.prompt.size());
    builder.build(batch);
    model.forward(batch, cache, logits);
  }
  stats.prefill_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  while (stats.generated_tokens < request.max_tokens) {
    const int32_t token = sampler.sample(logits);
    ++stats.generated_tokens;
    on_token(token, logits);
    if (std::find(request.stop_tokens.begin(), request.stop_tokens.end(), token) !=
        request.stop_tokens.end()) {
      stats.stopped_by_eos = true;
      break;
    }
    if (stats.generated_tokens == request.max_tokens) break;
    builder.add(block, {&token, 1}, view, true);
    builder.build(batch);
    model.forward(batch, cache, logits);
    ++stats.decode_steps;
  }
  stats.decode_seconds = seconds_since(start);
  return stats;
}

GenerationStats generate(Transformer& model, KvCache& cache, Sampler& sampler,
                         const GenerationRequest& request,
                         const std::function<void(int32_t)>& on_token) {
  return generate(model, cache, sampler, request,
                  [&](int32_t token, std::span<const float>) { on_token(token); });
}

}  // namespace hogwild
