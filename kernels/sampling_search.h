// How the CUDA kernel (kernels/cuda/sampling.cu) finds the token of the rule in
// kernels/sampling_rule.h without sorting: every "first L eligible tokens in rank order" is a
// threshold on the 32-bit rank key found by binary search (32 counting passes), plus the first
// few ties at the threshold in id order. Written once over an `Ops` that does the passes: the
// kernel's block-wide reductions, or plain loops in tests/kernels/test_sampling.cpp, which checks
// this search against the CPU reference's sort on the host (no GPU needed for the logic).
//
// Ops provides, over the row's eligible tokens (candidates of nonzero weight):
//   uint64_t at_least(uint64_t key, bool mass)  count (false) or weight sum (true) of those with
//                                               rank key >= key (0 when key > 2^32 - 1)
//   uint64_t weight_at_least(uint64_t weight)   count of those with weight >= weight
//   int32_t first_crossing(const SearchPrefix&, uint64_t target)
//       the lowest id, among kept tokens (key > prefix.key, or key == prefix.key and among the
//       first prefix.ties such in id order), whose cumulative kept weight in id order > target
//   uint64_t weight_of_key(uint32_t key)        the weight of a logit of that key
#pragma once

#include <cstdint>

#include "kernels/sampling_rule.h"

namespace hogwild::sampling {

struct SearchPrefix {
  uint64_t key = 0;    // every eligible token above this key is kept
  uint64_t above = 0;  // how many those are
  uint64_t ties = 0;   // and how many of those at the key, in id order
};

// The first `keep` eligible tokens in rank order (1 <= keep <= eligible count).
template <class Ops>
HOGWILD_HOST_DEVICE SearchPrefix rank_prefix(Ops& ops, uint64_t keep) {
  uint64_t key = 0;  // the largest key with at least `keep` eligible tokens at or above it
  for (int bit = 31; bit >= 0; --bit) {
    const uint64_t trial = key | (uint64_t{1} << bit);
    if (ops.at_least(trial, false) >= keep) key = trial;
  }
  SearchPrefix prefix;
  prefix.key = key;
  prefix.above = ops.at_least(key + 1, false);
  prefix.ties = keep - prefix.above;
  return prefix;
}

// The sampled token of a row that is not greedy (some eligible token exists). The prefix of
// the binding filter is kept, so the kept set costs no second search.
template <class Ops>
HOGWILD_HOST_DEVICE int32_t search_sample(Ops& ops, const RowParams& p) {
  const uint64_t eligible = ops.at_least(0, false);
  uint64_t keep = p.top_k > 0 && static_cast<uint64_t>(p.top_k) < eligible
                      ? static_cast<uint64_t>(p.top_k)
                      : eligible;
  SearchPrefix prefix;  // of `keep` once `known`; keep == eligible: all (key 0 is a NaN's)
  bool known = keep == eligible;
  if (p.top_p < 1.0f) {
    uint64_t mass_k = ops.at_least(0, true);
    if (keep < eligible) {
      prefix = rank_prefix(ops, keep);
      known = true;
      mass_k = ops.at_least(prefix.key + 1, true) +
               prefix.ties * ops.weight_of_key(static_cast<uint32_t>(prefix.key));
    }
    const uint64_t target = top_p_target(p.top_p, mass_k);
    uint64_t key = 0;  // the largest key whose tokens at or above it reach the target mass
    for (int bit = 31; bit >= 0; --bit) {
      const uint64_t trial = key | (uint64_t{1} << bit);
      if (ops.at_least(trial, true) >= target) key = trial;
    }
    // The tokens above the key fall short; the fewest ties at it (each of one weight) that reach.
    SearchPrefix top_p;
    top_p.key = key;
    top_p.above = ops.at_least(key + 1, false);
    const uint64_t above_mass = ops.at_least(key + 1, true);
    const uint64_t w = ops.weight_of_key(static_cast<uint32_t>(key));
    top_p.ties = (target - above_mass + w - 1) / w;
    if (top_p.above + top_p.ties < keep) {
      keep = top_p.above + top_p.ties;
      prefix = top_p;
      known = true;
    }
  }
  if (p.min_p > 0.0f) {
    uint64_t keep_m = ops.weight_at_least(min_p_weight(p.min_p));
    keep_m = keep_m < 1 ? 1 : keep_m;
    if (keep_m < keep) {
      keep = keep_m;
      known = false;
    }
  }
  if (!known) prefix = rank_prefix(ops, keep);
  const uint64_t kept_mass =
      ops.at_least(prefix.key + 1, true) +
      (prefix.ties > 0 ? prefix.ties * ops.weight_of_key(static_cast<uint32_t>(prefix.key)) : 0);
  return ops.first_crossing(prefix, draw_target(p.seed, p.counter, kept_mass));
}

}  // namespace hogwild::sampling
