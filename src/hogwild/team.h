// One problem solved by a team of workers over one shared cache (docs/design.md §2, §5): the blocks
// (common = prompt + history, constant headers, one step per worker), each worker's view in the
// chosen layout, step ends and history merges, collaboration prompts, stopping and the finisher.
// A Team never runs the model: each step it adds its tokens to the batch (schedule) and reads
// its logits back (advance), so many teams decode together in one forward (continuous batching).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cache/kv_cache.h"
#include "engine/batch_builder.h"
#include "engine/logprobs.h"
#include "engine/sampler.h"
#include "hogwild/problem.h"
#include "hogwild/settings.h"
#include "hogwild/text_rules.h"
#include "tokenizer/text_codec.h"

namespace hogwild {

// The logits of one forward as a team sees them. In a distributed run a rank holds only the
// rows of its worker group (local_row = -1 for the others); tokens are sampled where the row is
// and then shared, so every rank applies the same tokens to every worker.
struct StepLogits {
  const float* data = nullptr;  // local rows, `vocab` floats each
  int64_t vocab = 0;
  std::vector<int32_t> local_row;  // global logit row -> local row, or -1
  std::vector<int32_t> sampled;    // global logit row -> sampled token, or -1

  bool has(int32_t row) const { return row >= 0 && local_row[static_cast<size_t>(row)] >= 0; }
  std::span<const float> row(int32_t global) const;
};

class Team {
 public:
  using Clock = std::chrono::steady_clock;

  // Throws ProblemFailure, before taking any cache block, when the problem cannot run under the
  // settings (its prompt is empty, or too long for max_tokens_per_problem).
  Team(const TeamSettings& settings, const Problem& problem, int64_t problem_index,
       const TextCodec& tokenizer, KvCache& cache, Clock::time_point run_start);
  ~Team();
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;

  // Adds this team's tokens for the next forward, at most `capacity` of them (a prefill takes
  // what is left; a decode step needs all of its workers' tokens or waits). Returns the count.
  int64_t schedule(BatchBuilder& builder, int64_t capacity);
  // After the forward: samples a token for every worker row held here (into step.sampled).
  void sample(StepLogits& step);
  // Once every rank's samples are shared: moves every worker on with the sampled tokens.
  void advance(const StepLogits& step);
  // The history merges of the last advance, for the engine to apply to the K/V pools (in this
  // order, before the next schedule: see MergePlan).
  std::vector<MergePlan> take_merges() { return std::exchange(merges_, {}); }

  bool done() const { return phase_ == Phase::Done; }
  // A checkpoint's finisher is running (the team itself waits for it: docs/design.md §5).
  bool forking() const { return phase_ == Phase::Decode && finisher_ != nullptr; }
  const Problem& problem() const { return problem_; }
  int64_t forward_passes() const { return forward_passes_; }
  int64_t generated_tokens() const { return generated_tokens_; }
  const std::vector<std::string>& names() const { return settings_.names; }
  // The text of each worker's current step, for the live view.
  std::vector<std::string> live_steps() const;
  // Complete once done(); the transcript is left to format_transcript (hogwild/transcript.h).
  ProblemResult result() const;

  // For tests and debugging: worker w's view as block names ("common", "others_header", a
  // worker's name for its step, "marker", "own_header"), and the common block's length.
  std::vector<std::string> describe_view(size_t worker) const;
  int64_t common_length() const { return cache_.length(common_); }
  BlockId step_block(size_t worker) const { return workers_[worker].block; }
  // The block the finisher (the team's own, or a checkpoint's fork) writes into; -1 when none runs.
  BlockId finisher_block() const { return finisher_ != nullptr ? finisher_->block : -1; }

 private:
  enum class Phase { Prompt, Headers, Decode, Finisher, Done };

  struct Worker {
    std::string name;
    int32_t step_started_pass = 0;  // forward_passes_ when the current step began
    BlockId block = -1;             // the current step (contiguous layout: the whole text)
    int32_t step = 0;               // number of the current step, from 1
    int32_t step_first_token = 0;   // index in `tokens` where the current step starts
    std::vector<int32_t> pending;   // fed at the next forward
    bool pending_ends_step = false;
    int32_t logit_row = -1;       // this forward's logits row, -1: none
    std::vector<int32_t> tokens;  // everything the worker wrote, prefixes included
    StepEndDetector detector;
    std::unique_ptr<Sampler> sampler;
    // record_logprobs: the last sampled token and its logprobs (kept by accept), and the
    // records aligned with `tokens` (WorkerRecord).
    int32_t sampled_token = -1;
    TokenLogprobs sampled_logprobs;
    std::vector<float> logprobs;
    std::vector<int32_t> top_ids;
    std::vector<float> top_logprobs;
    // Baselines (workers_answer_alone): a worker that answered, or wrote EOS, writes no more.
    bool idle = false;
    std::string answer;
    int64_t answered_pass = -1;
  };

