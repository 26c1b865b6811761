// Byte-level BPE (GPT-2 style): text is cut by the pre-tokenizer, each piece's bytes are
// mapped to GPT-2's printable stand-in characters, and adjacent symbols are merged by rank
// (the order of the merges list) until no ranked pair is left.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocabulary.h"

namespace hogwild {

// GPT-2's reversible map from bytes to printable code points: printable Latin-1 bytes stand for
// themselves, the other 68 bytes take U+0100.. in byte order (so ' ' is 'Ġ', '\n' is 'Ċ').
uint32_t byte_to_codepoint(uint8_t byte);
std::string byte_level_encode(std::string_view bytes);
// Inverse of byte_level_encode; characters outside the map are kept as their UTF-8 bytes.
std::string byte_level_decode(std::string_view text);

class BytePairModel final : public TextModel {
 public:
  // `merges` are pairs of vocabulary pieces, best first. A merge whose parts or result are not
  // in the vocabulary can never fire and is dropped. With `ignore_merges` (Llama-3), a piece
  // that is a whole vocabulary entry is emitted directly, as Hugging Face does.
  BytePairModel(const Vocabulary& vocab,
                const std::vector<std::pair<std::string, std::string>>& merges,
                PreTokenizer pre_tokenizer, bool ignore_merges);

  void encode(const std::vector<Fragment>& fragments, std::vector<int32_t>& out) const override;
  std::string token_bytes(int32_t id) const override { return decoded_[id]; }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  PreTokenizer pre_tokenizer_;
  bool ignore_merges_;
  std::array<int32_t, 256> byte_token_;  // -1 where the vocabulary lacks the byte
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::string> decoded_;  // bytes of each token
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>
      whole_pieces_;  // bytes -> id
};

}  // namespace hogwild
