#include "hogwild/team.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "common/error.h"
#include "hogwild/transcript.h"

namespace hogwild {
namespace {

// Fixed mixing of the run seed with problem and worker (splitmix64's constants, not its sequence):
// every worker gets its own stream, and a problem's streams do not depend on which other problems
// share its batches. Changing it changes every sampled run.
uint64_t worker_seed(uint64_t seed, int64_t problem, size_t worker) {
  uint64_t x = seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(problem + 1)) ^
               (0xbf58476d1ce4e5b9ull * static_cast<uint64_t>(worker + 1));
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 29;
  return x;
}

SamplingParams sampling_params(SamplingParams params, uint64_t seed) {
  params.seed = seed;
  return params;
}

// Tokens a collaborating worker may not write (as in the paper's code): header marks made only
// of '#', which would forge the engine's section headers, BOS/EOS (a team ends on an answer or
// its budget, not when one worker stops) and "</think>".
std::vector<int32_t> suppressed_tokens(const TextCodec& tokenizer) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    const std::string text = tokenizer.token_bytes(id);
    bool hashes = false, other = false;
    for (char c : text) {
      if (c == '#')
        hashes = true;
      else if (c != ' ' && c != '\n')
        other = true;
    }
    if ((hashes && !other) || tokenizer.is_eos(id) || text == "</think>") ids.push_back(id);
  }
  if (auto bos = tokenizer.bos_id()) ids.push_back(*bos);
  return ids;
}

}  // namespace

Team::Team(const TeamSettings& settings, const Problem& problem, int64_t problem_index,
           const TextCodec& tokenizer, KvCache& cache, Clock::time_point run_start)
    : settings_(settings),
      problem_(problem),
      index_(problem_index),
      tokenizer_(tokenizer),
      cache_(cache),
      run_start_(run_start),
      team_start_(Clock::now()),
      redundancy_(settings.prompts.collaborate && settings.prompts.style == PromptStyle::Compact
                      ? settings.prompts.redundancy_interval
                      : 0) {
  HOGWILD_CHECK(!settings_.names.empty(), "a team needs at least one worker");
  HOGWILD_CHECK(settings_.record_logprobs >= 0 && settings_.record_logprobs <= kMaxLogprobs,
                "record_logprobs must be in [0, ", kMaxLogprobs, "], got ",
                settings_.record_logprobs);
  // Logits are sampled on the rank of the worker's group; rank 0 writes the results.
  HOGWILD_CHECK(settings_.record_logprobs == 0 || settings_.worker_groups == 1,
                "record_logprobs needs worker_groups 1, got ", settings_.worker_groups);
  const PromptConfig& prompts = settings_.prompts;
  const std::map<std::string, std::string> names = {
      {"names", format_names(settings_.names)}, {"count", std::to_string(settings_.names.size())}};

  // The common block: the system message, the user message (the collaboration prompt, if any, then
  // the problem) in the chat template, then the history header (none under the paper style).
  // The problem is data, encoded as text (unless prompts.parse_special): "<|im_end|>" in a
  // question must not close the turn. The engine's prompts and the template's markers parse.
  std::string user_prompt;
  if (prompts.collaborate && !prompts.user.empty())
    user_prompt = expand_placeholders(prompts.user, names) + std::string(kStepSeparator);
  std::vector<PromptPiece> pieces;
  std::vector<ChatMessage> messages;
  if (prompts.collaborate && !prompts.system.empty())
    messages.push_back({"system", expand_placeholders(prompts.system, names), true});
  if (prompts.chat_template && tokenizer_.chat_template() != ChatTemplate::None) {
    // With a user prompt the user message holds two pieces, the prompt (which parses) and the
    // problem (data): the template gets a stand-in content, whose piece is then replaced by the
    // two (the template's own trimming, Llama-3's, then leaves them as they are).
    static const std::string kStandIn = "\x01user\x01";
    messages.push_back(
        {"user", user_prompt.empty() ? problem_.question : kStandIn, prompts.parse_special});
    for (PromptPiece& piece : tokenizer_.chat_pieces(messages, true)) {
      if (user_prompt.empty() || piece.text != kStandIn) {
        pieces.push_back(std::move(piece));
        continue;
      }
      if (!user_prompt.empty()) pieces.push_back({user_prompt, true});
      pieces.push_back({problem_.question, prompts.parse_special});
    }
  } else {
    for (const ChatMessage& message : messages) {
      pieces.push_back({message.content, message.parse_special});
      pieces.push_back({"\n\n", true});
    }
    if (!user_prompt.empty()) pieces.push_back({user_prompt, true});
    pieces.push_back({problem_.question, prompts.parse_special});
    pieces.push_back({"\n\n", true});
  }
  if (prompts.collaborate && !prompts.history_header.empty())
    pieces.push_back({prompts.history_header, true});
  prompt_ = tokenizer_.encode(pieces, false);
  prompt_pieces_ = std::move(pieces);
  if (prompt_.empty()) throw ProblemFailure(cat("problem ", problem_.id, ": the prompt is empty"));

  finisher_reserve_ = static_cast<int64_t>(encode(prompts.finisher).size()) +
                      prompts.finisher_tokens + 2 * static_cast<int64_t>(settings_.names.size());
  check_fits();
  if (prompts.collaborate) suppressed_ = suppressed_tokens(tokenizer_);
  // Blocks are created up front so a full cache fails here, before any work.
  common_ = cache_.create_block();
  if (prompts.collaborate) {
    others_header_ = cache_.create_block();
    own_header_ = cache_.create_block();
    marker_ = cache_.create_block();
  }
  for (size_t w = 0; w < settings_.names.size(); ++w) {
    Worker worker;
    worker.name = settings_.names[w];
    worker.block = cache_.create_block();
    worker.sampler = std::make_unique<Sampler>(
        sampling_params(settings_.sampling, worker_seed(settings_.seed, index_, w)));
    workers_.push_back(std::move(worker));
  }
}

