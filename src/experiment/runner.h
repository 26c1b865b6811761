// `hogwild run`: loads the model once, then solves every problem of the config with a team of
// workers, decoding all active teams in one batch per step (continuous batching: a finished
// problem leaves, the next waiting one joins), and writes each result as soon as it is done.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/results.h"

namespace hogwild {

struct RunProgress {
  int64_t problems_done = 0;
  int64_t problems_total = 0;
  int64_t forward_passes = 0;    // of the whole run
  int64_t generated_tokens = 0;  // of the whole run, all workers
  double seconds = 0.0;
  // The first active problem: its id, budget used, and each worker's current step.
  std::string problem_id;
  int64_t problem_passes = 0;
  int64_t budget = 0;
  std::vector<std::string> names;
  std::vector<std::string> steps;
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void on_step(const RunProgress& progress) = 0;
  virtual void on_problem(const ProblemResult& result, const RunProgress& progress) = 0;
};

struct RunSummary {
  int64_t problems = 0;
  int64_t failed = 0;  // problems that could not run (recorded with stop_reason "failed")
  int64_t correct = 0;
  int64_t scored = 0;  // problems with a reference answer (failed ones count as wrong)
  int64_t generated_tokens = 0;
  int64_t forward_passes = 0;
  int64_t tokens_processed = 0;  // tokens through the model: prompts, prefixes and generated
  double seconds = 0.0;
  double forward_seconds = 0.0;  // inside the model's forward passes
  int64_t resumed = 0;           // problems an earlier run of the same configuration had finished
  int64_t resumed_tokens = 0;  // their generated tokens (counted in generated_tokens, not seconds)
  bool already_done = false;   // every problem was finished: nothing was loaded or computed
  std::vector<RankTiming> timings;  // every rank's breakdown (distributed runs; rank 0 has all)
};

struct RankGrid;

// The model of the last run, kept loaded for the next run of a sweep that needs the same one (the
// same file, backend, threads, weight format and tensor split): that run reuses its weights and
// only sizes a workspace of its own. One model at a time: another one replaces it.
class ModelCache {
 public:
  ModelCache();
  ~ModelCache();
  ModelCache(const ModelCache&) = delete;
  ModelCache& operator=(const ModelCache&) = delete;
  struct Entry;
  // Loads made so far (a test's way to see that a sweep loaded its model once).
  int64_t loads() const { return loads_; }

 private:
  friend class ExperimentAccess;
  std::unique_ptr<Entry> entry_;
  int64_t loads_ = 0;
};

// An existing output of the same configuration is resumed: its finished problems are kept and
// skipped (a finished run loads nothing); another configuration's output is refused unless
// config.overwrite. Throws hogwild::Error for a bad model or a cache that cannot hold the
// configuration; a problem
// that cannot run (hogwild::ProblemFailure) is recorded as failed and the others go on. With a
// rank grid (a distributed run), every rank calls this; the model is split over the tensor
// ranks and only world rank 0 writes results and reports to the observer.
RunSummary run_experiment(const RunConfig& config, RunObserver* observer, RankGrid* grid = nullptr,
                          ModelCache* models = nullptr);

}  // namespace hogwild
