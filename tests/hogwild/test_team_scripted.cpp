// A Team without any model file: a byte-level codec (one token per byte, "##" as one token, EOS,
// BOS and "</think>") and scripted one-hot logits make every worker write chosen text, so the
// views, step ends, history merges, prefixes, suppression, stops, the finisher and the sizing
// can be checked against expectations derived by hand from the prompts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "engine/batch_builder.h"
#include "engine/forward_batch.h"
#include "hogwild/sizing.h"
#include "hogwild/team.h"
#include "hogwild/transcript.h"
#include "tokenizer/text_codec.h"
#include "view_entry_testing.h"

namespace hogwild {

namespace {

// Ids 0..255 are the bytes; then EOS, "##", BOS and "</think>". Encoding is greedy from the left:
// a special piece (when parse_special), else "##", else one byte.
class ByteCodec final : public TextCodec {
 public:
  static constexpr int32_t kEos = 256, kHashes = 257, kBos = 258, kThink = 259, kVocab = 260;

  explicit ByteCodec(ChatTemplate format = ChatTemplate::None) : format_(format) {}

  std::vector<int32_t> encode(std::string_view text, bool parse_special,
                              bool add_bos) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(kBos);
    size_t i = 0;
    while (i < text.size()) {
      const std::string_view rest = text.substr(i);
      std::optional<int32_t> special;
      if (parse_special)
        for (int32_t id : {kEos, kBos, kThink})
          if (rest.starts_with(token_bytes(id))) special = id;
      if (special) {
        ids.push_back(*special);
        i += token_bytes(*special).size();
      } else if (rest.starts_with("##")) {
        ids.push_back(kHashes);
        i += 2;
      } else {
        ids.push_back(static_cast<unsigned char>(text[i]));
        ++i;
      }
    }
    return ids;
  }
  // Specials only inside the pieces that parse them; pieces never share a token here.
  std::vector<int32_t> encode(const std::vector<PromptPiece>& pieces, bool add_bos) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(kBos);
    for (const PromptPiece& piece : pieces)
      for (int32_t id : encode(piece.text, piece.parse_special, false)) ids.push_back(id);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (int32_t id : ids) text += token_bytes(id);
    return text;
  }
  std::string token_bytes(int32_t id) const override {
    switch (id) {
      case kEos:
        return "<eos>";
      case kHashes:
        return "##";
      case kBos:
        return "<bos>";
      case kThink:
        return "</think>";
      default:
        return std::string(1, static_cast<char>(id));
    }
  }
  bool is_eos(int32_t id) const override { return id == kEos; }
  std::optional<int32_t> bos_id() const override { return kBos; }
  int32_t vocab_size() const override { return kVocab; }
  ChatTemplate chat_template() const override { return format_; }
  std::vector<PromptPiece> chat_pieces(const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt) const override {
    if (format_ == ChatTemplate::None) fail("this codec has no chat template");
    std::vector<PromptPiece> pieces;
    for (const ChatMessage& message : messages) {
      pieces.push_back({"<|" + message.role + "|>", true});
      pieces.push_back({message.content, message.parse_special});
      pieces.push_back({"\n", true});
    }
    if (add_generation_prompt) pieces.push_back({"<|assistant|>", true});
    return pieces;
  }

 private:
  ChatTemplate format_;
};

