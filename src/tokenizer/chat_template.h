// Chat formats we render ourselves instead of running the model's Jinja template: the family is
// recognised from the template text, the few model-specific bits (a default system prompt) are
// read out of it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hogwild {

ChatTemplate detect_chat_template(std::string_view template_text);

// The literal system prompt a ChatML template inserts when the conversation has none, e.g.
// SmolLM2's "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\n'
// }}". Empty when the template has no such literal.
std::string default_system_prompt(std::string_view template_text);

// The format's markers (and the template's default system prompt) as pieces that parse_special,
// each message's content as a piece with its own parse_special. Throws hogwild::Error for
// ChatTemplate::None.
std::vector<PromptPiece> render_chat(ChatTemplate format, const std::string& default_system,
                                     const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt);

}  // namespace hogwild
