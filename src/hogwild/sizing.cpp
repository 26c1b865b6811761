#include "hogwild/sizing.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "hogwild/text_rules.h"

namespace hogwild {

TeamSizing size_team(const TeamSettings& settings, const TextCodec& tokenizer, int64_t page_size) {
  HOGWILD_CHECK(!settings.names.empty() && page_size > 0, "a team needs workers and pages");
  const auto workers = static_cast<int64_t>(settings.names.size());
  const PromptConfig& prompts = settings.prompts;
  const auto tokens = [&](const std::string& text) {
    return static_cast<int64_t>(tokenizer.encode(text, true, false).size());
  };
  TeamSizing sizing;
  // common + worker steps; collaborating teams add the others' header, own header and marker.
  // A finished step's block is released before the next one is created, so no step needs two.
  // One more for the finisher's own block (after worker 0's view, or alone when it re-encodes).
  sizing.blocks = workers + (prompts.collaborate ? 4 : 1) + 1;
  // [common, others_header, (step, marker) per other worker, own_header, own step] when the
  // others are shown (paper style: the last marker is part of own_header); [common, own_header,
  // own step] otherwise; [common, own step] plain.
  const bool shows_others = settings.layout != Layout::Interleaved && workers > 1;
  const int64_t shown = prompts.style == PromptStyle::Paper ? 2 * workers + 1 : 2 * workers + 2;
  // The finisher reads worker 0's view and its own block after it.
  sizing.view_entries = (!prompts.collaborate ? 2 : shows_others ? shown : 3) + 1;

  // The longest text fed to one worker in one pass: the last token of the step that ended, then
  // the next step prefix with the redundancy check (step numbers written with as many digits as
  // the budget allows); or the finisher after worker 0's pending text, which is one token or,
  // when the context stop came in the pass that ended its step, that token and the next prefix.
  const std::string widest_step(std::to_string(settings.budget + 1).size(), '9');
  int64_t longest_prefix = 0;
  if (prompts.collaborate) {
    for (const std::string& name : settings.names) {
      for (const std::string* format :
           {&prompts.step_prefix, &prompts.first_step_prefix, &prompts.lead_step_prefix}) {
        const std::string prefix =
            expand_placeholders(*format, {{"name", name}, {"step", widest_step}}) +
            prompts.redundancy_check;
        longest_prefix = std::max(longest_prefix, tokens(prefix));
      }
    }
  }
  const int64_t longest = 1 + longest_prefix + tokens(prompts.finisher);
  // Two tokens of slack per worker: numbers of one length may tokenize to different lengths.
  sizing.step_tokens = workers * (longest + 2);
  sizing.page_size = page_size;
  sizing.max_pages_per_block = (settings.max_tokens + page_size - 1) / page_size;
  sizing.cache_pages = sizing.max_pages_per_block + sizing.blocks;
  // A checkpoint that re-encodes forks the whole transcript while the team keeps its blocks.
  if (!settings.checkpoints.empty() && prompts.collaborate &&
      prompts.finisher_mode == FinisherMode::Reencode)
    sizing.cache_pages += sizing.max_pages_per_block;
  return sizing;
}

RunSizing size_run(const TeamSizing& team, int64_t teams) {
  HOGWILD_CHECK(teams > 0 && team.page_size > 0 && team.max_pages_per_block > 0,
                "a run needs teams and pages");
  RunSizing sizing;
  sizing.transformer.max_batch_tokens = std::max(kMinBatchTokens, teams * team.step_tokens);
  sizing.transformer.max_view_entries = team.view_entries;
  sizing.cache.page_size = team.page_size;
  sizing.cache.max_pages_per_block = team.max_pages_per_block;
  sizing.cache.max_blocks = teams * team.blocks;
  sizing.cache.pages = teams * team.cache_pages;
  return sizing;
}

}  // namespace hogwild
