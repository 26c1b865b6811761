#include "hogwild/text_rules.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "common/error.h"

namespace hogwild {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_identifier_char(char c) { return is_identifier_start(c) || is_digit(c); }

std::string_view trim_end(std::string_view text) {
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  return trim_end(text);
}

// Replaces every occurrence of `from` by `to`, left to right, without rescanning what was written.
void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  for (size_t hit; (hit = text.find(from, start)) != std::string::npos; start = hit + from.size()) {
    out.append(text, start, hit - start);
    out.append(to);
  }
  out.append(text, start);
  text = std::move(out);
}

// Given the index just past an opening '{', returns the index of its matching '}', or npos.
// A backslash escapes the next character, so "\{" and "\}" do not count.
size_t matching_brace(std::string_view text, size_t after_open) {
  int depth = 1;
  for (size_t i = after_open; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      ++i;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

// Replaces each "<command>{x}" (braces balanced) by x, innermost last; unclosed ones stay.
void unwrap_command(std::string& text, std::string_view command) {
  const std::string opener = std::string(command) + "{";
  size_t search_from = 0;
  for (size_t start; (start = text.find(opener, search_from)) != std::string::npos;) {
    const size_t open = start + opener.size();
    const size_t close = matching_brace(text, open);
    if (close == std::string::npos) {
      search_from = open;
      continue;
    }
    text = text.substr(0, start) + text.substr(open, close - open) + text.substr(close + 1);
    search_from = start;  // the content may hold another wrapper
  }
}

// "\frac{a}{b}" with a and b free of braces and backslashes becomes "a/b".
void simplify_fractions(std::string& text) {
  static constexpr std::string_view kFrac = "\\frac{";
  size_t search_from = 0;
  for (size_t start; (start = text.find(kFrac, search_from)) != std::string::npos;) {
    search_from = start + 1;
    const size_t numerator = start + kFrac.size();
    const size_t numerator_end = text.find_first_of("{}\\", numerator);
    if (numerator_end == std::string::npos || text[numerator_end] != '}') continue;
    if (numerator_end + 1 >= text.size() || text[numerator_end + 1] != '{') continue;
    const size_t denominator = numerator_end + 2;
    const size_t denominator_end = text.find_first_of("{}\\", denominator);
    if (denominator_end == std::string::npos || text[denominator_end] != '}') continue;
    text = text.substr(0, start) + text.substr(numerator, numerator_end - numerator) + "/" +
           text.substr(denominator, denominator_end - denominator) +
           text.substr(denominator_end + 1);
  }
}

// Drops commas that group thousands: a digit before, exactly three digits after.
std::string drop_thousands_commas(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const bool grouping = text[i] == ',' && i > 0 && is_digit(text[i - 1]) && i + 3 < text.size() &&
                          is_digit(text[i + 1]) && is_digit(text[i + 2]) && is_digit(text[i + 3]) &&
                          (i + 4 == text.size() || !is_digit(text[i + 4]));
    if (!grouping) out.push_back(text[i]);
  }
  return out;
}

// [+-]? (digits [. digits?] | . digits)
bool is_decimal(std::string_view text) {
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) text.remove_prefix(1);
  size_t digits = 0;
  size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i, ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && is_digit(text[i])) ++i, ++digits;
  }
  return i == text.size() && digits > 0;
}