// Before any cache block is taken: the prompt, the headers, every worker's first step prefix and
// the finisher's reserve must leave room for at least one generated token per worker.
void Team::check_fits() const {
  const PromptConfig& prompts = settings_.prompts;
  auto tokens = [&](const std::string& text) { return static_cast<int64_t>(encode(text).size()); };
  int64_t needed = static_cast<int64_t>(prompt_.size()) + finisher_reserve_;
  if (prompts.collaborate) {
    for (const HeaderBlock& header : header_blocks()) needed += tokens(header.text);
    for (size_t w = 0; w < settings_.names.size(); ++w)
      needed += tokens(expand_placeholders(first_step_format(w),
                                           {{"name", settings_.names[w]}, {"step", "1"}})) +
                1;
  } else {
    needed += static_cast<int64_t>(settings_.names.size());
  }
  if (needed >= settings_.max_tokens)
    throw ProblemFailure(cat("problem ", problem_.id, ": its prompt takes ", prompt_.size(),
                             " tokens; with the headers, the first step prefixes and the "
                             "finisher's reserve the team needs ",
                             needed, ", more than max_tokens_per_problem (", settings_.max_tokens,
                             ")"));
}

Team::~Team() {
  if (finisher_ != nullptr && finisher_->block >= 0) cache_.release_block(finisher_->block);
  for (BlockId block : {common_, others_header_, own_header_, marker_})
    if (block >= 0) cache_.release_block(block);
  for (Worker& worker : workers_)
    if (worker.block >= 0) cache_.release_block(worker.block);
}

std::vector<int32_t> Team::encode(const std::string& text) const {
  return tokenizer_.encode(text, true, false);
}

double Team::seconds() const {
  return std::chrono::duration<double>(Clock::now() - run_start_).count();
}

bool Team::merges_steps() const {
  return settings_.prompts.collaborate && settings_.layout != Layout::Contiguous;
}

bool Team::shows_others() const {
  return settings_.layout != Layout::Interleaved && settings_.names.size() > 1;
}

bool Team::paper() const { return settings_.prompts.style == PromptStyle::Paper; }

const std::string& Team::first_step_format(size_t worker) const {
  const PromptConfig& prompts = settings_.prompts;
  if (worker == 0 && !prompts.lead_step_prefix.empty()) return prompts.lead_step_prefix;
  return prompts.first_step_prefix.empty() ? prompts.step_prefix : prompts.first_step_prefix;
}

// The constant blocks and their texts (docs/design.md §2). Compact: the others' header, the own
// header and one marker block that follows every other worker's step. Paper, as the authors: the
// marker that closes the last other step and the own header are ONE block, encoded as one text
// (with SmolLM2 the two encoded apart give other tokens); between other steps (3 workers or more)
// a marker block of its own. With no other step shown, the own header is opened by the step
// separator instead (the history before it ends without one).
std::vector<Team::HeaderBlock> Team::header_blocks() const {
  const PromptConfig& prompts = settings_.prompts;
  const std::string marker = prompts.incomplete_marker + std::string(kStepSeparator);
  if (!paper())
    return {{others_header_, prompts.others_header},
            {own_header_, prompts.own_header},
            {marker_, marker}};
  std::vector<HeaderBlock> blocks;
  if (shows_others()) {
    blocks.push_back({others_header_, prompts.others_header});
    if (settings_.names.size() > 2) blocks.push_back({marker_, marker});
    blocks.push_back({own_header_, marker + prompts.own_header});
  } else {
    blocks.push_back({own_header_, std::string(kStepSeparator) + prompts.own_header});
  }
  return blocks;
}

// docs/design.md §2: view(w) = [common, hdr_others, step(o1), marker, …, hdr_own, step(w)].
// Interleaved hides the others' live steps; contiguous shows each worker's whole text as one
// growing block.
std::vector<BlockId> Team::view_of(size_t w) const {
  std::vector<BlockId> view = {common_};
  if (settings_.prompts.collaborate) {
    if (shows_others()) {
      view.push_back(others_header_);
      const size_t last_other = w + 1 == workers_.size() ? w - 1 : workers_.size() - 1;
      for (size_t o = 0; o < workers_.size(); ++o) {
        if (o == w) continue;
        view.push_back(workers_[o].block);
        // Paper: the own header begins with the marker that closes the last other step.
        if (!paper() || o != last_other) view.push_back(marker_);
      }
    }
    view.push_back(own_header_);
  }
  view.push_back(workers_[w].block);
  return view;
}

