#include "experiment/runner.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "comm/monitored_communicator.h"
#include "comm/mpi_communicator.h"
#include "common/error.h"
#include "engine/batch_builder.h"
#include "engine/cache_merge.h"
#include "engine/memory_plan.h"
#include "engine/transformer.h"
#include "hogwild/sizing.h"
#include "hogwild/team.h"
#include "hogwild/transcript.h"
#include "hogwild/worker_exchange.h"
#include "io/fingerprint.h"
#include "io/output_paths.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#if HOGWILD_NCCL
#include "comm/nccl_communicator.h"
#include "kernels/cuda/cuda_backend.h"
#endif

namespace hogwild {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Fault injection for the distributed tests: HOGWILD_INJECT_FAULT=RANK:PASS makes world rank
// RANK fail after PASS forward passes, as a crashed rank would; RANK:PASS:hang makes it stop
// answering instead (the watchdog's case); RANK:PASS:stop stops the whole process (SIGSTOP, its
// watchdog thread too), as a frozen node would.
struct InjectedFault {
  int rank = -1;
  long long pass = -1;
  bool hangs = false;
  bool stops = false;

  static InjectedFault from_environment() {
    InjectedFault fault;
    if (const char* text = std::getenv("HOGWILD_INJECT_FAULT")) {
      char mode[16] = {};
      if (std::sscanf(text, "%d:%lld:%15s", &fault.rank, &fault.pass, mode) < 2)
        fail("HOGWILD_INJECT_FAULT must look like RANK:PASS[:hang|:stop], got '", text, "'");
      fault.hangs = std::string(mode) == "hang";
      fault.stops = std::string(mode) == "stop";
    }
    return fault;
  }
  void maybe_strike(int world_rank, int64_t passes) const {
    if (world_rank != rank || passes != pass) return;
    if (stops) std::raise(SIGSTOP);
    if (hangs || stops) std::this_thread::sleep_for(std::chrono::hours(1));
    fail("injected fault after ", pass, " forward passes (HOGWILD_INJECT_FAULT)");
  }
};

}  // namespace

struct ModelCache::Entry {
  std::string key;
  std::unique_ptr<WeightSource> weights;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Transformer> model;
};

ModelCache::ModelCache() = default;
ModelCache::~ModelCache() {
  if (entry_) entry_->model.reset();  // the weights go before their backend
}

class ExperimentAccess {
 public:
  static std::unique_ptr<ModelCache::Entry>& entry(ModelCache& cache) { return cache.entry_; }
  static void count_load(ModelCache& cache) { ++cache.loads_; }
};

namespace {

// One `hogwild run` on one rank: load, plan, loop, report.
class Experiment {
 public:
  Experiment(const RunConfig& config, RunObserver* observer, RankGrid* grid, ModelCache* models)
      : config_(config),
        grid_(grid),
        writes_results_(grid == nullptr || grid->world_rank == 0),
        observer_(writes_results_ ? observer : nullptr),
        groups_(grid != nullptr ? grid->worker_groups : 1),
        my_group_(grid != nullptr ? grid->group : 0),
        world_rank_(grid != nullptr ? grid->world_rank : 0),
        models_(models) {}

  RunSummary run() {
    prepare_outputs();  // before anything is loaded
    if (todo_.empty() && resume_.found) {
      finish_without_model();
      return summary_;
    }
    load();
    plan();
    loop();
    report();
    return summary_;
  }

