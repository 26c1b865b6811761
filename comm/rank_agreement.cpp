#include "comm/rank_agreement.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/error.h"

namespace hogwild {
namespace {

constexpr uint64_t kFnv1aPrime = 0x100000001b3ull;
constexpr size_t kShownLength = 96;  // longer values are cut in messages (the hash still counts)

uint64_t hash_value(uint64_t value, uint64_t hash) {
  for (int i = 0; i < 8; ++i) {
    hash ^= (value >> (8 * i)) & 0xffu;
    hash *= kFnv1aPrime;
  }
  return hash;
}

uint64_t entry_hash(const AgreementEntry& entry) {
  return fnv1a_64(entry.value, hash_value(entry.key.size(), fnv1a_64(entry.key)));
}

// "key=value" on one line, cut to a readable length.
std::string shown(const AgreementEntry& entry) {
  const std::string& value = entry.shown.empty() ? entry.value : entry.shown;
  std::string text = entry.key + "=";
  for (char c : value) {
    if (text.size() >= kShownLength) {  // two cut values may look alike: add the hash
      char hash[32];
      std::snprintf(hash, sizeof hash, "... [hash %016llx]",
                    static_cast<unsigned long long>(fnv1a_64(entry.value)));
      text += hash;
      break;
    }
    if (c == '\n') {
      text += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      text += ' ';
    } else {
      text += c;
    }
  }
  return text;
}

// Every rank's copy of a small text (each rank's may differ in length).
std::vector<std::string> gather_texts(Communicator& world, const std::string& mine) {
  const auto ranks = static_cast<size_t>(world.size());
  const uint64_t length = mine.size();
  std::vector<uint64_t> lengths(ranks);
  world.all_gather(&length, lengths.data(), sizeof length);
  const uint64_t longest = *std::max_element(lengths.begin(), lengths.end());
  std::string padded = mine;
  padded.resize(longest, '\0');
  std::string all(longest * ranks, '\0');
  if (longest > 0) world.all_gather(padded.data(), all.data(), longest);
  std::vector<std::string> texts(ranks);
  for (size_t r = 0; r < ranks; ++r) texts[r] = all.substr(r * longest, lengths[r]);
  return texts;
}

// "rank 3", "ranks 0, 2, 5-7" (long lists end with "…").
std::string rank_list(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  size_t shown_runs = 0;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (shown_runs == 8) {
      text += ", ...";
      break;
    }
    text += cat(shown_runs ? ", " : "", ranks[i]);
    if (j > i) text += cat(j == i + 1 ? ", " : "-", ranks[j]);
    ++shown_runs;
    i = j + 1;
  }
  return text;
}

}  // namespace

uint64_t fnv1a_64(std::span<const uint8_t> bytes, uint64_t hash) {
  for (uint8_t byte : bytes) {
    hash ^= byte;
    hash *= kFnv1aPrime;
  }
  return hash;
}

uint64_t fnv1a_64(std::string_view text, uint64_t hash) {
  return fnv1a_64({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, hash);
}

void check_ranks_agree(Communicator& world, std::span<const AgreementEntry> entries) {
  const auto ranks = static_cast<size_t>(world.size());
  if (ranks == 1) return;
  // 1. One hash of everything: the common case ends here.
  std::vector<uint64_t> hashes;
  uint64_t summary = hash_value(entries.size(), kFnv1aOffset);
  for (const AgreementEntry& entry : entries) {
    hashes.push_back(entry_hash(entry));
    summary = hash_value(hashes.back(), summary);
  }
  std::vector<uint64_t> summaries(ranks);
  world.all_gather(&summary, summaries.data(), sizeof summary);
  if (std::all_of(summaries.begin(), summaries.end(),
                  [&](uint64_t s) { return s == summaries[0]; }))
    return;

  // 2. Every rank knows now that they differ: find the first entry that does, from per-entry
  // hashes (padded to the longest list; a missing entry hashes to 0).
  const uint64_t count = entries.size();
  std::vector<uint64_t> counts(ranks);
  world.all_gather(&count, counts.data(), sizeof count);
  const uint64_t longest = *std::max_element(counts.begin(), counts.end());
  hashes.resize(longest, 0);
  std::vector<uint64_t> all(longest * ranks);
  world.all_gather(hashes.data(), all.data(), longest * sizeof(uint64_t));
  uint64_t first = longest;
  for (uint64_t i = 0; i < longest && first == longest; ++i)
    for (size_t r = 1; r < ranks; ++r)
      if (all[r * longest + i] != all[i]) first = i;
  // Equal hashes with different summaries cannot happen (the summary is made of them); keep
  // the message honest anyway.
  const std::string mine = first < count ? shown(entries[first])
                           : first < longest
                               ? std::string("(no entry ") + std::to_string(first) + ")"
                               : std::string("(same entries)");

  // 3. Each rank's text of that entry, grouped by value in order of the first rank holding it.
  const std::vector<std::string> texts = gather_texts(world, mine);
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (size_t r = 0; r < ranks; ++r) {
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const auto& g) { return g.first == texts[r]; });
    if (group == groups.end()) {
      groups.push_back({texts[r], {}});
      group = groups.end() - 1;
    }
    group->second.push_back(static_cast<int>(r));
  }
  std::string message = "the ranks do not run the same configuration and model: ";
  for (size_t g = 0; g < groups.size(); ++g) {
    if (g == 6) {
      message += cat("; and ", groups.size() - g, " more values");
      break;
    }
    message += cat(g ? "; " : "", groups[g].first, " on ", rank_list(groups[g].second));
  }
  message += " (every rank must run the same config, overrides and model)";
  fail(message);
}

}  // namespace hogwild
