// Log-probabilities of one next-token distribution, for seeing inside a run: the chosen token's
// and the K most likely tokens'. They are of the model's distribution, log_softmax(logits) of the
// row the sampler is given (the model's raw logits, with any token the caller suppressed at -inf),
// before temperature, top-k, top-p and min-p: what llama.cpp and vLLM report by default, and the
// same numbers whatever sampling settings a run used, so runs and engines compare directly.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace hogwild {

// The most alternatives a run or `generate` lists per token: OpenAI's API and vLLM's default
// allow 20, enough to see where a worker hesitates; more mostly lists tokens of no weight.
inline constexpr int64_t kMaxLogprobs = 20;

struct TokenLogprob {
  int32_t id = -1;
  double logprob = 0.0;
};

struct TokenLogprobs {
  double chosen = 0.0;            // log p(chosen token)
  std::vector<TokenLogprob> top;  // the min(K, vocab) most likely, most likely first
};

// In double, max-shifted (log-sum-exp), so large logits neither overflow nor lose precision. Ties
// list the lower id first (as argmax picks it, so under greedy decoding top[0] is the chosen
// token); -inf logits (suppressed tokens) have logprob -inf and come last. A row without a
// distribution (every logit -inf, or a NaN or +inf among them) gives NaN for `chosen` and an
// empty `top`. Throws hogwild::Error when `chosen` is not an id of the row or top_k < 0.
TokenLogprobs token_logprobs(std::span<const float> logits, int32_t chosen, int64_t top_k);

}  // namespace hogwild
