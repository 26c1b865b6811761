#include "hogwild/grading.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <utility>
#include <vector>

namespace hogwild {
namespace {

// 128-bit integers keep sums and products of two 18-digit numbers exact; the __extension__
// keeps -Wpedantic quiet about a type every supported compiler has.
__extension__ using Int = __int128;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool starts_with(std::string_view text, size_t at, std::string_view prefix) {
  return text.substr(std::min(at, text.size())).starts_with(prefix);
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

// Replaces each "<command>{x}" (braces balanced) by `before` + x; unclosed ones stay. The command
// must not continue with a letter ("\text{" is not "\textbf{").
void unwrap_command(std::string& text, std::string_view command, std::string_view before) {
  const std::string opener = std::string(command) + "{";
  size_t search_from = 0;
  for (size_t start; (start = text.find(opener, search_from)) != std::string::npos;) {
    const size_t open = start + opener.size();
    const size_t close = matching_brace(text, open);
    if (close == std::string::npos) {
      search_from = open;
      continue;
    }
    text = text.substr(0, start) + std::string(before) + text.substr(open, close - open) +
           text.substr(close + 1);
    search_from = start;  // the content may hold another wrapper
  }
}

// Drops a LaTeX command when no letter follows it ("\left(" → "(", but "\leftarrow" stays).
void drop_command(std::string& text, std::string_view command) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (starts_with(text, i, command) &&
        (i + command.size() == text.size() || !is_letter(text[i + command.size()]))) {
      i += command.size();
      continue;
    }
    out.push_back(text[i++]);
  }
  text = std::move(out);
}

// The answer without LaTeX noise (see answers_equivalent), trimmed.
std::string clean(std::string_view answer) {
  std::string text(trim(answer));
  // An outer \boxed{...} (a reference or a prediction passed with its box).
  for (const std::string_view box : {"\\boxed{", "\\fbox{"}) {
    if (text.starts_with(box) && matching_brace(text, box.size()) == text.size() - 1) {
      text = text.substr(box.size(), text.size() - box.size() - 1);
    }
  }
  // Text wrappers keep their content; a space in front so that "18\text{dollars}" reads as a
  // number and a unit word.
  for (const std::string_view command :
       {"\\textbf", "\\textit", "\\textrm", "\\text", "\\mathrm", "\\mathbf", "\\mbox"}) {
    unwrap_command(text, command, " ");
  }
  for (const std::string_view degrees : {"^{\\circ}", "^\\circ", "\\circ", "\u00B0"}) {
    replace_all(text, degrees, "");
  }
  replace_all(text, "\\dfrac", "\\frac");
  replace_all(text, "\\tfrac", "\\frac");
  for (const std::string_view command : {"\\left", "\\right", "\\displaystyle"}) {
    drop_command(text, command);
  }
  replace_all(text, "{,}", ",");
  replace_all(text, "\\$", "");
  replace_all(text, "$", "");
  for (const std::string_view thin_space : {"\\,", "\\!", "\\;", "\\:", "\\ ", "~"}) {
    replace_all(text, thin_space, "");
  }
  replace_all(text, "\\%", "%");
  std::string_view view = trim(text);
  if (view.ends_with('.')) view.remove_suffix(1);  // a sentence's period: "18." is 18
  return std::string(trim(view));
}

// ---- Exact numbers ----

Int gcd(Int a, Int b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) a = std::exchange(b, a % b);
  return a;
}

struct Rational {
  Int num = 0;
  Int den = 1;  // > 0, coprime with num
};

std::optional<Rational> make_rational(Int num, Int den) {
  if (den == 0) return std::nullopt;
  if (den < 0) num = -num, den = -den;
  const Int g = gcd(num, den);
  if (g > 1) num /= g, den /= g;
  return Rational{num, den};
}