 private:
  // Rank 0 reads what an earlier run of this output finished (a resume) and tells every rank
  // which problems are left.
  void prepare_outputs() {
    fingerprint_ = run_fingerprint(config_);
    std::vector<uint8_t> finished(config_.problems.size(), 0);
    if (writes_results_) {
      if (!config_.overwrite) resume_ = read_existing_results(config_.output);
      if (!resume_.found) {
        check_outputs_free(config_);
      } else {
        if (resume_.fingerprint != fingerprint_)
          fail("results file '", config_.output, "' holds a run of another configuration (",
               fingerprint_difference(resume_.fingerprint, fingerprint_),
               "): add --overwrite to replace it, or choose another output=");
        std::map<std::string, const FinishedProblem*> by_id;
        for (const FinishedProblem& done : resume_.problems) by_id[done.id] = &done;
        for (size_t p = 0; p < config_.problems.size(); ++p) {
          const auto it = by_id.find(config_.problems[p].id);
          if (it == by_id.end()) continue;
          if (it->second->question != config_.problems[p].question)
            fail("results file '", config_.output, "' has problem '", config_.problems[p].id,
                 "' with another question: add --overwrite to replace the results");
          finished[p] = 1;
        }
        for (const FinishedProblem& done : resume_.problems) {
          ++summary_.resumed;
          ++summary_.problems;
          if (done.failed) ++summary_.failed;
          summary_.generated_tokens += done.generated_tokens;
          summary_.resumed_tokens += done.generated_tokens;
          if (done.correct >= 0) {
            ++summary_.scored;
            summary_.correct += done.correct;
          }
        }
      }
    }
    if (grid_ != nullptr) {
      uint8_t found = resume_.found ? 1 : 0;
      grid_->world->broadcast(&found, 1, 0);
      resume_.found = found != 0;
      if (!finished.empty()) grid_->world->broadcast(finished.data(), finished.size(), 0);
    }
    for (size_t p = 0; p < finished.size(); ++p)
      if (finished[p] == 0) todo_.push_back(p);
  }

  // Every problem was finished before: a packed file stays untouched (a parts folder a killed run
  // left beside it goes); parts are packed.
  void finish_without_model() {
    summary_.already_done = true;
    if (writes_results_ && resume_.complete) remove_leftover_parts(config_.output);
    if (writes_results_ && !resume_.complete) {
      ResultsWriter writer(config_.output, config_.transcript, run_info(), false, &resume_);
      writer.close(0.0);
    }
    progress_.problems_total = progress_.problems_done = summary_.problems;
  }

  RunInfo run_info() const {
    RunInfo info;
    info.config_text = config_.source_text;
    info.model = config_.model;
    info.layout = layout_name(config_.layout);
    info.workers = config_.workers;
    info.fingerprint = fingerprint_;
    info.method = method_name(config_.method);
    info.run_id = config_.run_id;
    info.varied = config_.varied;
    info.budget = config_.budget;
    info.batch_problems = config_.batch_problems;
    info.tensor = config_.parallel.tensor;
    info.worker_groups = config_.parallel.worker_groups;
    info.world_size = grid_ != nullptr ? grid_->world_size : 1;
    return info;
  }

  // The model's files, its tokenizer and the backend; nothing large is read yet.
  void load() {
    if (models_ != nullptr) {
      auto& entry = ExperimentAccess::entry(*models_);
      const std::string key =
          cat(config_.model, '\n', config_.backend, '\n', config_.threads, '\n', config_.weights,
              '\n', config_.dtype, '\n', config_.cuda_graphs, '\n', config_.parallel.tensor, '\n',
              config_.parallel.worker_groups);
      if (entry && entry->key == key) {
        shared_ = entry.get();
        weights_ = shared_->weights.get();
        tokenizer_ = shared_->tokenizer.get();
        backend_ = shared_->backend.get();
        return;
      }
      if (entry) entry->model.reset();
      entry.reset();
      entry = std::make_unique<ModelCache::Entry>();
      entry->key = key;
      shared_ = entry.get();
      ExperimentAccess::count_load(*models_);
    }
    ModelCache::Entry& slot = shared_ != nullptr ? *shared_ : own_;
    slot.weights = open_weights(config_.model);
    slot.tokenizer =
        std::make_unique<Tokenizer>(Tokenizer::from_path(slot.weights->tokenizer_path()));
    slot.backend = make_backend(config_.backend, grid_ != nullptr ? grid_->local_rank : 0,
                                static_cast<int>(config_.threads));
    weights_ = slot.weights.get();
    tokenizer_ = slot.tokenizer.get();
    backend_ = slot.backend.get();
  }
  ModelCache::Entry& slot() { return shared_ != nullptr ? *shared_ : own_; }

