// The live view's two faces: plain log lines (not a terminal) and the redrawn panel (terminal).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "app/live_view.h"

namespace hogwild {
namespace {

std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t count;
  while ((count = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, count);
  return text;
}

RunProgress progress() {
  RunProgress p;
  p.problems_done = 1;
  p.problems_total = 3;
  p.generated_tokens = 120;
  p.seconds = 4.0;
  p.forward_passes = 60;
  p.problem_id = "gsm8k:7";
  p.problem_passes = 12;
  p.budget = 64;
  p.names = {"Alice", "Bob"};
  p.steps = {"**Alice [2]:** Let me add\nthe numbers", "**Bob [3]:** I will check"};
  return p;
}

TEST(LiveView, PlainLinesForLogs) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    LiveView view(file, /*interactive=*/false);
    ProblemResult result;
    result.id = "gsm8k:3";
    result.answer = "18";
    result.reference_answer = "18";
    result.correct = 1;
    result.stop_reason = "answer";
    result.forward_passes = 40;
    result.generated_tokens = 80;
    view.on_problem(result, progress());
    view.on_step(progress());  // the first progress line is printed at once
    view.on_step(progress());  // the next only after 10 s
  }
  const std::string text = contents(file);
  std::fclose(file);
  EXPECT_NE(text.find("[problem 1/3] gsm8k:3: answer '18' (correct; reference '18'), stop: answer"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("[progress] problems 1/3 | 30.0 tok/s | 60 passes"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("[progress]"), text.rfind("[progress]")) << "one progress line: " << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << "no terminal escapes in logs";
}

TEST(LiveView, PanelShowsEachWorkersStepOnOneLine) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    LiveView view(file, /*interactive=*/true);
    view.on_step(progress());
  }
  const std::string text = contents(file);
  std::fclose(file);
  EXPECT_NE(text.find("Alice\x1b[0m: **Alice [2]:** Let me add\xe2\x8f\x8ethe numbers"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Bob\x1b[0m: **Bob [3]:** I will check"), std::string::npos) << text;
  EXPECT_NE(text.find("gsm8k:7 budget 12/64"), std::string::npos) << text;
}

}  // namespace
}  // namespace hogwild
