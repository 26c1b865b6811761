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
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;

  // Special tokens in `text` become single tokens when parse_special; add_bos prepends bos_id()
  // when the model asks for one.
  virtual std::vector<int32_t> encode(std::string_view text, bool parse_special,
                                      bool add_bos) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The exact bytes a token stands for (may be a partial UTF-8 sequence).
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual bool is_eos(int32_t id) const = 0;  // the id ends generation
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual ChatTemplate chat_template() const = 0;
  // Renders messages in the chat format, ending with the assistant header when
  // add_generation_prompt.
  virtual std::string apply_chat_template(const std::vector<ChatMessage>& messages,
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
