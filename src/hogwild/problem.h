// A problem for a team, and what the team leaves behind: every worker's tokens, the finished
// steps in history order, the answer. Domain records; io/results.h stores them in HDF5.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace hogwild {

// A problem that cannot be solved under the run's settings (its prompt does not fit, say): it is
// recorded as failed, with this message, and the run goes on with the other problems.
class ProblemFailure : public Error {
 public:
  using Error::Error;
};

// One problem to solve. `answer` is the reference answer when known (for scoring), else empty.
struct Problem {
  std::string id;  // "inline-0", or "<file>:<line>"
  std::string question;
  std::string answer;
};

// One finished step: tokens [first_token, end_token) of that worker's tokens.
struct StepRecord {
  int32_t worker = 0;
  int32_t step = 0;
  int32_t first_token = 0;
  int32_t end_token = 0;
  int32_t finished_pass = 0;
  double seconds = 0.0;      // wall time from the run's start until the step finished
  int32_t started_pass = 0;  // decode passes the team had run when the step began
};

// The answer a team would give if its budget ended at `checkpoint` forward passes (issue 12's
// accuracy-vs-budget from one run): the finisher forked at that pass, or the final answer when
// the team had stopped earlier.
struct CheckpointRecord {
  int32_t checkpoint = 0;
  std::string answer;
  int correct = -1;            // 1, 0, or -1 when there is no reference
  int32_t forward_passes = 0;  // the team's passes when the answer was taken (<= checkpoint)
  double seconds = 0.0;        // the team's wall time by then, the forks' own time left out
};

// A moment of a team's life worth drawing on its timeline.
struct EventRecord {
  int32_t pass = 0;     // decode passes the team had run
  int32_t worker = -1;  // -1: the team as a whole
  std::string kind;     // "check" (a redundancy prompt), "answer", "finisher"
};

struct WorkerRecord {
  std::string name;
  std::vector<int32_t> tokens;  // everything the worker wrote, prefixes included
  std::string text;
  int32_t live_step_first_token = 0;  // where its unfinished step starts in `tokens`
  // Recorded with record_logprobs K > 0 (else empty, top_k 0), aligned 1:1 with `tokens`: each
  // token's log-probability under the model's distribution (engine/logprobs.h) and its K most
  // likely tokens, row-major [tokens.size()][top_k], most likely first. Tokens the engine forced
  // (step prefixes) have NaN and id -1, as have alternatives past a vocabulary of fewer than K.
  // (Initialised, so brace-initialised records may leave them out.)
  int32_t top_k = 0;
  std::vector<float> logprobs = {};
  std::vector<int32_t> top_ids = {};
  std::vector<float> top_logprobs = {};
};

struct ProblemResult {
  std::string id;
  std::string question;
  std::string reference_answer;
  std::string answer;                  // extracted final answer, empty if none
  std::string answer_source = "none";  // how it was found: boxed, gsm8k, last_number, none
  int32_t answer_worker = -1;          // whose text gave it (the finisher: 0); -1 none
  int correct = -1;                    // 1, 0, or -1 when there is no reference
  std::string stop_reason;             // "answer", "eos", "budget", …, or "failed"
  std::string error;  // why the problem failed (stop_reason "failed"); empty otherwise
  int64_t forward_passes = 0;
  int64_t generated_tokens = 0;
  double seconds = 0.0;
  std::vector<WorkerRecord> workers;
  std::vector<StepRecord> steps;
  std::vector<CheckpointRecord> checkpoints;  // one per configured checkpoint, in order
  std::vector<EventRecord> events;            // in the order they happened
  std::string finisher_text;  // the forced-answer text and what followed it; empty if none
  std::string transcript;     // filled by format_transcript (hogwild/transcript.h)
};

}  // namespace hogwild