  // Sizes everything from the team settings, checks the memory plan before a byte of weights is
  // loaded, then builds the model, the cache and (rank 0) the results files.
  void plan() {
    settings_ = team_settings(config_);
    settings_.worker_groups = groups_;  // 1 without a rank grid, whatever the config says
    // Every rank must draw from the same streams: rank 0's seed is the run's seed (docs/design.md
    // §6).
    if (grid_ != nullptr) grid_->world->broadcast(&settings_.seed, sizeof settings_.seed, 0);
    teams_at_once_ = std::min<int64_t>(config_.batch_problems,
                                       std::max<int64_t>(1, static_cast<int64_t>(todo_.size())));
    const RunSizing sizing =
        size_run(size_team(settings_, *tokenizer_, config_.page_size), teams_at_once_);
    TransformerOptions options = sizing.transformer;
    options.weights = weight_format_on(*backend_, config_.weights);
    options.dtype = compute_dtype_named(config_.dtype);
    options.graphs = config_.cuda_graphs;
    CacheOptions cache_options = sizing.cache;
    cache_options.dtype = kv_dtype_on(*backend_, options.dtype);
    connect_device_axes();
    if (grid_ != nullptr && grid_->tensor_parallel > 1) {
      options.tensor = grid_->device_tensor ? grid_->device_tensor.get() : grid_->tensor.get();
      options.device_communicator = grid_->device_tensor != nullptr;
    }
    const ModelConfig& full = weights_->config();
    // Positions in a view reach max_tokens_per_problem: no further than the model was trained.
    if (full.max_context > 0 && config_.max_tokens_per_problem > full.max_context)
      fail("max_tokens_per_problem (", config_.max_tokens_per_problem,
           ") is more than the model's context length (", full.max_context, ", ", config_.model,
           "): lower it to at most ", full.max_context);
    // Device memory for `backend: cuda` (this rank's GPU), host memory for what stays there.
    check_run_memory(*weights_, shard_of(full, grid_ != nullptr ? grid_->tensor_parallel : 1),
                     cache_options, options, *backend_, grid_ != nullptr ? grid_->local_rank : 0,
                     /*weights_loaded=*/slot().model != nullptr);

    if (slot().model) {
      slot().model->resize_workspace(options.max_batch_tokens, options.max_view_entries);
      // The previous run's grid is gone: reduce over this run's tensor axis.
      slot().model->set_tensor_communicator(options.tensor, options.device_communicator);
    } else {
      slot().model = std::make_unique<Transformer>(*weights_, *backend_, options);
    }
    model_ = slot().model.get();
    cache_ = std::make_unique<KvCache>(*backend_, model_->shard_config(), cache_options);
    merger_ =
        std::make_unique<CacheMerger>(*backend_, *cache_, model_->inv_freq(), model_->head_dim());
    builder_ = std::make_unique<BatchBuilder>(*cache_);
    if (groups_ > 1)
      exchange_ = std::make_unique<WorkerExchange>(
          *backend_, grid_->device_workers ? *grid_->device_workers : *grid_->workers,
          model_->shard_config().kv_heads * model_->head_dim(), options.max_batch_tokens,
          grid_->workers.get());
    // The results files are created only now, under staged names until the first result: a bad
    // config or model leaves no file behind and replaces none.
    if (writes_results_)
      writer_ =
          std::make_unique<ResultsWriter>(config_.output, config_.transcript, run_info(),
                                          config_.overwrite, resume_.found ? &resume_ : nullptr);
  }

  // The CUDA backend's axes: NCCL communicators on its stream over the grid's tensor and worker
  // axes, made once per grid (every rank at the same point). Without NCCL in the build,
  // the collectives stay on MPI and the K/V and activations pass through host memory.
  void connect_device_axes() {
    if (grid_ == nullptr || grid_->world_size == 1 || config_.backend != "cuda") return;
    if (grid_->device_tensor || grid_->device_workers) return;
#if HOGWILD_NCCL
    const cudaStream_t stream = cuda_stream(*backend_);
    const int device = grid_->local_rank;
    add_device_communicators(
        *grid_, [&](Communicator& axis) { return make_nccl_communicator(axis, device, stream); });
#endif
  }

  // Where the host is about to read the step's results: waits for the device collectives queued
  // in it, polling NCCL's asynchronous errors (a lost peer is an error naming its axis, and the
  // watchdog sees the wait). Nothing to do on host communicators.
  void wait_for_device_collectives() {
    if (grid_ == nullptr) return;
    for (Communicator* axis : {grid_->device_tensor.get(), grid_->device_workers.get()})
      if (axis != nullptr) axis->wait();
  }

