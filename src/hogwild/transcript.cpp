#include "hogwild/transcript.h"

namespace hogwild {

std::string format_transcript(const ProblemResult& result, const TextCodec& tokenizer,
                              const PromptConfig& prompts) {
  auto decode = [&](const WorkerRecord& worker, int32_t first, size_t end) {
    return tokenizer.decode(
        {worker.tokens.begin() + first, worker.tokens.begin() + static_cast<ptrdiff_t>(end)});
  };
  std::string t = "Question: " + result.question + "\n\n";
  for (const StepRecord& step : result.steps) {
    t += decode(result.workers[static_cast<size_t>(step.worker)], step.first_token,
                static_cast<size_t>(step.end_token));
    if (!t.ends_with("\n\n")) t += "\n\n";
  }
  for (const WorkerRecord& worker : result.workers) {
    if (static_cast<size_t>(worker.live_step_first_token) >= worker.tokens.size()) continue;
    t += decode(worker, worker.live_step_first_token, worker.tokens.size());
    t += prompts.collaborate ? prompts.incomplete_marker + "\n\n" : "\n\n";
  }
  if (!result.finisher_text.empty()) t += "[finisher] " + result.finisher_text + "\n\n";
  return t;
}

}  // namespace hogwild