int64_t Team::cache_tokens() const {
  int64_t total = 0;
  for (BlockId block : {common_, others_header_, own_header_, marker_})
    if (block >= 0) total += cache_.length(block);
  for (const Worker& worker : workers_)
    total += cache_.length(worker.block) + static_cast<int64_t>(worker.pending.size());
  return total;
}

void Team::start_step(Worker& worker, bool first) {
  if (!first && merges_steps()) worker.block = cache_.create_block();
  ++worker.step;
  worker.step_first_token = static_cast<int32_t>(worker.tokens.size());
  worker.step_started_pass = static_cast<int32_t>(forward_passes_);
  worker.pending.clear();
  worker.pending_ends_step = false;
  std::string prefix;
  if (settings_.prompts.collaborate) {
    const size_t w = static_cast<size_t>(&worker - workers_.data());
    const std::string& format = first ? first_step_format(w) : settings_.prompts.step_prefix;
    prefix =
        expand_placeholders(format, {{"name", worker.name}, {"step", std::to_string(worker.step)}});
    bool check = false;
    if (paper()) {
      // The authors' count: tokens fed since the last check (prefixes included), more than the
      // interval; checked when a step opens, so never in a first step.
      const int64_t interval = settings_.prompts.redundancy_interval;
      check = !first && interval > 0 && fed_since_check_ > interval;
      if (check) fed_since_check_ = 0;
    } else {
      check = redundancy_.take();
    }
    if (check) {
      prefix += settings_.prompts.redundancy_check;
      event(static_cast<int32_t>(w), "check");
    }
  }
  worker.detector.require_one_token(settings_.prompts.step_end == StepEndRule::OneToken);
  worker.detector.reset(prefix);
  if (!prefix.empty()) {
    worker.pending = encode(prefix);
    worker.tokens.insert(worker.tokens.end(), worker.pending.begin(), worker.pending.end());
    record_forced(worker, worker.pending.size());
  }
}

void Team::event(int32_t worker, const char* kind) {
  events_.push_back({static_cast<int32_t>(forward_passes_), worker, kind});
}

// The engine wrote these tokens: no distribution they were drawn from.
void Team::record_forced(Worker& worker, size_t count) {
  const auto k = static_cast<size_t>(settings_.record_logprobs);
  if (k == 0) return;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  worker.logprobs.insert(worker.logprobs.end(), count, nan);
  worker.top_ids.insert(worker.top_ids.end(), count * k, -1);
  worker.top_logprobs.insert(worker.top_logprobs.end(), count * k, nan);
}

// The logprobs computed when `token` was sampled, now that it joins the worker's tokens.
void Team::record_sampled(Worker& worker, int32_t token) {
  const auto k = static_cast<size_t>(settings_.record_logprobs);
  if (k == 0) return;
  HOGWILD_ASSERT(worker.sampled_token == token);
  const TokenLogprobs& sampled = worker.sampled_logprobs;
  worker.logprobs.push_back(static_cast<float>(sampled.chosen));
  for (size_t i = 0; i < k; ++i) {
    const bool listed = i < sampled.top.size();
    worker.top_ids.push_back(listed ? sampled.top[i].id : -1);
    worker.top_logprobs.push_back(listed ? static_cast<float>(sampled.top[i].logprob)
                                         : std::numeric_limits<float>::quiet_NaN());
  }
}

StepRecord Team::step_record(const Worker& worker) const {
  return {static_cast<int32_t>(&worker - workers_.data()),
          worker.step,
          worker.step_first_token,
          static_cast<int32_t>(worker.tokens.size()),
          static_cast<int32_t>(forward_passes_),
          seconds(),
          worker.step_started_pass};
}

void Team::record_step(Worker& worker) { steps_.push_back(step_record(worker)); }

// docs/design.md §2, the step boundary: called in the pass that sampled the step's last token,
// which is not in the cache yet. The step joins the history as it is in the cache, and that token
// becomes the first token of the new step block, before the next prefix (the authors' loop does
// the same), so no forward pass is spent on the boundary.
void Team::finish_step(Worker& worker) {
  HOGWILD_ASSERT(worker.pending.size() == 1);
  const int32_t last = worker.pending.front();
  record_step(worker);
  if (merges_steps()) {
    // The finished step joins the history: its keys rotate once by common's length (docs/design.md
    // §3).
    merges_.push_back(cache_.append_block(common_, worker.block));
    worker.block = -1;
  }
  start_step(worker, false);
  worker.pending.insert(worker.pending.begin(), last);
}

Team::StopView Team::stop_view() const {
  StopView view{steps_, {}};
  for (const Worker& worker : workers_) {
    if (worker.pending_ends_step) {
      view.steps.push_back(step_record(worker));
      view.live_first_token.push_back(static_cast<int32_t>(worker.tokens.size()));
    } else {
      view.live_first_token.push_back(worker.step_first_token);
    }
  }
  return view;
}