  // Continuous batching: every active team adds its tokens to one forward per pass; a finished
  // problem leaves and the next waiting one joins.
  void loop() {
    const InjectedFault fault = InjectedFault::from_environment();
    start_ = Clock::now();
    for (size_t p : todo_) waiting_.push_back(p);
    progress_.problems_total = summary_.problems + static_cast<int64_t>(todo_.size());
    progress_.problems_done = summary_.problems;
    while (!waiting_.empty() || !active_.empty()) {
      admit();
      if (active_.empty()) continue;  // every problem admitted so far failed
      forward();
      ++summary_.forward_passes;
      fault.maybe_strike(world_rank_, summary_.forward_passes);
      advance();
      retire();
      if (observer_ != nullptr) {
        update_progress();
        observer_->on_step(progress_);
      }
    }
    summary_.seconds = seconds_since(start_);
  }

  void admit() {
    while (static_cast<int64_t>(active_.size()) < teams_at_once_ && !waiting_.empty()) {
      const size_t index = waiting_.front();
      waiting_.pop_front();
      try {
        active_.push_back(std::make_unique<Team>(settings_, config_.problems[index],
                                                 static_cast<int64_t>(index), *tokenizer_, *cache_,
                                                 start_));
      } catch (const ProblemFailure& failure) {
        record(failed_result(config_.problems[index], failure.what()));
      }
    }
  }

  // A problem that could not run: its id, texts and reason, scored as wrong where it has a
  // reference (an accuracy that silently dropped the hardest problems would flatter the run).
  static ProblemResult failed_result(const Problem& problem, const std::string& reason) {
    ProblemResult result;
    result.id = problem.id;
    result.question = problem.question;
    result.reference_answer = problem.answer;
    result.correct = problem.answer.empty() ? -1 : 0;
    result.stop_reason = "failed";
    result.error = reason;
    result.transcript = "(not run: " + reason + ")\n";
    return result;
  }

  // Schedules every team's tokens and runs them through the model. Each worker group computes
  // its own workers' tokens (and the shared prompt tokens); with `sync: layer` the others' new
  // K/V arrive in every layer through the exchange, with `sync: step` after the forward.
  void forward() {
    // Decoding teams first, so a long prefill never delays them; prefills take what is left.
    int64_t capacity = model_->options().max_batch_tokens;
    for (const auto& team : active_) capacity -= team->schedule(*builder_, capacity);
    HOGWILD_ASSERT(!builder_->empty());  // sized by size_run: some team always fits
    const bool step_sync = groups_ > 1 && config_.parallel.sync == SyncMode::Step;
    builder_->build(batch_, step_sync);
    const ForwardBatch* to_run = &batch_;
    if (groups_ > 1) {
      local_batch_ = batch_.subset_for_group(my_group_, local_logit_row_);
      exchange_->prepare(batch_, local_batch_);
      to_run = &local_batch_;
    } else {
      local_logit_row_.resize(batch_.logit_rows.size());
      for (size_t r = 0; r < local_logit_row_.size(); ++r)
        local_logit_row_[r] = static_cast<int32_t>(r);
    }
    const auto forward_start = Clock::now();
    try {
      if (to_run->size() > 0) {
        const Tensor& logits =
            model_->forward_on_backend(*to_run, *cache_, step_sync ? nullptr : exchange_.get());
        wait_for_device_collectives();  // before the download blocks without polling
        logits_.resize(static_cast<size_t>(logits.rows * model_->config().vocab));
        if (logits.rows > 0) backend_->download_f32(logits, logits_.data());
      } else {
        logits_.clear();
        if (!step_sync) exchange_->exchange_without_tokens(model_->config().layers, *cache_);
        wait_for_device_collectives();  // every rank waits as often: the watchdog's counts agree
      }
      if (step_sync) exchange_->exchange_after_step(model_->config().layers, *cache_);
      wait_for_device_collectives();
    } catch (...) {
      builder_->rollback();  // a failed step leaves no rows behind
      throw;
    }
    builder_->commit();
    summary_.forward_seconds += seconds_since(forward_start);
    summary_.tokens_processed += static_cast<int64_t>(batch_.size());
  }

  // Samples where the logits are, shares the tokens, moves every team on and applies the history
  // merges that finished steps made (before the next schedule hands out cache rows).
  void advance() {
    StepLogits step;
    step.data = logits_.data();
    step.vocab = model_->config().vocab;
    step.local_row = local_logit_row_;
    step.sampled.assign(batch_.logit_rows.size(), -1);
    for (const auto& team : active_) team->sample(step);
    if (exchange_) exchange_->share_tokens(step.sampled);  // every rank now holds every token
    for (const auto& team : active_) {
      const int64_t before = team->generated_tokens();
      team->advance(step);
      progress_.generated_tokens += team->generated_tokens() - before;
      for (const MergePlan& merge : team->take_merges()) merger_->apply(merge);
    }
  }

