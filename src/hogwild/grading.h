// Grading: which final answer a text gives, and whether it is equivalent to the reference. This is
// the grader that decides ProblemResult::correct at run time (no Python in a run); its verdicts are
// checked against the field's reference grader, math-verify, on tests/hogwild/grading_pairs.tsv,
// and scripts/grade.py re-grades a results file with math-verify itself.
// All functions work on UTF-8 bytes and never throw on any input.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hogwild {

// ---- Extraction ----

enum class AnswerSource { None, Boxed, Gsm8k, LastNumber };
// "none", "boxed", "gsm8k", "last_number" (the names results files store).
std::string_view answer_source_name(AnswerSource source);

struct FinalAnswer {
  std::string text;  // as written, e.g. "\frac{1}{2}" or "1,234"
  AnswerSource source = AnswerSource::None;
};

// The final answer of a solution text, by the first rule that finds one:
//  1. Boxed: the content of the last complete \boxed{...} or \fbox{...} (see extract_boxed);
//  2. Gsm8k: the rest of the line after the last "####", trimmed, when not empty;
//  3. LastNumber: the last number in the text ("-12", "1,234.5", "3/4"): a fallback for texts
//     that never state an answer, flagged by its source so that reports can tell them apart.
// {"", None} when the text holds no number at all.
FinalAnswer extract_final_answer(std::string_view text);

// Content of the last complete \boxed{...} or \fbox{...} in `text`, braces balanced
// ("\boxed{\frac{1}{2}}" gives "\frac{1}{2}"; "\{" and "\}" count as text). If the last one is
// unclosed, the one before it is tried (as the paper's find_last_valid_result does); nullopt
// when none is complete.
std::optional<std::string> extract_boxed(std::string_view text);

// The authors' answer rule (formatting.py, find_last_valid_result with float): the content of the
// last "\boxed{" up to the first "}" after it, if it reads as a number the way Python's float()
// reads one (spaces around, a sign, digits with single "_" between them, a decimal point, an
// exponent; or inf, infinity, nan in any case); else the one before it is tried. nullopt when no
// "\boxed{" holds a number ("\boxed{\frac{1}{2}}" holds none: its text up to "}" is "\frac{1").
std::optional<std::string> boxed_number(std::string_view text);
// True if `text` is a number by Python's float() rules above.
bool reads_as_float(std::string_view text);

// GSM8K-style reference: the text after the last "####", trimmed, commas removed (a reference
// without the marker is only trimmed).
std::string final_answer_of_reference(std::string_view reference);

// ---- Equivalence ----

// True if the predicted answer means the reference answer; both are answer texts (boxed content,
// or a reference as a dataset writes it), empty ones never match. The rules follow math-verify's
// verify(parse("\boxed{ref}"), parse("\boxed{pred}")) with its defaults, without a CAS:
//  - LaTeX noise is dropped: an outer \boxed/\fbox, \text{} \textbf{} \mathrm{} \mathbf{} \mbox{}
//    (their content stays), \left \right \displaystyle, thin spaces (\, \! \; \: "\ " ~), "$" "\$",
//    degrees (^\circ, ^{\circ}, °), "{,}" is ","; \dfrac and \tfrac are \frac; one trailing ".";
//  - numbers are exact rationals: thousands commas ("1,234,567"; "1,2" is the set {1,2}),
//    decimals, a/b, \frac{a}{b}, \frac34, mixed numbers ("1\frac{1}{2}", "1 1/2"), a sign, "%",
//    and unit words after a space ("10 apples", "18\text{ dollars}"). As in math-verify: if either
//    is written with a decimal point both are rounded to 6 decimals (0.333333 = 1/3, 0.333 is
//    not), unless the other is an integer written without one (3 != 3.0000001); two integers
//    compare as integers, a percent sign ignored (9% = 9); else the values compare exactly, a
//    percent being /100 (50% = 1/2 = 0.5);
//  - "x = 5" against "5": the right-hand side is compared (either way round);
//  - sets \{a,b\} and bare lists "a, b" are unordered; tuples (a,b,c), intervals (a,b] [a,b) and
//    pairs (a,b) are ordered and their brackets must agree;
//  - other expressions (+ - * / ^, implicit products, \frac, \sqrt, \pi, \cdot, \times, letters
//    and Greek letters as variables, case-insensitive as math-verify) are equal if they evaluate
//    to the same value at three fixed pseudo-random points (x+1 = 1+x, \sqrt{8} = 2\sqrt{2},
//    x+1 != y+1); a constant written as a decimal is rounded to 6 decimals (3.141593 = \pi);
//  - anything else compares as text, lowercased, whitespace dropped.
// The cases where this grader deliberately differs from math-verify are listed, with the reason,
// in tests/hogwild/grading_pairs.tsv.
bool answers_equivalent(std::string_view predicted, std::string_view reference);

// The name the team uses (ProblemResult::correct); the same as answers_equivalent.
bool answers_match(std::string_view predicted, std::string_view reference);

}  // namespace hogwild
