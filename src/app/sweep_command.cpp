#include "app/sweep_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "app/cli_args.h"
#include "app/live_view.h"
#include "comm/mpi_communicator.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "common/terminal_text.h"
#include "experiment/rank_agreement.h"
#include "experiment/runner.h"
#include "io/config.h"
#include "io/sweep.h"

namespace hogwild {
namespace {

const char* kSweepHelp =
    "usage: hogwild sweep SWEEP.yaml [key=value ...] [--yes] [--overwrite] [--plain] [--quiet]\n"
    "                     [--threads N]\n\n"
    "Runs every configuration of a sweep (a base run config and the keys to vary: grid, zip,\n"
    "seeds) into one results folder, one HDF5 file per run, loading the model once. A sweep\n"
    "stopped at any moment resumes where it was when run again: finished runs and problems are\n"
    "kept and not computed again.\n\n"
    "  key=value   override a run key of every run (not one the sweep varies)\n"
    "  --yes       allow more than 1000 runs\n"
    "  --overwrite replace the results of a folder written by another sweep or configuration\n"
    "  --plain     plain log lines instead of the live view\n"
    "  --quiet     only the final summary\n"
    "  --threads N CPU backend threads\n\n"
    "The sweep file is described in configs/README.md (\"Sweeps\").\n";

using Clock = std::chrono::steady_clock;

// The sweep's line above the current run's live view.
class SweepProgress final : public RunObserver {
 public:
  SweepProgress(LiveView& view, int64_t runs, int64_t problems)
      : view_(view), runs_(runs), problems_(problems), start_(Clock::now()) {}
  void begin_run(int64_t index, const std::string& id) {
    run_ = index;
    id_ = id;
  }
  void end_run(const RunSummary& summary) {
    problems_done_ += summary.problems;
    tokens_ += summary.generated_tokens - summary.resumed_tokens;
  }
  void on_step(const RunProgress& progress) override {
    update(progress);
    view_.on_step(progress);
  }
  void on_problem(const ProblemResult& result, const RunProgress& progress) override {
    update(progress);
    view_.on_problem(result, progress);
  }

 private:
  void update(const RunProgress& progress) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const int64_t done = problems_done_ + progress.problems_done;
    const double rate =
        elapsed > 0 ? static_cast<double>(tokens_ + progress.generated_tokens) / elapsed : 0.0;
    const double eta =
        done > 0 ? elapsed * static_cast<double>(problems_ - done) / static_cast<double>(done)
                 : 0.0;
    char line[512];
    std::snprintf(
        line, sizeof line,
        "sweep: run %lld/%lld (%s) | problems %lld/%lld | %.1f tok/s | %.0f s | ETA %.0f s",
        static_cast<long long>(run_) + 1, static_cast<long long>(runs_),
        escape_controls(id_).c_str(), static_cast<long long>(done),
        static_cast<long long>(problems_), rate, elapsed, eta);
    view_.set_header(line);
  }

  LiveView& view_;
  int64_t runs_, problems_;
  Clock::time_point start_;
  int64_t run_ = 0, problems_done_ = 0, tokens_ = 0;
  std::string id_;
};

// OUTPUT/sweep.yaml: the sweep a folder belongs to, written (atomically) when it starts.
void claim_folder(const SweepPlan& plan, bool overwrite, bool writes) {
  namespace fs = std::filesystem;
  const fs::path folder = plan.output;
  const fs::path stamp = folder / "sweep.yaml";
  std::error_code error;
  if (fs::exists(stamp, error)) {
    if (read_text_file(stamp.string()) == plan.identity) return;
    if (!overwrite)
      fail("sweep: results folder '", plan.output, "' was written by another sweep (",
           stamp.string(), " differs from ", plan.path,
           "): add --overwrite to replace its runs, or choose another output:");
  }
  if (!writes) return;
  fs::create_directories(folder, error);
  if (error) fail("sweep: cannot create the results folder ", plan.output, ": ", error.message());
  const fs::path staged = folder / (".sweep.yaml." + std::to_string(getpid()));
  {
    std::ofstream out(staged);
    out << plan.identity;
    out.close();
    if (!out) fail("sweep: cannot write ", staged.string());
  }
  fs::rename(staged, stamp, error);
  if (error) fail("sweep: cannot write ", stamp.string(), ": ", error.message());
}

}  // namespace

