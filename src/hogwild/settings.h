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

// Which construction a team follows (docs/design.md §2, §5; README "Fidelity to the paper").
//  - Paper (default): as the authors' implementation (GitHub eqimp/hogwild_llm): the header blocks
//    are computed on their own (no prompt before them, positions from 0), the marker that closes
//    the last other worker's step and the own header are one block, the collaboration prompt goes
//    into the user message before the problem, the history has no title in the model's view, the
//    first worker opens with an invitation to plan, a quick check comes every 256 tokens counted
//    as the authors count them, and a team stops at a step end whose \boxed{} holds a number.
//  - Compact: the engine's earlier construction, kept because it reads better to a small model:
//    headers computed after the prompt (so they are in its context), one shared marker block
//    after every other worker's step, the prompt as the system message under a "### Past steps"
//    title, and a stop at any complete \boxed{} (even mid-step).
enum class PromptStyle { Paper, Compact };
const char* prompt_style_name(PromptStyle style);

// When a collaborating team stops on an answer.
enum class StopRule {
  NumberAtStepEnd,  // a step ends and its last \boxed{} that holds a number gives the answer
  AnyBoxed,         // any complete \boxed{} or \fbox{} in a worker's step, checked every token
};

// Which token ends a step (docs/design.md §2; README "Fidelity to the paper").
enum class StepEndRule {
  TwoNewlines,  // ours: "\n\n" in one token or split over two, after a sentence end, no fence open
  OneToken,     // the authors': one token holding "\n\n", after a sentence end (no fence rule)
};

// How a run solves a problem (issue 12: the paper's baselines in the same harness).
//  - Hogwild: workers collaborating over one shared cache (the prompts' layout and style);
//  - Single: one worker, no collaboration prompts, the same stop rule and finisher;
//  - Independent: workers that each see only the problem and their own text (no shared block);
//    the answer is the first one found, or a vote (`vote: true`);
//  - SelfConsistency: independent samples at a temperature above 0, answer by majority vote.
enum class Method { Hogwild, Single, Independent, SelfConsistency };
const char* method_name(Method method);

// How the finisher asks for an answer when a team stops without one (docs/design.md §5).
enum class FinisherMode {
  Reencode,  // the authors': the transcript re-encoded in a fresh block, then the finisher text
  InCache,   // worker 0's own view, the finisher text after its last token: nothing re-encoded
};

// Texts that shape the collaboration (docs/design.md §5). Placeholders: {names} (e.g. "Alice and
// Bob"), {count} (number of workers), {name} and {step} in the step prefixes. In collaboration mode
// the workers cannot write "#" header tokens, BOS or EOS (the paper suppresses them too): only the
// engine writes section headers, and a team stops on an answer or its budget.
struct PromptConfig {
  PromptStyle style = PromptStyle::Paper;
  std::string system;             // the system message; empty = none
  std::string user;               // the user message before the problem (+ "\n\n"); empty = none
  std::string history_header;     // before the finished steps ("### Past steps"); may be empty
  std::string others_header;      // before the others' live steps
  std::string own_header;         // before the worker's own live step
  std::string step_prefix;        // "**{name} [{step}]:** "
  std::string first_step_prefix;  // opens each worker's first step: "… Hi, I'm {name}."
  std::string lead_step_prefix;   // opens the first worker's first step; empty = the above
  std::string incomplete_marker;  // "<...>" (+ "\n\n") closes another's unfinished step
  std::string redundancy_check;   // "Quick check: am I doing redundant work? (yes/no): "
  int64_t redundancy_interval = 256;  // tokens between checks; 0 = never
  std::string finisher;               // appended to force an answer: "... \\boxed{"
  int64_t finisher_tokens = 16;       // greedy tokens allowed after the finisher
  FinisherMode finisher_mode = FinisherMode::Reencode;
  StopRule stop_rule = StopRule::NumberAtStepEnd;
  StepEndRule step_end = StepEndRule::TwoNewlines;  // both styles: see the enum
  bool chat_template = true;   // wrap system prompt + problem in the model's chat template
  bool collaborate = true;     // false: no system prompt/headers/prefixes (plain decoding)
  bool parse_special = false;  // special-token text in a problem becomes control tokens (experts)
};

// The default prompts of a style (our own wording of the paper's idea; the structural strings,
// headers, marker, prefixes, are the authors' format).
PromptConfig default_prompts(PromptStyle style = PromptStyle::Paper);

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
  Method method = Method::Hogwild;
  bool vote = false;  // independent workers: majority vote instead of the first answer
  // Forward passes at which the answer a budget stop would give is recorded (increasing, each at
  // most `budget`); see CheckpointRecord.
  std::vector<int64_t> checkpoints;
};

// Whether each worker stops on its own answer (the baselines), rather than the team on the first.
inline bool workers_answer_alone(const TeamSettings& settings) {
  return settings.method != Method::Hogwild;
}

}  // namespace hogwild
