// The experiment configuration of `hogwild run`: a YAML file plus `dotted.key=value` overrides
// from the command line. Every key is known; unknown keys, wrong types and out-of-range values
// are errors naming the key and its line (hogwild::Error).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hogwild {

enum class Layout { Contiguous, Interleaved, Combined };
const char* layout_name(Layout layout);

struct SamplingConfig {
  double temperature = 0.0;  // 0 = greedy
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
};

// The rank grid of a distributed run (DESIGN §6): world size = worker_groups × tensor.
enum class SyncMode { Layer, Step };

struct ParallelConfig {
  int64_t tensor = 1;         // tensor-parallel ranks per worker group
  int64_t worker_groups = 1;  // groups of workers, each on its own tensor-parallel ranks
  // layer: other groups' new K/V are gathered in every layer, before attention (exact);
  // step: gathered once per step after the forward (one collective; they appear one token late).
  SyncMode sync = SyncMode::Layer;
  double timeout_seconds = 300;  // a collective that waits longer aborts the job (watchdog)
};

// One problem to solve. `answer` is the reference answer when known (for scoring), else empty.
struct Problem {
  std::string id;        // "inline-0", or "<file>:<line>"
  std::string question;
  std::string answer;
};

// Where problems come from: inline items and/or a JSONL file.
struct ProblemsFile {
  std::string path;
  std::string question_field = "question";
  std::string answer_field = "answer";  // GSM8K: the text after "#### " is the final answer
  int64_t offset = 0;                   // skip this many lines
  int64_t limit = -1;                   // -1 = all
};

// Texts that shape the collaboration (DESIGN §5). Placeholders: {names} (e.g. "Alice and Bob"),
// {count} (number of workers), {name} and {step} in the step prefixes. In collaboration mode the
// workers cannot write "#" header tokens, BOS or EOS (the paper suppresses them too): only the
// engine writes section headers, and a team stops on an answer or its budget.
struct PromptConfig {
  std::string system;             // collaboration system prompt; empty = none
  std::string history_header;     // before the finished steps ("### Past steps")
  std::string others_header;      // before the others' live steps
  std::string own_header;         // before the worker's own live step
  std::string step_prefix;        // "**{name} [{step}]:** "
  std::string first_step_prefix;  // opens each worker's first step: "… Hi, I'm {name}."
  std::string incomplete_marker;  // " <...>" (+ "\n\n") closes another's unfinished step
  std::string redundancy_check;   // "Quick check: am I doing redundant work? (yes/no): "
  int64_t redundancy_interval = 1024;  // generated tokens (all workers) between checks; 0 = never
  std::string finisher;           // appended to force an answer: "... \\boxed{"
  int64_t finisher_tokens = 16;   // greedy tokens allowed after the finisher
  bool chat_template = true;      // wrap system prompt + problem in the model's chat template
  bool collaborate = true;        // false: no system prompt/headers/prefixes (plain decoding)
};

struct RunConfig {
  std::string model;
  std::string backend = "cpu";     // "cpu" or "cuda" (device = the rank's local rank)
  int64_t workers = 2;
  std::vector<std::string> names;  // default: Alice, Bob, Carol, Dave, Eve, Frank, Grace, Heidi…
  Layout layout = Layout::Combined;
  int64_t budget = 1024;           // sequential forward passes per problem
  uint64_t seed = 0;
  SamplingConfig sampling;
  ParallelConfig parallel;
  std::vector<Problem> problems;   // inline problems and those read from `problems_file`
  std::optional<ProblemsFile> problems_file;  // relative: from the cwd, else the YAML folder
  int64_t batch_problems = 4;      // problems decoded together (continuous batching)
  std::string output = "results/run.h5";
  std::string transcript;          // default: output with .txt instead of .h5
  int64_t page_size = 32;          // tokens per KV page
  int64_t max_tokens_per_problem = 8192;  // cache capacity per problem (all blocks)
  PromptConfig prompts;
  std::string source_text;         // the YAML after overrides, echoed into results
};

// Reads `path`, applies overrides ("workers=4", "sampling.temperature=0.7", "problems.limit=10"),
// validates, loads problems from the JSONL file (relative paths are relative to the YAML file's
// folder) and fills defaults (names, transcript). Throws hogwild::Error on any problem.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);

// The faithful default prompts (our own wording of the paper's idea).
PromptConfig default_prompts();

// GSM8K-style reference: the text after the last "#### ", trimmed, commas removed.
std::string final_answer_of_reference(const std::string& answer_text);

}  // namespace hogwild
