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

PromptConfig default_prompts() {
  PromptConfig prompts;
  // Our own wording of docs/design.md §5: the team, the three sections, the <...> marker, and
  // "notice duplicated work, say so, switch". Short on purpose: the demo model is small.
  prompts.system =
      "You are one of {count} assistants, {names}, solving one problem together. You all write "
      "at the same time, and each of you sees the others' text as it is being written.\n"
      "\n"
      "What you see is arranged in sections:\n"
      "- \"### Past steps\": finished paragraphs of the whole team, oldest first.\n"
      "- \"### Work in progress (others)\": what the others are writing right now; an "
      "unfinished paragraph ends with <...>.\n"
      "- \"### Work in progress (own)\": your own paragraph, always last; continue it where it "
      "stops.\n"
      "Every paragraph starts with its author's name and number, like **Name [3]:**.\n"
      "\n"
      "Divide the work instead of repeating it: take a part nobody has taken, use and check what "
      "the others found, and keep paragraphs short so they can build on them. If you notice you "
      "are doing the same thing as someone else, say so in one sentence and switch to something "
      "else; when asked whether you are doing redundant work, answer honestly. When the team has "
      "the answer, write it as \\boxed{answer}.";
  prompts.history_header = "### Past steps\n\n";
  prompts.others_header = "\n\n### Work in progress (others)\n\n";
  // The marker closes each other worker's unfinished step (marker + "\n\n"), so the own header
  // follows it directly, as in the paper's layout.
  prompts.own_header = "### Work in progress (own)\n\n";
  prompts.step_prefix = "**{name} [{step}]:** ";
  prompts.first_step_prefix = "**{name} [{step}]:** Hi, I'm {name}.";
  prompts.incomplete_marker = " <...>";
  prompts.redundancy_check = "Quick check: am I doing redundant work? (yes/no): ";
  prompts.redundancy_interval = 1024;
  prompts.finisher =
      "\n\n... I have to give an answer right now. Considering everything written above, the "
      "final answer is \\boxed{";
  prompts.finisher_tokens = 16;
  prompts.chat_template = true;
  prompts.collaborate = true;
  return prompts;
}

}  // namespace hogwild
