#include "common/terminal_text.h"

#include <cstdint>
#include <cstdio>

namespace hogwild {
namespace {

bool continuation(std::string_view text, size_t pos, uint8_t low = 0x80, uint8_t high = 0xbf) {
  if (pos >= text.size()) return false;
  const auto byte = static_cast<uint8_t>(text[pos]);
  return byte >= low && byte <= high;
}

// Length of the well-formed UTF-8 sequence at `pos` (RFC 3629: no overlong forms, surrogates or
// code points above U+10FFFF), or 0.
size_t sequence_length(std::string_view text, size_t pos) {
  const auto lead = static_cast<uint8_t>(text[pos]);
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(text, pos + 1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const uint8_t low = lead == 0xe0 ? 0xa0 : 0x80, high = lead == 0xed ? 0x9f : 0xbf;
    return continuation(text, pos + 1, low, high) && continuation(text, pos + 2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const uint8_t low = lead == 0xf0 ? 0x90 : 0x80, high = lead == 0xf4 ? 0x8f : 0xbf;
    return continuation(text, pos + 1, low, high) && continuation(text, pos + 2) &&
                   continuation(text, pos + 3)
               ? 4
               : 0;
  }
  return 0;
}

void append_hex(std::string& out, const char* prefix, unsigned value, int digits) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%s%0*x", prefix, digits, value);
  out += buffer;
}

}  // namespace

std::string escape_controls(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const auto byte = static_cast<uint8_t>(text[pos]);
    const size_t length = sequence_length(text, pos);
    if (length == 0) {  // not UTF-8: the byte alone
      append_hex(out, "\\x", byte, 2);
      ++pos;
    } else if (length == 1 && (byte < 0x20 || byte == 0x7f)) {
      if ((byte == '\n' || byte == '\t') && keep_newlines)
        out += static_cast<char>(byte);
      else if (byte == '\n')
        out += "\\n";
      else if (byte == '\t')
        out += "\\t";
      else if (byte == '\r')
        out += "\\r";
      else
        append_hex(out, "\\x", byte, 2);
      ++pos;
    } else if (length == 2 && byte == 0xc2 && static_cast<uint8_t>(text[pos + 1]) <= 0x9f) {
      append_hex(out, "\\u", static_cast<uint8_t>(text[pos + 1]), 4);  // C1: U+0080..U+009F
      pos += 2;
    } else {
      out.append(text.substr(pos, length));
      pos += length;
    }
  }
  return out;
}

}  // namespace hogwild