std::optional<Int> checked_mul(Int a, Int b) {
  Int out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

std::optional<Rational> add(const Rational& a, const Rational& b) {
  const auto left = checked_mul(a.num, b.den);
  const auto right = checked_mul(b.num, a.den);
  const auto den = checked_mul(a.den, b.den);
  if (!left || !right || !den) return std::nullopt;
  Int sum = 0;
  if (__builtin_add_overflow(*left, *right, &sum)) return std::nullopt;
  return make_rational(sum, *den);
}

std::optional<Rational> divide(const Rational& a, const Rational& b) {
  const auto num = checked_mul(a.num, b.den);
  const auto den = checked_mul(a.den, b.num);
  if (!num || !den) return std::nullopt;
  return make_rational(*num, *den);
}

// round(q, 6) * 10^6 as an integer: floor(q * 10^6 + 1/2).
std::optional<Int> round6(const Rational& q) {
  const auto scaled = checked_mul(q.num, 1000000);
  if (!scaled) return std::nullopt;
  const auto twice = checked_mul(*scaled, 2);
  if (!twice) return std::nullopt;
  Int num = *twice + q.den;  // (2 q 10^6 + 1) / 2, over den
  const Int den = 2 * q.den;
  Int floor = num / den;
  if (num % den != 0 && num < 0) --floor;
  return floor;
}

struct Number {
  Rational value;        // as written, before the percent
  bool decimal = false;  // written with a decimal point: compared to 6 decimals
  bool percent = false;  // written with "%"
};

// Reads numbers from `text` at `at`; each read advances `at` only on success.
class NumberReader {
 public:
  explicit NumberReader(std::string_view text) : text_(text) {}

  size_t at = 0;
  bool decimal = false;

  bool done() const { return at == text_.size(); }
  void skip_spaces() {
    while (at < text_.size() && is_space(text_[at])) ++at;
  }
  bool take(std::string_view literal) {
    if (!starts_with(text_, at, literal)) return false;
    at += literal.size();
    return true;
  }
  bool at_digit() const { return at < text_.size() && is_digit(text_[at]); }

  // digits [. digits] | . digits; with `grouping`, "1,234,567" groups of three after the first.
  std::optional<Rational> unsigned_decimal(bool grouping) {
    const size_t start = at;
    Int num = 0;
    Int den = 1;
    size_t digits = 0;
    size_t group = 0;  // digits in the current group
    bool grouped = false;
    auto push_digit = [&](char c) {
      const auto times = checked_mul(num, 10);
      if (!times) return false;
      num = *times + (c - '0');
      ++digits;
      return true;
    };
    for (; at < text_.size(); ++at) {
      const char c = text_[at];
      if (is_digit(c)) {
        if (!push_digit(c)) return fail(start);
        ++group;
      } else if (c == ',' && grouping && digits > 0 && (grouped ? group == 3 : group <= 3) &&
                 three_digits_then_boundary(at + 1)) {
        grouped = true;
        group = 0;
      } else {
        break;
      }
    }
    if (grouped && group != 3) return fail(start);
    if (at < text_.size() && text_[at] == '.' && at + 1 < text_.size() && is_digit(text_[at + 1])) {
      ++at;
      decimal = true;
      for (; at < text_.size() && is_digit(text_[at]); ++at) {
        if (!push_digit(text_[at])) return fail(start);
        const auto scale = checked_mul(den, 10);
        if (!scale) return fail(start);
        den = *scale;
      }
    }
    if (digits == 0) return fail(start);
    return make_rational(num, den);
  }

  // [+-] unsigned_decimal, spaces allowed after the sign.
  std::optional<Rational> signed_decimal(bool grouping) {
    const size_t start = at;
    const bool negative = take("-");
    if (!negative) take("+");
    skip_spaces();
    auto value = unsigned_decimal(grouping);
    if (!value) return fail(start);
    if (negative) value->num = -value->num;
    return value;
  }

  // \frac{a}{b} (a, b signed decimals) or \fracDD.
  std::optional<Rational> latex_fraction() {
    const size_t start = at;
    if (!take("\\frac")) return std::nullopt;
    skip_spaces();
    std::optional<Rational> parts[2];
    for (auto& part : parts) {
      if (take("{")) {
        skip_spaces();
        part = signed_decimal(false);
        skip_spaces();
        if (!part || !take("}")) return fail(start);
      } else if (at_digit()) {
        part = make_rational(text_[at++] - '0', 1);
      } else {
        return fail(start);
      }
      skip_spaces();
    }
    auto value = divide(*parts[0], *parts[1]);
    if (!value) return fail(start);
    return value;
  }

 private:
  std::optional<Rational> fail(size_t start) {
    at = start;
    return std::nullopt;
  }
  bool three_digits_then_boundary(size_t from) const {
    if (from + 3 > text_.size()) return false;
    for (size_t i = from; i < from + 3; ++i) {
      if (!is_digit(text_[i])) return false;
    }
    return from + 3 == text_.size() || !is_digit(text_[from + 3]);
  }

  std::string_view text_;
};

// Unit words after a number: letters, spaces, periods and "/" ("km/h"), beginning with a word of
// two letters or more ("2 x" is the product 2x, as math-verify reads it).
bool is_unit_text(std::string_view text) {
  if (text.size() < 2 || !is_letter(text[0]) || !is_letter(text[1])) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return is_letter(c) || is_space(c) || c == '.' || c == '/'; });
}

