// What shapes a team: the layout of the workers' views, the collaboration prompts, sampling and
// budget. Domain types: io/config.h translates YAML into them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace hogwild {

// How the others' live steps appear in a worker's view (docs/design.md §2).
enum class Layout { Contiguous, Interleaved, Combined };
const char* layout_name(Layout layout);

// Texts that shape the collaboration (docs/design.md §5). Placeholders: {names} (e.g. "Alice and
// Bob"), {count} (number of workers), {name} and {step} in the step prefixes. In collaboration mode
// the workers cannot write "#" header tokens, BOS or EOS (the paper suppresses them too): only the
// engine writes section headers, and a team stops on an answer or its budget.
struct PromptConfig {
  std::string system;                  // collaboration system prompt; empty = none
  std::string history_header;          // before the finished steps ("### Past steps")
  std::string others_header;           // before the others' live steps
  std::string own_header;              // before the worker's own live step
  std::string step_prefix;             // "**{name} [{step}]:** "
  std::string first_step_prefix;       // opens each worker's first step: "… Hi, I'm {name}."
  std::string incomplete_marker;       // " <...>" (+ "\n\n") closes another's unfinished step
  std::string redundancy_check;        // "Quick check: am I doing redundant work? (yes/no): "
  int64_t redundancy_interval = 1024;  // generated tokens (all workers) between checks; 0 = never
  std::string finisher;                // appended to force an answer: "... \\boxed{"
  int64_t finisher_tokens = 16;        // greedy tokens allowed after the finisher
  bool chat_template = true;           // wrap system prompt + problem in the model's chat template
  bool collaborate = true;             // false: no system prompt/headers/prefixes (plain decoding)
  bool parse_special = false;  // special-token text in a problem becomes control tokens (experts)
};

// The default prompts (our own wording of the paper's idea).
PromptConfig default_prompts();

struct TeamSettings {
  Layout layout = Layout::Combined;
  std::vector<std::string> names;
  PromptConfig prompts;
  SamplingParams sampling;    // its seed is replaced by each worker's own stream
  int64_t budget = 1024;      // decode forward passes
  int64_t max_tokens = 8192;  // cache tokens this problem may use, all blocks together
  uint64_t seed = 0;
  int32_t worker_groups = 1;  // worker w is computed by group w % worker_groups
  // K > 0: each worker's sampled tokens keep their logprob and the K most likely tokens
  // (engine/logprobs.h) in WorkerRecord. Needs the logits of every worker: worker_groups 1.
  int64_t record_logprobs = 0;
};

}  // namespace hogwild
