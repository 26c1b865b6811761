#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace hogwild {

namespace {

// Llama-3's pattern from its tokenizer.json: like GPT-2's, but contractions are case-blind,
// a letter run may take one leading non-letter, digits go in groups of up to three, and
// newlines stick to the punctuation before them.
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2's: Llama-3's with every digit on its own.
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns, const std::string& source)
    : patterns_(patterns) {
  for (const std::string& pattern : patterns) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    auto regex = std::make_shared<Regex>();
    // UCP makes \s, \d, \w and the POSIX classes Unicode-aware, as in Hugging Face tokenizers.
    regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (regex->code == nullptr)
      fail(source, ": pre-tokenizer pattern does not compile at offset ", error_offset, " (",
           pcre2_message(error), "): ", pattern);
    // JIT is an optional speed-up (pcre2_match uses it when present); without it we still work.
    pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);
    stages_.push_back(std::move(regex));
  }
}

std::vector<std::string> PreTokenizer::gguf_patterns(const std::string& name,
                                                     const std::string& source) {
  const std::string gpt2(kGpt2Pattern);
  if (name == "gpt2" || name == "gpt-2") return {gpt2};
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3")
    return {std::string(kLlama3Pattern)};
  if (name == "qwen2") return {std::string(kQwen2Pattern)};
  // SmolLM2's tokenizer.json runs Digits(individual_digits) before the GPT-2 ByteLevel regex.
  if (name == "smollm") return {R"(\p{N})", gpt2};
  // llama.cpp's fallback for BPE vocabularies that name no pre-tokenizer.
  if (name == "default") return {R"([\p{P}\$\+<=>\^~\|]+)", gpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  fail(source, ": unsupported pre-tokenizer 'tokenizer.ggml.pre' = '", name,
       "' (supported: gpt2, gpt-2, llama-bpe, llama3, qwen2, smollm, default)");
}

PreTokenizer PreTokenizer::for_gguf(const std::string& name, const std::string& source) {
  return PreTokenizer(gguf_patterns(name, source), source);
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  // Stage 0: well-formed runs versus stray bytes, so the regexes can skip UTF-8 checking.
  std::vector<std::string_view> current, next;
  size_t run_start = 0, pos = 0;
  while (pos < text.size()) {
    const int length = utf8::sequence_at(text, pos);
    if (length > 0) {
      pos += length;
      continue;
    }
    if (pos > run_start) current.push_back(text.substr(run_start, pos - run_start));
    current.push_back(text.substr(pos, 1));
    run_start = ++pos;
  }
  if (pos > run_start) current.push_back(text.substr(run_start, pos - run_start));

  for (const auto& stage : stages_) {
    const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match_data(
        pcre2_match_data_create_from_pattern(stage->code, nullptr), &pcre2_match_data_free);
    HOGWILD_ASSERT(match_data != nullptr);
    pcre2_match_data* match = match_data.get();
    next.clear();
    for (std::string_view piece : current) {
      if (utf8::sequence_at(piece, 0) <= 0) {  // a stray byte from stage 0 stays as it is
        next.push_back(piece);
        continue;
      }
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t gap_start = 0, offset = 0;
      while (offset < piece.size()) {
        const int rc = pcre2_match(stage->code, subject, piece.size(), offset, PCRE2_NO_UTF_CHECK,
                                   match, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0)
          fail("pre-tokenizer regex failed (", pcre2_message(rc), ") on a piece of ", piece.size(),
               " bytes");
        const PCRE2_SIZE* span = pcre2_get_ovector_pointer(match);
        const size_t begin = span[0], end = span[1];
        if (end == begin) {  // an empty match cuts nothing; step over one character
          if (begin >= piece.size()) break;
          offset = begin + utf8::sequence_at(piece, begin);
          continue;
        }
        if (begin > gap_start) next.push_back(piece.substr(gap_start, begin - gap_start));
        next.push_back(piece.substr(begin, end - begin));
        gap_start = offset = end;
      }
      if (gap_start < piece.size()) next.push_back(piece.substr(gap_start));
    }
    current.swap(next);
  }
  pieces.insert(pieces.end(), current.begin(), current.end());
}

}  // namespace hogwild