// The cleaned answer as one number (see answers_equivalent), or nullopt.
std::optional<Number> parse_number(std::string_view text) {
  NumberReader reader(text);
  reader.skip_spaces();
  const bool negative = reader.take("-");
  if (!negative) reader.take("+");
  reader.skip_spaces();

  std::optional<Rational> value = reader.latex_fraction();
  if (!value) {
    value = reader.unsigned_decimal(true);
    if (!value) return std::nullopt;
    const size_t after_whole = reader.at;
    const bool whole_is_integer = value->den == 1 && !reader.decimal;
    reader.skip_spaces();
    if (reader.take("/")) {  // a/b
      reader.skip_spaces();
      const auto denominator = reader.signed_decimal(false);
      if (!denominator) return std::nullopt;
      value = divide(*value, *denominator);
      if (!value) return std::nullopt;
    } else if (whole_is_integer) {
      // A mixed number: "1\frac{1}{2}", "1 \frac{1}{2}" or "1 1/2" (a space before a/b).
      std::optional<Rational> part = reader.latex_fraction();
      if (!part && reader.at > after_whole && reader.at_digit()) {
        const size_t before = reader.at;
        const auto top = reader.unsigned_decimal(false);
        if (top && !reader.decimal && reader.take("/")) {
          const auto bottom = reader.unsigned_decimal(false);
          if (bottom && !reader.decimal) part = divide(*top, *bottom);
        }
        if (!part) reader.at = before;
      }
      if (part) {
        if (part->num < 0) return std::nullopt;
        value = add(*value, *part);
        if (!value) return std::nullopt;
      } else {
        reader.at = after_whole;
      }
    } else {
      reader.at = after_whole;
    }
  }
  Number number{*value, reader.decimal, false};
  if (negative) number.value.num = -number.value.num;
  const size_t after_number = reader.at;
  reader.skip_spaces();
  number.percent = reader.take("%");
  if (!number.percent) reader.at = after_number;
  // Unit words need a space before them: "2x" is an expression, "10 apples" a number.
  const size_t before_units = reader.at;
  reader.skip_spaces();
  if (reader.done()) return number;
  if (reader.at == before_units) return std::nullopt;
  if (!is_unit_text(text.substr(reader.at))) return std::nullopt;
  return number;
}