// The answer a stop in this pass gives before any finisher: one already found; the baselines'
// first or majority answer so far; or, as the authors (their finisher is skipped then), a boxed
// number anywhere in the transcript. `worker` gets whose it is (-1: unknown or none).
std::string Team::answer_at_stop(const StopView& view, int32_t* worker) const {
  *worker = answer_worker_;
  if (!answer_.empty()) return answer_;
  if (workers_answer_alone(settings_)) return vote(worker);
  *worker = -1;
  if (settings_.prompts.collaborate && settings_.prompts.stop_rule == StopRule::NumberAtStepEnd) {
    ProblemResult stopped = result();
    stopped.steps = view.steps;
    for (size_t w = 0; w < workers_.size(); ++w)
      stopped.workers[w].live_step_first_token = view.live_first_token[w];
    if (auto number = boxed_number(format_transcript(stopped, tokenizer_, settings_.prompts)))
      return *number;
  }
  return {};
}

void Team::stop(const std::string& reason) {
  if (phase_ == Phase::Finisher || phase_ == Phase::Done) return;
  stop_reason_ = reason;
  const StopView view = stop_view();
  if (answer_.empty()) {
    int32_t by = -1;
    answer_ = answer_at_stop(view, &by);
    if (!answer_.empty()) {
      answer_worker_ = by;
      event(by, "answer");
    }
  }
  const bool forced = answer_.empty() && settings_.prompts.finisher_tokens > 0 &&
                      !settings_.prompts.finisher.empty();
  if (forced) begin_finisher(view);  // reads worker 0's last token, not yet in the cache
  // A step that ended in this pass is finished, but there is no next step to carry its last
  // token into: it stays unmerged, and the worker's live step is empty.
  steps_ = view.steps;
  for (size_t w = 0; w < workers_.size(); ++w) {
    Worker& worker = workers_[w];
    worker.step_first_token = view.live_first_token[w];
    worker.pending.clear();
    worker.pending_ends_step = false;
  }
  phase_ = forced ? Phase::Finisher : Phase::Done;
}

// docs/design.md §5: what the finisher starts from. As the authors, the transcript re-encoded
// (reencode, when it fits one block of max_tokens_per_problem); else (in_cache, or a re-encoded
// text that came out too long) worker 0's last sampled token and the finisher's text, after
// worker 0's own view.
std::unique_ptr<Team::Finisher> Team::new_finisher(const StopView& view) const {
  auto finisher = std::make_unique<Finisher>();
  finisher->text = settings_.prompts.finisher;
  if (settings_.prompts.finisher_mode == FinisherMode::Reencode && settings_.prompts.collaborate) {
    std::vector<int32_t> text = reencoded_transcript(view);
    if (static_cast<int64_t>(text.size()) + settings_.prompts.finisher_tokens <=
        settings_.max_tokens) {
      finisher->reencoded = true;
      finisher->pending = std::move(text);
      return finisher;
    }
  }
  finisher->pending = workers_.front().pending;
  for (int32_t id : encode(settings_.prompts.finisher)) finisher->pending.push_back(id);
  return finisher;
}

// The team's own finisher. Re-encoding needs none of the team's blocks: their pages make its room.
void Team::begin_finisher(const StopView& view) {
  finisher_ = new_finisher(view);
  if (finisher_->reencoded) release_blocks();
  finisher_->block = cache_.create_block();
  event(0, "finisher");
}

// Worker 0 alone (its group computes it); a long (re-encoded) text goes in chunks, logits after
// the last one.
int64_t Team::schedule_finisher(BatchBuilder& builder, int64_t capacity) {
  Finisher& finisher = *finisher_;
  finisher.logit_row = -1;
  const size_t count = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(capacity, 0)),
                                        finisher.pending.size());
  if (count == 0) return 0;
  const bool last = count == finisher.pending.size();
  std::vector<BlockId> view;
  if (!finisher.reencoded) view = view_of(0);
  view.push_back(finisher.block);
  const int32_t row = builder.add(finisher.block, {finisher.pending.data(), count}, view, last, 0);
  if (last) finisher.logit_row = row;
  finisher.chunk = count;
  return static_cast<int64_t>(count);
}

// True once the finisher is done: its tokens written (the authors' finisher writes them all, or
// up to EOS), or, in_cache, as soon as it answers.
bool Team::advance_finisher(const StepLogits& step) {
  Finisher& finisher = *finisher_;
  finisher.pending.erase(finisher.pending.begin(),
                         finisher.pending.begin() + static_cast<ptrdiff_t>(finisher.chunk));
  if (!finisher.pending.empty()) return false;  // more of the text in the next pass
  HOGWILD_ASSERT(finisher.logit_row >= 0);
  const int32_t token = step.sampled[static_cast<size_t>(finisher.logit_row)];
  HOGWILD_ASSERT(token >= 0);
  ++finisher.generated;
  if (!tokenizer_.is_eos(token)) finisher.text += tokenizer_.token_bytes(token);
  const bool number_rule = settings_.prompts.stop_rule == StopRule::NumberAtStepEnd;
  if (auto boxed = number_rule ? boxed_number(finisher.text) : extract_boxed(finisher.text))
    finisher.answer = *boxed;
  const bool answered = !finisher.answer.empty() && !finisher.reencoded;
  if (tokenizer_.is_eos(token) || answered ||
      finisher.generated >= settings_.prompts.finisher_tokens)
    return true;
  finisher.pending = {token};
  return false;
}

