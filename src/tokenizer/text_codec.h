// What a team needs of a tokenizer, and no more: text to ids and back, the bytes of one token,
// the special ids, and the chat format. Tokenizer (tokenizer.h) implements it for real models;
// tests implement it with a tiny vocabulary, so teams, transcripts and sizing run without a model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hogwild {

enum class ChatTemplate { None, ChatML, Llama3 };

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
  // Whether special-token text in `content` becomes control tokens. Data (a problem, a user's
  // prompt) is text: "<|im_end|>" written in a question must not end the turn. Only the engine's
  // own prompts (a configured system prompt) and experts' opt-in (--special) parse specials.
  bool parse_special = false;
};

// A stretch of a prompt: special-token text in it becomes control tokens only when
// parse_special. A chat template's own markers are such pieces; message contents carry their
// message's setting.
struct PromptPiece {
  std::string text;
  bool parse_special = false;
};

// The pieces' text, concatenated.
inline std::string join_text(const std::vector<PromptPiece>& pieces) {
  std::string text;
  for (const PromptPiece& piece : pieces) text += piece.text;
  return text;
}

class TextCodec {
 public:
  virtual ~TextCodec() = default;

  // Special tokens in `text` become single tokens when parse_special; add_bos prepends bos_id()
  // when the model asks for one.
  virtual std::vector<int32_t> encode(std::string_view text, bool parse_special,
                                      bool add_bos) const = 0;
  // The ids of join_text(pieces), with special tokens recognised only inside the pieces that
  // parse_special: text next to a piece border encodes as in the concatenation, so a prompt of
  // ordinary text gets the same ids as encode(join_text(pieces), true, add_bos).
  virtual std::vector<int32_t> encode(const std::vector<PromptPiece>& pieces,
                                      bool add_bos) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The exact bytes a token stands for (may be a partial UTF-8 sequence).
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual bool is_eos(int32_t id) const = 0;  // the id ends generation
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual ChatTemplate chat_template() const = 0;
  // Renders messages in the chat format, ending with the assistant header when
  // add_generation_prompt: the format's markers are pieces that parse_special, each message's
  // content a piece with the message's parse_special.
  virtual std::vector<PromptPiece> chat_pieces(const std::vector<ChatMessage>& messages,
                                               bool add_generation_prompt) const = 0;

 protected:
  // Copied and moved only as part of an implementation (no slicing through the interface).
  TextCodec() = default;
  TextCodec(const TextCodec&) = default;
  TextCodec(TextCodec&&) = default;
  TextCodec& operator=(const TextCodec&) = default;
  TextCodec& operator=(TextCodec&&) = default;
};

}  // namespace hogwild
