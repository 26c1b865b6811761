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

 private:
  enum class Phase { Prompt, Headers, Decode, Finisher, Done };

  struct Worker {
    std::string name;
    BlockId block = -1;            // the current step (contiguous layout: the whole text)
    int32_t step = 0;              // number of the current step, from 1
    int32_t step_first_token = 0;  // index in `tokens` where the current step starts
    std::vector<int32_t> pending;  // fed at the next forward
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
  void record_step(Worker& worker);
  void finish_step(Worker& worker);
  void stop(const std::string& reason);
  void begin_finisher();
  std::vector<int32_t> reencoded_transcript() const;
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
  std::vector<int32_t> prompt_;  // common prompt tokens still to prefill
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
  // Finisher: greedy tokens appended to worker 0's text after the stop (not part of its tokens).
  int64_t finisher_generated_ = 0;
  size_t finisher_chunk_ = 0;  // tokens of worker 0's pending text in this pass
  bool reencoded_ = false;     // the finisher runs over the re-encoded transcript, in a fresh block
  std::string finisher_text_;
};

}  // namespace hogwild