// Canonical form of a decimal (see is_decimal): "-05.50" → "-5.5", "18.00" → "18", "-0" → "0".
std::string canonical_decimal(std::string_view text) {
  bool negative = false;
  if (text[0] == '+' || text[0] == '-') {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  const size_t dot = text.find('.');
  std::string_view integer = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  while (!integer.empty() && integer[0] == '0') integer.remove_prefix(1);
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  std::string out;
  if (negative && (!integer.empty() || !fraction.empty())) out.push_back('-');
  out.append(integer.empty() ? "0" : integer);
  if (!fraction.empty()) out.append(".").append(fraction);
  return out;
}

std::optional<double> decimal_value(std::string_view text) {
  if (!is_decimal(text)) return std::nullopt;
  if (text[0] == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

// ---- Steps ----

const std::vector<std::string_view>& sentence_end_marks() {
  // The paper's end_of_step_chars, in UTF-8.
  static const std::vector<std::string_view> marks = {
      ".",
      "?",
      "!",
      "\u3002" /*。*/,
      "\u06D4" /*۔*/,
      "\u061F" /*؟*/,
      "\u0964" /*।*/,
      "\u0965" /*॥*/,
      "\u2026" /*…*/,
      "\u203D" /*‽*/,
      "\u0F0D" /*།*/,
      "\u1803" /*᠃*/,
      "\u0589" /*։*/,
      "\u10FB" /*჻*/,
      "\u00B6" /*¶*/,
      "\u2767" /*❧*/,
  };
  return marks;
}

bool fence_open_before(std::string_view text, size_t position) {
  text = text.substr(0, std::min(position, text.size()));
  enum class Math { kNone, kDollars, kBracket };
  Math math = Math::kNone;
  char code_char = '\0';  // '`' or '~' while a code fence is open
  size_t code_length = 0;

  size_t line_start = 0;
  while (line_start < text.size()) {
    size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    const std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;

    if (math == Math::kNone) {
      size_t indent = 0;
      while (indent < line.size() && (line[indent] == ' ' || line[indent] == '\t')) ++indent;
      size_t run = 0;
      const char fence_char = indent < line.size() ? line[indent] : '\0';
      if (fence_char == '`' || fence_char == '~') {
        while (indent + run < line.size() && line[indent + run] == fence_char) ++run;
      }
      if (code_char != '\0') {
        if (fence_char == code_char && run >= code_length) code_char = '\0';
        continue;  // inside code nothing else counts
      }
      if (run >= 3) {
        // CommonMark: a backtick fence's info string holds no backtick ("```x```" is inline code).
        const bool inline_code =
            fence_char == '`' && line.find('`', indent + run) != std::string_view::npos;
        if (!inline_code) {
          code_char = fence_char;
          code_length = run;
          continue;
        }
      }
    }

    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      const char next = i + 1 < line.size() ? line[i + 1] : '\0';
      if (c == '\\') {
        if (next == '[' && math == Math::kNone) math = Math::kBracket;
        if (next == ']' && math == Math::kBracket) math = Math::kNone;
        ++i;  // the escaped character is consumed either way
      } else if (c == '$' && next == '$') {
        if (math == Math::kNone) {
          math = Math::kDollars;
        } else if (math == Math::kDollars) {
          math = Math::kNone;
        }
        ++i;
      }
    }
  }
  return code_char != '\0' || math != Math::kNone;
}

bool StepEndDetector::push(std::string_view token_text) {
  const size_t token_start = text_.size();
  text_.append(token_text);
  // The separator must end inside this token: "\n\n", ".\n\n", or the second "\n" of a pair
  // split over two tokens (tokenizers such as SmolLM2's emit newlines one at a time).
  const size_t separator = text_.rfind(kStepSeparator);
  if (token_text.empty() || separator == std::string::npos ||
      separator + kStepSeparator.size() <= token_start)
    return false;
  const std::string_view before = trim_end(std::string_view(text_).substr(0, separator));
  const auto& marks = sentence_end_marks();
  const bool sentence_end = std::any_of(
      marks.begin(), marks.end(), [&](std::string_view mark) { return before.ends_with(mark); });
  return sentence_end && !fence_open_before(text_, separator);
}

void StepEndDetector::reset(std::string_view prefix) { text_.assign(prefix); }

// ---- Answers ----

std::optional<std::string> extract_boxed(std::string_view text) {
  static constexpr std::string_view kOpeners[] = {"\\boxed{", "\\fbox{"};
  // Openers from the last to the first; the first complete one wins.
  std::vector<std::pair<size_t, size_t>> starts;  // (position, opener length)
  for (const std::string_view opener : kOpeners) {
    for (size_t at = text.find(opener); at != std::string_view::npos;
         at = text.find(opener, at + 1)) {
      starts.emplace_back(at, opener.size());
    }
  }
  std::sort(starts.begin(), starts.end(), std::greater<>());
  for (const auto& [at, length] : starts) {
    const size_t open = at + length;
    const size_t close = matching_brace(text, open);
    if (close != std::string_view::npos) return std::string(text.substr(open, close - open));
  }
  return std::nullopt;
}

bool reads_as_float(std::string_view text) {
  // Python strips all whitespace around the number; ASCII whitespace is what a model writes.
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "inf" || lower == "infinity" || lower == "nan") return true;
  size_t i = 0;
  // Digits with single underscores between them; returns how many digits were read.
  auto digits = [&]() {
    size_t count = 0;
    while (i < text.size()) {
      if (std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
        ++count;
        ++i;
      } else if (text[i] == '_' && count > 0 && i + 1 < text.size() &&
                 std::isdigit(static_cast<unsigned char>(text[i + 1])) != 0) {
        ++i;
      } else {
        break;
      }
    }
    return count;
  };
  const size_t whole = digits();
  size_t fraction = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    fraction = digits();
  }
  if (whole + fraction == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}

std::optional<std::string> boxed_number(std::string_view text) {
  static constexpr std::string_view kOpener = "\\boxed{";
  for (size_t end = text.size();;) {
    const size_t at = text.substr(0, end).rfind(kOpener);
    if (at == std::string_view::npos) return std::nullopt;
    const size_t open = at + kOpener.size();
    const size_t close = text.substr(0, end).find('}', open);
    if (close != std::string_view::npos) {
      const std::string_view content = text.substr(open, close - open);
      if (reads_as_float(content)) return std::string(content);
    }
    end = at;  // the authors cut the text before this opener and look again
  }
}

std::string normalize_answer(std::string_view answer) {
  std::string text(answer);
  for (const std::string_view command :
       {"\\boxed", "\\fbox", "\\text", "\\textbf", "\\mathrm", "\\mbox"}) {
    unwrap_command(text, command);
  }
  replace_all(text, "\\dfrac", "\\frac");
  replace_all(text, "\\tfrac", "\\frac");
  simplify_fractions(text);
  replace_all(text, "{,}", ",");
  replace_all(text, "\\$", "");
  replace_all(text, "$", "");
  for (const std::string_view thin_space : {"\\,", "\\!", "\\;", "\\:"}) {
    replace_all(text, thin_space, "");
  }
  replace_all(text, "\\%", "%");
  text = drop_thousands_commas(text);
  std::erase_if(text, is_space);
  while (!text.empty() && (text.back() == '.' || text.back() == '%')) text.pop_back();

  // "x=5" → "5": one identifier, then a number.
  if (!text.empty() && is_identifier_start(text[0])) {
    size_t i = 1;
    while (i < text.size() && is_identifier_char(text[i])) ++i;
    if (i < text.size() && text[i] == '=' && answer_value(text.substr(i + 1))) {
      text.erase(0, i + 1);
    }
  }
  if (is_decimal(text)) return canonical_decimal(text);
  std::transform(text.begin(), text.end(), text.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return text;
}

std::optional<double> answer_value(std::string_view normalized) {
  if (const auto value = decimal_value(normalized)) return value;
  const size_t slash = normalized.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto numerator = decimal_value(normalized.substr(0, slash));
  const auto denominator = decimal_value(normalized.substr(slash + 1));
  if (!numerator || !denominator || *denominator == 0) return std::nullopt;
  return *numerator / *denominator;
}

bool answers_match(std::string_view predicted, std::string_view reference) {
  const std::string left = normalize_answer(predicted);
  const std::string right = normalize_answer(reference);
  if (left.empty() || right.empty()) return false;
  // Integers compare exactly: a relative 1e-6 would equate 1234567 and 1234568.
  const auto is_integer = [](const std::string& text) {
    return is_decimal(text) && text.find('.') == std::string::npos;
  };
  if (is_integer(left) && is_integer(right)) return left == right;
  const auto left_value = answer_value(left);
  const auto right_value = answer_value(right);
  if (left_value && right_value) {
    const double scale = std::max(std::fabs(*left_value), std::fabs(*right_value));
    return std::fabs(*left_value - *right_value) <= 1e-6 * scale;
  }
  return left == right;
}

std::string final_answer_of_reference(std::string_view reference) {
  const size_t marker = reference.rfind("####");
  if (marker == std::string_view::npos) return std::string(trim(reference));
  std::string answer(trim(reference.substr(marker + 4)));
  std::erase(answer, ',');
  return answer;
}

// ---- Prompt text ----

std::string format_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.append(i + 1 == names.size() ? " and " : ", ");
    out.append(names[i]);
  }
  return out;
}

