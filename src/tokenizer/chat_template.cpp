#include "tokenizer/chat_template.h"

#include "common/error.h"

namespace hogwild {

ChatTemplate detect_chat_template(std::string_view template_text) {
  if (template_text.find("<|im_start|>") != std::string_view::npos) return ChatTemplate::ChatML;
  if (template_text.find("<|start_header_id|>") != std::string_view::npos)
    return ChatTemplate::Llama3;
  return ChatTemplate::None;
}

namespace {

// Undoes the escapes of a Jinja string literal (only the ones a prompt would use).
std::string unescape(std::string_view literal) {
  std::string out;
  for (size_t i = 0; i < literal.size(); ++i) {
    if (literal[i] != '\\' || i + 1 == literal.size()) {
      out += literal[i];
      continue;
    }
    const char c = literal[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
  }
  return out;
}

// Trims like Jinja's `trim` filter, which Llama-3's template applies to every message.
std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

}  // namespace

std::string default_system_prompt(std::string_view template_text) {
  // The newline after the role is either a real newline (GGUF stores the template as loaded)
  // or still the two characters "\n" of the literal.
  for (std::string_view header : {"<|im_start|>system\n", "<|im_start|>system\\n"}) {
    size_t pos = 0;
    while ((pos = template_text.find(header, pos)) != std::string_view::npos) {
      pos += header.size();
      const size_t end = template_text.find("<|im_end|>", pos);
      if (end == std::string_view::npos) break;
      const std::string_view body = template_text.substr(pos, end - pos);
      // Only a literal inside one quoted string counts; a quote, `+` or a Jinja brace means
      // the system text is computed (e.g. "'<|im_start|>system\n' + message['content']").
      if (!body.empty() && body.find_first_of("'\"{}+") == std::string_view::npos)
        return unescape(body);
    }
  }
  return {};
}

std::vector<PromptPiece> render_chat(ChatTemplate format, const std::string& default_system,
                                     const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt) {
  std::vector<PromptPiece> out;
  // Every marker and every content is a piece of its own (a content even when empty), so the
  // pieces say exactly which bytes came from a message.
  const auto markup = [&](std::string_view text) { out.push_back({std::string(text), true}); };
  const auto content = [&](std::string_view text, bool parse_special) {
    out.push_back({std::string(text), parse_special});
  };
  switch (format) {
    case ChatTemplate::ChatML: {
      const auto turn = [&](std::string_view role, std::string_view text, bool parse_special) {
        markup("<|im_start|>");
        markup(role);
        markup("\n");
        content(text, parse_special);
        markup("<|im_end|>\n");
      };
      // The default system prompt is the model's own template text.
      if (!messages.empty() && messages.front().role != "system" && !default_system.empty())
        turn("system", default_system, true);
      for (const ChatMessage& message : messages)
        turn(message.role, message.content, message.parse_special);
      if (add_generation_prompt) markup("<|im_start|>assistant\n");
      return out;
    }
    case ChatTemplate::Llama3: {
      markup("<|begin_of_text|>");
      for (const ChatMessage& message : messages) {
        markup("<|start_header_id|>");
        markup(message.role);
        markup("<|end_header_id|>\n\n");
        content(trim(message.content), message.parse_special);
        markup("<|eot_id|>");
      }
      if (add_generation_prompt) markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
      return out;
    }
    case ChatTemplate::None:
      break;
  }
  fail("the model has no chat template we know (ChatML or Llama-3): format the prompt yourself");
}

}  // namespace hogwild
