#include "tokenizer/utf8.h"

namespace hogwild::utf8 {

int sequence_at(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  if (lead < 0x80) return 1;
  int length = 0;
  // The second byte has a narrower range after some leads; that is what rules out overlong
  // forms (E0, F0), UTF-16 surrogates (ED) and code points above U+10FFFF (F4).
  uint8_t low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return kInvalid;
  }
  for (int i = 1; i < length; ++i) {
    if (pos + i >= text.size()) return kTruncated;
    const uint8_t next = byte(pos + i);
    const uint8_t lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xBF;
    if (next < lo || next > hi) return kInvalid;
  }
  return length;
}

uint32_t decode_at(std::string_view text, size_t pos, int length) {
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(text[i])); };
  if (length == 1) return byte(pos);
  static constexpr uint32_t kLeadMask[5] = {0, 0, 0x1F, 0x0F, 0x07};
  uint32_t codepoint = byte(pos) & kLeadMask[length];
  for (int i = 1; i < length; ++i) codepoint = (codepoint << 6) | (byte(pos + i) & 0x3F);
  return codepoint;
}

void append(std::string& out, uint32_t codepoint) {
  if (codepoint < 0x80) {
    out += static_cast<char>(codepoint);
  } else if (codepoint < 0x800) {
    out += static_cast<char>(0xC0 | (codepoint >> 6));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  } else if (codepoint < 0x10000) {
    out += static_cast<char>(0xE0 | (codepoint >> 12));
    out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (codepoint >> 18));
    out += static_cast<char>(0x80 | ((codepoint >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  }
}

}  // namespace hogwild::utf8