// math-verify's numeric rule (grader.sympy_numeric_eq with float_rounding 6).
bool numbers_equal(const Number& a, const Number& b) {
  const auto with_percent = [](const Number& n) -> std::optional<Rational> {
    return n.percent ? divide(n.value, Rational{100, 1}) : std::optional<Rational>(n.value);
  };
  const auto left = with_percent(a);
  const auto right = with_percent(b);
  if (!left || !right) return false;
  if (a.decimal || b.decimal) {
    // An integer written without a point compares exactly (3 != 3.0000001): math-verify rounds
    // the decimal to 6 places, but sympy's rounded Float is never exactly an Integer.
    const bool exact = (!a.decimal && left->den == 1) || (!b.decimal && right->den == 1);
    if (exact) return left->num == right->num && left->den == right->den;
    const auto l = round6(*left);
    const auto r = round6(*right);
    return l && r && *l == *r;
  }
  if (a.value.den == 1 && b.value.den == 1) return a.value.num == b.value.num;  // 9% = 9
  return left->num == right->num && left->den == right->den;
}

// ---- Expressions, evaluated at fixed points ----

// Evaluates a cleaned LaTeX expression with each variable set by `value_of`; nullopt when it is
// not an expression this evaluator reads (it then compares as text).
class Evaluator {
 public:
  Evaluator(std::string_view text, std::function<double(const std::string&)> value_of)
      : text_(text), value_of_(std::move(value_of)) {}

  std::optional<double> run() {
    skip();
    const auto value = expression();
    skip();
    if (!value || at_ != text_.size() || depth_ > kMaxDepth) return std::nullopt;
    return value;
  }

  bool has_variables() const { return has_variables_; }
  // The whole text was one number with a decimal point (math-verify's Float atom).
  bool atomic_decimal() const { return atoms_ == 1 && decimal_atoms_ == 1 && operators_ == 0; }

 private:
  static constexpr int kMaxDepth = 200;

  void skip() {
    while (at_ < text_.size() && is_space(text_[at_])) ++at_;
  }
  bool take(std::string_view literal) {
    skip();
    if (!starts_with(text_, at_, literal)) return false;
    // A command must not run on into a longer one ("\pi" is not "\pint").
    if (literal.size() > 1 && literal[0] == '\\' && is_letter(literal.back()) &&
        at_ + literal.size() < text_.size() && is_letter(text_[at_ + literal.size()])) {
      return false;
    }
    at_ += literal.size();
    return true;
  }
  char peek() {
    skip();
    return at_ < text_.size() ? text_[at_] : '\0';
  }

  std::optional<double> expression() {
    if (++depth_ > kMaxDepth) return std::nullopt;
    auto value = term();
    while (value) {
      if (take("+")) {
        ++operators_;
        const auto right = term();
        if (!right) return std::nullopt;
        *value += *right;
      } else if (take("-")) {
        ++operators_;
        const auto right = term();
        if (!right) return std::nullopt;
        *value -= *right;
      } else {
        break;
      }
    }
    --depth_;
    return value;
  }

  bool starts_factor() {
    const char c = peek();
    if (is_digit(c) || is_letter(c) || c == '(' || c == '{' || c == '.') return true;
    if (c != '\\') return false;
    for (const std::string_view command : kFactorCommands) {
      if (starts_with(text_, at_, command)) return true;
    }
    return false;
  }

  std::optional<double> term() {
    auto value = unary();
    while (value) {
      if (take("*") || take("\\cdot") || take("\\times")) {
        ++operators_;
        const auto right = unary();
        if (!right) return std::nullopt;
        *value *= *right;
      } else if (take("/") || take("\\div")) {
        ++operators_;
        const auto right = unary();
        if (!right || *right == 0) return std::nullopt;
        *value /= *right;
      } else if (starts_factor()) {  // an implicit product: 2x, 2\pi, (x+1)(x-1)
        ++operators_;
        const auto right = power();
        if (!right) return std::nullopt;
        *value *= *right;
      } else {
        break;
      }
    }
    return value;
  }

