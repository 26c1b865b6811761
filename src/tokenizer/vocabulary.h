// What the tokenizer models share: the token table and the interface a model (byte-level BPE,
// SentencePiece) implements to turn text without special tokens into ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hogwild {

// GGUF's `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type).
enum class TokenKind : uint8_t {
  Normal = 1,
  Unknown = 2,
  Control = 3,      // special tokens (<|im_start|>): matched in text only when parse_special
  UserDefined = 4,  // added tokens that are not special: always matched as whole tokens
  Unused = 5,
  Byte = 6,  // SentencePiece byte fallback <0xAB>
};

// Transparent hashing lets the maps be queried with a string_view without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocabulary {
  std::vector<std::string> pieces;  // the token text as the vocabulary stores it
  std::vector<TokenKind> kinds;
  std::vector<float> scores;  // SentencePiece only
  PieceMap ids;               // piece -> the lowest id with that piece

  int32_t size() const { return static_cast<int32_t>(pieces.size()); }
  std::optional<int32_t> find(std::string_view piece) const {
    auto it = ids.find(piece);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  bool is_special(int32_t id) const {
    return kinds[id] == TokenKind::Control || kinds[id] == TokenKind::UserDefined;
  }
  // Fills `ids` from `pieces` (first id wins for duplicate pieces).
  void index() {
    ids.clear();
    ids.reserve(pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i) ids.emplace(pieces[i], static_cast<int32_t>(i));
  }
};

// A stretch of the input: either text to encode or one special token already recognised.
struct Fragment {
  std::string_view text;
  int32_t token = -1;  // >= 0 for a special token
};

class TextModel {
 public:
  virtual ~TextModel() = default;
  // Appends the ids of `fragments` to `out`; special-token fragments pass through unchanged.
  virtual void encode(const std::vector<Fragment>& fragments, std::vector<int32_t>& out) const = 0;
  // The bytes token `id` stands for when it is not a special token.
  virtual std::string token_bytes(int32_t id) const = 0;
  // SentencePiece's space prefix is not part of the text: decode drops it again.
  virtual bool decode_strips_leading_space() const { return false; }
};

}  // namespace hogwild
