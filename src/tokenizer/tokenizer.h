// Tokenizer loaded from a GGUF file's `tokenizer.ggml.*` metadata or from a Hugging Face
// `tokenizer.json`: byte-level BPE (GPT-2, Llama-3, Qwen2/3, SmolLM pre-tokenizers; bpe.h,
// pretokenizer.h) and SentencePiece (Llama-2; sentencepiece.h). Chat formats: chat_template.h.
// Contract used by the engine and the CLI. A Tokenizer is immutable once loaded, so its const
// methods may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/text_codec.h"

namespace hogwild {

class GgufFile;

class Tokenizer : public TextCodec {
 public:
  // Throws hogwild::Error naming the file when the vocabulary is missing or malformed, or the
  // tokenizer model / pre-tokenizer is not supported.
  static Tokenizer from_gguf(const GgufFile& file);
  // `directory` holds tokenizer.json and optionally tokenizer_config.json (special tokens, chat
  // template) and generation_config.json (eos ids).
  static Tokenizer from_hf_directory(const std::string& directory);
  // A GGUF file (its embedded vocabulary) or a Hugging Face directory, whichever `path` is.
  static Tokenizer from_path(const std::string& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer() override;

  // Special tokens (e.g. "<|im_start|>") in `text` become single tokens when parse_special;
  // user-defined added tokens (GGUF token type 4, HF added tokens with special=false) always do,
  // as in Hugging Face and llama.cpp. Matching is leftmost, then longest. add_bos prepends
  // bos_id() only when adds_bos() (the model asks for one).
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true,
                              bool add_bos = false) const override;
  // Special tokens only inside the pieces that parse_special (see TextCodec).
  std::vector<int32_t> encode(const std::vector<PromptPiece>& pieces, bool add_bos) const override;
  // The exact bytes a token stands for (may be a partial UTF-8 sequence).
  std::string token_bytes(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;

  int32_t vocab_size() const override;
  std::optional<int32_t> bos_id() const override;
  // Whether encode(..., add_bos = true) prepends bos_id(): the model's own setting (GGUF
  // tokenizer.ggml.add_bos_token, tokenizer_config.json add_bos_token or its post-processor),
  // by default true only for SentencePiece and Llama-3. SmolLM2's bos is <|im_start|>, which
  // must not start a raw prompt.
  bool adds_bos() const;
  bool is_special(int32_t id) const;  // a control / added token (<|im_end|>), not text
  std::vector<int32_t> eos_ids()
      const;  // every id that ends generation (eos, <|im_end|>, <|eot_id|>…)
  bool is_eos(int32_t id) const override;
  std::optional<int32_t> find_token(std::string_view piece) const;  // exact piece lookup

  ChatTemplate chat_template() const override;
  const std::string& chat_template_text() const;  // the model's Jinja template, "" if none
  // The system prompt the ChatML template inserts when a conversation starts without one.
  const std::string& default_system_prompt() const;
  // Renders messages in the model's chat format, ending with the assistant header when
  // add_generation_prompt. Throws if the model has no known chat template.
  std::vector<PromptPiece> chat_pieces(const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt = true) const override;
  // The same as one string (what the model sees when every piece parses specials).
  std::string apply_chat_template(const std::vector<ChatMessage>& messages,
                                  bool add_generation_prompt = true) const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into printable text: bytes of a UTF-8 character split over several
// tokens are held back until the character is complete.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  std::string push(int32_t id);  // text that became complete with this token
  std::string flush();           // whatever is still held (invalid bytes as U+FFFD)

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace hogwild
