#include "tokenizer/bpe.h"

#include <algorithm>

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace hogwild {

namespace {

bool stands_for_itself(uint32_t byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

struct ByteTables {
  std::array<uint32_t, 256> codepoint{};
  std::unordered_map<uint32_t, uint8_t> byte;
  ByteTables() {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      codepoint[b] = stands_for_itself(b) ? b : next++;
      byte[codepoint[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables tables;
  return tables;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t byte) { return byte_tables().codepoint[byte]; }

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8::append(out, byte_to_codepoint(static_cast<uint8_t>(c)));
  return out;
}

std::string byte_level_decode(std::string_view text) {
  const ByteTables& tables = byte_tables();
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const int length = utf8::sequence_at(text, pos);
    if (length <= 0) {  // not UTF-8: nothing to map back, keep the byte
      out += text[pos++];
      continue;
    }
    auto it = tables.byte.find(utf8::decode_at(text, pos, length));
    if (it != tables.byte.end()) {
      out += static_cast<char>(it->second);
    } else {
      out.append(text.substr(pos, length));
    }
    pos += length;
  }
  return out;
}

BytePairModel::BytePairModel(const Vocabulary& vocab,
                             const std::vector<std::pair<std::string, std::string>>& merges,
                             PreTokenizer pre_tokenizer, bool ignore_merges)
    : pre_tokenizer_(std::move(pre_tokenizer)), ignore_merges_(ignore_merges) {
  byte_token_.fill(-1);
  std::string single;
  for (int b = 0; b < 256; ++b) {
    single.clear();
    utf8::append(single, byte_to_codepoint(static_cast<uint8_t>(b)));
    if (auto id = vocab.find(single)) byte_token_[b] = *id;
  }

  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto left_id = vocab.find(left), right_id = vocab.find(right);
    joined.assign(left).append(right);
    const auto result = vocab.find(joined);
    if (!left_id || !right_id || !result) continue;
    // emplace keeps the first (best) rank when a pair is listed twice.
    merges_.emplace(pair_key(*left_id, *right_id), Merge{static_cast<int32_t>(rank), *result});
  }

  decoded_.resize(vocab.pieces.size());
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    // Special tokens are stored as plain text, not in the byte-level alphabet.
    decoded_[id] = vocab.is_special(static_cast<int32_t>(id)) ? vocab.pieces[id]
                                                              : byte_level_decode(vocab.pieces[id]);
    if (ignore_merges_ && vocab.kinds[id] == TokenKind::Normal)
      whole_pieces_.emplace(decoded_[id], static_cast<int32_t>(id));
  }
}

void BytePairModel::encode(const std::vector<Fragment>& fragments,
                           std::vector<int32_t>& out) const {
  // Natural text repeats its words, so each call remembers the ids of the pieces it has seen;
  // the keys are views into the caller's text, which outlives the call.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;
  std::vector<int32_t> cached_ids;
  std::vector<std::string_view> pieces;
  std::vector<int32_t> piece_ids;
  for (const Fragment& fragment : fragments) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      continue;
    }
    pieces.clear();
    pre_tokenizer_.split(fragment.text, pieces);
    for (std::string_view piece : pieces) {
      auto it = seen.find(piece);
      if (it == seen.end()) {
        piece_ids.clear();
        encode_piece(piece, piece_ids);
        it = seen.emplace(piece, std::make_pair(cached_ids.size(), piece_ids.size())).first;
        cached_ids.insert(cached_ids.end(), piece_ids.begin(), piece_ids.end());
      }
      const auto [start, count] = it->second;
      out.insert(out.end(), cached_ids.begin() + start, cached_ids.begin() + start + count);
    }
  }
}

void BytePairModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    auto it = whole_pieces_.find(piece);
    if (it != whole_pieces_.end()) {
      out.push_back(it->second);
      return;
    }
  }

  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t left, right;  // symbol positions
    int32_t left_id, right_id, result;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (char c : piece) {
    // A byte the vocabulary lacks is dropped, as Hugging Face's BPE does without an unk token.
    const int32_t id = byte_token_[static_cast<uint8_t>(c)];
    if (id < 0) continue;
    const auto position = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, position - 1, position + 1});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // Lowest rank first; among equal ranks (the same pair at several places) the leftmost.
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };
  std::vector<Candidate> queue;
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it == merges_.end()) return;
    queue.push_back(
        {it->second.rank, left, right, symbols[left].id, symbols[right].id, it->second.result});
    std::push_heap(queue.begin(), queue.end(), later);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i, i + 1);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), later);
    const Candidate best = queue.back();
    queue.pop_back();
    Symbol& left = symbols[best.left];
    Symbol& right = symbols[best.right];
    // Stale entries: a merge since then changed one side. A symbol's id only ever grows into
    // a longer token, so matching ids and adjacency mean the pair is still there.
    if (left.id != best.left_id || right.id != best.right_id || left.next != best.right) continue;
    left.id = best.result;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = best.left;
    right.id = -1;
    consider(left.prev, best.left);
    consider(best.left, left.next);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace hogwild