std::string expand_placeholders(std::string_view templ,
                                const std::map<std::string, std::string>& values) {
  std::string out;
  out.reserve(templ.size());
  for (size_t i = 0; i < templ.size(); ++i) {
    if (templ[i] != '{') {
      out.push_back(templ[i]);
      continue;
    }
    if (i + 1 < templ.size() && templ[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = templ.find_first_of("{}", i + 1);
    if (close != std::string_view::npos && templ[close] == '}') {
      const auto value = values.find(std::string(templ.substr(i + 1, close - i - 1)));
      if (value != values.end()) {
        out.append(value->second);
        i = close;
        continue;
      }
    }
    out.push_back('{');  // unknown or unclosed: written as is, the rest scanned normally
  }
  return out;
}

// ---- Redundancy checks ----

RedundancyScheduler::RedundancyScheduler(int64_t interval) : interval_(interval) {
  HOGWILD_CHECK(interval >= 0, "redundancy check interval must be >= 0 tokens, got ", interval);
}

void RedundancyScheduler::on_tokens(int64_t generated) {
  HOGWILD_CHECK(generated >= 0, "generated token count must be >= 0, got ", generated);
  generated_ += generated;
}

int64_t RedundancyScheduler::pending() const {
  return interval_ == 0 ? 0 : generated_ / interval_ - taken_;
}

bool RedundancyScheduler::take() {
  if (pending() <= 0) return false;
  ++taken_;
  return true;
}

}  // namespace hogwild
