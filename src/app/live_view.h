// What a person sees while `hogwild run` works: on a terminal, a live panel with each worker's
// current step and a progress line, redrawn a few times a second; otherwise (a log file, a batch
// job) plain lines: one per finished problem and a progress line every few seconds.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "experiment/runner.h"

namespace hogwild {

class LiveView final : public RunObserver {
 public:
  // Writes to `out` (stderr by default); `interactive` decides panel or plain lines.
  explicit LiveView(std::FILE* out, bool interactive);
  ~LiveView() override;
  static bool stderr_is_terminal();

  // A line drawn above the panel (a sweep's progress); in plain mode printed when it changes.
  void set_header(std::string header);

  void on_step(const RunProgress& progress) override;
  void on_problem(const ProblemResult& result, const RunProgress& progress) override;

 private:
  void clear_panel();
  void draw_panel(const RunProgress& progress);

  std::FILE* out_;
  bool interactive_;
  std::string header_;
  std::string header_run_;  // the header up to its first " | " (which run), last printed
  std::chrono::steady_clock::time_point last_header_{};
  int panel_lines_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace hogwild
