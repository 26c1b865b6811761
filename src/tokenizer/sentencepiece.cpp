#include "tokenizer/sentencepiece.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/utf8.h"

namespace hogwild {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

std::string escape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (char c : text) {
    if (c == ' ') {
      out.append(kSpace);
    } else {
      out += c;
    }
  }
  return out;
}

// "<0x0A>" -> 0x0A, or -1 when the piece is not a byte token.
int parse_byte_piece(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  unsigned value = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = piece[i];
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value |= c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return static_cast<int>(value);
}

}  // namespace

SentencePieceModel::SentencePieceModel(const Vocabulary& vocab, std::optional<int32_t> unknown_id,
                                       bool add_space_prefix)
    : vocab_(&vocab), unknown_id_(unknown_id), add_space_prefix_(add_space_prefix) {
  byte_token_.fill(-1);
  decoded_.resize(vocab.pieces.size());
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    const std::string& piece = vocab.pieces[id];
    if (vocab.kinds[id] == TokenKind::Byte) {
      const int byte = parse_byte_piece(piece);
      if (byte >= 0) {
        byte_token_[byte] = static_cast<int32_t>(id);
        decoded_[id] = std::string(1, static_cast<char>(byte));
        continue;
      }
    }
    std::string& text = decoded_[id];
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.compare(pos, kSpace.size(), kSpace) == 0) {
        text += ' ';
        pos += kSpace.size();
      } else {
        text += piece[pos++];
      }
    }
  }
}

void SentencePieceModel::encode(const std::vector<Fragment>& fragments,
                                std::vector<int32_t>& out) const {
  // The space prefix goes at the start of the input and after every special token, as
  // sentencepiece sees each stretch between special tokens as a text of its own.
  bool after_special = true;
  for (const Fragment& fragment : fragments) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      after_special = true;
      continue;
    }
    std::string text = add_space_prefix_ && after_special ? " " : "";
    text.append(fragment.text);
    encode_text(escape_spaces(text), out);
    after_special = false;
  }
}

void SentencePieceModel::encode_text(const std::string& text, std::vector<int32_t>& out) const {
  struct Symbol {
    uint32_t start, length;  // bytes of `text`; length 0 once merged into its left neighbour
    int32_t prev, next;
  };
  struct Candidate {
    float score;
    int32_t left, right;
    uint32_t length;  // of the merged text, to spot stale entries
  };
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < text.size();) {
    const int length = utf8::sequence_at(text, pos);
    const size_t step = length > 0 ? static_cast<size_t>(length) : 1;  // a stray byte alone
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(
        {static_cast<uint32_t>(pos), static_cast<uint32_t>(step), index - 1, index + 1});
    pos += step;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // Highest score first; among equal scores the leftmost pair.
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  };
  std::vector<Candidate> queue;
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t length = symbols[left].length + symbols[right].length;
    const auto id = vocab_->find(std::string_view(text).substr(symbols[left].start, length));
    if (!id) return;
    queue.push_back({vocab_->scores[*id], left, right, length});
    std::push_heap(queue.begin(), queue.end(), later);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i, i + 1);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), later);
    const Candidate best = queue.back();
    queue.pop_back();
    Symbol& left = symbols[best.left];
    Symbol& right = symbols[best.right];
    // Both symbols only grow, so an unchanged total length means neither changed.
    if (left.length == 0 || right.length == 0 || left.next != best.right ||
        left.length + right.length != best.length)
      continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = best.left;
    consider(left.prev, best.left);
    consider(best.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece =
        std::string_view(text).substr(symbols[i].start, symbols[i].length);
    if (auto id = vocab_->find(piece)) {
      out.push_back(*id);
      continue;
    }
    // Only single characters can miss the vocabulary (merges always form pieces): spell them
    // in byte tokens, or <unk> for a vocabulary without byte fallback.
    for (char c : piece) {
      const int32_t byte = byte_token_[static_cast<uint8_t>(c)];
      if (byte >= 0) {
        out.push_back(byte);
      } else if (unknown_id_) {
        out.push_back(*unknown_id_);
        break;
      }
    }
  }
}

}  // namespace hogwild
