#include "app/live_view.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "common/terminal_text.h"

namespace hogwild {
namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(200);
constexpr auto kLogInterval = std::chrono::seconds(10);

int terminal_width() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 20) return size.ws_col;
  return 100;
}

// The last `width` columns of a step's text on one line (newlines shown as ⏎, tabs as spaces,
// other control characters escaped), cut on a UTF-8 character boundary.
std::string tail_line(const std::string& text, size_t width) {
  std::string lines;
  for (char c : text) {
    if (c == '\n')
      lines += "\xe2\x8f\x8e";
    else
      lines += c == '\t' ? ' ' : c;
  }
  const std::string flat = escape_controls(lines);
  size_t characters = 0, start = flat.size();
  while (start > 0 && characters < width) {
    --start;
    if ((static_cast<unsigned char>(flat[start]) & 0xc0) != 0x80) ++characters;
  }
  return flat.substr(start);
}

std::string progress_line(const RunProgress& p) {
  char line[256];
  std::snprintf(line, sizeof line, "problems %lld/%lld | %.1f tok/s | %lld passes | %.0f s",
                static_cast<long long>(p.problems_done), static_cast<long long>(p.problems_total),
                p.seconds > 0 ? static_cast<double>(p.generated_tokens) / p.seconds : 0.0,
                static_cast<long long>(p.forward_passes), p.seconds);
  std::string text = line;
  if (!p.problem_id.empty())
    text += " | " + escape_controls(p.problem_id) + " budget " + std::to_string(p.problem_passes) +
            "/" + std::to_string(p.budget);
  return text;
}

}  // namespace

LiveView::LiveView(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}

LiveView::~LiveView() {
  if (interactive_) clear_panel();
}

bool LiveView::stderr_is_terminal() { return isatty(STDERR_FILENO) != 0; }

void LiveView::clear_panel() {
  for (int i = 0; i < panel_lines_; ++i) std::fputs("\x1b[1A\x1b[2K", out_);
  panel_lines_ = 0;
}

void LiveView::set_header(std::string header) {
  if (header == header_) return;
  header_ = std::move(header);
  // Plain lines: a new run at once, else as often as the progress lines.
  const auto now = std::chrono::steady_clock::now();
  const std::string run = header_.substr(0, header_.find(" | "));
  if (!interactive_ && (run != header_run_ || now - last_header_ >= kLogInterval)) {
    header_run_ = run;
    last_header_ = now;
    std::fprintf(out_, "[sweep] %s\n", header_.c_str());
    std::fflush(out_);
  }
}

void LiveView::draw_panel(const RunProgress& progress) {
  clear_panel();
  if (!header_.empty()) {
    std::fprintf(out_, "\x1b[1m%s\x1b[0m\n", header_.c_str());
    ++panel_lines_;
  }
  const auto width = static_cast<size_t>(terminal_width());
  for (size_t w = 0; w < progress.names.size() && w < progress.steps.size(); ++w) {
    const std::string name = escape_controls(progress.names[w]);
    const std::string label = "\x1b[1m" + name + "\x1b[0m: ";
    const size_t room = width > name.size() + 3 ? width - name.size() - 3 : 10;
    std::fprintf(out_, "%s%s\n", label.c_str(), tail_line(progress.steps[w], room).c_str());
    ++panel_lines_;
  }
  std::fprintf(out_, "\x1b[2m%s\x1b[0m\n", progress_line(progress).c_str());
  ++panel_lines_;
  std::fflush(out_);
}

void LiveView::on_step(const RunProgress& progress) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ <
      (interactive_ ? kRedrawInterval
                    : std::chrono::duration_cast<std::chrono::milliseconds>(kLogInterval)))
    return;
  last_draw_ = now;
  if (interactive_) {
    draw_panel(progress);
  } else {
    std::fprintf(out_, "[progress] %s\n", progress_line(progress).c_str());
    std::fflush(out_);
  }
}

void LiveView::on_problem(const ProblemResult& result, const RunProgress& progress) {
  if (interactive_) clear_panel();
  if (!result.error.empty()) {
    std::fprintf(out_, "[problem %lld/%lld] %s: failed: %s\n",
                 static_cast<long long>(progress.problems_done),
                 static_cast<long long>(progress.problems_total),
                 escape_controls(result.id).c_str(), escape_controls(result.error).c_str());
    std::fflush(out_);
    if (interactive_) {
      last_draw_ = {};
      draw_panel(progress);
    }
    return;
  }
  const char* verdict = result.correct == 1   ? "correct"
                        : result.correct == 0 ? "wrong"
                                              : "unscored";
  std::fprintf(out_,
               "[problem %lld/%lld] %s: answer '%s' (%s; reference '%s'), stop: %s, %lld passes, "
               "%lld tokens, %.1f s\n",
               static_cast<long long>(progress.problems_done),
               static_cast<long long>(progress.problems_total), escape_controls(result.id).c_str(),
               escape_controls(result.answer).c_str(), verdict,
               escape_controls(result.reference_answer).c_str(),
               escape_controls(result.stop_reason).c_str(),
               static_cast<long long>(result.forward_passes),
               static_cast<long long>(result.generated_tokens), result.seconds);
  std::fflush(out_);
  if (interactive_) {
    last_draw_ = {};
    draw_panel(progress);
  }
}

}  // namespace hogwild
