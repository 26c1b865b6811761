// The scheduler's text rules: step ends, prompt text, redundancy checks (answers: test_grading).
#include <gtest/gtest.h>

#include <initializer_list>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "hogwild/text_rules.h"

namespace hogwild {
namespace {

// Pushes the tokens in order; returns the index of the first token that ends the step, or -1.
int first_step_end(std::initializer_list<std::string_view> tokens, std::string_view prefix = {}) {
  StepEndDetector detector;
  detector.reset(prefix);
  int index = 0;
  for (const std::string_view token : tokens) {
    if (detector.push(token)) return index;
    ++index;
  }
  return -1;
}

bool ends_step(std::string_view text_before, std::string_view token) {
  StepEndDetector detector;
  detector.reset(text_before);
  return detector.push(token);
}

// ---- StepEndDetector ----

TEST(StepEndDetector, EndsAfterSentenceEndAndSeparatorToken) {
  EXPECT_EQ(first_step_end({"Done", ".", "\n\n"}), 2);
  EXPECT_EQ(first_step_end({"Done.", "\n\n"}), 1);
  EXPECT_EQ(first_step_end({"Done", ".\n\n"}), 1);
  EXPECT_TRUE(ends_step("Is it 5", "?\n\n"));
  EXPECT_TRUE(ends_step("It is 5", "!\n\n"));
  EXPECT_TRUE(ends_step("Wait", "\xE2\x80\xA6\n\n"));  // "…"
  EXPECT_TRUE(ends_step("Wait\xE2\x80\xA6", "\n\n"));
  EXPECT_TRUE(ends_step("Wait...", "\n\n"));
  EXPECT_TRUE(ends_step("\xE5\xA5\xBD\xE3\x80\x82", "\n\n"));  // "好。"
  EXPECT_TRUE(ends_step("Really\xE2\x80\xBD", "\n\n"));        // "‽"
}

TEST(StepEndDetector, NoSentenceEndNoStepEnd) {
  EXPECT_FALSE(ends_step("The value is 3.14", "\n\n"));
  EXPECT_FALSE(ends_step("Let me compute", "\n\n"));
  EXPECT_FALSE(ends_step("So x = 5:", "\n\n"));
  EXPECT_FALSE(ends_step("", "\n\n"));
  EXPECT_FALSE(ends_step("The answer is \\boxed{18}", "\n\n"));
}

TEST(StepEndDetector, ClosersAfterSentenceEndDoNotCount) {
  // As in the paper: the stripped text must end with the mark itself.
  EXPECT_FALSE(ends_step("(see above.)", "\n\n"));
  EXPECT_FALSE(ends_step("**Done.**", "\n\n"));
  EXPECT_FALSE(ends_step("$x = 1.$", "\n\n"));
  EXPECT_FALSE(ends_step("[1, 2.]", "\n\n"));
}

TEST(StepEndDetector, TrailingWhitespaceIgnored) {
  EXPECT_TRUE(ends_step("Done.  ", "\n\n"));
  EXPECT_TRUE(ends_step("Done.\t", "\n\n"));
  EXPECT_TRUE(ends_step("Done.", " \n\n"));
  EXPECT_TRUE(ends_step("Done.\n", "\n\n"));  // the last "\n\n" spans the boundary
}

TEST(StepEndDetector, SeparatorMayBeSplitOverTwoTokens) {
  EXPECT_EQ(first_step_end({"Done.", "\n", "\n"}), 2);
  EXPECT_EQ(first_step_end({"Done.\n", "\n"}), 1);
  EXPECT_EQ(first_step_end({"Done", "\n", "\n", "Next.", "\n\n"}), 4);  // no sentence end
  EXPECT_EQ(first_step_end({"Done.", "\n", "x", "\n"}), -1);            // not a pair
}

TEST(StepEndDetector, LongerSeparatorTokens) {
  EXPECT_TRUE(ends_step("Done.", "\n\n\n"));
  EXPECT_TRUE(ends_step("Done", ".\n\n\n"));
  EXPECT_TRUE(ends_step("Done", "!\n\nThe"));  // text after the separator stays in the step
  EXPECT_FALSE(ends_step("Value 3.14", "\n\n\n"));
}

TEST(StepEndDetector, LastSeparatorDecides) {
  // The rule looks only before the last "\n\n" (as the paper's rindex does).
  EXPECT_FALSE(ends_step("First.", "\n\nsecond\n\n"));
  EXPECT_TRUE(ends_step("first", "\n\nSecond.\n\n"));
}

TEST(StepEndDetector, TextAccumulatesAndResetStartsANewStep) {
  StepEndDetector detector;
  EXPECT_EQ(detector.text(), "");
  EXPECT_FALSE(detector.push("Hello"));
  EXPECT_FALSE(detector.push(" world."));
  EXPECT_TRUE(detector.push("\n\n"));
  EXPECT_EQ(detector.text(), "Hello world.\n\n");
  detector.reset("**Alice [2]:** ");
  EXPECT_EQ(detector.text(), "**Alice [2]:** ");
  EXPECT_FALSE(detector.push("Next"));
  EXPECT_EQ(detector.text(), "**Alice [2]:** Next");
  detector.reset();
  EXPECT_EQ(detector.text(), "");
}

TEST(StepEndDetector, PrefixIsPartOfStepText) {
  // A prefix ending with a sentence end lets a bare separator end the step.
  EXPECT_EQ(first_step_end({"\n\n"}, "**Bob [3]:** Quick check: am I doing redundant work?"), 0);
  EXPECT_EQ(first_step_end({"\n\n"}, "**Bob [3]:** "), -1);
}

TEST(StepEndDetector, OneTokenRuleIsTheAuthors) {
  // prompts.step_end: one_token: only a token holding "\n\n" ends a step (eqimp/hogwild_llm
  // MathFormatting.is_end_of_step); the sentence rule stays, fences do not count.
  StepEndDetector detector;
  detector.require_one_token(true);
  detector.reset("**Bob [2]:** ");
  EXPECT_FALSE(detector.push("Done."));
  EXPECT_FALSE(detector.push("\n"));
  EXPECT_FALSE(detector.push("\n"));  // a split pair: ends a step under two_newlines only
  EXPECT_FALSE(detector.push("So"));
  EXPECT_FALSE(detector.push("\n\n"));  // one token, but no sentence end before it
  EXPECT_FALSE(detector.push("Yes."));
  EXPECT_TRUE(detector.push("\n\n\n"));
  detector.reset("```\nx = 1.");  // a fence open: still a step end, as in their code
  EXPECT_TRUE(detector.push("\n\n"));
  StepEndDetector ours;
  ours.reset("```\nx = 1.");
  EXPECT_FALSE(ours.push("\n\n"));
}

TEST(StepEndDetector, SeparatorInsideCodeFenceDoesNotEnd) {
  EXPECT_EQ(first_step_end({"Code:\n```python\n", "x = 1.", "\n\n", "y = 2.", "\n\n", "```\n",
                            "Done.", "\n\n"}),
            7);
  EXPECT_EQ(first_step_end({"Code:\n~~~\n", "a.", "\n\n", "~~~\n", "b.", "\n\n"}), 5);
  // A tilde fence is not closed by backticks, nor a long fence by a shorter one.
  EXPECT_FALSE(ends_step("~~~\nx.\n```\ny.", "\n\n"));
  EXPECT_FALSE(ends_step("````\nx.\n```\ny.", "\n\n"));
  EXPECT_TRUE(ends_step("````\nx.\n`````\ny.", "\n\n"));
  // Indented fences count (lists); fences closed in the same step do not block.
  EXPECT_FALSE(ends_step("1. Code:\n   ```\n   x.", "\n\n"));
  EXPECT_TRUE(ends_step("```\nx = 1\n```\nSo x is 1.", "\n\n"));
  // "```x```" on one line is inline code, not a fence.
  EXPECT_TRUE(ends_step("Use ```x``` here.", "\n\n"));
  EXPECT_TRUE(ends_step("```x = 1```\nDone.", "\n\n"));
  // Not at line start: not a fence.
  EXPECT_TRUE(ends_step("Write ``` then.", "\n\n"));
}

TEST(StepEndDetector, SeparatorInsideDisplayMathDoesNotEnd) {
  EXPECT_FALSE(ends_step("We get\n$$\nx = 1.", "\n\n"));
  EXPECT_TRUE(ends_step("We get\n$$\nx = 1\n$$\nSo x is 1.", "\n\n"));
  EXPECT_TRUE(ends_step("We get $$x = 1$$ so x is 1.", "\n\n"));
  EXPECT_FALSE(ends_step("We get \\[ x = 1.", "\n\n"));
  EXPECT_TRUE(ends_step("We get \\[ x = 1 \\] and so on.", "\n\n"));
  EXPECT_EQ(first_step_end({"So\n\\[", "a = b.", "\n\n", "\\]", " Thus.", "\n\n"}), 5);
  // $$ does not close \[ and \] does not close $$.
  EXPECT_FALSE(ends_step("\\[ x $$ y.", "\n\n"));
  EXPECT_FALSE(ends_step("$$ x \\] y.", "\n\n"));
  // Escapes: "\$" is a dollar sign, "\\[" is a LaTeX line break.
  EXPECT_TRUE(ends_step("It costs \\$$5.", "\n\n"));
  EXPECT_TRUE(ends_step("a \\\\[2pt] b.", "\n\n"));
  // Math markers inside code are code.
  EXPECT_TRUE(ends_step("```bash\necho $$\n```\nDone.", "\n\n"));
  // Fences inside math are math.
  EXPECT_FALSE(ends_step("$$\n```\n$$\n```\nx.", "\n\n"));
  EXPECT_TRUE(ends_step("$$\n```\n$$\nDone.", "\n\n"));
}

TEST(StepEndDetector, FenceStateDoesNotLeakAcrossSteps) {
  StepEndDetector detector;
  EXPECT_FALSE(detector.push("```\nopen."));
  EXPECT_FALSE(detector.push("\n\n"));
  detector.reset();
  EXPECT_FALSE(detector.push("Closed."));
  EXPECT_TRUE(detector.push("\n\n"));
}

TEST(StepEndDetector, RandomTokensKeepTheRule) {
  // Tokens drawn from the characters the rules look at: a step end needs a "\n\n" completed by
  // the token and a sentence end before it, and the text is the concatenation of what was pushed.
  static constexpr std::string_view kPieces[] = {"\n", "\n\n", ".",  "a", " ", "`", "```", "~~~",
                                                 "$",  "$$",   "\\", "[", "]", "{", "}",   ".\n\n"};
  std::mt19937 random(7);
  for (int trial = 0; trial < 2000; ++trial) {
    StepEndDetector detector;
    std::string expected_text;
    for (int token = 0; token < 12; ++token) {
      std::string text;
      for (int piece = 1 + static_cast<int>(random() % 3); piece > 0; --piece) {
        text += kPieces[random() % std::size(kPieces)];
      }
      expected_text += text;
      const bool ended = detector.push(text);
      ASSERT_EQ(detector.text(), expected_text);
      if (ended) {
        const size_t separator = expected_text.rfind("\n\n");
        ASSERT_NE(separator, std::string::npos);
        ASSERT_GT(separator + 2, expected_text.size() - text.size());  // ends in this token
        ASSERT_FALSE(fence_open_before(expected_text, separator));
        detector.reset();
        expected_text.clear();
      }
      (void)extract_boxed(expected_text);
      (void)answers_equivalent(expected_text, "18");
    }
  }
}

TEST(FenceOpenBefore, Positions) {
  const std::string_view text = "a\n```\nb\n```\nc";
  EXPECT_FALSE(fence_open_before(text, 0));
  EXPECT_FALSE(fence_open_before(text, 2));
  EXPECT_TRUE(fence_open_before(text, 6));
  EXPECT_TRUE(fence_open_before(text, 8));
  EXPECT_FALSE(fence_open_before(text, text.size()));
  EXPECT_FALSE(fence_open_before(text, 1000));
}

TEST(SentenceEndMarks, PaperList) {
  EXPECT_EQ(sentence_end_marks().size(), 16u);
  EXPECT_EQ(kStepSeparator, "\n\n");
}

// ---- Prompt text ----

TEST(FormatNames, ListForms) {
  EXPECT_EQ(format_names({}), "");
  EXPECT_EQ(format_names({"Alice"}), "Alice");
  EXPECT_EQ(format_names({"Alice", "Bob"}), "Alice and Bob");
  EXPECT_EQ(format_names({"Alice", "Bob", "Carol"}), "Alice, Bob and Carol");
  EXPECT_EQ(format_names({"A", "B", "C", "D"}), "A, B, C and D");
}

TEST(ExpandPlaceholders, Replacement) {
  const std::map<std::string, std::string> values = {
      {"name", "Alice"}, {"index", "4"}, {"others", "{name}"}, {"", "empty"}};
  EXPECT_EQ(expand_placeholders("**{name} [{index}]:** ", values), "**Alice [4]:** ");
  EXPECT_EQ(expand_placeholders("{name}{name}", values), "AliceAlice");
  EXPECT_EQ(expand_placeholders("no braces", values), "no braces");
  EXPECT_EQ(expand_placeholders("", values), "");
  // Values are not expanded again.
  EXPECT_EQ(expand_placeholders("{others}", values), "{name}");
  // An empty key is still a key.
  EXPECT_EQ(expand_placeholders("{}", values), "empty");
  EXPECT_EQ(expand_placeholders("{}", {}), "{}");
}

TEST(ExpandPlaceholders, UnknownAndEscapes) {
  const std::map<std::string, std::string> values = {{"name", "Bob"}, {"1", "one"}};
  EXPECT_EQ(expand_placeholders("{unknown} {name}", values), "{unknown} Bob");
  EXPECT_EQ(expand_placeholders("{{name}", values), "{name}");
  EXPECT_EQ(expand_placeholders("{{{name}", values), "{Bob");
  EXPECT_EQ(expand_placeholders("a}b", values), "a}b");
  EXPECT_EQ(expand_placeholders("open {name", values), "open {name");
  EXPECT_EQ(expand_placeholders("{ {name}", values), "{ Bob");
  EXPECT_EQ(expand_placeholders("\\boxed{answer here}", values), "\\boxed{answer here}");
  EXPECT_EQ(expand_placeholders("{outer{name}}", values), "{outerBob}");
  EXPECT_EQ(expand_placeholders("{", values), "{");
}

TEST(FormatNames, ThreeNames) {
  EXPECT_EQ(format_names({"Alice", "Bob", "Carol"}), "Alice, Bob and Carol");
}

// ---- RedundancyScheduler ----

TEST(RedundancyScheduler, FiresOncePerCrossedMultiple) {
  RedundancyScheduler scheduler(1024);
  EXPECT_FALSE(scheduler.take());
  scheduler.on_tokens(1023);
  EXPECT_FALSE(scheduler.take());
  scheduler.on_tokens(1);
  EXPECT_EQ(scheduler.pending(), 1);
  EXPECT_TRUE(scheduler.take());
  EXPECT_FALSE(scheduler.take());
  scheduler.on_tokens(1000);  // 2024
  EXPECT_FALSE(scheduler.take());
  scheduler.on_tokens(24);  // 2048
  EXPECT_TRUE(scheduler.take());
  EXPECT_EQ(scheduler.generated(), 2048);
}

TEST(RedundancyScheduler, SeveralCrossingsQueue) {
  RedundancyScheduler scheduler(100);
  scheduler.on_tokens(350);  // three multiples crossed before any step began
  EXPECT_EQ(scheduler.pending(), 3);
  EXPECT_TRUE(scheduler.take());
  EXPECT_TRUE(scheduler.take());
  EXPECT_TRUE(scheduler.take());
  EXPECT_FALSE(scheduler.take());
  scheduler.on_tokens(49);  // 399
  EXPECT_FALSE(scheduler.take());
  scheduler.on_tokens(1);  // 400
  EXPECT_TRUE(scheduler.take());
  EXPECT_EQ(scheduler.pending(), 0);
}

TEST(RedundancyScheduler, PerTokenBatchesOfWorkers) {
  // Four workers, one token each per decode step: 256 steps cross 1024 once.
  RedundancyScheduler scheduler(1024);
  int fired = 0;
  for (int step = 0; step < 1024; ++step) {
    scheduler.on_tokens(4);
    if (scheduler.take()) ++fired;
  }
  EXPECT_EQ(fired, 4);
}

TEST(RedundancyScheduler, ZeroIntervalNeverFires) {
  RedundancyScheduler scheduler(0);
  scheduler.on_tokens(1'000'000);
  EXPECT_FALSE(scheduler.take());
  EXPECT_EQ(scheduler.pending(), 0);
  scheduler.on_tokens(0);
  EXPECT_EQ(scheduler.interval(), 0);
}

TEST(RedundancyScheduler, RejectsNegatives) {
  EXPECT_THROW(RedundancyScheduler(-1), Error);
  RedundancyScheduler scheduler(10);
  EXPECT_THROW(scheduler.on_tokens(-1), Error);
}

}  // namespace
}  // namespace hogwild
