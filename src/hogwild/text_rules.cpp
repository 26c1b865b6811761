#include "hogwild/text_rules.h"

#include <algorithm>

#include "common/error.h"

namespace hogwild {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
std::string_view trim_end(std::string_view text) {
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
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
  if (one_token_ && token_text.find(kStepSeparator) == std::string_view::npos) return false;
  const std::string_view before = trim_end(std::string_view(text_).substr(0, separator));
  const auto& marks = sentence_end_marks();
  const bool sentence_end = std::any_of(
      marks.begin(), marks.end(), [&](std::string_view mark) { return before.ends_with(mark); });
  return sentence_end && (one_token_ || !fence_open_before(text_, separator));
}

void StepEndDetector::reset(std::string_view prefix) { text_.assign(prefix); }

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