  std::optional<double> unary() {
    if (++depth_ > kMaxDepth) return std::nullopt;
    std::optional<double> value;
    if (take("-")) {
      value = unary();
      if (value) *value = -*value;
    } else if (take("+")) {
      value = unary();
    } else {
      value = power();
    }
    --depth_;
    return value;
  }

  std::optional<double> power() {
    auto base = primary();
    if (!base || !take("^")) return base;
    ++operators_;
    std::optional<double> exponent;
    if (peek() == '{') {
      exponent = group();
    } else if (take("-")) {
      exponent = primary();
      if (exponent) *exponent = -*exponent;
    } else {
      exponent = single();
    }
    if (!exponent) return std::nullopt;
    const double result = std::pow(*base, *exponent);
    if (!std::isfinite(result)) return std::nullopt;
    return result;
  }

  std::optional<double> group() {
    if (!take("{")) return std::nullopt;
    const auto value = expression();
    if (!value || !take("}")) return std::nullopt;
    return value;
  }

  // A one-character argument (\frac12, x^2) or a braced group.
  std::optional<double> single() {
    const char c = peek();
    if (c == '{') return group();
    if (is_digit(c)) return static_cast<double>(text_[at_++] - '0');
    if (is_letter(c)) return variable(std::string(1, lower(text_[at_++])));
    return primary();
  }

  std::optional<double> variable(const std::string& name) {
    has_variables_ = true;
    ++atoms_;
    return value_of_(name);
  }

  std::optional<double> number() {
    const size_t start = at_;
    bool decimal = false;
    while (at_ < text_.size() && is_digit(text_[at_])) ++at_;
    if (at_ < text_.size() && text_[at_] == '.' && at_ + 1 < text_.size() &&
        is_digit(text_[at_ + 1])) {
      decimal = true;
      ++at_;
      while (at_ < text_.size() && is_digit(text_[at_])) ++at_;
    }
    if (at_ == start) return std::nullopt;
    ++atoms_;
    if (decimal) ++decimal_atoms_;
    // strtod, not stod: 400 digits give HUGE_VAL (rejected later as not finite), never a throw.
    return std::strtod(std::string(text_.substr(start, at_ - start)).c_str(), nullptr);
  }

  std::optional<double> primary() {
    if (++depth_ > kMaxDepth) return std::nullopt;
    const auto value = primary_inner();
    --depth_;
    return value;
  }

  std::optional<double> primary_inner() {
    const char c = peek();
    if (is_digit(c) || c == '.') return number();
    if (is_letter(c)) return variable(std::string(1, lower(text_[at_++])));
    if (c == '(' || c == '[') {
      ++at_;
      const auto value = expression();
      if (!value || !(take(")") || take("]"))) return std::nullopt;
      return value;
    }
    if (c == '{') return group();
    if (take("\\frac")) {
      const auto top = single();
      const auto bottom = single();
      if (!top || !bottom || *bottom == 0) return std::nullopt;
      ++operators_;
      return *top / *bottom;
    }
    if (take("\\sqrt")) {
      ++operators_;
      double degree = 2;
      if (take("[")) {
        const auto n = expression();
        if (!n || !take("]") || *n == 0) return std::nullopt;
        degree = *n;
      }
      const auto radicand = single();
      if (!radicand || *radicand < 0) return std::nullopt;
      return std::pow(*radicand, 1 / degree);
    }
    if (take("\\pi")) {
      ++atoms_;
      return 3.14159265358979323846;
    }
    for (const auto& [name, function] : functions()) {
      if (take(name)) {
        ++operators_;
        const auto argument = power();
        if (!argument) return std::nullopt;
        const double result = function(*argument);
        if (!std::isfinite(result)) return std::nullopt;
        return result;
      }
    }
    if (c == '\\') {  // a Greek letter is a variable
      for (const std::string_view greek : kGreek) {
        if (take(greek)) return variable(std::string(greek));
      }
    }
    return std::nullopt;
  }