// A checkpoint (issue 12): the answer a budget stop in this pass would give. When that takes the
// finisher, it runs as a fork while the team waits, frozen as the stop would find it (the rest of
// this pass, step ends and merges, comes after it: end_fork); the fork's tokens are in a block of
// its own, which no worker ever sees, released when it ends. So the answer equals that of a run
// with budget = checkpoint, and the team goes on as if nothing had happened.
void Team::take_checkpoint() {
  const StopView view = stop_view();
  int32_t by = -1;
  const std::string answer = answer_at_stop(view, &by);
  if (!answer.empty() || settings_.prompts.finisher_tokens == 0 ||
      settings_.prompts.finisher.empty()) {
    record_checkpoint(answer, {});
    return;
  }
  fork_start_ = Clock::now();
  finisher_ = new_finisher(view);
  finisher_->block = cache_.create_block();
}

void Team::end_fork() {
  fork_seconds_ += std::chrono::duration<double>(Clock::now() - fork_start_).count();
  record_checkpoint(finisher_->answer, finisher_->text);
  cache_.release_block(finisher_->block);
  finisher_.reset();
  finish_pass();
}

// No \boxed{} answer: the grader's fallbacks ("#### N", else the last number, flagged by its
// source) over what the model wrote to answer: the finisher's own tokens and, for plain decoding
// (no step prefixes whose numbers could be mistaken for an answer), the workers' texts.
FinalAnswer Team::unboxed_answer(const std::string& finisher_text) const {
  std::string text;
  if (!settings_.prompts.collaborate)
    for (const Worker& worker : workers_) text += tokenizer_.decode(worker.tokens) + "\n\n";
  const std::string& prompt = settings_.prompts.finisher;
  text += finisher_text.starts_with(prompt) ? finisher_text.substr(prompt.size()) : finisher_text;
  return extract_final_answer(text);
}

void Team::record_checkpoint(const std::string& answer, const std::string& finisher_text) {
  CheckpointRecord record;
  record.checkpoint = static_cast<int32_t>(settings_.checkpoints[checkpoints_.size()]);
  record.answer = answer.empty() ? unboxed_answer(finisher_text).text : answer;
  if (!problem_.answer.empty())
    record.correct = answers_match(record.answer, problem_.answer) ? 1 : 0;
  record.forward_passes = static_cast<int32_t>(forward_passes_);
  record.seconds =
      std::chrono::duration<double>(Clock::now() - team_start_).count() - fork_seconds_;
  checkpoints_.push_back(std::move(record));
}

// The authors' compile_response: the prompt, the history (finished steps in the order they
// finished), the others' header, every worker's live step closed by the marker, then the finisher
// text, decoded and encoded again as one text with the prompt.
std::vector<int32_t> Team::reencoded_transcript(const StopView& view) const {
  const PromptConfig& prompts = settings_.prompts;
  auto decode = [&](const Worker& worker, int32_t first, size_t end) {
    return tokenizer_.decode(
        {worker.tokens.begin() + first, worker.tokens.begin() + static_cast<ptrdiff_t>(end)});
  };
  std::string text;
  for (const StepRecord& step : view.steps)
    text += decode(workers_[static_cast<size_t>(step.worker)], step.first_token,
                   static_cast<size_t>(step.end_token));
  text += prompts.others_header;
  for (size_t w = 0; w < workers_.size(); ++w)
    text += decode(workers_[w], view.live_first_token[w], workers_[w].tokens.size()) +
            prompts.incomplete_marker + std::string(kStepSeparator);
  text += prompts.finisher;
  // Encoded together with the prompt's pieces, as the authors encode the whole decoded text: the
  // transcript's first characters merge with the prompt's last ones ("\n" + "\n\n…" is one
  // "\n\n" token and a "\n"), while the problem stays data (its piece does not parse specials).
  std::vector<PromptPiece> pieces = prompt_pieces_;
  pieces.push_back({std::move(text), true});
  return tokenizer_.encode(pieces, false);
}

// The baselines: a worker that found its answer writes no more. The first answer ends the team;
// with a vote, the team ends when every worker has answered (or written EOS).
void Team::answer_alone(Worker& worker, const std::string& answer) {
  const auto w = static_cast<int32_t>(&worker - workers_.data());
  worker.answer = answer;
  worker.answered_pass = forward_passes_;
  event(w, "answer");
  if (!settings_.vote) {
    answer_ = answer;
    answer_worker_ = w;
    stop("answer");
    return;
  }
  idle_worker(worker);
}

