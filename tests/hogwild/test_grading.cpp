// Grading: final-answer extraction and answer equivalence (the grader behind
// ProblemResult::correct). The table against math-verify is grading_pairs.tsv, checked by
// grading_vs_math_verify.py; these tests pin the rules and run GSM8K's references through them.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hogwild/grading.h"
#include "hogwild/text_rules.h"
#include "test_paths.h"

namespace hogwild {
namespace {

// ---- extract_boxed ----

// ---- boxed_number (the authors' rule: last "\boxed{" up to the first "}", read by float) ----

TEST(ReadsAsFloat, PythonsFloatGrammar) {
  for (const char* yes : {"18", " 18 ", "-3", "+2.5", ".5", "5.", "1e5", "1E-3", "1_000", "1_0e1_0",
                          "inf", "-Infinity", "NaN", "\t7\n", "0003"})
    EXPECT_TRUE(reads_as_float(yes)) << yes;
  for (const char* no : {"", " ", ".", "e5", "1e", "1_", "_1", "1__0", "1_.5", "1,000", "5%", "x=5",
                         "\\frac{1", "18 apples", "--1", "in f", "0x10", "1.2.3"})
    EXPECT_FALSE(reads_as_float(no)) << no;
}

TEST(BoxedNumber, LastOneThatHoldsANumber) {
  EXPECT_EQ(boxed_number("so \\boxed{18}."), "18");
  EXPECT_EQ(boxed_number("\\boxed{ 7 }"), " 7 ") << "the text as written; float() trims it";
  EXPECT_EQ(boxed_number("\\boxed{3} then \\boxed{4}"), "4");
  // Not a number: the one before it is taken.
  EXPECT_EQ(boxed_number("\\boxed{3} then \\boxed{x+1}"), "3");
  // Braces are not balanced: the content ends at the first "}".
  EXPECT_EQ(boxed_number("\\boxed{\\frac{1}{2}}"), std::nullopt);
  EXPECT_EQ(boxed_number("\\boxed{2} \\boxed{\\frac{1}{2}}"), "2");
  // Unclosed: the text is cut before it, so an earlier opener cannot close past the cut.
  EXPECT_EQ(boxed_number("\\boxed{5"), std::nullopt);
  EXPECT_EQ(boxed_number("\\boxed{5 \\boxed{6"), std::nullopt);
  EXPECT_EQ(boxed_number("\\boxed{1} \\boxed{5 \\boxed{6"), "1");
  EXPECT_EQ(boxed_number("\\fbox{5}"), std::nullopt) << "only \\boxed, as theirs";
  EXPECT_EQ(boxed_number("no answer"), std::nullopt);
}

TEST(ExtractBoxed, Simple) {
  EXPECT_EQ(extract_boxed("The answer is \\boxed{18}."), "18");
  EXPECT_EQ(extract_boxed("\\fbox{x+1}"), "x+1");
  EXPECT_EQ(extract_boxed("\\boxed{}"), "");
  EXPECT_EQ(extract_boxed("no answer here"), std::nullopt);
  EXPECT_EQ(extract_boxed(""), std::nullopt);
  EXPECT_EQ(extract_boxed("\\boxed 5"), std::nullopt);
}

TEST(ExtractBoxed, NestedBraces) {
  EXPECT_EQ(extract_boxed("\\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(extract_boxed("so \\boxed{\\sqrt{\\frac{a}{b}} + {c}} done"),
            "\\sqrt{\\frac{a}{b}} + {c}");
  EXPECT_EQ(extract_boxed("\\boxed{\\{1, 2\\}}"), "\\{1, 2\\}");
  EXPECT_EQ(extract_boxed("\\boxed{\\text{\\$18}}"), "\\text{\\$18}");
}

TEST(ExtractBoxed, LastCompleteWins) {
  EXPECT_EQ(extract_boxed("\\boxed{1} then \\boxed{2}"), "2");
  EXPECT_EQ(extract_boxed("\\boxed{1} then \\fbox{3}"), "3");
  EXPECT_EQ(extract_boxed("\\fbox{3} then \\boxed{1}"), "1");
  // An unclosed last one falls back to the complete one before it.
  EXPECT_EQ(extract_boxed("\\boxed{1} then \\boxed{2"), "1");
  EXPECT_EQ(extract_boxed("\\boxed{1} then \\boxed{\\frac{2}{3}"), "1");
}

TEST(ExtractBoxed, Unclosed) {
  EXPECT_EQ(extract_boxed("\\boxed{2"), std::nullopt);
  EXPECT_EQ(extract_boxed("\\boxed{\\frac{1}{2}"), std::nullopt);
  EXPECT_EQ(extract_boxed("\\boxed{\\}"), std::nullopt);
}

TEST(FinalAnswerOfReference, TakesTextAfterTheLastMarker) {
  EXPECT_EQ(final_answer_of_reference("She makes 9 * 2 = $18.\n#### 1,234"), "1234");
  EXPECT_EQ(final_answer_of_reference("#### 18"), "18");
  EXPECT_EQ(final_answer_of_reference("a #### 5\nb #### 7 \n"), "7");
  EXPECT_EQ(final_answer_of_reference("####-3"), "-3");
  EXPECT_EQ(final_answer_of_reference("  42 \n"), "42");
  EXPECT_EQ(final_answer_of_reference("1,234"), "1,234");  // no marker: only trimmed
  EXPECT_EQ(final_answer_of_reference(""), "");
  EXPECT_EQ(final_answer_of_reference("#### "), "");
}

// ---- extract_final_answer ----

TEST(ExtractFinalAnswer, BoxedFirst) {
  const FinalAnswer answer = extract_final_answer("so 3 + 4 = 7 and \\boxed{\\frac{1}{2}}. #### 9");
  EXPECT_EQ(answer.text, "\\frac{1}{2}");
  EXPECT_EQ(answer.source, AnswerSource::Boxed);
  EXPECT_EQ(extract_final_answer("\\fbox{x+1} then 12").text, "x+1");
}

TEST(ExtractFinalAnswer, Gsm8kMarker) {
  const FinalAnswer answer = extract_final_answer("She pays 9 * 2 = 18.\n#### 1,234\n");
  EXPECT_EQ(answer.text, "1,234");
  EXPECT_EQ(answer.source, AnswerSource::Gsm8k);
  EXPECT_EQ(extract_final_answer("#### 5\n#### -7 \nthanks").text, "-7");
  // An empty marker line falls through to the last number.
  const FinalAnswer empty = extract_final_answer("costs 12 dollars\n####\n");
  EXPECT_EQ(empty.text, "12");
  EXPECT_EQ(empty.source, AnswerSource::LastNumber);
}

TEST(ExtractFinalAnswer, LastNumberFallback) {
  EXPECT_EQ(extract_final_answer("3 apples and 4 pears make 7.").text, "7");
  EXPECT_EQ(extract_final_answer("3 apples and 4 pears make 7.").source, AnswerSource::LastNumber);
  EXPECT_EQ(extract_final_answer("a total of $1,234.50 today").text, "1,234.50");
  EXPECT_EQ(extract_final_answer("it drops to -12 degrees").text, "-12");
  EXPECT_EQ(extract_final_answer("from 5-3 we get 2").text, "2");
  EXPECT_EQ(extract_final_answer("step 5-3").text, "3") << "a minus between numbers is no sign";
  EXPECT_EQ(extract_final_answer("a ratio of 3/4").text, "3/4");
  EXPECT_EQ(extract_final_answer("list 1,2").text, "2") << "\"1,2\" groups no thousands";
  EXPECT_EQ(extract_final_answer("x2 and y3").text, "") << "digits glued to a word are no number";
  EXPECT_EQ(extract_final_answer("x2 and y3").source, AnswerSource::None);
  EXPECT_EQ(extract_final_answer("").source, AnswerSource::None);
}

TEST(ExtractFinalAnswer, SourceNames) {
  EXPECT_EQ(answer_source_name(AnswerSource::None), "none");
  EXPECT_EQ(answer_source_name(AnswerSource::Boxed), "boxed");
  EXPECT_EQ(answer_source_name(AnswerSource::Gsm8k), "gsm8k");
  EXPECT_EQ(answer_source_name(AnswerSource::LastNumber), "last_number");
}

// ---- answers_equivalent ----

TEST(AnswersEquivalent, Gsm8kNumbers) {
  EXPECT_TRUE(answers_equivalent("$1,234.00", "1234"));
  EXPECT_TRUE(answers_equivalent("1234", "1,234"));
  EXPECT_TRUE(answers_equivalent("\\$18", "18"));
  EXPECT_TRUE(answers_equivalent("18.", "18"));
  EXPECT_TRUE(answers_equivalent("18 apples", "18"));
  EXPECT_TRUE(answers_equivalent("18\\text{ dollars}", "18"));
  EXPECT_TRUE(answers_equivalent("-10", "-10"));
  EXPECT_FALSE(answers_equivalent("10", "-10"));
  EXPECT_FALSE(answers_equivalent("1235", "1,234"));
  EXPECT_FALSE(answers_equivalent("", "18"));
  EXPECT_FALSE(answers_equivalent("18", ""));
  EXPECT_FALSE(answers_equivalent("", ""));
  EXPECT_FALSE(answers_equivalent("18dollars", "18")) << "a unit needs a space: 2x is no 2";
  EXPECT_TRUE(answers_equivalent("2 x", "x+x")) << "one letter is a variable, not a unit";
  EXPECT_TRUE(answers_equivalent("12 km/h", "12"));
}

TEST(AnswersEquivalent, FractionsAndDecimals) {
  EXPECT_TRUE(answers_equivalent("0.5", "\\frac{1}{2}"));
  EXPECT_TRUE(answers_equivalent("\\dfrac{3}{4}", "0.75"));
  EXPECT_TRUE(answers_equivalent("\\frac34", "3/4"));
  EXPECT_TRUE(answers_equivalent("1\\frac{1}{2}", "3/2"));
  EXPECT_TRUE(answers_equivalent("1 1/2", "1.5"));
  EXPECT_TRUE(answers_equivalent("-2\\frac{3}{4}", "-2.75"));
  EXPECT_TRUE(answers_equivalent("0.333333", "1/3")) << "6 decimals, as math-verify";
  EXPECT_FALSE(answers_equivalent("0.333", "1/3"));
  EXPECT_TRUE(answers_equivalent("3.0000001", "3.0"));
  EXPECT_FALSE(answers_equivalent("3.0000001", "3")) << "an integer compares exactly";
  EXPECT_FALSE(answers_equivalent("3.001", "3"));
  EXPECT_TRUE(answers_equivalent("0", "-0.0"));
  EXPECT_FALSE(answers_equivalent("1/2", "2"));
  EXPECT_FALSE(answers_equivalent("0.5", "5"));
  // Integers compare exactly, however large.
  EXPECT_FALSE(answers_equivalent("123456789012345678", "123456789012345679"));
  EXPECT_TRUE(answers_equivalent("1234567.0", "1234567"));
}

TEST(AnswersEquivalent, ThousandsAndDecimalPoint) {
  EXPECT_TRUE(answers_equivalent("1,000", "1000"));
  EXPECT_FALSE(answers_equivalent("1.000", "1000")) << "a point is a decimal point";
  EXPECT_FALSE(answers_equivalent("1,000", "1.000"));
  EXPECT_TRUE(answers_equivalent("1,2", "2,1")) << "a bare list is a set, as in math-verify";
  EXPECT_FALSE(answers_equivalent("1,00", "100"));
}

TEST(AnswersEquivalent, Percent) {
  EXPECT_TRUE(answers_equivalent("50\\%", "50"));
  EXPECT_TRUE(answers_equivalent("50%", "\\frac{1}{2}"));
  EXPECT_TRUE(answers_equivalent("12\\%", "0.12"));
  EXPECT_FALSE(answers_equivalent("50\\%", "50.0"));
}

TEST(AnswersEquivalent, Expressions) {
  EXPECT_TRUE(answers_equivalent("x+1", "1+x"));
  EXPECT_FALSE(answers_equivalent("x+1", "y+1"));
  EXPECT_TRUE(answers_equivalent("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"));
  EXPECT_TRUE(answers_equivalent("\\left(x+1\\right)^2", "x^2+2x+1"));
  EXPECT_TRUE(answers_equivalent("2\\pi", "\\pi \\cdot 2"));
  EXPECT_TRUE(answers_equivalent("3.141593", "\\pi"));
  EXPECT_FALSE(answers_equivalent("3.14", "\\pi"));
  EXPECT_TRUE(answers_equivalent("x = 5", "5"));
  EXPECT_TRUE(answers_equivalent("5", "y = 5"));
  EXPECT_TRUE(answers_equivalent("90^\\circ", "90"));
  // Unreadable LaTeX compares as text.
  EXPECT_TRUE(answers_equivalent("\\sqrt{", "\\sqrt{ "));
  EXPECT_FALSE(answers_equivalent("\\sqrt{", "\\sqrt{2"));
}

TEST(AnswersEquivalent, SetsTuplesIntervals) {
  EXPECT_TRUE(answers_equivalent("\\{1,2,3\\}", "\\{3, 1, 2\\}"));
  EXPECT_FALSE(answers_equivalent("\\{1,2\\}", "\\{1,2,3\\}"));
  EXPECT_TRUE(answers_equivalent("\\left( 3, 4 \\right)", "(3,4)"));
  EXPECT_FALSE(answers_equivalent("(1,2)", "(2,1)"));
  EXPECT_FALSE(answers_equivalent("[1,2]", "(1,2)"));
  EXPECT_TRUE(answers_equivalent("[1,2)", "[1, 2)"));
  EXPECT_TRUE(answers_equivalent("(\\frac{1}{2}, 3)", "(0.5, 3)"));
}

TEST(AnswersEquivalent, Text) {
  EXPECT_TRUE(answers_equivalent("\\text{Yes}", "yes"));
  EXPECT_TRUE(answers_equivalent("(A)", "(a)"));
  EXPECT_TRUE(answers_equivalent("\\text{(B)}", "B"));
  EXPECT_FALSE(answers_equivalent("yes", "no"));
}

TEST(AnswersEquivalent, AnswersMatchIsTheSame) {
  EXPECT_TRUE(answers_match("\\boxed{\\text{\\$18.00}}", "18"));
  EXPECT_FALSE(answers_match("17", "18"));
}

TEST(AnswersEquivalent, NeverThrowsOnOddInput) {
  for (const char* text : {"\\frac{", "}{", "((((", "\\{", "1/0", "\\frac{1}{0}", "^^", "--5",
                           "\\sqrt[0]{2}", "0^{-1}", "99999999999999999999999999999999999999999",
                           "1e999999", "\\\\", "%", "$", ",", "=", "a=b=c"}) {
    EXPECT_NO_THROW((void)answers_equivalent(text, text)) << text;
    EXPECT_NO_THROW((void)answers_equivalent(text, "1")) << text;
  }
  EXPECT_FALSE(answers_equivalent("1/0", "1"));
  const std::string huge(400, '9');  // past a double as well as past 128 bits
  EXPECT_NO_THROW((void)answers_equivalent(huge + "+1", huge));
  EXPECT_TRUE(answers_equivalent(huge, " " + huge)) << "as text, when no number type holds it";
  std::string deep(5000, '(');
  EXPECT_NO_THROW((void)answers_equivalent(deep, "1"));
}

// ---- GSM8K: every reference answer grades correct against itself in the styles models write ----

std::string with_thousands_commas(const std::string& integer) {
  const bool negative = !integer.empty() && integer[0] == '-';
  std::string digits = negative ? integer.substr(1) : integer;
  const size_t point = std::min(digits.find('.'), digits.size());
  for (int at = static_cast<int>(point) - 3; at > 0; at -= 3) digits.insert(at, ",");
  return (negative ? "-" : "") + digits;
}

TEST(Grading, Gsm8kReferenceAnswers) {
  const std::string path = testing::shared_dir() + "/data/gsm8k/test.jsonl";
  std::ifstream in(path);
  if (!in) GTEST_SKIP() << path << " is absent: GSM8K lives in ../shared, not in a fresh clone";
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto record = nlohmann::json::parse(line);
    const std::string solution = record.at("answer").get<std::string>();
    const size_t marker = solution.rfind("#### ");
    ASSERT_NE(marker, std::string::npos) << line;
    const std::string reference = solution.substr(marker + 5);
    SCOPED_TRACE(reference);
    std::string plain = reference;
    std::erase(plain, ',');
    const bool integer = plain.find('.') == std::string::npos;

    const std::vector<std::string> styles = {
        reference,
        plain,
        "\\boxed{" + plain + "}",
        "$" + plain,
        "\\$" + with_thousands_commas(plain),
        integer ? plain + ".0" : plain + "0",
        integer ? plain + ".00" : plain,
        with_thousands_commas(plain),
        plain + " units",
        with_thousands_commas(plain) + " apples",
        "\\text{" + plain + "}",
        plain + "/1",
        "\\frac{" + plain + "}{1}",
    };
    for (const std::string& style : styles) {
      EXPECT_TRUE(answers_equivalent(style, reference)) << style;
    }

    // Extraction finds the number in both usual forms.
    const FinalAnswer boxed =
        extract_final_answer("Adding these up... The answer is \\boxed{" + plain + "}.");
    EXPECT_EQ(boxed.source, AnswerSource::Boxed);
    EXPECT_EQ(boxed.text, plain);
    const FinalAnswer hashes = extract_final_answer("#### " + reference);
    EXPECT_EQ(hashes.source, AnswerSource::Gsm8k);
    EXPECT_EQ(hashes.text, reference);
    const FinalAnswer marked = extract_final_answer(solution);
    EXPECT_EQ(marked.source, AnswerSource::Gsm8k);
    EXPECT_EQ(marked.text, reference);
    EXPECT_TRUE(answers_equivalent(marked.text, reference));

    // And a different number never grades correct.
    if (integer) {
      const std::string other = std::to_string(std::stoll(plain) + 1);
      EXPECT_FALSE(answers_equivalent(other, reference)) << other;
      EXPECT_FALSE(answers_equivalent("\\boxed{" + other + "}", reference)) << other;
      EXPECT_FALSE(answers_equivalent(plain + "1", reference));
    }
    ++checked;
  }
  EXPECT_GT(checked, 1000) << "GSM8K's test split has 1319 problems";
}

}  // namespace
}  // namespace hogwild