  static const std::vector<std::pair<std::string_view, double (*)(double)>>& functions() {
    static const std::vector<std::pair<std::string_view, double (*)(double)>> table = {
        {"\\sin", [](double x) { return std::sin(x); }},
        {"\\cos", [](double x) { return std::cos(x); }},
        {"\\tan", [](double x) { return std::tan(x); }},
        {"\\ln", [](double x) { return std::log(x); }},
        {"\\log", [](double x) { return std::log(x); }},
        {"\\exp", [](double x) { return std::exp(x); }},
    };
    return table;
  }

  static constexpr std::array<std::string_view, 12> kGreek = {
      "\\alpha", "\\beta",  "\\gamma", "\\delta", "\\theta", "\\lambda",
      "\\mu",    "\\sigma", "\\phi",   "\\omega", "\\tau",   "\\rho"};
  static constexpr std::array<std::string_view, 21> kFactorCommands = {
      "\\frac",   "\\sqrt", "\\pi",    "\\sin",  "\\cos",   "\\tan",   "\\ln",
      "\\log",    "\\exp",  "\\alpha", "\\beta", "\\gamma", "\\delta", "\\theta",
      "\\lambda", "\\mu",   "\\sigma", "\\phi",  "\\omega", "\\tau",   "\\rho"};

  std::string_view text_;
  std::function<double(const std::string&)> value_of_;
  size_t at_ = 0;
  int depth_ = 0;
  bool has_variables_ = false;
  int atoms_ = 0;
  int decimal_atoms_ = 0;
  int operators_ = 0;
};

// A fixed value in [0.6, 2.1) for variable `name` at point `point` (FNV-1a of both).
double point_value(const std::string& name, int point) {
  uint64_t hash = 1469598103934665603ull;
  for (const char c : name + "#" + std::to_string(point)) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return 0.6 + 1.5 * static_cast<double>(hash % 1000003) / 1000003.0;
}

bool close(double a, double b, double relative) {
  return std::fabs(a - b) <= relative * std::max({1.0, std::fabs(a), std::fabs(b)});
}

// nullopt: at least one side is no expression this evaluator reads.
std::optional<bool> expressions_equal(std::string_view a, std::string_view b) {
  constexpr int kPoints = 3;
  for (int point = 0; point < kPoints; ++point) {
    const auto value_of = [point](const std::string& name) { return point_value(name, point); };
    Evaluator left(a, value_of);
    Evaluator right(b, value_of);
    const auto l = left.run();
    const auto r = right.run();
    if (!l || !r || !std::isfinite(*l) || !std::isfinite(*r)) return std::nullopt;
    if (!left.has_variables() && !right.has_variables()) {
      if (left.atomic_decimal() || right.atomic_decimal()) {
        return std::round(*l * 1e6) == std::round(*r * 1e6);
      }
      return close(*l, *r, 1e-12);
    }
    if (!close(*l, *r, 1e-9)) return false;
  }
  return true;
}

// ---- Structure: sets, tuples, intervals, equations ----

// Splits at commas (or `separator`) outside brackets and braces; "\{" "\}" count as brackets.
std::vector<std::string_view> split_top_level(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      if (text[i + 1] == '{') ++depth;
      if (text[i + 1] == '}') --depth;
      ++i;
    } else if (c == '(' || c == '[' || c == '{') {
      ++depth;
    } else if (c == ')' || c == ']' || c == '}') {
      --depth;
    } else if (c == separator && depth == 0) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

// True if the bracket opening at 0 closes at the very end.
bool wrapped(std::string_view text, size_t open_size) {
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      if (text[i + 1] == '{') ++depth;
      if (text[i + 1] == '}' && --depth == 0) return i + 2 == text.size();
      ++i;
    } else if (c == '(' || c == '[' || c == '{') {
      ++depth;
    } else if ((c == ')' || c == ']' || c == '}') && --depth == 0) {
      return i + 1 == text.size() && i >= open_size;
    }
  }
  return false;
}

