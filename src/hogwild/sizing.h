// How big everything must be for a run, from the team settings alone: the batch of one forward,
// the blocks of one view, the cache. The runner sizes the engine with it, the memory plan counts
// it, and the tests check that a team stays inside it.
#pragma once

#include <cstdint>

#include "cache/kv_cache.h"
#include "engine/transformer.h"
#include "hogwild/settings.h"
#include "tokenizer/text_codec.h"

namespace hogwild {

// What one team may ask of the engine at once.
struct TeamSizing {
  int64_t blocks = 0;        // cache blocks alive at once (common, headers, one step per worker)
  int64_t view_entries = 0;  // blocks in one token's view, at most
  int64_t step_tokens = 0;   // tokens one decode or finisher step feeds, all workers together
  int64_t page_size = 0;     // tokens per cache page
  int64_t max_pages_per_block = 0;  // the longest block: all of the team's max_tokens
  int64_t cache_pages = 0;  // pages for max_tokens spread over `blocks` (each may end part-full)
};

TeamSizing size_team(const TeamSettings& settings, const TextCodec& tokenizer, int64_t page_size);

// Prefill chunks are never smaller than this, however small the teams' steps: long prompts then
// run as large GEMMs.
inline constexpr int64_t kMinBatchTokens = 512;

struct RunSizing {
  TransformerOptions transformer;  // max_batch_tokens, max_view_entries (no communicator)
  CacheOptions cache;
};

// For `teams` problems decoded together, each needing `team`: every active team's decode step
// fits one forward.
RunSizing size_run(const TeamSizing& team, int64_t teams);

}  // namespace hogwild
