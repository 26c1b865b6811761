// The experiment configuration of `hogwild run`: a YAML file plus `dotted.key=value` overrides
// from the command line. Every key is known; unknown keys, wrong types and out-of-range values
// are errors naming the key and its line (hogwild::Error). The keys, their ranges and defaults
// are declared in one table, io/config_keys.cpp; a new key needs its row there and its field here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache_options.h"
#include "hogwild/problem.h"
#include "hogwild/settings.h"

namespace hogwild {

// The rank grid of a distributed run (docs/design.md §6): world size = worker_groups × tensor.
enum class SyncMode { Layer, Step };

struct ParallelConfig {
  int64_t tensor = 1;         // tensor-parallel ranks per worker group
  int64_t worker_groups = 1;  // groups of workers, each on its own tensor-parallel ranks
  // layer: other groups' new K/V are gathered in every layer, before attention (exact);
  // step: gathered once per step after the forward (one collective; they appear one token late).
  SyncMode sync = SyncMode::Layer;
  double timeout_seconds = 300;  // a collective that waits longer aborts the job (watchdog)
};

// Where problems come from: inline items and/or a JSONL file.
struct ProblemsFile {
  std::string path;
  std::string question_field = "question";
  std::string answer_field = "answer";  // GSM8K: the text after "#### " is the final answer
  int64_t offset = 0;                   // skip this many lines
  int64_t limit = -1;                   // -1 = all
};

// Prompt texts read from files (prompts.system_file, prompts.user_file): the paths as given; empty
// = none. The loader puts each file's content into RunConfig::prompts.
struct PromptFiles {
  std::string system;
  std::string user;
};

struct RunConfig {
  std::string model;
  std::string backend = "cpu";     // "cpu" or "cuda" (device = the rank's local rank)
  int64_t threads = 0;             // the cpu backend's threads; 0 = default_cpu_threads()
  std::string weights = "native";  // "native" (as stored) or "f32" (dequantized at load)
  std::string dtype = "f32";       // "f32" or "bf16": matrices not kept as stored, and CUDA's K/V
  bool cuda_graphs = true;         // replay decode steps as CUDA graphs (TransformerOptions)
  int64_t workers = 2;
  std::vector<std::string> names;  // default: Alice, Bob, Carol, Dave, Eve, Frank, Grace, Heidi…
  Layout layout = Layout::Combined;
  int64_t budget = 1024;  // sequential forward passes per problem
  uint64_t seed = 0;
  SamplingParams sampling;  // its seed is unused: `seed` seeds every worker's stream
  ParallelConfig parallel;
  std::vector<Problem> problems;              // inline problems and those read from `problems_file`
  std::optional<ProblemsFile> problems_file;  // relative: from the cwd, else the YAML folder
  int64_t batch_problems = 4;                 // problems decoded together (continuous batching)
  std::string output = "results/run.h5";
  std::string transcript;                 // default: output with .txt instead of .h5
  int64_t page_size = kDefaultPageSize;   // tokens per KV page
  int64_t max_tokens_per_problem = 8192;  // cache capacity per problem (all blocks)
  int64_t record_logprobs = 0;            // K > 0: logprobs and top-K of each sampled token
  Method method = Method::Hogwild;        // hogwild, or one of the paper's baselines
  bool vote = false;                      // independent workers: majority vote
  std::vector<int64_t> checkpoints;       // forward passes at which the answer is recorded
  PromptConfig prompts;
  PromptFiles prompt_files;  // prompts.system_file / user_file, as given (read into `prompts`)
  std::string source_text;   // the YAML after overrides, echoed into results
  bool overwrite = false;    // `run --overwrite` (not a key): existing results may be replaced
  // Set by `hogwild sweep` (not keys): the run's id and its varied keys as a JSON object.
  std::string run_id;
  std::string varied = "{}";
};

// Reads `path`, applies overrides ("workers=4", "sampling.temperature=0.7", "problems.limit=10"),
// validates, loads problems from the JSONL file (relative paths are relative to the YAML file's
// folder) and fills defaults (names, transcript). Throws hogwild::Error on any problem.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);
// The same for YAML text that `path` names in messages (relative paths resolve beside it): a
// sweep's inline base.
RunConfig load_run_config_text(const std::string& text, const std::string& path,
                               const std::vector<std::string>& overrides);

// What a team of this run is given: layout, names, prompts, sampling, budget, max_tokens (=
// max_tokens_per_problem), seed, record_logprobs and worker_groups (= parallel.worker_groups). A
// distributed run still replaces the seed by rank 0's.
TeamSettings team_settings(const RunConfig& config);

}  // namespace hogwild