struct Structure {
  enum class Kind { Single, Set, Ordered } kind = Kind::Single;
  std::string brackets;  // for Ordered: the opening and the closing bracket, e.g. "(]"
  std::vector<std::string_view> items;
};

Structure structure_of(std::string_view text) {
  if (text.starts_with("\\{") && text.ends_with("\\}") && wrapped(text, 2)) {
    return {Structure::Kind::Set, "", split_top_level(text.substr(2, text.size() - 4), ',')};
  }
  if (text.size() >= 2 && (text.front() == '(' || text.front() == '[') &&
      (text.back() == ')' || text.back() == ']')) {
    // "(1,2]" closes with another bracket than it opens; the depth count treats both alike.
    if (wrapped(text, 1)) {
      auto items = split_top_level(text.substr(1, text.size() - 2), ',');
      if (items.size() > 1) {
        return {Structure::Kind::Ordered, {text.front(), text.back()}, std::move(items)};
      }
    }
  }
  auto items = split_top_level(text, ',');
  if (items.size() > 1 && !parse_number(text)) return {Structure::Kind::Set, "", std::move(items)};
  return {Structure::Kind::Single, "", {text}};
}

std::string as_text(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (!is_space(c)) out.push_back(lower(c));
  }
  return out;
}

bool equivalent(std::string_view a, std::string_view b, int depth);

// A number against a constant expression ("1,000,000" against "10^6"): its value, to 6 decimals
// when written with a point.
bool number_equals_expression(const Number& number, std::string_view expression) {
  Evaluator evaluator(expression, [](const std::string& name) { return point_value(name, 0); });
  const auto value = evaluator.run();
  if (!value || evaluator.has_variables()) return false;
  double exact = static_cast<double>(number.value.num) / static_cast<double>(number.value.den);
  if (number.percent) exact /= 100;
  if (number.decimal || evaluator.atomic_decimal()) {
    return std::round(exact * 1e6) == std::round(*value * 1e6);
  }
  return close(exact, *value, 1e-12);
}

bool single_equivalent(std::string_view a, std::string_view b) {
  if (as_text(a) == as_text(b)) return true;
  const auto left = parse_number(a);
  const auto right = parse_number(b);
  if (left && right) return numbers_equal(*left, *right);
  if (left) return number_equals_expression(*left, b);
  if (right) return number_equals_expression(*right, a);
  const auto expressions = expressions_equal(a, b);
  return expressions.value_or(false);
}