  void retire() {
    for (auto it = active_.begin(); it != active_.end();) {
      if (!(*it)->done()) {
        ++it;
        continue;
      }
      ProblemResult result = (*it)->result();
      result.transcript = format_transcript(result, *tokenizer_, config_.prompts);
      it = active_.erase(it);
      record(result);
    }
  }

  // Writes a finished or failed problem and counts it.
  void record(const ProblemResult& result) {
    if (writer_) writer_->write(result);
    ++summary_.problems;
    if (!result.error.empty()) ++summary_.failed;
    summary_.generated_tokens += result.generated_tokens;
    if (result.correct >= 0) {
      ++summary_.scored;
      summary_.correct += result.correct;
    }
    progress_.problems_done = summary_.problems;
    if (observer_ != nullptr) {
      update_progress();
      observer_->on_problem(result, progress_);
    }
  }

  void update_progress() {
    progress_.seconds = seconds_since(start_);
    progress_.forward_passes = summary_.forward_passes;
    progress_.names.clear();
    progress_.steps.clear();
    progress_.problem_id.clear();
    if (!active_.empty()) {
      const Team& first = *active_.front();
      progress_.problem_id = first.problem().id;
      progress_.problem_passes = first.forward_passes();
      progress_.budget = config_.budget;
      progress_.names = first.names();
      progress_.steps = first.live_steps();
    }
  }

  // Where the time went on each rank (gathered, so that rank 0 stores the whole grid), then the
  // results files' summary.
  void report() {
    if (grid_ != nullptr) {
      auto collective_seconds = [](Communicator* comm) {
        auto* monitored = dynamic_cast<MonitoredCommunicator*>(comm);
        return monitored != nullptr ? monitored->seconds().total() : 0.0;
      };
      RankTiming mine;
      mine.rank = grid_->world_rank;
      mine.group = grid_->group;
      mine.tensor_rank = grid_->tensor_rank;
      mine.seconds = summary_.seconds;
      mine.tensor_seconds = collective_seconds(grid_->tensor.get());
      mine.worker_seconds = collective_seconds(grid_->workers.get());
      mine.compute_seconds = mine.seconds - mine.tensor_seconds - mine.worker_seconds;
      summary_.timings.resize(static_cast<size_t>(grid_->world_size));
      grid_->world->all_gather(&mine, summary_.timings.data(), sizeof(RankTiming));
      if (writer_) writer_->write_timings(summary_.timings);
    }
    if (writer_) writer_->close(summary_.seconds);
  }

  const RunConfig& config_;
  RankGrid* grid_;
  const bool writes_results_;
  RunObserver* observer_;
  const int groups_, my_group_, world_rank_;

  std::string fingerprint_;
  ExistingResults resume_;    // what an earlier run of this output finished (rank 0)
  std::vector<size_t> todo_;  // indices of the problems left to solve, in config order

  // The model: this run's own, or the sweep's (ModelCache), which outlives the run.
  using Slot = ModelCache::Entry;
  ModelCache* models_;
  Slot own_;
  Slot* shared_ = nullptr;
  WeightSource* weights_ = nullptr;
  Tokenizer* tokenizer_ = nullptr;
  Backend* backend_ = nullptr;
  TeamSettings settings_;
  int64_t teams_at_once_ = 0;
  Transformer* model_ = nullptr;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<CacheMerger> merger_;
  std::unique_ptr<WorkerExchange> exchange_;
  std::unique_ptr<ResultsWriter> writer_;
  // Declared after the cache: destroyed first, teams before the builder, both before the cache.
  std::unique_ptr<BatchBuilder> builder_;
  std::deque<size_t> waiting_;
  std::vector<std::unique_ptr<Team>> active_;

  Clock::time_point start_;
  ForwardBatch batch_, local_batch_;
  std::vector<int32_t> local_logit_row_;
  std::vector<float> logits_;
  RunSummary summary_;
  RunProgress progress_;
};

}  // namespace

RunSummary run_experiment(const RunConfig& config, RunObserver* observer, RankGrid* grid,
                          ModelCache* models) {
  return Experiment(config, observer, grid, models).run();
}

}  // namespace hogwild