void Team::idle_worker(Worker& worker) {
  if (worker.pending_ends_step) {
    record_step(worker);
    worker.step_first_token = static_cast<int32_t>(worker.tokens.size());
  }
  worker.pending.clear();
  worker.pending_ends_step = false;
  worker.idle = true;
  for (const Worker& other : workers_)
    if (!other.idle) return;
  // Everyone is done: the majority answer (none if nobody answered).
  int32_t by = -1;
  answer_ = vote(&by);
  answer_worker_ = by;
  stop(answer_.empty() ? "eos" : "answer");
}

// Majority over the workers' answers; equivalent answers (answers_match) vote together, and a tie
// goes to the answer given first (earliest pass, then lowest worker): deterministic.
std::string Team::vote(int32_t* winner) const {
  struct Group {
    std::string answer;
    int votes = 0;
    int32_t first_worker = -1;
  };
  std::vector<size_t> order;
  for (size_t w = 0; w < workers_.size(); ++w)
    if (!workers_[w].answer.empty()) order.push_back(w);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return workers_[a].answered_pass < workers_[b].answered_pass;
  });
  std::vector<Group> groups;
  for (size_t w : order) {
    auto same = std::find_if(groups.begin(), groups.end(), [&](const Group& group) {
      return answers_match(workers_[w].answer, group.answer);
    });
    if (same == groups.end())
      groups.push_back({workers_[w].answer, 1, static_cast<int32_t>(w)});
    else
      ++same->votes;
  }
  const Group* best = nullptr;
  for (const Group& group : groups)
    if (best == nullptr || group.votes > best->votes) best = &group;
  *winner = best != nullptr ? best->first_worker : -1;
  return best != nullptr ? best->answer : std::string();
}

// The re-encoding finisher needs none of the team's blocks: their pages make its room. The
// merges not yet applied are dropped with the blocks they would have written.
void Team::release_blocks() {
  for (BlockId* block : {&common_, &others_header_, &own_header_, &marker_}) {
    if (*block >= 0) cache_.release_block(*block);
    *block = -1;
  }
  for (Worker& worker : workers_) {
    if (worker.block >= 0) cache_.release_block(worker.block);
    worker.block = -1;
  }
  merges_.clear();
}

int64_t Team::schedule(BatchBuilder& builder, int64_t capacity) {
  for (Worker& worker : workers_) worker.logit_row = -1;
  prompt_logit_row_ = -1;
  scheduled_ = false;
  const int64_t added = schedule_tokens(builder, capacity);
  scheduled_ = added > 0;
  return added;
}

int64_t Team::schedule_tokens(BatchBuilder& builder, int64_t capacity) {
  switch (phase_) {
    case Phase::Prompt: {
      const size_t count = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(capacity, 0)),
                                            prompt_.size() - prompt_fed_);
      if (count == 0) return 0;
      const bool last = prompt_fed_ + count == prompt_.size();
      const BlockId view[] = {common_};
      const int32_t row = builder.add(common_, {prompt_.data() + prompt_fed_, count}, view, last);
      if (last) prompt_logit_row_ = row;
      prompt_fed_ += count;
      return static_cast<int64_t>(count);
    }
    case Phase::Headers: {
      // Constant blocks, computed once and shared by every view: compact, in the context of the
      // prompt; paper, on their own (positions from 0, as the authors compute them).
      const std::vector<HeaderBlock> blocks = header_blocks();
      std::vector<std::vector<int32_t>> texts;
      int64_t needed = 0;
      for (const HeaderBlock& block : blocks) {
        texts.push_back(encode(block.text));
        needed += static_cast<int64_t>(texts.back().size());
      }
      if (needed == 0) {  // no header text at all: straight to decoding
        begin_decode();
        return schedule_tokens(builder, capacity);
      }
      if (needed > capacity) return 0;
      for (size_t h = 0; h < blocks.size(); ++h) {
        if (texts[h].empty()) continue;
        const BlockId in_context[] = {common_, blocks[h].block};
        const BlockId alone[] = {blocks[h].block};
        builder.add(
            blocks[h].block, texts[h],
            paper() ? std::span<const BlockId>(alone) : std::span<const BlockId>(in_context),
            false);
      }
      return needed;
    }
    case Phase::Finisher:
      return schedule_finisher(builder, capacity);
    case Phase::Decode: {
      if (finisher_ != nullptr) return schedule_finisher(builder, capacity);  // a checkpoint
      int64_t needed = 0;
      for (const Worker& worker : workers_) needed += static_cast<int64_t>(worker.pending.size());
      if (needed == 0 || needed > capacity) return 0;
      for (size_t w = 0; w < workers_.size(); ++w) {
        Worker& worker = workers_[w];
        if (worker.pending.empty()) continue;
        const std::vector<BlockId> view = view_of(w);
        // Every run wants logits: the token sampled after a step's last token and the next
        // prefix is the new step's first.
        worker.logit_row = builder.add(worker.block, worker.pending, view, true,
                                       static_cast<int32_t>(w) % settings_.worker_groups);
      }
      return needed;
    }
    case Phase::Done:
      return 0;
  }
  return 0;
}