  // The forced answer (docs/design.md §5): the finisher's text, then greedy tokens, in a block of
  // its own, after worker 0's view (in_cache) or alone after the re-encoded transcript (reencode).
  // The team's own finisher and a checkpoint's fork run through this same code.
  struct Finisher {
    BlockId block = -1;
    bool reencoded = false;
    std::vector<int32_t> pending;  // fed at the next forward(s)
    size_t chunk = 0;              // of `pending` in this forward
    int32_t logit_row = -1;
    int64_t generated = 0;
    std::string text;  // the finisher's text and what it generated
    std::string answer;
    Sampler sampler{SamplingParams{}};  // greedy
  };

  // What a stop in this pass would leave: the steps that ended in it count as finished (they are
  // not merged) and their workers' live steps are empty.
  struct StopView {
    std::vector<StepRecord> steps;
    std::vector<int32_t> live_first_token;
  };

  struct HeaderBlock {
    BlockId block;
    std::string text;
  };
  std::vector<BlockId> view_of(size_t worker) const;
  bool merges_steps() const;
  bool shows_others() const;
  bool paper() const;
  const std::string& first_step_format(size_t worker) const;
  std::vector<HeaderBlock> header_blocks() const;
  void start_step(Worker& worker, bool first);
  StepRecord step_record(const Worker& worker) const;
  void record_step(Worker& worker);
  void finish_step(Worker& worker);
  void finish_pass();
  void stop(const std::string& reason);
  StopView stop_view() const;
  std::string answer_at_stop(const StopView& view, int32_t* worker) const;
  std::unique_ptr<Finisher> new_finisher(const StopView& view) const;
  void begin_finisher(const StopView& view);
  int64_t schedule_finisher(BatchBuilder& builder, int64_t capacity);
  bool advance_finisher(const StepLogits& step);
  void take_checkpoint();
  void end_fork();
  void record_checkpoint(const std::string& answer, const std::string& finisher_text);
  FinalAnswer unboxed_answer(const std::string& finisher_text) const;
  std::vector<int32_t> reencoded_transcript(const StopView& view) const;
  void answer_alone(Worker& worker, const std::string& answer);
  void idle_worker(Worker& worker);
  std::string vote(int32_t* worker) const;
  void event(int32_t worker, const char* kind);
  void release_blocks();
  void begin_decode();
  void accept(Worker& worker, int32_t token);
  void record_forced(Worker& worker, size_t count);
  void record_sampled(Worker& worker, int32_t token);
  int32_t sample(Worker& worker, std::span<const float> logits);
  int64_t schedule_tokens(BatchBuilder& builder, int64_t capacity);
  int64_t cache_tokens() const;
  void check_fits() const;  // throws ProblemFailure
  std::vector<int32_t> encode(const std::string& text) const;
  double seconds() const;

  TeamSettings settings_;
  Problem problem_;
  int64_t index_;
  const TextCodec& tokenizer_;
  KvCache& cache_;
  std::vector<MergePlan> merges_;  // made by finish_step, taken by the engine
  Clock::time_point run_start_;
  Clock::time_point team_start_;

  Phase phase_ = Phase::Prompt;
  BlockId common_ = -1, others_header_ = -1, own_header_ = -1, marker_ = -1;
  std::vector<int32_t> prompt_;             // common prompt tokens still to prefill
  std::vector<PromptPiece> prompt_pieces_;  // the prompt as text, for the re-encoding finisher
  size_t prompt_fed_ = 0;
  int32_t prompt_logit_row_ = -1;
  std::vector<float> prompt_logits_;  // logits after the prompt (workers without a prefix)
  std::vector<Worker> workers_;
  RedundancyScheduler redundancy_;

  std::vector<int32_t> suppressed_;  // token ids collaborating workers never sample
  std::vector<float> scratch_logits_;
  bool scheduled_ = false;        // this team has tokens in the current forward
  int64_t finisher_reserve_ = 0;  // cache tokens kept free for the finisher
  int64_t fed_since_check_ = 0;   // paper style: tokens fed since the last redundancy check
  int64_t forward_passes_ = 0;
  int64_t generated_tokens_ = 0;
  std::string stop_reason_;
  std::string answer_;
  std::vector<StepRecord> steps_;
  int32_t answer_worker_ = -1;
  std::vector<EventRecord> events_;
  // The finisher: the team's own after a stop (Phase::Finisher), or a checkpoint's fork while the
  // team waits (Phase::Decode); its tokens are never part of any worker's text or view.
  std::unique_ptr<Finisher> finisher_;
  std::string finisher_text_;                  // the team's own finisher's text, once it ran
  std::vector<CheckpointRecord> checkpoints_;  // taken so far
  double fork_seconds_ = 0.0;                  // wall time spent in checkpoint forks
  Clock::time_point fork_start_;
};

}  // namespace hogwild
