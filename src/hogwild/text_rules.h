// Text rules of the Hogwild! scheduler that need no model: where a step ends, which answer a text
// gives (see grading.h), how prompts are filled in, and when to ask a worker whether it is doing
// redundant work. All functions work on UTF-8 bytes; none of them allocates per token beyond the
// step text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hogwild/grading.h"

namespace hogwild {

// ---- Steps (docs/design.md §2) ----

// Decides, token by token, when one worker's step (a paragraph) ends. The rule is the paper's
// (eqimp/hogwild_llm, MathFormatting.is_end_of_step) plus fences:
//  1. the token just pushed completes a "\n\n": it contains one, or it is the second "\n" of a
//     pair split over two tokens. (The paper's code requires the separator inside one token; but
//     some tokenizers, SmolLM2's among them, only ever emit newlines one at a time, and their
//     steps would never end);
//  2. the step text before the LAST "\n\n", with trailing whitespace removed, ends with a sentence
//     end: . ? ! … ‽ or one of the paper's non-Latin marks (。 ۔ ؟ । ॥ ། ᠃ ։ ჻ ¶ ❧). Nothing may
//     follow the mark: "(see above.)", "**Done.**" and "$x=1.$" do not end a step, as in the
//     paper ("3.14" ends with "4", so "3.14\n\n" does not end one either);
//  3. at that "\n\n" no fence is open. A line starting (after indentation) with ``` or ~~~ opens a
//     code fence, closed by a line starting with at least as many of the same character (a ```
//     line whose rest holds a backtick is inline code, not a fence); outside code, "$$" toggles
//     display math and "\[" opens it until "\]". A backslash escapes the next character ("\$",
//     "\\[" are no math). Fences are tracked from the start of the step only: a fence opened in a
//     step keeps that step open until it closes.
// Tokens such as ".\n\n", "\n\n\n" or "!\n\nThe" are fine: the rule looks at the text around the
// last "\n\n" of step text plus token. The whole token stays in the finished step.
class StepEndDetector {
 public:
  StepEndDetector() = default;

  // Appends the token's text to the step; true if this token ends the step.
  bool push(std::string_view token_text);

  // Starts a new step whose text begins with `prefix` (e.g. "**Alice [4]:** "). The prefix is
  // never checked for a step end itself.
  void reset(std::string_view prefix = {});

  std::string_view text() const { return text_; }

  // The authors' rule 1 instead: the token itself holds a "\n\n" (a pair split over two tokens
  // ends nothing), and no fence rule 3. Rule 2 is the same. Kept across reset().
  void require_one_token(bool one_token) { one_token_ = one_token; }

 private:
  std::string text_;
  bool one_token_ = false;
};

// The separator and the sentence ends of the rule above, for prompts and tests.
inline constexpr std::string_view kStepSeparator = "\n\n";
const std::vector<std::string_view>& sentence_end_marks();

// True if `text`, cut just before byte `position`, leaves a code or display-math fence open.
bool fence_open_before(std::string_view text, size_t position);

// ---- Answers ----
// Extraction and grading of answers live in hogwild/grading.h (included here for the callers of
// extract_boxed, boxed_number and answers_match).

// ---- Prompt text ----

// "Alice"; "Alice and Bob"; "Alice, Bob and Carol" (the paper's list form, no serial comma).
std::string format_names(const std::vector<std::string>& names);

// Replaces every {key} whose key is in `values` (one pass: values are not expanded again). An
// unknown {key} stays as written; "{{" writes "{" (so "{{key}" gives the literal "{key}"), and
// "}" is always literal so LaTeX such as \frac{1}{2} passes through.
std::string expand_placeholders(std::string_view templ,
                                const std::map<std::string, std::string>& values);

// ---- Redundancy checks (docs/design.md §5) ----

// Every `interval` generated tokens (summed over workers) the next worker to start a step begins
// it with "Quick check: am I doing redundant work? (yes/no): ". Each crossed multiple of the
// interval is one pending check; take() hands out at most one per call, so if two multiples were
// crossed before any step began, the next two steps to begin each get one.
class RedundancyScheduler {
 public:
  explicit RedundancyScheduler(int64_t interval);  // 0: never; negative throws hogwild::Error

  void on_tokens(int64_t generated);  // negative throws hogwild::Error
  bool take();                        // true: this new step begins with the check

  int64_t interval() const { return interval_; }
  int64_t generated() const { return generated_; }
  int64_t pending() const;

 private:
  int64_t interval_;
  int64_t generated_ = 0;
  int64_t taken_ = 0;
};

}  // namespace hogwild
