#include "hogwild/settings.h"

namespace hogwild {

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::Contiguous:
      return "contiguous";
    case Layout::Interleaved:
      return "interleaved";
    case Layout::Combined:
      return "combined";
  }
  return "unknown";
}

const char* prompt_style_name(PromptStyle style) {
  switch (style) {
    case PromptStyle::Paper:
      return "paper";
    case PromptStyle::Compact:
      return "compact";
  }
  return "unknown";
}

const char* method_name(Method method) {
  switch (method) {
    case Method::Hogwild:
      return "hogwild";
    case Method::Single:
      return "single";
    case Method::Independent:
      return "independent";
    case Method::SelfConsistency:
      return "self_consistency";
  }
  return "unknown";
}

namespace {

// Our own wording of docs/design.md §5: the team, the sections, the <...> marker, and "notice
// duplicated work, say so, switch". Short on purpose: the demo model is small. `sections` says
// what the worker sees, in the style's terms.
std::string collaboration_prompt(const char* sections) {
  return std::string(
             "You are one of {count} assistants, {names}, solving one problem together. You all "
             "write at the same time, and each of you sees the others' text as it is being "
             "written.\n"
             "\n") +
         sections +
         "Every paragraph starts with its author's name and number, like **Name [3]:**.\n"
         "\n"
         "Divide the work instead of repeating it: take a part nobody has taken, use and check "
         "what the others found, and keep paragraphs short so they can build on them. If you "
         "notice you are doing the same thing as someone else, say so in one sentence and switch "
         "to something else; when asked whether you are doing redundant work, answer honestly. "
         "When the team has the answer, write it as \\boxed{answer}.";
}

}  // namespace

PromptConfig default_prompts(PromptStyle style) {
  PromptConfig prompts;
  prompts.style = style;
  prompts.others_header = "\n\n### Work in progress (others)\n\n";
  prompts.own_header = "### Work in progress (own)\n\n";
  prompts.step_prefix = "**{name} [{step}]:** ";
  prompts.first_step_prefix = "**{name} [{step}]:** Hi, I'm {name}.";
  prompts.redundancy_check = "Quick check: am I doing redundant work? (yes/no): ";
  prompts.finisher_tokens = 16;
  prompts.chat_template = true;
  prompts.collaborate = true;
  if (style == PromptStyle::Paper) {
    // The authors' format: the prompt is the user message, the history has no title, "<...>"
    // without a space, the first worker invites the team to plan, a check every 256 tokens
    // (their main's default; the paper says 1024).
    prompts.user = collaboration_prompt(
        "What you see comes in this order: first the finished paragraphs of the whole team, "
        "oldest first; then \"### Work in progress (others)\": what the others are writing right "
        "now, each unfinished paragraph ending with <...>; then \"### Work in progress (own)\": "
        "your own paragraph, always last; continue it where it stops.\n");
    prompts.lead_step_prefix = "**{name} [{step}]:** Hi, I'm {name}. Here's how we can";
    prompts.incomplete_marker = "<...>";
    prompts.redundancy_interval = 256;
    prompts.stop_rule = StopRule::NumberAtStepEnd;
    // The authors' s1-style finisher sentence (a format fact, reused exactly), after the
    // re-encoded transcript.
    prompts.finisher =
        "\n\nWait, given the limited time, I have to give an answer right now. Considering all "
        "my previous attempts, I have to conclude that the final answer is \\boxed{";
    prompts.finisher_mode = FinisherMode::Reencode;
  } else {
    prompts.system = collaboration_prompt(
        "What you see is arranged in sections:\n"
        "- \"### Past steps\": finished paragraphs of the whole team, oldest first.\n"
        "- \"### Work in progress (others)\": what the others are writing right now; an "
        "unfinished paragraph ends with <...>.\n"
        "- \"### Work in progress (own)\": your own paragraph, always last; continue it where it "
        "stops.\n");
    prompts.history_header = "### Past steps\n\n";
    // The marker closes each other worker's unfinished step (marker + "\n\n"), so the own header
    // follows it directly, as in the paper's layout.
    prompts.incomplete_marker = " <...>";
    prompts.redundancy_interval = 1024;
    prompts.stop_rule = StopRule::AnyBoxed;
    prompts.finisher =
        "\n\n... I have to give an answer right now. Considering everything written above, the "
        "final answer is \\boxed{";
    prompts.finisher_mode = FinisherMode::InCache;
  }
  return prompts;
}

}  // namespace hogwild
