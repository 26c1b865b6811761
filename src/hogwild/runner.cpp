#include "hogwild/runner.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "comm/monitored_communicator.h"
#include "comm/mpi_communicator.h"
#include "common/error.h"
#include "engine/batch_builder.h"
#include "engine/memory_plan.h"
#include "engine/transformer.h"
#include "hogwild/team.h"
#include "hogwild/text_rules.h"
#include "hogwild/transcript.h"
#include "hogwild/worker_exchange.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace hogwild {

RunSummary run_experiment(const RunConfig& config, RunObserver* observer, RankGrid* grid) {
  using Clock = std::chrono::steady_clock;
  const bool writes_results = grid == nullptr || grid->world_rank == 0;
  if (!writes_results) observer = nullptr;
  const int groups = grid != nullptr ? grid->worker_groups : 1;
  const int my_group = grid != nullptr ? grid->group : 0;
  const auto weights = open_weights(config.model);
  const Tokenizer tokenizer = Tokenizer::from_path(weights->tokenizer_path());
  const auto backend = make_backend(config.backend, grid != nullptr ? grid->local_rank : 0);

  const auto workers = config.workers;
  const int64_t problems_at_once =
      std::min<int64_t>(config.batch_problems, static_cast<int64_t>(config.problems.size()));
  TransformerOptions options;
  // Room for every worker's longest forced text (a step prefix with a redundancy check, or the
  // finisher) in one step, for every active problem; prefill chunks use what is left.
  int64_t longest_forced = 0;
  for (const std::string& name : config.names) {
    for (const std::string* format : {&config.prompts.step_prefix, &config.prompts.first_step_prefix}) {
      const std::string prefix =
          expand_placeholders(*format, {{"name", name}, {"step", "99999"}}) +
          config.prompts.redundancy_check;
      longest_forced = std::max<int64_t>(longest_forced,
                                         static_cast<int64_t>(tokenizer.encode(prefix).size()));
    }
  }
  longest_forced = std::max<int64_t>(
      longest_forced, static_cast<int64_t>(tokenizer.encode(config.prompts.finisher).size()) + 1);
  options.max_batch_tokens =
      std::max<int64_t>(512, problems_at_once * workers * (longest_forced + 2));
  options.max_view_entries = 2 * workers + 4;
  if (grid != nullptr && grid->tensor_parallel > 1) options.tensor = grid->tensor.get();

  // Per problem: common + 3 constant blocks + one step per worker (+1 while a step is replaced).
  const int64_t blocks_per_problem = workers + 5;
  CacheOptions cache_options;
  cache_options.page_size = config.page_size;
  cache_options.max_pages_per_block =
      (config.max_tokens_per_problem + config.page_size - 1) / config.page_size;
  cache_options.max_blocks = problems_at_once * blocks_per_problem;
  cache_options.pages = problems_at_once * (cache_options.max_pages_per_block + blocks_per_problem);
  // Checked before a byte is loaded: a run that cannot fit fails now, with the numbers.
  const ModelConfig& full = weights->config();
  check_memory_plan(plan_memory(full, shard_of(full, grid != nullptr ? grid->tensor_parallel : 1),
                                cache_options, options),
                    available_host_memory(), "host memory");
  Transformer model(*weights, *backend, options);
  KvCache cache(*backend, model.shard_config(), cache_options);

  TeamSettings settings;
  settings.layout = config.layout;
  settings.names = config.names;
  settings.prompts = config.prompts;
  settings.sampling = config.sampling;
  settings.budget = config.budget;
  settings.max_tokens = config.max_tokens_per_problem;
  settings.seed = config.seed;
  // Every rank must draw from the same streams: rank 0's seed is the run's seed (DESIGN §6).
  if (grid != nullptr) grid->world->broadcast(&settings.seed, sizeof settings.seed, 0);
  settings.worker_groups = groups;
  std::unique_ptr<WorkerExchange> exchange;
  if (groups > 1)
    exchange = std::make_unique<WorkerExchange>(
        *backend, *grid->workers, model.shard_config().kv_heads * model.config().head_dim,
        options.max_batch_tokens);

  // The results file is created only now: a bad config or model leaves no file behind.
  std::unique_ptr<ResultsWriter> writer;
  if (writes_results)
    writer = std::make_unique<ResultsWriter>(
        config.output, config.transcript,
        RunInfo{config.source_text, config.model, layout_name(config.layout), workers});

  // Fault injection for the distributed tests: HOGWILD_INJECT_FAULT=RANK:PASS makes world rank
  // RANK fail after PASS forward passes, as a crashed rank would.
  // HOGWILD_INJECT_FAULT=RANK:PASS:hang makes it stop answering instead (the watchdog's case).
  int fault_rank = -1;
  long long fault_pass = -1;
  bool fault_hangs = false;
  if (const char* fault = std::getenv("HOGWILD_INJECT_FAULT")) {
    char mode[16] = {};
    const int fields = std::sscanf(fault, "%d:%lld:%15s", &fault_rank, &fault_pass, mode);
    if (fields < 2) fail("HOGWILD_INJECT_FAULT must look like RANK:PASS[:hang], got '", fault, "'");
    fault_hangs = std::string(mode) == "hang";
  }
  const int world_rank = grid != nullptr ? grid->world_rank : 0;

  const auto start = Clock::now();
  std::deque<size_t> waiting;
  for (size_t p = 0; p < config.problems.size(); ++p) waiting.push_back(p);
  std::vector<std::unique_ptr<Team>> active;
  BatchBuilder builder(cache);
  ForwardBatch batch, local_batch;
  std::vector<int32_t> local_logit_row;
  std::vector<float> logits;
  RunSummary summary;
  RunProgress progress;
  progress.problems_total = static_cast<int64_t>(config.problems.size());

  auto update_progress = [&] {
    progress.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    progress.forward_passes = summary.forward_passes;
    progress.names.clear();
    progress.steps.clear();
    progress.problem_id.clear();
    if (!active.empty()) {
      const Team& first = *active.front();
      progress.problem_id = first.problem().id;
      progress.problem_passes = first.forward_passes();
      progress.budget = config.budget;
      progress.names = first.names();
      progress.steps = first.live_steps();
    }
  };

  while (!waiting.empty() || !active.empty()) {
    while (static_cast<int64_t>(active.size()) < problems_at_once && !waiting.empty()) {
      const size_t index = waiting.front();
      waiting.pop_front();
      active.push_back(std::make_unique<Team>(settings, config.problems[index],
                                              static_cast<int64_t>(index), tokenizer, cache,
                                              model.inv_freq(), model.config().head_dim, start));
    }
    // Decoding teams first, so a long prefill never delays them; prefills take what is left.
    int64_t capacity = options.max_batch_tokens;
    for (const auto& team : active) capacity -= team->schedule(builder, capacity);
    HOGWILD_ASSERT(!builder.empty());  // sized above: some team always fits
    const bool step_sync = groups > 1 && config.parallel.sync == SyncMode::Step;
    builder.build(batch, step_sync);
    // Each worker group computes its own workers' tokens (and the shared prompt tokens); the
    // others' new K/V arrive in every layer through the exchange (DESIGN §6).
    const ForwardBatch* to_run = &batch;
    if (groups > 1) {
      local_batch = batch.subset_for_group(my_group, local_logit_row);
      exchange->prepare(batch, local_batch);
      to_run = &local_batch;
    } else {
      local_logit_row.resize(batch.logit_rows.size());
      for (size_t r = 0; r < local_logit_row.size(); ++r) local_logit_row[r] = static_cast<int32_t>(r);
    }
    const auto forward_start = Clock::now();
    if (to_run->size() > 0) {
      model.forward(*to_run, cache, logits, step_sync ? nullptr : exchange.get());
    } else {
      logits.clear();
      if (!step_sync) exchange->exchange_without_tokens(model.config().layers, cache);
    }
    if (step_sync) exchange->exchange_after_step(model.config().layers, cache);
    summary.forward_seconds += std::chrono::duration<double>(Clock::now() - forward_start).count();
    ++summary.forward_passes;
    if (world_rank == fault_rank && summary.forward_passes == fault_pass) {
      if (fault_hangs) std::this_thread::sleep_for(std::chrono::hours(1));
      fail("injected fault after ", fault_pass, " forward passes (HOGWILD_INJECT_FAULT)");
    }
    summary.tokens_processed += static_cast<int64_t>(batch.size());
    StepLogits step;
    step.data = logits.data();
    step.vocab = model.config().vocab;
    step.local_row = local_logit_row;
    step.sampled.assign(batch.logit_rows.size(), -1);
    for (const auto& team : active) team->sample(step);
    if (exchange) exchange->share_tokens(step.sampled);  // every rank now holds every token
    int64_t step_tokens = 0;
    for (const auto& team : active) {
      const int64_t before = team->generated_tokens();
      team->advance(step);
      step_tokens += team->generated_tokens() - before;
    }
    progress.generated_tokens += step_tokens;

    for (auto it = active.begin(); it != active.end();) {
      if (!(*it)->done()) {
        ++it;
        continue;
      }
      ProblemResult result = (*it)->result();
      result.transcript = format_transcript(result, tokenizer, config.prompts);
      if (writer) writer->write(result);
      ++summary.problems;
      summary.generated_tokens += result.generated_tokens;
      if (result.correct >= 0) {
        ++summary.scored;
        summary.correct += result.correct;
      }
      progress.problems_done = summary.problems;
      it = active.erase(it);
      if (observer != nullptr) {
        update_progress();
        observer->on_problem(result, progress);
      }
    }
    if (observer != nullptr) {
      update_progress();
      observer->on_step(progress);
    }
  }
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (grid != nullptr) {
    // Where the time went on each rank; gathered so that rank 0 stores the whole grid.
    auto collective_seconds = [](Communicator* comm) {
      auto* monitored = dynamic_cast<MonitoredCommunicator*>(comm);
      return monitored != nullptr ? monitored->seconds().total() : 0.0;
    };
    RankTiming mine;
    mine.rank = grid->world_rank;
    mine.group = grid->group;
    mine.tensor_rank = grid->tensor_rank;
    mine.seconds = summary.seconds;
    mine.tensor_seconds = collective_seconds(grid->tensor.get());
    mine.worker_seconds = collective_seconds(grid->workers.get());
    mine.compute_seconds = mine.seconds - mine.tensor_seconds - mine.worker_seconds;
    summary.timings.resize(static_cast<size_t>(grid->world_size));
    grid->world->all_gather(&mine, summary.timings.data(), sizeof(RankTiming));
    if (writer) writer->write_timings(summary.timings);
  }
  if (writer) writer->close(summary.seconds);
  return summary;
}

}  // namespace hogwild
