// Pre-tokenizer: cuts text into the pieces that byte-level BPE encodes one at a time.
// A pre-tokenizer is a list of PCRE2 patterns (UTF + UCP mode) applied stage after stage: each
// stage splits every piece of the previous one so that each match and each gap between
// matches becomes a piece of its own (Hugging Face's `Split` with behavior "Isolated", and
// llama.cpp's list of regexes per pre-tokenizer type).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hogwild {

// GPT-2's pattern as Hugging Face's ByteLevel pre-tokenizer (use_regex) writes it.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class PreTokenizer {
 public:
  // Throws hogwild::Error (mentioning `source`) when a pattern does not compile.
  PreTokenizer(const std::vector<std::string>& patterns, const std::string& source);

  // The stages llama.cpp uses for the GGUF `tokenizer.ggml.pre` value `name`; throws naming
  // `source` for a name we do not know.
  static PreTokenizer for_gguf(const std::string& name, const std::string& source);
  // The patterns behind for_gguf(name) (for tests and the HF exporter's cross-check).
  static std::vector<std::string> gguf_patterns(const std::string& name, const std::string& source);

  // Appends the pieces of `text` (views into it) to `pieces`. Bytes that are not well-formed
  // UTF-8 never reach the regexes: each becomes a piece of its own, so any byte string splits.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  struct Regex;
  std::vector<std::string> patterns_;
  std::vector<std::shared_ptr<const Regex>> stages_;
};

}  // namespace hogwild