int run_sweep(const std::vector<std::string>& argv) {
  const JobArgs job =
      parse_job_args("sweep", argv, true, "missing the sweep file (hogwild sweep SWEEP.yaml)");
  if (job.help) {
    std::cout << kSweepHelp;
    return 0;
  }
  const bool plain = job.plain || !LiveView::stderr_is_terminal(), quiet = job.quiet,
             overwrite = job.overwrite;
  const SweepPlan plan = load_sweep(job.file, job.overrides);
  if (static_cast<int64_t>(plan.runs.size()) > kMaxRunsWithoutYes && !job.yes)
    fail("sweep: ", plan.path, " has ", plan.runs.size(), " runs, more than ", kMaxRunsWithoutYes,
         ": add --yes to run them all");

  // Every run's configuration is read and checked before any model is loaded.
  const int world = launched_by_mpi() ? mpi_world_size() : 1;
  const bool writes = !launched_by_mpi() || make_world_communicator()->rank() == 0;
  std::vector<RunConfig> configs;
  std::vector<std::string> skipped;
  int64_t problems = 0;
  for (const SweepRun& run : plan.runs) {
    RunConfig config;
    try {
      config = load_run_config_text(plan.base_text, plan.base_path, run.overrides);
    } catch (const Error& e) {
      fail("sweep run ", run.id, " (", plan.path, "): ", e.what());
    }
    const int64_t grid = config.parallel.tensor * config.parallel.worker_groups;
    if (grid != world) {
      skipped.push_back(cat(run.id, " (parallel grid ", config.parallel.tensor, "x",
                            config.parallel.worker_groups, " = ", grid, " ranks, job has ", world,
                            ")"));
      continue;
    }
    const std::filesystem::path file = std::filesystem::path(plan.output) / (run.id + ".h5");
    config.output = file.string();
    config.transcript = std::filesystem::path(file).replace_extension(".txt").string();
    config.run_id = run.id;
    config.varied = run.varied;
    config.overwrite = overwrite;
    problems += static_cast<int64_t>(config.problems.size());
    configs.push_back(std::move(config));
  }
  claim_folder(plan, overwrite, writes);
  if (writes) {
    std::fprintf(stderr, "[sweep: %zu runs, %lld problems in all, into %s", configs.size(),
                 static_cast<long long>(problems), escape_controls(plan.output).c_str());
    if (!skipped.empty())
      std::fprintf(stderr, "; %zu runs skipped: their grid does not match the job", skipped.size());
    std::fprintf(stderr, "]\n");
    for (const std::string& note : skipped)
      std::fprintf(stderr, "[sweep: skipped %s]\n", escape_controls(note).c_str());
  }

  LiveView view(stderr, !plain);
  SweepProgress progress(view, static_cast<int64_t>(configs.size()), problems);
  ModelCache models;
  int64_t correct = 0, scored = 0, failed = 0, done_before = 0;
  const auto start = Clock::now();
  for (size_t r = 0; r < configs.size(); ++r) {
    const RunConfig& config = configs[r];
    if (launched_by_mpi()) check_ranks_run_the_same(config, *make_world_communicator());
    RankGrid grid = make_rank_grid(static_cast<int>(config.parallel.tensor),
                                   static_cast<int>(config.parallel.worker_groups),
                                   config.parallel.timeout_seconds);
    progress.begin_run(static_cast<int64_t>(r), config.run_id);
    const RunSummary summary = run_experiment(config, quiet ? nullptr : &progress, &grid, &models);
    progress.end_run(summary);
    correct += summary.correct;
    scored += summary.scored;
    failed += summary.failed;
    if (summary.already_done) ++done_before;
    if (writes && !quiet)
      std::fprintf(stderr, "[sweep: run %zu/%zu %s: %lld/%lld correct%s]\n", r + 1, configs.size(),
                   escape_controls(config.run_id).c_str(), static_cast<long long>(summary.correct),
                   static_cast<long long>(summary.scored),
                   summary.already_done ? ", already finished" : "");
  }
  if (writes)
    std::fprintf(stderr,
                 "[sweep: %zu runs (%lld already finished), %lld/%lld correct, %lld failed "
                 "problems, %.1f s, model loaded %lld time%s] results: %s\n",
                 configs.size(), static_cast<long long>(done_before),
                 static_cast<long long>(correct), static_cast<long long>(scored),
                 static_cast<long long>(failed),
                 std::chrono::duration<double>(Clock::now() - start).count(),
                 static_cast<long long>(models.loads()), models.loads() == 1 ? "" : "s",
                 escape_controls(plan.output).c_str());
  return failed > 0 ? 3 : 0;
}

}  // namespace hogwild