bool equivalent(std::string_view a, std::string_view b, int depth) {
  a = trim(a);
  b = trim(b);
  if (a.empty() || b.empty() || depth > 8) return false;
  // Equations: "x = 5" against "5" compares the right-hand side.
  const auto a_sides = split_top_level(a, '=');
  const auto b_sides = split_top_level(b, '=');
  if (a_sides.size() == 2 && b_sides.size() == 2) {
    return equivalent(a_sides[0], b_sides[0], depth + 1) &&
           equivalent(a_sides[1], b_sides[1], depth + 1);
  }
  if (a_sides.size() == 2 && b_sides.size() == 1) return equivalent(a_sides[1], b, depth + 1);
  if (a_sides.size() == 1 && b_sides.size() == 2) return equivalent(a, b_sides[1], depth + 1);

  const Structure left = structure_of(a);
  const Structure right = structure_of(b);
  if (left.kind != right.kind || left.items.size() != right.items.size()) return false;
  switch (left.kind) {
    case Structure::Kind::Single:
      return single_equivalent(a, b);
    case Structure::Kind::Ordered:
      if (left.brackets != right.brackets) return false;
      for (size_t i = 0; i < left.items.size(); ++i) {
        if (!equivalent(left.items[i], right.items[i], depth + 1)) return false;
      }
      return true;
    case Structure::Kind::Set: {
      // Each item of one matches a distinct item of the other (greedy: items are few and an
      // equivalence between answers is in practice transitive).
      std::vector<bool> used(right.items.size(), false);
      for (const std::string_view item : left.items) {
        bool found = false;
        for (size_t j = 0; j < right.items.size() && !found; ++j) {
          if (!used[j] && equivalent(item, right.items[j], depth + 1)) used[j] = found = true;
        }
        if (!found) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace

// ---- Extraction ----

std::string_view answer_source_name(AnswerSource source) {
  switch (source) {
    case AnswerSource::None:
      return "none";
    case AnswerSource::Boxed:
      return "boxed";
    case AnswerSource::Gsm8k:
      return "gsm8k";
    case AnswerSource::LastNumber:
      return "last_number";
  }
  return "none";
}

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

FinalAnswer extract_final_answer(std::string_view text) {
  if (auto boxed = extract_boxed(text)) return {std::move(*boxed), AnswerSource::Boxed};
  const size_t marker = text.rfind("####");
  if (marker != std::string_view::npos) {
    std::string_view rest = text.substr(marker + 4);
    rest = trim(rest.substr(0, rest.find('\n')));
    if (!rest.empty()) return {std::string(rest), AnswerSource::Gsm8k};
  }
  // The last number: [-] digits [,ddd]* [.digits] [/digits], read right to left by scanning
  // every start and keeping the last match.
  std::string_view last;
  for (size_t i = 0; i < text.size();) {
    if (!is_digit(text[i]) || (i > 0 && (is_digit(text[i - 1]) || is_letter(text[i - 1])))) {
      ++i;
      continue;
    }
    size_t start = i;
    if (start > 0 && text[start - 1] == '-' &&
        (start == 1 || !(is_digit(text[start - 2]) || is_letter(text[start - 2])))) {
      --start;
    }
    size_t end = i;
    while (end < text.size() && is_digit(text[end])) ++end;
    while (end + 3 < text.size() && text[end] == ',' && is_digit(text[end + 1]) &&
           is_digit(text[end + 2]) && is_digit(text[end + 3]) &&
           (end + 4 == text.size() || !is_digit(text[end + 4]))) {
      end += 4;
    }
    if (end + 1 < text.size() && (text[end] == '.' || text[end] == '/') &&
        is_digit(text[end + 1])) {
      ++end;
      while (end < text.size() && is_digit(text[end])) ++end;
    }
    last = text.substr(start, end - start);
    i = end;
  }
  if (!last.empty()) return {std::string(last), AnswerSource::LastNumber};
  return {};
}

bool reads_as_float(std::string_view text) {
  // Python strips all whitespace around the number; ASCII whitespace is what a model writes.
  text = trim(text);
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  std::string lowered(text);
  for (char& c : lowered) c = lower(c);
  if (lowered == "inf" || lowered == "infinity" || lowered == "nan") return true;
  size_t i = 0;
  // Digits with single underscores between them; returns how many digits were read.
  auto digits = [&]() {
    size_t count = 0;
    while (i < text.size()) {
      if (is_digit(text[i])) {
        ++count;
        ++i;
      } else if (text[i] == '_' && count > 0 && i + 1 < text.size() && is_digit(text[i + 1])) {
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

std::string final_answer_of_reference(std::string_view reference) {
  const size_t marker = reference.rfind("####");
  if (marker == std::string_view::npos) return std::string(trim(reference));
  std::string answer(trim(reference.substr(marker + 4)));
  std::erase(answer, ',');
  return answer;
}

// ---- Equivalence ----

bool answers_equivalent(std::string_view predicted, std::string_view reference) {
  return equivalent(clean(predicted), clean(reference), 0);
}

bool answers_match(std::string_view predicted, std::string_view reference) {
  return answers_equivalent(predicted, reference);
}

}  // namespace hogwild
