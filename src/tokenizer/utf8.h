// UTF-8 helpers shared by the pre-tokenizer, the byte-level mapping and the stream decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hogwild::utf8 {

// Sentinels returned by sequence_at for a sequence that is not a whole character.
inline constexpr int kInvalid = 0;     // the byte at `pos` cannot start a well-formed sequence
inline constexpr int kTruncated = -1;  // a well-formed prefix that runs into the end of `text`

// Length of the well-formed UTF-8 sequence starting at text[pos] (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF), or kInvalid / kTruncated.
int sequence_at(std::string_view text, size_t pos);

// Decodes the sequence of `length` bytes at text[pos] (already checked by sequence_at).
uint32_t decode_at(std::string_view text, size_t pos, int length);

void append(std::string& out, uint32_t codepoint);

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace hogwild::utf8