std::span<const float> StepLogits::row(int32_t global) const {
  HOGWILD_ASSERT(has(global));
  return {data + static_cast<size_t>(local_row[static_cast<size_t>(global)]) *
                     static_cast<size_t>(vocab),
          static_cast<size_t>(vocab)};
}

// Every worker row this rank holds gets a token, used or not: the random streams then advance
// the same way whichever rank samples, so a distributed run draws the single process's tokens.
void Team::sample(StepLogits& step) {
  if (!scheduled_) return;
  if (finisher_ != nullptr) {
    const int32_t row = finisher_->logit_row;
    if (row >= 0 && step.has(row))
      step.sampled[static_cast<size_t>(row)] = finisher_->sampler.sample(step.row(row));
    return;
  }
  if (phase_ != Phase::Decode) return;
  for (size_t w = 0; w < workers_.size(); ++w) {
    Worker& worker = workers_[w];
    if (worker.logit_row < 0 || !step.has(worker.logit_row)) continue;
    step.sampled[static_cast<size_t>(worker.logit_row)] =
        sample(worker, step.row(worker.logit_row));
  }
}

void Team::advance(const StepLogits& step) {
  if (!scheduled_) return;
  scheduled_ = false;
  auto token_of = [&](const Worker& worker) {
    HOGWILD_ASSERT(worker.logit_row >= 0);
    const int32_t token = step.sampled[static_cast<size_t>(worker.logit_row)];
    HOGWILD_ASSERT(token >= 0);
    return token;
  };
  switch (phase_) {
    case Phase::Prompt:
      if (prompt_fed_ < prompt_.size()) return;
      if (prompt_logit_row_ >= 0) {  // prompts are computed by every group: the row is here
        const auto row = step.row(prompt_logit_row_);
        prompt_logits_.assign(row.begin(), row.end());
      }
      if (settings_.prompts.collaborate) {
        phase_ = Phase::Headers;
      } else {
        begin_decode();
      }
      return;
    case Phase::Headers:
      begin_decode();
      return;
    case Phase::Decode: {
      if (finisher_ != nullptr) {  // a checkpoint's fork
        if (advance_finisher(step)) end_fork();
        return;
      }
      // Every active worker has tokens in every decode pass and keeps the token sampled from them.
      ++forward_passes_;
      int64_t generated = 0;
      for (Worker& worker : workers_) {
        if (worker.pending.empty()) continue;
        worker.pending.clear();
        worker.pending_ends_step = false;
        if (phase_ != Phase::Decode) continue;  // another worker stopped the team this pass
        const int32_t token = token_of(worker);
        ++generated;
        if (tokenizer_.is_eos(token)) {
          if (workers_answer_alone(settings_))
            idle_worker(worker);
          else
            stop("eos");
          continue;
        }
        accept(worker, token);
      }
      generated_tokens_ += generated;
      redundancy_.on_tokens(generated);
      if (phase_ == Phase::Decode && forward_passes_ >= settings_.budget) stop("budget");
      if (phase_ == Phase::Decode && checkpoints_.size() < settings_.checkpoints.size() &&
          settings_.checkpoints[checkpoints_.size()] == forward_passes_) {
        take_checkpoint();
        if (finisher_ != nullptr) return;  // the rest of this pass comes after the fork
      }
      finish_pass();
      return;
    }
    case Phase::Finisher: {
      if (!advance_finisher(step)) return;
      if (!finisher_->answer.empty()) {
        answer_ = finisher_->answer;
        answer_worker_ = 0;
        event(0, "answer");
      }
      finisher_text_ = finisher_->text;
      cache_.release_block(finisher_->block);
      finisher_.reset();
      phase_ = Phase::Done;
      return;
    }
    case Phase::Done:
      return;
  }
}

// The end of a decode pass: finished steps join the history and the next ones open; then the
// context stop.
void Team::finish_pass() {
  if (phase_ != Phase::Decode) return;
  for (Worker& worker : workers_) {
    if (worker.pending_ends_step) finish_step(worker);
    fed_since_check_ += static_cast<int64_t>(worker.pending.size());
  }
  if (cache_tokens() + finisher_reserve_ >= settings_.max_tokens) stop("context");
}

