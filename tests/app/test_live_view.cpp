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

// Text from data (a reference answer, an answer, a problem id, a worker's step, a name from the
// config) cannot drive the terminal: its ESC, BEL and C1 characters are shown escaped in both
// faces; the panel's own formatting escapes are the only raw ones.
TEST(LiveView, ControlCharactersFromDataAreShownEscaped) {
  RunProgress p = progress();
  p.problem_id = "evil\x1b]0;title\a.jsonl:1";
  p.names = {"Al\x1b[5mice", "Bob"};
  p.steps = {
      "**Alice [1]:** \x1b[2Jcleared\xc2\x9b"
      "31m",
      "**Bob [1]:** ok"};
  ProblemResult result;
  result.id = p.problem_id;
  result.answer = "5\x1b[8m";
  result.reference_answer = "\x1b[2J5\a";
  result.correct = 0;
  result.stop_reason = "answer";
  for (bool interactive : {false, true}) {
    SCOPED_TRACE(interactive ? "panel" : "plain lines");
    std::FILE* file = std::tmpfile();
    ASSERT_NE(file, nullptr);
    {
      LiveView view(file, interactive);
      view.on_step(p);
      view.on_problem(result, p);
    }
    std::string text = contents(file);
    std::fclose(file);
    EXPECT_NE(text.find("answer '5\\x1b[8m'"), std::string::npos) << text;
    EXPECT_NE(text.find("reference '\\x1b[2J5\\x07'"), std::string::npos) << text;
    EXPECT_NE(text.find("evil\\x1b]0;title\\x07.jsonl:1"), std::string::npos) << text;
    if (interactive) {
      EXPECT_NE(text.find("Al\\x1b[5mice"), std::string::npos) << text;
      EXPECT_NE(text.find("\\x1b[2Jcleared\\u009b31m"), std::string::npos) << text;
    }
    // Remove the view's own sequences; nothing else may be a control character.
    for (const char* own : {"\x1b[1A\x1b[2K", "\x1b[1m", "\x1b[0m", "\x1b[2m"})
      for (size_t at; (at = text.find(own)) != std::string::npos;)
        text.erase(at, std::char_traits<char>::length(own));
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\a'), std::string::npos) << text;
    EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace hogwild
