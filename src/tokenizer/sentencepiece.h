// SentencePiece BPE as Llama-2 uses it (GGUF tokenizer.ggml.model = "llama"): spaces become
// "▁", text starts with one when add_space_prefix, adjacent symbols are merged while their
// concatenation is a vocabulary piece (highest score first), and characters the vocabulary
// lacks fall back to byte tokens <0xAB>.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/vocabulary.h"

namespace hogwild {

class SentencePieceModel final : public TextModel {
 public:
  SentencePieceModel(const Vocabulary& vocab, std::optional<int32_t> unknown_id,
                     bool add_space_prefix);

  void encode(const std::vector<Fragment>& fragments, std::vector<int32_t>& out) const override;
  std::string token_bytes(int32_t id) const override { return decoded_[id]; }
  bool decode_strips_leading_space() const override { return add_space_prefix_; }

 private:
  void encode_text(const std::string& text, std::vector<int32_t>& out) const;

  const Vocabulary* vocab_;  // owned by the Tokenizer, which outlives its model
  std::optional<int32_t> unknown_id_;
  bool add_space_prefix_;
  std::array<int32_t, 256> byte_token_;  // <0xAB> ids, -1 where missing
  std::vector<std::string> decoded_;
};

}  // namespace hogwild