// With record_logprobs, the logprobs are of the row the sampler is given: the model's logits with
// the suppressed tokens at -inf (they are not the worker's to write), before temperature and
// filters.
int32_t Team::sample(Worker& worker, std::span<const float> logits) {
  std::span<const float> row = logits;
  if (!suppressed_.empty()) {
    scratch_logits_.assign(logits.begin(), logits.end());
    for (int32_t id : suppressed_)
      if (id >= 0 && static_cast<size_t>(id) < scratch_logits_.size())
        scratch_logits_[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
    row = scratch_logits_;
  }
  const int32_t token = worker.sampler->sample(row);
  if (settings_.record_logprobs > 0) {
    worker.sampled_token = token;
    worker.sampled_logprobs = token_logprobs(row, token, settings_.record_logprobs);
  }
  return token;
}

// A sampled token becomes part of the worker's text and is fed at the next forward.
void Team::accept(Worker& worker, int32_t token) {
  worker.tokens.push_back(token);
  record_sampled(worker, token);
  worker.pending = {token};
  worker.pending_ends_step = worker.detector.push(tokenizer_.token_bytes(token));
  // docs/design.md §5: plain decoding (no collaboration prompts) runs on like `hogwild generate`
  // does, keeping the answer; a collaborating team stops on it.
  if (workers_answer_alone(settings_)) {
    // The baselines stop as a collaborating team does, each worker on its own text.
    std::optional<std::string> found;
    if (settings_.prompts.stop_rule == StopRule::AnyBoxed)
      found = extract_boxed(worker.detector.text());
    else if (worker.pending_ends_step)
      found = boxed_number(worker.detector.text());
    if (found) answer_alone(worker, *found);
    return;
  }
  if (!settings_.prompts.collaborate) {
    if (auto boxed = extract_boxed(worker.detector.text())) answer_ = *boxed;
    return;
  }
  if (settings_.prompts.stop_rule == StopRule::AnyBoxed) {
    if (auto boxed = extract_boxed(worker.detector.text())) {
      answer_ = *boxed;
      answer_worker_ = static_cast<int32_t>(&worker - workers_.data());
      event(answer_worker_, "answer");
      stop("answer");
    }
  } else if (worker.pending_ends_step) {
    // The authors' rule: at a step end, the step's last \boxed{} that holds a number.
    if (auto number = boxed_number(worker.detector.text())) {
      answer_ = *number;
      answer_worker_ = static_cast<int32_t>(&worker - workers_.data());
      event(answer_worker_, "answer");
      stop("answer");
    }
  }
}

// Every worker opens its first step once the prompt and the headers are in the cache.
void Team::begin_decode() {
  phase_ = Phase::Decode;
  for (Worker& worker : workers_) {
    start_step(worker, true);
    if (!worker.pending.empty()) continue;
    // No prefix (plain decoding): the first token comes from the prompt's logits.
    const int32_t token = sample(worker, prompt_logits_);
    ++generated_tokens_;
    if (tokenizer_.is_eos(token)) {
      if (!workers_answer_alone(settings_)) {
        stop("eos");
        return;
      }
      idle_worker(worker);
    } else {
      accept(worker, token);
    }
    if (phase_ != Phase::Decode) return;
  }
}

std::vector<std::string> Team::describe_view(size_t worker) const {
  std::vector<std::string> names;
  for (BlockId block : view_of(worker)) {
    if (block == common_)
      names.emplace_back("common");
    else if (block == others_header_)
      names.emplace_back("others_header");
    else if (block == own_header_)
      names.emplace_back("own_header");
    else if (block == marker_)
      names.emplace_back("marker");
    for (const Worker& w : workers_)
      if (block == w.block) names.push_back(w.name);
  }
  return names;
}

std::vector<std::string> Team::live_steps() const {
  std::vector<std::string> steps;
  for (const Worker& worker : workers_) steps.emplace_back(worker.detector.text());
  return steps;
}

ProblemResult Team::result() const {
  ProblemResult result;
  result.id = problem_.id;
  result.question = problem_.question;
  result.reference_answer = problem_.answer;
  result.answer = answer_;
  result.answer_source = answer_.empty() ? "none" : "boxed";
  result.answer_worker = answer_worker_;
  if (answer_.empty() && done()) {
    const FinalAnswer fallback = unboxed_answer(finisher_text_);
    result.answer = fallback.text;
    result.answer_source = answer_source_name(fallback.source);
  }
  if (!problem_.answer.empty())
    result.correct = answers_match(result.answer, problem_.answer) ? 1 : 0;
  result.stop_reason = stop_reason_;
  result.forward_passes = forward_passes_;
  result.generated_tokens = generated_tokens_;
  result.seconds = std::chrono::duration<double>(Clock::now() - team_start_).count();
  result.steps = steps_;
  result.events = events_;
  result.checkpoints = checkpoints_;
  // The checkpoints the team did not reach: a run with that budget would have stopped as this
  // one did, with its answer.
  if (done()) {
    for (size_t c = checkpoints_.size(); c < settings_.checkpoints.size(); ++c)
      result.checkpoints.push_back({static_cast<int32_t>(settings_.checkpoints[c]), result.answer,
                                    result.correct, static_cast<int32_t>(forward_passes_),
                                    result.seconds - fork_seconds_});
  }
  for (const Worker& worker : workers_) {
    WorkerRecord record;
    record.name = worker.name;
    record.tokens = worker.tokens;
    record.text = tokenizer_.decode(worker.tokens);
    record.live_step_first_token = worker.step_first_token;
    if (settings_.record_logprobs > 0) {
      record.top_k = static_cast<int32_t>(settings_.record_logprobs);
      record.logprobs = worker.logprobs;
      record.top_ids = worker.top_ids;
      record.top_logprobs = worker.top_logprobs;
    }
    result.workers.push_back(std::move(record));
  }
  result.finisher_text = finisher_text_;
  return result;
}

}  // namespace hogwild
