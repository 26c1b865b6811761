#include "engine/generation.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"

namespace hogwild {
namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

GenerationStats generate(Transformer& model, Sampler& sampler, const GenerationRequest& request,
                         const std::function<void(int32_t)>& on_token) {
  HOGWILD_CHECK(!request.prompt.empty(), "the prompt is empty: nothing to continue");
  const int64_t context = model.options().context;
  HOGWILD_CHECK(static_cast<int64_t>(request.prompt.size()) + request.max_tokens <= context,
                "prompt (", request.prompt.size(), " tokens) + max tokens (", request.max_tokens,
                ") exceed the context of ", context, " tokens");
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  std::vector<float> logits;
  std::vector<BatchToken> batch;

  auto start = std::chrono::steady_clock::now();
  const int64_t chunk = model.options().max_batch_tokens;
  for (int64_t first = 0; first < stats.prompt_tokens; first += chunk) {
    const int64_t last = std::min(stats.prompt_tokens, first + chunk);
    batch.clear();
    for (int64_t p = first; p < last; ++p)
      batch.push_back({request.prompt[static_cast<size_t>(p)], static_cast<int32_t>(p),
                       request.slot, p == stats.prompt_tokens - 1});
    model.forward(batch, logits);
  }
  stats.prefill_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  int32_t position = static_cast<int32_t>(stats.prompt_tokens);
  while (stats.generated_tokens < request.max_tokens) {
    const int32_t token = sampler.sample(logits);
    ++stats.generated_tokens;
    on_token(token);
    if (std::find(request.stop_tokens.begin(), request.stop_tokens.end(), token) !=
        request.stop_tokens.end()) {
      stats.stopped_by_eos = true;
      break;
    }
    if (stats.generated_tokens == request.max_tokens) break;
    const BatchToken next{token, position++, request.slot, true};
    model.forward({&next, 1}, logits);
    ++stats.decode_steps;
  }
  stats.decode_seconds = seconds_since(start);
  return stats;
}

}  // namespace hogwild