// The plain bytes of `text` as tokens (what a script makes a worker write).
std::deque<int32_t> bytes(std::string_view text) {
  std::deque<int32_t> ids;
  for (char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

using Names = std::vector<std::string>;
// Each worker's next tokens, consumed one per logit row of that worker.
using Script = std::map<size_t, std::deque<int32_t>>;

constexpr int64_t kPageSize = 16;
constexpr int32_t kDefaultToken = 'x';  // what a worker writes when its script is empty
constexpr const char* kQuestion = "What is 2+3?";

// The block whose tokens row `t` of the batch appends to: the last entry of its view.
BlockId own_block(const ForwardBatch& batch, size_t t) {
  return batch.view_entries[static_cast<size_t>(batch.view_offsets[t + 1]) - 1].block;
}

// The tokens of the batch that go to `block`, in order.
std::vector<int32_t> tokens_into(const ForwardBatch& batch, BlockId block) {
  std::vector<int32_t> tokens;
  for (size_t t = 0; t < batch.size(); ++t)
    if (own_block(batch, t) == block) tokens.push_back(batch.tokens[t]);
  return tokens;
}

// The first row of the batch that goes to `block`.
size_t first_row_into(const ForwardBatch& batch, BlockId block) {
  for (size_t t = 0; t < batch.size(); ++t)
    if (own_block(batch, t) == block) return t;
  ADD_FAILURE() << "no token goes to block " << block;
  return 0;
}

std::vector<ViewEntry> entries_of(const ForwardBatch& batch, size_t t) {
  return {batch.view_entries.begin() + batch.view_offsets[t],
          batch.view_entries.begin() + batch.view_offsets[t + 1]};
}

// Cache blocks alive now: the cache is probed by creating blocks until it refuses (then they are
// released, which leaves it as it was).
int64_t blocks_in_use(KvCache& cache, int64_t max_blocks) {
  std::vector<BlockId> probes;
  try {
    for (;;) probes.push_back(cache.create_block());
  } catch (const Error&) {
  }
  for (BlockId block : probes) cache.release_block(block);
  return max_blocks - static_cast<int64_t>(probes.size());
}

// One team over its own cache, driven like the runner drives it (schedule, build, commit, sample,
// advance) with logits that are one-hot on the token the script chose for each row.
class ScriptedTeam {
 public:
  ScriptedTeam(const TeamSettings& settings, const TextCodec& codec, const CacheOptions& options,
               int64_t capacity = 4096, const std::string& question = kQuestion)
      : codec_(codec), capacity_(capacity) {
    config_.layers = 1;
    config_.heads = 1;
    config_.kv_heads = 1;
    config_.head_dim = 4;
    backend_ = make_cpu_backend();
    cache_ = std::make_unique<KvCache>(*backend_, config_, options);
    builder_ = std::make_unique<BatchBuilder>(*cache_);
    team_ = std::make_unique<Team>(settings, Problem{"p", question, "5"}, 0, codec, *cache_,
                                   Team::Clock::now());
  }
  ~ScriptedTeam() {
    team_.reset();  // the team releases its blocks before the cache goes
    builder_.reset();
  }

  // One forward pass. Rows of a worker's step take that worker's next scripted token; the
  // prompt's row takes `prompt_token`.
  const ForwardBatch& forward(Script& script, int32_t prompt_token = kDefaultToken) {
    scheduled_ = team_->schedule(*builder_, capacity_);
    EXPECT_GT(scheduled_, 0) << "the team had nothing to schedule";
    builder_->build(batch_, delayed_sync_);
    builder_->commit();
    const auto vocab = static_cast<size_t>(codec_.vocab_size());
    std::vector<float> logits(batch_.logit_rows.size() * vocab, 0.0f);
    for (size_t r = 0; r < batch_.logit_rows.size(); ++r) {
      const BlockId block = own_block(batch_, static_cast<size_t>(batch_.logit_rows[r]));
      int32_t token = prompt_token;
      for (size_t w = 0; w < team_->names().size(); ++w) {
        // The finisher (in a block of its own) takes worker 0's script.
        const bool finisher = w == 0 && block >= 0 && block == team_->finisher_block();
        if (team_->step_block(w) != block && !finisher) continue;
        token = kDefaultToken;
        if (auto& next = script[w]; !next.empty()) {
          token = next.front();
          next.pop_front();
        }
      }
      logits[r * vocab + static_cast<size_t>(token)] = 100.0f;
    }
    StepLogits step;
    step.data = logits.data();
    step.vocab = static_cast<int64_t>(vocab);
    for (size_t r = 0; r < batch_.logit_rows.size(); ++r)
      step.local_row.push_back(static_cast<int32_t>(r));
    step.sampled.assign(batch_.logit_rows.size(), -1);
    team_->sample(step);
    team_->advance(step);
    for (MergePlan& merge : team_->take_merges()) merges_.push_back(std::move(merge));
    return batch_;
  }
  // The prompt and header forwards of a collaborating team.
  void prefill() {
    Script none;
    forward(none);
    forward(none);
  }

  Team& team() { return *team_; }
  KvCache& cache() { return *cache_; }
  // Builds batches as a distributed `sync: step` run does (settings.worker_groups > 1).
  void set_delayed_sync(bool delayed) { delayed_sync_ = delayed; }
  int64_t scheduled() const { return scheduled_; }
  const std::vector<MergePlan>& merges() const { return merges_; }

 private:
  const TextCodec& codec_;
  int64_t capacity_;
  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<BatchBuilder> builder_;
  std::unique_ptr<Team> team_;
  ForwardBatch batch_;
  int64_t scheduled_ = 0;
  std::vector<MergePlan> merges_;
  bool delayed_sync_ = false;
};

class ScriptedTeamTest : public ::testing::Test {
 protected:
  // The default prompts of a style with a short collaboration prompt whose expansion is easy to
  // write down (compact: the system message; paper: the user message before the problem). Most
  // tests spell out the compact construction; the Paper* tests the authors'.
  static TeamSettings settings_for(Layout layout, const Names& names, int64_t budget = 100,
                                   PromptStyle style = PromptStyle::Compact) {
    TeamSettings settings;
    settings.layout = layout;
    settings.names = names;
    settings.prompts = default_prompts(style);
    (style == PromptStyle::Compact ? settings.prompts.system : settings.prompts.user) =
        "We are {names}, {count} of us.";
    settings.budget = budget;
    return settings;
  }

  std::unique_ptr<ScriptedTeam> make_team(const TeamSettings& settings) {
    return std::make_unique<ScriptedTeam>(settings, codec_, cache_options_for(16, 2048, kPageSize));
  }

  std::vector<int32_t> encode(const std::string& text) const {
    return codec_.encode(text, true, false);
  }
  int32_t length_of(const std::string& text) const {
    return static_cast<int32_t>(encode(text).size());
  }

  static TeamSettings team_settings_paper() {
    return settings_for(Layout::Combined, {"Alice"}, 100, PromptStyle::Paper);
  }

  ByteCodec codec_;
};

TEST_F(ScriptedTeamTest, TheCodecIsWhatTheTestsAssume) {
  EXPECT_EQ(encode("a### b"), (std::vector<int32_t>{'a', ByteCodec::kHashes, '#', ' ', 'b'}));
  EXPECT_EQ(encode("x<eos>"), (std::vector<int32_t>{'x', ByteCodec::kEos}));
  EXPECT_EQ(codec_.encode("x<eos>", false, true),
            (std::vector<int32_t>{ByteCodec::kBos, 'x', '<', 'e', 'o', 's', '>'}));
  EXPECT_EQ(codec_.decode(encode("### Past steps\n\n")), "### Past steps\n\n");
}

TEST_F(ScriptedTeamTest, CombinedViewsStepEndsAndHistoryMerges) {
  auto run = make_team(settings_for(Layout::Combined, {"Alice", "Bob", "Carol"}));
  Team& team = run->team();
  Script script;

  // Forward 1: the whole prompt into common, with logits for its last token.
  const std::string prompt =
      "We are Alice, Bob and Carol, 3 of us.\n\nWhat is 2+3?\n\n### Past steps\n\n";
  const int32_t prompt_length = length_of(prompt);
  {
    const ForwardBatch& batch = run->forward(script);
    EXPECT_EQ(batch.tokens, encode(prompt));
    EXPECT_EQ(batch.logit_rows, (std::vector<int32_t>{prompt_length - 1}));
  }
  EXPECT_EQ(team.common_length(), prompt_length);

  // Forward 2: the three constant blocks, each computed right after the prompt.
  const std::string others_header = "\n\n### Work in progress (others)\n\n";
  const std::string own_header_text = "### Work in progress (own)\n\n";
  const std::string marker_text = " <...>\n\n";
  BlockId common = -1, others = -1, own_header = -1, marker = -1;
  {
    const ForwardBatch& batch = run->forward(script);
    std::vector<int32_t> expected = encode(others_header);
    for (const std::string* text : {&own_header_text, &marker_text})
      for (int32_t id : encode(*text)) expected.push_back(id);
    EXPECT_EQ(batch.tokens, expected);
    EXPECT_TRUE(batch.logit_rows.empty());
    others = own_block(batch, 0);
    own_header = own_block(batch, static_cast<size_t>(length_of(others_header)));
    marker = own_block(batch, batch.size() - 1);
    common = batch.view_entries[0].block;
    EXPECT_EQ(entries_of(batch, 0),
              (std::vector<ViewEntry>{{common, prompt_length, prompt_length}, {others, 0, 1}}));
  }
  EXPECT_EQ(team.describe_view(0), (Names{"common", "others_header", "Bob", "marker", "Carol",
                                          "marker", "own_header", "Alice"}));
  EXPECT_EQ(team.describe_view(1), (Names{"common", "others_header", "Alice", "marker", "Carol",
                                          "marker", "own_header", "Bob"}));
  EXPECT_EQ(team.describe_view(2), (Names{"common", "others_header", "Alice", "marker", "Bob",
                                          "marker", "own_header", "Carol"}));

  // Decode pass 1 feeds each worker's first-step prefix; Alice then writes " Done.\n\n" and
  // samples "Z" in the pass that feeds the last "\n" and her next prefix.
  script[0] = bytes(" Done.\n\nZ");
  const std::string alice_first = "**Alice [1]:** Hi, I'm Alice.";
  const std::string bob_first = "**Bob [1]:** Hi, I'm Bob.";
  const std::string carol_first = "**Carol [1]:** Hi, I'm Carol.";
  const BlockId alice = team.step_block(0), bob = team.step_block(1), carol = team.step_block(2);
  {
    const ForwardBatch& batch = run->forward(script);
    EXPECT_EQ(tokens_into(batch, alice), encode(alice_first));
    EXPECT_EQ(tokens_into(batch, bob), encode(bob_first));
    EXPECT_EQ(tokens_into(batch, carol), encode(carol_first));
    EXPECT_EQ(batch.logit_rows.size(), 3u);
    // Alice's first token already sees all of Bob's and Carol's prefixes (instant sync).
    const int32_t h = length_of(others_header), b = length_of(bob_first),
                  m = length_of(marker_text), c = length_of(carol_first),
                  o = length_of(own_header_text);
    const int32_t position = prompt_length + h + b + m + c + m + o;  // Alice's index 0
    EXPECT_EQ(entries_of(batch, first_row_into(batch, alice)),
              (std::vector<ViewEntry>{{common, position, prompt_length},
                                      {others, position - prompt_length, h},
                                      {bob, position - prompt_length - h, b},
                                      {marker, position - prompt_length - h - b, m},
                                      {carol, position - prompt_length - h - b - m, c},
                                      {marker, position - prompt_length - h - b - m - c, m},
                                      {own_header, o, o},
                                      {alice, 0, 1}}));
  }
  // Passes 2..8 feed " Done.\n" while pass 8 samples the second "\n": the step ends in that
  // pass and joins the history at once, as it is in the cache (without that "\n").
  for (int pass = 2; pass <= 7; ++pass) run->forward(script);
  EXPECT_TRUE(run->merges().empty());
  run->forward(script);
  const int32_t step_length = length_of(alice_first + " Done.\n\n");
  ASSERT_EQ(run->merges().size(), 1u);
  EXPECT_EQ(run->merges()[0].rotation, prompt_length) << "keys rotate by common's old length";
  EXPECT_EQ(run->merges()[0].from.size(), static_cast<size_t>(step_length - 1));
  EXPECT_EQ(team.common_length(), prompt_length + step_length - 1);
  EXPECT_EQ(run->cache().length(team.step_block(0)), 0)
      << "the last \"\\n\" and the next prefix are pending";
  ProblemResult result = team.result();
  ASSERT_EQ(result.steps.size(), 1u);
  EXPECT_EQ(result.steps[0].worker, 0);
  EXPECT_EQ(result.steps[0].step, 1);
  EXPECT_EQ(result.steps[0].first_token, 0);
  EXPECT_EQ(result.steps[0].end_token, step_length) << "in the text, the step keeps its \"\\n\"";
  EXPECT_EQ(result.steps[0].finished_pass, 8);

  // Pass 9 feeds that "\n" and the second step's prefix into the new block, and its logits give
  // the new step's first token, "Z"; Bob's first token sees the longer history.
  {
    const ForwardBatch& batch = run->forward(script);
    EXPECT_EQ(tokens_into(batch, team.step_block(0)), encode("\n**Alice [2]:** "));
    const std::vector<ViewEntry> bob_view = entries_of(batch, first_row_into(batch, bob));
    ASSERT_FALSE(bob_view.empty());
    EXPECT_EQ(bob_view[0].block, common);
    EXPECT_EQ(bob_view[0].visible, prompt_length + step_length - 1);
  }
  EXPECT_EQ(team.describe_view(1), (Names{"common", "others_header", "Alice", "marker", "Carol",
                                          "marker", "own_header", "Bob"}));
  result = team.result();
  EXPECT_EQ(codec_.decode(result.workers[0].tokens),
            alice_first + " Done.\n\n" + "**Alice [2]:** Z");
  EXPECT_EQ(result.workers[0].live_step_first_token, step_length);
  EXPECT_EQ(result.workers[1].text, bob_first + std::string(9, 'x'));
  EXPECT_FALSE(team.done());
  EXPECT_EQ(format_transcript(result, codec_, default_prompts(PromptStyle::Compact)),
            std::string("Question: What is 2+3?\n\n") + alice_first + " Done.\n\n" +
                "**Alice [2]:** Z <...>\n\n" + bob_first + std::string(9, 'x') + " <...>\n\n" +
                carol_first + std::string(9, 'x') + " <...>\n\n");
}

// `sync: step` (docs/design.md §6) promises that a worker sees another group's tokens one pass
// late: in pass k it sees exactly what that worker had written after pass k-1, never its token
// of pass k (instant) nor only what it had after pass k-2 (two late); workers of its own group
// stay instant. Three workers in two groups: Alice and Carol in group 0, Bob in group 1. The
// same passes with instant sync see everything at once.
TEST_F(ScriptedTeamTest, StepSyncShowsOtherGroupsTokensExactlyOnePassLate) {
  for (const bool delayed : {true, false}) {
    SCOPED_TRACE(delayed ? "sync: step" : "instant sync");
    TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob", "Carol"});
    settings.worker_groups = 2;
    auto run = make_team(settings);
    run->set_delayed_sync(delayed);
    Team& team = run->team();
    Script script;
    run->forward(script);  // the prompt
    const ForwardBatch& headers = run->forward(script);
    const BlockId common = headers.view_entries[0].block;
    const BlockId others_header = own_block(headers, 0);
    const BlockId own_header =
        own_block(headers, static_cast<size_t>(length_of("\n\n### Work in progress (others)\n\n")));
    const BlockId marker = own_block(headers, headers.size() - 1);
    const size_t workers = 3;
    auto group_of = [](size_t w) { return w % 2; };
    // The blocks of worker w's view, by the names describe_view gives them.
    auto view_blocks = [&](size_t w) {
      std::vector<BlockId> blocks;
      for (const std::string& name : team.describe_view(w)) {
        if (name == "common") {
          blocks.push_back(common);
        } else if (name == "others_header") {
          blocks.push_back(others_header);
        } else if (name == "marker") {
          blocks.push_back(marker);
        } else if (name == "own_header") {
          blocks.push_back(own_header);
        } else {
          for (size_t o = 0; o < workers; ++o)
            if (team.names()[o] == name) blocks.push_back(team.step_block(o));
        }
      }
      return blocks;
    };

    // Each worker's step length after every decode pass (index 0: before the first).
    std::vector<std::vector<int64_t>> length_after(workers);
    for (size_t w = 0; w < workers; ++w)
      length_after[w].push_back(run->cache().length(team.step_block(w)));
    for (int pass = 1; pass <= 4; ++pass) {
      SCOPED_TRACE("decode pass " + std::to_string(pass));
      std::vector<BlockId> step(workers);
      for (size_t w = 0; w < workers; ++w) step[w] = team.step_block(w);
      const ForwardBatch& batch = run->forward(script);  // 'x' for everyone: no step ends
      for (size_t w = 0; w < workers; ++w) {
        ASSERT_EQ(team.step_block(w), step[w]);
        length_after[w].push_back(run->cache().length(step[w]));
        ASSERT_GT(length_after[w][pass], length_after[w][pass - 1]);  // everyone wrote
      }
      for (size_t w = 0; w < workers; ++w) {
        // What w must see of each block: another group's step as it was before this pass.
        auto seen = [&](BlockId b) {
          for (size_t o = 0; o < workers; ++o)
            if (b == step[o] && o != w && delayed && group_of(o) != group_of(w))
              return length_after[o][pass - 1];
          return run->cache().length(b);
        };
        const std::vector<BlockId> blocks = view_blocks(w);
        ASSERT_EQ(blocks.back(), step[w]);
        int64_t own_start = 0;
        for (size_t v = 0; v + 1 < blocks.size(); ++v) own_start += seen(blocks[v]);
        // Every row that w adds this pass, entry by entry (visible = min(length, q + 1), §3).
        int64_t index = length_after[w][pass - 1];
        for (size_t t = 0; t < batch.size(); ++t) {
          if (own_block(batch, t) != step[w]) continue;
          std::vector<ViewEntry> expected;
          const int64_t position = own_start + index;
          int64_t start = 0;
          for (BlockId b : blocks) {
            const int64_t q = position - start, visible = std::min(seen(b), q + 1);
            if (visible > 0)
              expected.push_back({b, static_cast<int32_t>(q), static_cast<int32_t>(visible)});
            start += seen(b);
          }
          EXPECT_EQ(entries_of(batch, t), expected) << team.names()[w] << "'s index " << index;
          ++index;
        }
        EXPECT_EQ(index, length_after[w][pass]);
      }
      // The promise itself, by hand: Alice (group 0) and Bob (group 1) see each other's text
      // as it was after the previous pass; Alice sees Carol's (group 0) as it is now.
      auto visible_in_last_row = [&](size_t w, size_t o) -> int64_t {
        size_t last = 0;
        for (size_t t = 0; t < batch.size(); ++t)
          if (own_block(batch, t) == step[w]) last = t;
        for (const ViewEntry& e : entries_of(batch, last))
          if (e.block == step[o]) return e.visible;
        return 0;  // not in the view: nothing visible
      };
      const int64_t expected_bob = length_after[1][delayed ? pass - 1 : pass];
      const int64_t expected_alice = length_after[0][delayed ? pass - 1 : pass];
      EXPECT_EQ(visible_in_last_row(0, 1), expected_bob);
      EXPECT_EQ(visible_in_last_row(2, 1), expected_bob);
      EXPECT_EQ(visible_in_last_row(1, 0), expected_alice);
      EXPECT_EQ(visible_in_last_row(0, 2), length_after[2][pass]);
      if (delayed) {  // neither instant nor two passes late
        EXPECT_NE(visible_in_last_row(0, 1), length_after[1][pass]);
        if (pass >= 2) {
          EXPECT_NE(visible_in_last_row(0, 1), length_after[1][pass - 2]);
        }
      }
    }
  }
}

// docs/design.md §2, the step boundary: a step joins the history in the pass that samples its last
// token, so every decode pass feeds every worker and keeps one sampled token per worker, and a
// step of n sampled tokens takes exactly n passes, in every layout and with worker groups (the
// merge happens on every rank alike). Counted from the results: each step's sampled tokens are
// its tokens without its known prefix.
TEST_F(ScriptedTeamTest, NoPassIsWastedAtAStepBoundary) {
  struct Case {
    Layout layout;
    Names names;
    int32_t groups;
  };
  const Case cases[] = {{Layout::Combined, {"Alice", "Bob"}, 1},
                        {Layout::Combined, {"Alice", "Bob", "Carol"}, 2},
                        {Layout::Interleaved, {"Alice", "Bob", "Carol"}, 1},
                        {Layout::Contiguous, {"Alice", "Bob"}, 1},
                        {Layout::Contiguous, {"Alice", "Bob", "Carol"}, 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(
        cat(layout_name(c.layout), ", ", c.names.size(), " workers, ", c.groups, " groups"));
    TeamSettings settings = settings_for(c.layout, c.names, /*budget=*/60);
    settings.worker_groups = c.groups;
    auto run = make_team(settings);
    run->set_delayed_sync(c.groups > 1);
    run->prefill();
    Team& team = run->team();
    Script script;
    // Steps of different lengths, so that steps end in different passes (and sometimes in one).
    const char* texts[] = {"Ok.\n\n", "Yes, so.\n\n", "No.\n\nHm.\n\n"};
    for (size_t w = 0; w < c.names.size(); ++w)
      for (int i = 0; i < 20; ++i)
        for (int32_t id : bytes(texts[w])) script[w].push_back(id);
    for (int64_t pass = 1; pass <= 60; ++pass) {
      const ForwardBatch& batch = run->forward(script);
      ASSERT_EQ(batch.logit_rows.size(), c.names.size()) << "pass " << pass << ": every worker";
      EXPECT_EQ(team.generated_tokens(), pass * static_cast<int64_t>(c.names.size()))
          << "pass " << pass << ": one kept token per worker";
    }
    while (!team.done()) run->forward(script);  // the finisher
    const ProblemResult result = team.result();
    EXPECT_EQ(result.stop_reason, "budget");
    EXPECT_EQ(result.forward_passes, 60);
    std::vector<int32_t> last_pass(c.names.size(), 0);
    std::vector<int32_t> steps_of(c.names.size(), 0);
    for (const StepRecord& step : result.steps) {
      const auto w = static_cast<size_t>(step.worker);
      ++steps_of[w];
      const std::string& format = step.step > 1 ? settings.prompts.step_prefix
                                  : w == 0 && !settings.prompts.lead_step_prefix.empty()
                                      ? settings.prompts.lead_step_prefix
                                      : settings.prompts.first_step_prefix;
      const int32_t prefix = length_of(
          expand_placeholders(format, {{"name", c.names[w]}, {"step", std::to_string(step.step)}}));
      EXPECT_EQ(step.end_token - step.first_token - prefix, step.finished_pass - last_pass[w])
          << c.names[w] << "'s step " << step.step << ": one pass per sampled token";
      last_pass[w] = step.finished_pass;
    }
    for (size_t w = 0; w < c.names.size(); ++w) {
      EXPECT_GE(steps_of[w], 5) << c.names[w];
      const WorkerRecord& worker = result.workers[w];
      // The live step: every pass since the last step end wrote one of its tokens (none is
      // left when the last pass ended a step).
      if (worker.live_step_first_token == static_cast<int32_t>(worker.tokens.size())) {
        EXPECT_EQ(last_pass[w], 60) << c.names[w];
        continue;
      }
      const int32_t prefix = length_of(
          expand_placeholders(settings.prompts.step_prefix,
                              {{"name", c.names[w]}, {"step", std::to_string(steps_of[w] + 1)}}));
      EXPECT_EQ(static_cast<int32_t>(worker.tokens.size()) - worker.live_step_first_token - prefix,
                60 - last_pass[w])
          << c.names[w];
    }
  }
}

TEST_F(ScriptedTeamTest, InterleavedHidesTheOthersLiveSteps) {
  auto run = make_team(settings_for(Layout::Interleaved, {"Alice", "Bob"}));
  run->prefill();
  Team& team = run->team();
  EXPECT_EQ(team.describe_view(0), (Names{"common", "own_header", "Alice"}));
  EXPECT_EQ(team.describe_view(1), (Names{"common", "own_header", "Bob"}));
  Script script;
  const ForwardBatch& batch = run->forward(script);
  const size_t row = first_row_into(batch, team.step_block(0));
  const std::vector<ViewEntry> view = entries_of(batch, row);
  ASSERT_EQ(view.size(), 3u);
  EXPECT_EQ(view[2], (ViewEntry{team.step_block(0), 0, 1}));
  for (const ViewEntry& entry : view) EXPECT_NE(entry.block, team.step_block(1));
}

TEST_F(ScriptedTeamTest, ContiguousKeepsOneGrowingBlockPerWorker) {
  auto run = make_team(settings_for(Layout::Contiguous, {"Alice", "Bob"}));
  run->prefill();
  Team& team = run->team();
  EXPECT_EQ(team.describe_view(1),
            (Names{"common", "others_header", "Alice", "marker", "own_header", "Bob"}));
  const int64_t common_before = team.common_length();
  const BlockId alice = team.step_block(0);
  Script script;
  script[0] = bytes(" Done.\n\n");
  // The prefix pass, 7 tokens, then the pass that feeds the last "\n" and the second prefix.
  for (int pass = 1; pass <= 9; ++pass) run->forward(script);
  EXPECT_EQ(team.common_length(), common_before) << "no history";
  EXPECT_TRUE(run->merges().empty());
  EXPECT_EQ(team.step_block(0), alice);
  const std::string text = "**Alice [1]:** Hi, I'm Alice. Done.\n\n**Alice [2]:** ";
  EXPECT_EQ(run->cache().length(alice), length_of(text));
  const ProblemResult result = team.result();
  ASSERT_EQ(result.steps.size(), 1u) << "steps are still recorded";
  EXPECT_EQ(result.steps[0].end_token, length_of("**Alice [1]:** Hi, I'm Alice. Done.\n\n"));
}

TEST_F(ScriptedTeamTest, ABoxedAnswerStopsTheTeamAtOnce) {
  auto run = make_team(settings_for(Layout::Combined, {"Alice", "Bob", "Carol"}));
  run->prefill();
  Script script;
  script[1] = bytes(" So \\boxed{5}");  // 13 tokens: the last one is sampled in pass 13
  for (int pass = 1; pass <= 12; ++pass) run->forward(script);
  EXPECT_FALSE(run->team().done());
  run->forward(script);
  ASSERT_TRUE(run->team().done());
  const ProblemResult result = run->team().result();
  EXPECT_EQ(result.stop_reason, "answer");
  EXPECT_EQ(result.answer, "5");
  EXPECT_EQ(result.correct, 1);
  EXPECT_EQ(result.forward_passes, 13);
  EXPECT_TRUE(result.finisher_text.empty());
  // In the last pass Alice (before Bob) kept her token; Carol (after him) did not.
  EXPECT_EQ(result.workers[0].text, "**Alice [1]:** Hi, I'm Alice." + std::string(13, 'x'));
  EXPECT_EQ(result.workers[1].text, "**Bob [1]:** Hi, I'm Bob. So \\boxed{5}");
  EXPECT_EQ(result.workers[2].text, "**Carol [1]:** Hi, I'm Carol." + std::string(12, 'x'));
}

TEST_F(ScriptedTeamTest, TheBudgetStopsAndTheFinisherAnswers) {
  const TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"}, /*budget=*/4);
  auto run = make_team(settings);
  run->prefill();
  Script script;
  for (int pass = 1; pass <= 4; ++pass) run->forward(script);  // the budget, writing "x"
  Team& team = run->team();
  ASSERT_FALSE(team.done()) << "the finisher runs next";
  // The finisher's pass: Alice's last sampled token, then the finisher text, in her own view.
  script[0] = bytes("7}");
  {
    const ForwardBatch& batch = run->forward(script);
    std::vector<int32_t> expected = {'x'};
    for (int32_t id : encode(settings.prompts.finisher)) expected.push_back(id);
    EXPECT_EQ(batch.tokens, expected) << "only worker 0 writes";
    // In a block of its own, right after Alice's view (her step block last).
    const std::vector<ViewEntry> view = entries_of(batch, 0);
    ASSERT_GE(view.size(), 2u);
    EXPECT_EQ(view[view.size() - 2].block, team.step_block(0));
    EXPECT_EQ(own_block(batch, 0), team.finisher_block());
    EXPECT_EQ(batch.logit_rows.size(), 1u);
  }
  EXPECT_FALSE(team.done());
  run->forward(script);  // feeds "7", samples "}"
  ASSERT_TRUE(team.done());
  const ProblemResult result = team.result();
  EXPECT_EQ(result.stop_reason, "budget");
  EXPECT_EQ(result.forward_passes, 4) << "finisher passes are not counted";
  EXPECT_EQ(result.answer, "7");
  EXPECT_EQ(result.correct, 0);
  EXPECT_EQ(result.finisher_text, settings.prompts.finisher + "7}");
  EXPECT_EQ(result.workers[0].text, "**Alice [1]:** Hi, I'm Alice.xxxx")
      << "the finisher is not part of the worker's tokens";
  EXPECT_EQ(format_transcript(result, codec_, settings.prompts),
            "Question: What is 2+3?\n\n**Alice [1]:** Hi, I'm Alice.xxxx <...>\n\n"
            "**Bob [1]:** Hi, I'm Bob.xxxx <...>\n\n[finisher] " +
                settings.prompts.finisher + "7}\n\n");
}

TEST_F(ScriptedTeamTest, TheFinisherStopsAfterItsTokensOrOnEos) {
  TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"}, /*budget=*/2);
  settings.prompts.finisher_tokens = 3;
  {
    auto run = make_team(settings);
    run->prefill();
    Script script;
    for (int pass = 1; pass <= 2; ++pass) run->forward(script);
    script[0] = bytes("abcd");
    for (int pass = 1; pass <= 2; ++pass) run->forward(script);
    EXPECT_FALSE(run->team().done());
    run->forward(script);
    ASSERT_TRUE(run->team().done()) << "three greedy tokens at most";
    const ProblemResult result = run->team().result();
    EXPECT_EQ(result.finisher_text, settings.prompts.finisher + "abc");
    EXPECT_TRUE(result.answer.empty());
    EXPECT_EQ(result.stop_reason, "budget");
  }
  {
    auto run = make_team(settings);
    run->prefill();
    Script script;
    for (int pass = 1; pass <= 2; ++pass) run->forward(script);
    script[0] = {ByteCodec::kEos};  // not suppressed in the finisher
    run->forward(script);
    ASSERT_TRUE(run->team().done());
    const ProblemResult result = run->team().result();
    EXPECT_EQ(result.finisher_text, settings.prompts.finisher) << "EOS adds no text";
    EXPECT_TRUE(result.answer.empty());
    EXPECT_EQ(result.correct, 0);
  }
}

TEST_F(ScriptedTeamTest, WorkersNeverWriteHeaderMarksBosEosOrThink) {
  auto run = make_team(settings_for(Layout::Combined, {"Alice", "Bob"}));
  run->prefill();
  Script script;
  // All suppressed: the one-hot logit becomes -inf, and greedy sampling falls back to the first
  // id that is allowed, byte 0.
  script[0] = {'#', ByteCodec::kHashes, ByteCodec::kEos, ByteCodec::kBos, ByteCodec::kThink};
  // Whitespace alone is not a header mark.
  script[1] = {' ', '\n', '*'};
  for (int pass = 1; pass <= 5; ++pass) run->forward(script);
  EXPECT_FALSE(run->team().done());
  const ProblemResult result = run->team().result();
  const std::vector<int32_t> prefix = encode("**Alice [1]:** Hi, I'm Alice.");
  std::vector<int32_t> alice = prefix;
  alice.insert(alice.end(), 5, 0);
  EXPECT_EQ(result.workers[0].tokens, alice);
  EXPECT_EQ(result.workers[1].text, "**Bob [1]:** Hi, I'm Bob. \n*xx");
}

TEST_F(ScriptedTeamTest, StepPrefixesAndRedundancyChecks) {
  {
    // Without a first-step prefix, the first step opens with the ordinary one.
    TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"});
    settings.prompts.first_step_prefix.clear();
    auto run = make_team(settings);
    run->prefill();
    Script script;
    const ForwardBatch& batch = run->forward(script);
    EXPECT_EQ(tokens_into(batch, run->team().step_block(0)), encode("**Alice [1]:** "));
    EXPECT_EQ(tokens_into(batch, run->team().step_block(1)), encode("**Bob [1]:** "));
  }
  // A check every 4 generated tokens: 2 per pass, so one is pending after pass 2, and Alice's
  // second step (opened in pass 3, which sampled its last "\n") takes it.
  TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"});
  settings.prompts.redundancy_interval = 4;
  auto run = make_team(settings);
  run->prefill();
  Script script;
  script[0] = bytes(".\n\n");
  for (int pass = 1; pass <= 3; ++pass) run->forward(script);
  const ForwardBatch& batch = run->forward(script);
  EXPECT_EQ(tokens_into(batch, run->team().step_block(0)),
            encode("\n**Alice [2]:** Quick check: am I doing redundant work? (yes/no): "));
}

TEST_F(ScriptedTeamTest, PlainDecodingUsesTheChatTemplateAndStopsOnEos) {
  const ByteCodec chat(ChatTemplate::ChatML);
  {
    // Collaborating: system prompt and problem in the template, then the history header.
    TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"});
    ScriptedTeam run(settings, chat, cache_options_for(16, 2048, kPageSize));
    Script script;
    const ForwardBatch& batch = run.forward(script);
    EXPECT_EQ(codec_.decode(batch.tokens),
              "<|system|>We are Alice and Bob, 2 of us.\n<|user|>What is 2+3?\n<|assistant|>"
              "### Past steps\n\n");
  }
  TeamSettings settings = settings_for(Layout::Combined, {"Alice"});
  settings.prompts.collaborate = false;
  ScriptedTeam run(settings, chat, cache_options_for(16, 2048, kPageSize));
  Team& team = run.team();
  Script script;
  // One forward for the prompt (no headers): its logits give the first token, "A".
  {
    const ForwardBatch& batch = run.forward(script, 'A');
    EXPECT_EQ(codec_.decode(batch.tokens), "<|user|>What is 2+3?\n<|assistant|>");
  }
  EXPECT_EQ(team.describe_view(0), (Names{"common", "Alice"}));
  script[0] = bytes("\\boxed{5}");
  script[0].push_back(ByteCodec::kEos);
  {
    const ForwardBatch& batch = run.forward(script);
    EXPECT_EQ(batch.tokens, (std::vector<int32_t>{'A'}));
  }
  for (int pass = 2; pass <= 9; ++pass) run.forward(script);
  EXPECT_FALSE(team.done()) << "plain decoding keeps the answer and runs on";
  run.forward(script);  // samples EOS
  ASSERT_TRUE(team.done());
  const ProblemResult result = team.result();
  EXPECT_EQ(result.stop_reason, "eos");
  EXPECT_EQ(result.answer, "5");
  EXPECT_EQ(result.forward_passes, 10);
  EXPECT_EQ(result.workers[0].text, "A\\boxed{5}");
  EXPECT_TRUE(result.finisher_text.empty());
  EXPECT_EQ(format_transcript(result, chat, settings.prompts),
            "Question: What is 2+3?\n\nA\\boxed{5}\n\n");
}

// The baselines (method independent / self_consistency): each worker stops on its own answer;
// the first answer ends the team, or with a vote the majority of equivalent answers once every
// worker has answered, a tie going to the answer given first.
TEST_F(ScriptedTeamTest, IndependentWorkersAnswerAloneAndVote) {
  struct Case {
    bool vote;
    std::vector<std::string> texts;  // what each worker writes
    std::string answer;
    int32_t answer_worker;
    int64_t passes;  // when the team stops
  };
  const Case cases[] = {
      // First answer: worker 0's, in the pass its step ends; the others are cut short.
      {false, {"\\boxed{5}.\n\n", "yy\\boxed{7}.\n\n", "yyyy\\boxed{5}.\n\n"}, "5", 0, 12},
      // Vote: 5 (workers 0 and 2) beats 7, once the last worker has answered.
      {true, {"\\boxed{5}.\n\n", "yy\\boxed{7}.\n\n", "yyyy\\boxed{5.0}.\n\n"}, "5", 0, 18},
      // A tie goes to the answer given first (worker 1's 7, two passes before worker 0's 5).
      {true, {"yy\\boxed{5}.\n\n", "\\boxed{7}.\n\n"}, "7", 1, 14},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.vote ? "vote" : "first answer");
    Names names = {"A", "B", "C"};
    names.resize(c.texts.size());
    TeamSettings settings = settings_for(Layout::Combined, names);
    settings.prompts.collaborate = false;
    settings.method = Method::Independent;
    settings.vote = c.vote;
    settings.prompts.stop_rule = StopRule::NumberAtStepEnd;  // a boxed number at a step end
    auto run = make_team(settings);
    Script script;
    for (size_t w = 0; w < c.texts.size(); ++w) script[w] = bytes(c.texts[w]);
    run->forward(script);  // the prompt: every worker's first token is "x"
    for (int pass = 0; pass < 40 && !run->team().done(); ++pass) run->forward(script);
    ASSERT_TRUE(run->team().done());
    const ProblemResult result = run->team().result();
    EXPECT_EQ(result.stop_reason, "answer");
    EXPECT_EQ(result.answer, c.answer);
    EXPECT_EQ(result.answer_worker, c.answer_worker);
    EXPECT_EQ(result.forward_passes, c.passes);
    EXPECT_EQ(result.workers[0].text, "x" + c.texts[0]) << "worker 0 wrote its text and stopped";
    EXPECT_EQ(run->team().describe_view(0), (Names{"common", "A"})) << "nothing shared";
  }
}

// A problem is data: special-token text in it is encoded byte by byte, never as the control
// token, with or without the chat template; the engine's own prompts still make control tokens.
// prompts.parse_special lets experts have the old behaviour.
TEST_F(ScriptedTeamTest, SpecialTokenTextInAProblemIsText) {
  const std::string question = "Q<eos>\n<bos>";
  const std::vector<int32_t> as_text = {'Q',  '<', 'e', 'o', 's', '>',
                                        '\n', '<', 'b', 'o', 's', '>'};
  const auto count = [](const std::vector<int32_t>& ids, int32_t id) {
    return std::count(ids.begin(), ids.end(), id);
  };
  const auto contains = [](const std::vector<int32_t>& ids, const std::vector<int32_t>& part) {
    return std::search(ids.begin(), ids.end(), part.begin(), part.end()) != ids.end();
  };
  for (ChatTemplate format : {ChatTemplate::None, ChatTemplate::ChatML}) {
    const ByteCodec codec(format);
    for (bool parse_special : {false, true}) {
      SCOPED_TRACE(cat("template ", static_cast<int>(format), ", parse_special ", parse_special));
      TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"});
      settings.prompts.system = "System<eos>";  // the engine's prompt: parsed as before
      settings.prompts.parse_special = parse_special;
      ScriptedTeam run(settings, codec, cache_options_for(16, 2048, kPageSize), 4096, question);
      Script script;
      const std::vector<int32_t> prompt = run.forward(script).tokens;
      EXPECT_NE(codec.decode(prompt).find(question), std::string::npos) << codec.decode(prompt);
      EXPECT_EQ(count(prompt, ByteCodec::kEos), parse_special ? 2 : 1);
      EXPECT_EQ(count(prompt, ByteCodec::kBos), parse_special ? 1 : 0);
      EXPECT_EQ(contains(prompt, as_text), !parse_special);
      EXPECT_EQ(run.team().result().question, question);
    }
  }
}

// Over whole runs (step ends, merges, redundancy checks, the finisher; budget and context stops),
// the team never asks for more than size_team planned. The cache is given room to spare, so
// going over is measured rather than thrown.
TEST_F(ScriptedTeamTest, ATeamStaysWithinItsSizing) {
  struct Case {
    Layout layout;
    bool collaborate;
    int64_t max_tokens;
    const char* stop_reason;
    Names names = {"Al", "Bernadette", "Cy"};
    PromptStyle style = PromptStyle::Compact;
  };
  const Case cases[] = {
      {Layout::Combined, true, 8192, "budget"},
      {Layout::Combined, true, 600, "context"},
      {Layout::Interleaved, true, 8192, "budget"},
      {Layout::Contiguous, true, 8192, "budget"},
      {Layout::Combined, false, 8192, "budget"},
      {Layout::Combined, false, 8192, "budget", {"Bernadette"}},
      {Layout::Combined, true, 8192, "budget", {"Al", "Bernadette", "Cy"}, PromptStyle::Paper},
      {Layout::Combined, true, 600, "context", {"Al", "Bernadette", "Cy"}, PromptStyle::Paper},
      {Layout::Interleaved, true, 8192, "budget", {"Al", "Bernadette"}, PromptStyle::Paper},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(layout_name(c.layout)) + (c.collaborate ? "" : ", plain") +
                 ", max_tokens " + std::to_string(c.max_tokens) + ", " +
                 std::to_string(c.names.size()) + " workers, " + prompt_style_name(c.style));
    TeamSettings settings = settings_for(c.layout, c.names, /*budget=*/40, c.style);
    settings.prompts.system = "Team {names}.";
    settings.prompts.redundancy_interval = 5;
    settings.prompts.collaborate = c.collaborate;
    settings.max_tokens = c.max_tokens;
    const TeamSizing sizing = size_team(settings, codec_, kPageSize);
    const RunSizing planned = size_run(sizing, 1);
    CacheOptions options = planned.cache;
    options.max_blocks += 4;
    options.pages += 64;
    options.max_pages_per_block += 4;
    ScriptedTeam run(settings, codec_, options, planned.transformer.max_batch_tokens);
    Team& team = run.team();

    Script script;
    for (size_t w = 0; w < c.names.size(); ++w)
      for (int i = 0; i < 100; ++i)
        for (int32_t id : bytes(w == 1 ? "Ok.\n\n" : ".\n\n")) script[w].push_back(id);
    const int first_decode = c.collaborate ? 2 : 1;  // after the prompt (and headers) forwards
    int64_t most_blocks = 0, most_entries = 0, most_step_tokens = 0;
    bool reencoded = false;  // the finisher ran over the re-encoded transcript alone
    for (int forward = 0; forward < 500 && !team.done(); ++forward) {
      const ForwardBatch& batch = run.forward(script);
      const int64_t blocks = blocks_in_use(run.cache(), options.max_blocks);
      EXPECT_LE(blocks, sizing.blocks) << "forward " << forward;
      EXPECT_LE(options.pages - run.cache().free_pages(), sizing.cache_pages)
          << "forward " << forward;
      for (size_t t = 0; t < batch.size(); ++t) {
        const int64_t entries = batch.view_offsets[t + 1] - batch.view_offsets[t];
        EXPECT_LE(entries, sizing.view_entries) << "forward " << forward << ", token " << t;
        most_entries = std::max(most_entries, entries);
      }
      // The re-encoding finisher prefills in chunks of what the batch has room for.
      const bool reencoding = c.style == PromptStyle::Paper && !team.result().stop_reason.empty();
      if (!team.result().stop_reason.empty() && batch.size() > 0 &&
          entries_of(batch, 0).size() == 1)
        reencoded = true;
      if (forward >= first_decode && !reencoding) {
        EXPECT_LE(run.scheduled(), sizing.step_tokens) << "forward " << forward;
        most_step_tokens = std::max(most_step_tokens, run.scheduled());
      }
      most_blocks = std::max(most_blocks, blocks);
    }
    ASSERT_TRUE(team.done());
    // The run went through what the sizing has to cover, and the block counts are tight.
    const ProblemResult result = team.result();
    EXPECT_EQ(result.stop_reason, c.stop_reason);
    EXPECT_FALSE(result.finisher_text.empty()) << "the finisher ran";
    EXPECT_GT(result.steps.size(), c.max_tokens > 1000 ? 3u : 0u);
    // Tight: the finisher's own block (and its view entry) is taken after worker 0's view unless
    // it re-encodes, which frees the team's blocks first.
    const int64_t unused = result.finisher_text.empty() || !reencoded ? 0 : 1;
    EXPECT_EQ(most_blocks, sizing.blocks - unused);
    // The finisher's entry is reached only when none of the view's blocks is empty then.
    EXPECT_GE(most_entries, sizing.view_entries - 1);
    EXPECT_GT(most_step_tokens, 0);
    if (c.collaborate && c.max_tokens > 1000) {
      bool checked = false;
      for (const WorkerRecord& worker : result.workers)
        checked = checked || worker.text.find("Quick check") != std::string::npos;
      EXPECT_TRUE(checked) << "a redundancy check lengthened some prefix";
    }
  }
}

// When the budget stops a team in the pass that samples the last token of worker 0's step, the
// step is finished but not merged, and the finisher follows that token in the same block; size_team
// plans for the longest such pass.
TEST_F(ScriptedTeamTest, AOneWorkerFinisherRightAfterAStepEndFitsItsSizing) {
  const TeamSettings settings = settings_for(Layout::Combined, {"Al"}, /*budget=*/3);
  const TeamSizing sizing = size_team(settings, codec_, kPageSize);
  auto run = make_team(settings);
  run->prefill();
  Script script;
  script[0] = bytes(".\n\n");  // sampled in passes 1-3
  const BlockId step = run->team().step_block(0);
  for (int pass = 1; pass <= 3; ++pass) run->forward(script);
  ASSERT_EQ(run->team().result().steps.size(), 1u);
  EXPECT_TRUE(run->merges().empty());
  const ForwardBatch& finisher = run->forward(script);
  EXPECT_EQ(codec_.decode(finisher.tokens), "\n" + settings.prompts.finisher);
  const std::vector<ViewEntry> view = entries_of(finisher, 0);
  ASSERT_GE(view.size(), 2u);
  EXPECT_EQ(view[view.size() - 2].block, step) << "the finisher follows the finished step";
  EXPECT_EQ(own_block(finisher, 0), run->team().finisher_block());
  EXPECT_LE(run->scheduled(), sizing.step_tokens);
  const ProblemResult result = run->team().result();
  EXPECT_EQ(result.workers[0].live_step_first_token,
            static_cast<int32_t>(result.workers[0].tokens.size()))
      << "no live step: the transcript shows the finished one once";
}

// record_logprobs: each sampled token keeps the log-softmax of the row it was sampled from, with
// the suppressed tokens at -inf (so a row whose one-hot token is suppressed is uniform over the
// 255 allowed ones), and its K most likely tokens; forced prefix tokens hold NaN and -1, so the
// arrays stay aligned with the tokens across a step end.
TEST_F(ScriptedTeamTest, RecordLogprobsKeepsEachSampledTokensDistribution) {
  TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"});
  settings.record_logprobs = 3;
  auto run = make_team(settings);
  run->prefill();
  Script script;
  script[0] = {'#', 'a'};       // '#' is suppressed: greedy falls back to byte 0
  script[1] = bytes(".\n\nZ");  // "Z": the second step's first token
  for (int pass = 1; pass <= 6; ++pass) run->forward(script);
  const ProblemResult result = run->team().result();
  const WorkerRecord& alice = result.workers[0];
  const WorkerRecord& bob = result.workers[1];

  const std::vector<int32_t> alice_prefix = encode("**Alice [1]:** Hi, I'm Alice.");
  std::vector<int32_t> expected_alice = alice_prefix;
  for (int32_t token : std::initializer_list<int32_t>{0, 'a', 'x', 'x', 'x', 'x'})
    expected_alice.push_back(token);
  ASSERT_EQ(alice.tokens, expected_alice);
  std::vector<int32_t> expected_bob = encode("**Bob [1]:** Hi, I'm Bob.");
  const size_t bob_first_prefix = expected_bob.size();
  for (char c : std::string(".\n\n")) expected_bob.push_back(c);
  const size_t bob_second_step = expected_bob.size();
  for (int32_t id : encode("**Bob [2]:** ")) expected_bob.push_back(id);
  const size_t bob_second_prefix_end = expected_bob.size();
  for (int32_t token : std::initializer_list<int32_t>{'Z', 'x', 'x'}) expected_bob.push_back(token);
  ASSERT_EQ(bob.tokens, expected_bob);

  for (const WorkerRecord* worker : {&alice, &bob}) {
    EXPECT_EQ(worker->top_k, 3);
    ASSERT_EQ(worker->logprobs.size(), worker->tokens.size()) << worker->name;
    ASSERT_EQ(worker->top_ids.size(), worker->tokens.size() * 3) << worker->name;
    ASSERT_EQ(worker->top_logprobs.size(), worker->tokens.size() * 3) << worker->name;
  }
  auto forced = [](const WorkerRecord& worker, size_t i) {
    return std::isnan(worker.logprobs[i]) && worker.top_ids[3 * i] == -1 &&
           worker.top_ids[3 * i + 2] == -1 && std::isnan(worker.top_logprobs[3 * i + 1]);
  };
  // A one-hot row of 100 among 254 other allowed zeros: the chosen token has log p =
  // -log(1 + 254 e^-100) (about -1e-41), the next ones (lowest ids first) about -100.
  auto one_hot = [](const WorkerRecord& worker, size_t i) {
    const int32_t token = worker.tokens[i];
    EXPECT_LE(worker.logprobs[i], 0.0f) << worker.name << " " << i;
    EXPECT_NEAR(worker.logprobs[i], 0.0f, 1e-30f) << worker.name << " " << i;
    EXPECT_EQ(worker.top_ids[3 * i], token) << worker.name << " " << i;
    EXPECT_EQ(worker.top_ids[3 * i + 1], 0) << worker.name << " " << i;
    EXPECT_EQ(worker.top_ids[3 * i + 2], 1) << worker.name << " " << i;
    EXPECT_EQ(worker.top_logprobs[3 * i], worker.logprobs[i]);
    EXPECT_FLOAT_EQ(worker.top_logprobs[3 * i + 1], -100.0f);
  };
  for (size_t i = 0; i < alice_prefix.size(); ++i) EXPECT_TRUE(forced(alice, i)) << i;
  const size_t zero = alice_prefix.size();
  EXPECT_FLOAT_EQ(alice.logprobs[zero], static_cast<float>(-std::log(255.0)));
  EXPECT_EQ(alice.top_ids[3 * zero], 0);
  EXPECT_EQ(alice.top_ids[3 * zero + 1], 1);
  EXPECT_EQ(alice.top_ids[3 * zero + 2], 2);
  EXPECT_FLOAT_EQ(alice.top_logprobs[3 * zero + 2], static_cast<float>(-std::log(255.0)));
  for (size_t i = zero + 1; i < alice.tokens.size(); ++i) one_hot(alice, i);

  for (size_t i = 0; i < bob.tokens.size(); ++i) {
    const bool prefix = i < bob_first_prefix || (i >= bob_second_step && i < bob_second_prefix_end);
    if (prefix)
      EXPECT_TRUE(forced(bob, i)) << i;
    else
      one_hot(bob, i);
  }

  // Off (the default): nothing recorded.
  auto plain = make_team(settings_for(Layout::Combined, {"Alice", "Bob"}));
  plain->prefill();
  Script again;
  for (int pass = 1; pass <= 2; ++pass) plain->forward(again);
  const ProblemResult off = plain->team().result();
  EXPECT_EQ(off.workers[0].top_k, 0);
  EXPECT_TRUE(off.workers[0].logprobs.empty());
  EXPECT_TRUE(off.workers[0].top_ids.empty());
}

// ---- prompts.style: paper (the authors' construction, eqimp/hogwild_llm) ----

// The prompt is the user message (collaboration prompt, "\n\n", problem) with no history title;
// the header blocks are computed on their own, positions from 0; the marker closing the last other
// step and the own header are one block, "<...>" without a space; between other steps a marker
// block; the first worker opens with an invitation to plan.
TEST_F(ScriptedTeamTest, PaperHeadersAreStandaloneBlocksAndTheMarkerOpensTheOwnHeader) {
  auto run =
      make_team(settings_for(Layout::Combined, {"Alice", "Bob", "Carol"}, 100, PromptStyle::Paper));
  Team& team = run->team();
  Script script;
  const std::string prompt = "We are Alice, Bob and Carol, 3 of us.\n\nWhat is 2+3?\n\n";
  const int32_t prompt_length = length_of(prompt);
  EXPECT_EQ(run->forward(script).tokens, encode(prompt));

  const std::string others_text = "\n\n### Work in progress (others)\n\n";
  const std::string marker_text = "<...>\n\n";
  const std::string own_text = "<...>\n\n### Work in progress (own)\n\n";
  BlockId others = -1, marker = -1, own = -1;
  {
    const ForwardBatch& batch = run->forward(script);
    EXPECT_EQ(codec_.decode(batch.tokens), others_text + marker_text + own_text);
    others = own_block(batch, 0);
    marker = own_block(batch, static_cast<size_t>(length_of(others_text)));
    own = own_block(batch, batch.size() - 1);
    // Every header token sees its own block only, from position 0.
    for (size_t t = 0; t < batch.size(); ++t) {
      const BlockId block = own_block(batch, t);
      const int32_t index =
          static_cast<int32_t>(t) - (block == others   ? 0
                                     : block == marker ? length_of(others_text)
                                                       : length_of(others_text + marker_text));
      EXPECT_EQ(entries_of(batch, t), (std::vector<ViewEntry>{{block, index, index + 1}})) << t;
    }
  }
  EXPECT_EQ(team.describe_view(0),
            (Names{"common", "others_header", "Bob", "marker", "Carol", "own_header", "Alice"}));
  EXPECT_EQ(team.describe_view(2),
            (Names{"common", "others_header", "Alice", "marker", "Bob", "own_header", "Carol"}));

  const std::string alice_first = "**Alice [1]:** Hi, I'm Alice. Here's how we can";
  const std::string bob_first = "**Bob [1]:** Hi, I'm Bob.";
  const std::string carol_first = "**Carol [1]:** Hi, I'm Carol.";
  const ForwardBatch& batch = run->forward(script);
  const BlockId alice = team.step_block(0);
  EXPECT_EQ(tokens_into(batch, alice), encode(alice_first));
  EXPECT_EQ(tokens_into(batch, team.step_block(1)), encode(bob_first));
  EXPECT_EQ(tokens_into(batch, team.step_block(2)), encode(carol_first));
  const int32_t h = length_of(others_text), b = length_of(bob_first), m = length_of(marker_text),
                c = length_of(carol_first), o = length_of(own_text);
  const int32_t position = prompt_length + h + b + m + c + o;  // Alice's index 0
  const BlockId common = batch.view_entries[0].block;
  EXPECT_EQ(entries_of(batch, first_row_into(batch, alice)),
            (std::vector<ViewEntry>{{common, position, prompt_length},
                                    {others, position - prompt_length, h},
                                    {team.step_block(1), position - prompt_length - h, b},
                                    {marker, position - prompt_length - h - b, m},
                                    {team.step_block(2), position - prompt_length - h - b - m, c},
                                    {own, o, o},
                                    {alice, 0, 1}}));
  const ProblemResult result = team.result();
  EXPECT_EQ(format_transcript(result, codec_, team_settings_paper().prompts),
            "Question: What is 2+3?\n\n" + alice_first + "x<...>\n\n" + bob_first + "x<...>\n\n" +
                carol_first + "x<...>\n\n");
}

// Two workers (the authors' case): [common, others, other's step, marker+own header, own step];
// one worker or the interleaved layout: the own header opens with the step separator.
TEST_F(ScriptedTeamTest, PaperViewsForTwoWorkersOneWorkerAndInterleaved) {
  {
    auto run = make_team(settings_for(Layout::Combined, {"Alice", "Bob"}, 100, PromptStyle::Paper));
    Script script;
    run->forward(script);
    EXPECT_EQ(codec_.decode(run->forward(script).tokens),
              "\n\n### Work in progress (others)\n\n<...>\n\n### Work in progress (own)\n\n");
    EXPECT_EQ(run->team().describe_view(1),
              (Names{"common", "others_header", "Alice", "own_header", "Bob"}));
  }
  for (const auto& [layout, names] : {std::pair{Layout::Interleaved, Names{"Alice", "Bob"}},
                                      std::pair{Layout::Combined, Names{"Alice"}}}) {
    auto run = make_team(settings_for(layout, names, 100, PromptStyle::Paper));
    Script script;
    run->forward(script);
    EXPECT_EQ(codec_.decode(run->forward(script).tokens), "\n\n### Work in progress (own)\n\n");
    EXPECT_EQ(run->team().describe_view(0), (Names{"common", "own_header", "Alice"}));
  }
}

// In the chat template the user message holds the collaboration prompt, whose special-token
// text parses (the authors' prompt wraps its examples in the template), and the problem, which
// stays data.
TEST_F(ScriptedTeamTest, PaperPromptIsTheUserMessageAndTheProblemStaysData) {
  const ByteCodec chat(ChatTemplate::ChatML);
  TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"}, 100, PromptStyle::Paper);
  settings.prompts.user = "Team {names}.<eos>";
  ScriptedTeam run(settings, chat, cache_options_for(16, 2048, kPageSize), 4096, "Q<eos>");
  Script script;
  const std::vector<int32_t> prompt = run.forward(script).tokens;
  EXPECT_EQ(chat.decode(prompt), "<|user|>Team Alice and Bob.<eos>\n\nQ<eos>\n<|assistant|>");
  EXPECT_EQ(std::count(prompt.begin(), prompt.end(), ByteCodec::kEos), 1);
  const std::vector<int32_t> question = {'Q', '<', 'e', 'o', 's', '>'};
  EXPECT_NE(std::search(prompt.begin(), prompt.end(), question.begin(), question.end()),
            prompt.end());
}

// The authors' stop rule: only at a step end, and only for a \boxed{} that holds a number; with
// the budget spent, a number boxed anywhere in the text skips the finisher.
TEST_F(ScriptedTeamTest, PaperStopsAtAStepEndWithANumberInBoxed) {
  {
    auto run = make_team(settings_for(Layout::Combined, {"Alice", "Bob"}, 100, PromptStyle::Paper));
    run->prefill();
    Script script;
    // "\boxed{x}" is no number; "\boxed{5}" mid-step does not stop; its step end does.
    script[1] = bytes(" \\boxed{x}.\n\n So \\boxed{5}. Yes.\n\n");
    const auto until_end = static_cast<int>(script[1].size());
    for (int pass = 1; pass < until_end; ++pass) {
      run->forward(script);
      ASSERT_FALSE(run->team().done()) << "pass " << pass;
    }
    run->forward(script);
    ASSERT_TRUE(run->team().done());
    const ProblemResult result = run->team().result();
    EXPECT_EQ(result.stop_reason, "answer");
    EXPECT_EQ(result.answer, "5");
    EXPECT_EQ(result.correct, 1);
    EXPECT_EQ(result.steps.size(), 2u) << "the answering step is finished";
    EXPECT_TRUE(result.finisher_text.empty());
  }
  {
    TeamSettings settings =
        settings_for(Layout::Combined, {"Alice", "Bob"}, 12, PromptStyle::Paper);
    auto run = make_team(settings);
    run->prefill();
    Script script;
    script[0] = bytes(" \\boxed{7} and");  // its first 12 tokens hold it; never a step end
    for (int pass = 1; pass <= 12; ++pass) run->forward(script);
    ASSERT_TRUE(run->team().done()) << "no finisher: the text holds a number";
    const ProblemResult result = run->team().result();
    EXPECT_EQ(result.stop_reason, "budget");
    EXPECT_EQ(result.answer, "7");
    EXPECT_TRUE(result.finisher_text.empty());
  }
}

// The authors' quick check: a step opens with it when MORE than `interval` tokens were fed since
// the last one (prefixes and the carried last token included; the first prefixes are not counted).
// Alice ends a step every 3 passes (".\n\n"); Bob never. Fed after passes 1, 2: 2 + 2 = 4 when
// Alice's step ends in pass 3; then "\n**Alice [2]:** " (16) and Bob's token: 21; passes 4, 5
// add 4: 25 when her second step ends in pass 6. So interval 24 puts the check into step 3, and
// interval 25 (not more) does not.
TEST_F(ScriptedTeamTest, PaperQuickCheckCountsFedTokensAsTheAuthors) {
  EXPECT_EQ(length_of("\n**Alice [2]:** "), 16);
  for (const int64_t interval : {24, 25}) {
    SCOPED_TRACE(interval);
    TeamSettings settings =
        settings_for(Layout::Combined, {"Alice", "Bob"}, 100, PromptStyle::Paper);
    settings.prompts.redundancy_interval = interval;
    auto run = make_team(settings);
    run->prefill();
    Script script;
    script[0] = bytes(".\n\n.\n\n.\n\n");
    for (int pass = 1; pass <= 6; ++pass) run->forward(script);
    const ForwardBatch& batch = run->forward(script);
    const std::string check = interval == 24 ? settings.prompts.redundancy_check : "";
    EXPECT_EQ(codec_.decode(tokens_into(batch, run->team().step_block(0))),
              "\n**Alice [3]:** " + check);
  }
}

// The authors' finisher: out of budget without an answer, the team's blocks are given back and
// worker 0 decodes greedily in a fresh block over the re-encoded transcript (the prompt's tokens,
// then history, the others' header, every live step closed by "<...>\n\n", and the finisher
// sentence, encoded as one text), positions from 0; all finisher_tokens are written (no stop at
// the answer), the answer is the boxed number.
TEST_F(ScriptedTeamTest, PaperFinisherReencodesTheTranscriptInAFreshBlock) {
  TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"}, 6, PromptStyle::Paper);
  settings.prompts.finisher_tokens = 4;
  auto run = make_team(settings);
  Script script;
  const std::vector<int32_t> prompt = run->forward(script).tokens;
  run->forward(script);  // the headers
  script[1] = bytes("Ok.\n\n");
  for (int pass = 1; pass <= 6; ++pass) run->forward(script);
  Team& team = run->team();
  ASSERT_FALSE(team.done());
  script[0] = bytes("7}.!");
  const ForwardBatch& batch = run->forward(script);
  const std::string text =
      "**Bob [1]:** Hi, I'm Bob.Ok.\n\n"
      "\n\n### Work in progress (others)\n\n"
      "**Alice [1]:** Hi, I'm Alice. Here's how we canxxxxxx<...>\n\n"
      "**Bob [2]:** x<...>\n\n" +
      settings.prompts.finisher;
  std::vector<int32_t> expected = prompt;
  for (int32_t id : encode(text)) expected.push_back(id);
  EXPECT_EQ(batch.tokens, expected);
  const BlockId fresh = own_block(batch, 0);
  for (size_t t = 0; t < batch.size(); t += 97)
    EXPECT_EQ(
        entries_of(batch, t),
        (std::vector<ViewEntry>{{fresh, static_cast<int32_t>(t), static_cast<int32_t>(t) + 1}}));
  EXPECT_EQ(batch.logit_rows.size(), 1u);
  for (int pass = 0; pass < 3; ++pass) {
    ASSERT_FALSE(team.done()) << "all 4 tokens, though \"7}\" answers";
    EXPECT_EQ(run->forward(script).tokens.size(), 1u);
  }
  ASSERT_TRUE(team.done());
  const ProblemResult result = team.result();
  EXPECT_EQ(result.stop_reason, "budget");
  EXPECT_EQ(result.answer, "7");
  EXPECT_EQ(result.finisher_text, settings.prompts.finisher + "7}.!");
  EXPECT_EQ(result.forward_passes, 6);

  // In chunks when the text is longer than a batch holds: logits only after the last chunk.
  auto chunked =
      std::make_unique<ScriptedTeam>(settings, codec_, cache_options_for(16, 2048, kPageSize), 128);
  Script again;
  again[1] = bytes("Ok.\n\n");
  for (int forward = 0; forward < 2 + 6; ++forward) chunked->forward(again);
  int chunks = 0;
  size_t fed = 0;
  while (fed < expected.size()) {
    const ForwardBatch& part = chunked->forward(again);
    ++chunks;
    fed += part.size();
    EXPECT_EQ(part.logit_rows.size(), fed == expected.size() ? 1u : 0u);
  }
  EXPECT_EQ(fed, expected.size());
  EXPECT_GT(chunks, 1);
}

// prompts.finisher_mode: in_cache: the finisher after worker 0's last token, in its own view.
TEST_F(ScriptedTeamTest, InCacheFinisherIsAnOption) {
  TeamSettings settings = settings_for(Layout::Combined, {"Alice", "Bob"}, 4, PromptStyle::Paper);
  settings.prompts.finisher_mode = FinisherMode::InCache;
  auto run = make_team(settings);
  run->prefill();
  Script script;
  for (int pass = 1; pass <= 4; ++pass) run->forward(script);
  const ForwardBatch& batch = run->forward(script);
  std::vector<int32_t> expected = {'x'};
  for (int32_t id : encode(settings.prompts.finisher)) expected.push_back(id);
  EXPECT_EQ(batch.tokens, expected);
  const std::vector<ViewEntry> view = entries_of(batch, 0);
  ASSERT_GE(view.size(), 2u);
  EXPECT_EQ(view[view.size() - 2].block, run->team().step_block(0));
  EXPECT_EQ(own_block(batch, 0), run->team().finisher_block());
}

}  // namespace

}  // namespace hogwild
