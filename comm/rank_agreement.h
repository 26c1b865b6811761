// Every rank of a job must run the same configuration and model: ranks that disagree build
// different batches and corrupt each other's buffers (seen: a different `workers` on one rank
// overran the K/V exchange). Each rank describes what it runs as (key, value) entries, and
// check_ranks_agree compares them across the job once, at start-up, with a few all-gathers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "comm/communicator.h"

namespace hogwild {

struct AgreementEntry {
  std::string key;    // "workers", "model (files)"
  std::string value;  // the canonical text that is compared (through its hash)
  std::string shown;  // how a message shows the value; empty: the value itself
};

// FNV-1a, 64 bits: a cheap, stable hash of bytes, continued from `hash`.
constexpr uint64_t kFnv1aOffset = 0xcbf29ce484222325ull;
uint64_t fnv1a_64(std::span<const uint8_t> bytes, uint64_t hash = kFnv1aOffset);
uint64_t fnv1a_64(std::string_view text, uint64_t hash = kFnv1aOffset);

// Returns when every rank of `world` gave the same entries (one all-gather of a hash). Otherwise
// throws hogwild::Error on every rank with the same one line naming the first entry that
// differs and which ranks hold which value, e.g.
//   "the ranks do not run the same configuration: workers=2 on rank 0, workers=3 on rank 1 …"
void check_ranks_agree(Communicator& world, std::span<const AgreementEntry> entries);

}  // namespace hogwild
