#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/mapped_file.h"
#include "model/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/sentencepiece.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocabulary.h"

namespace hogwild {

using Json = nlohmann::json;

struct Tokenizer::Impl {
  std::string source;  // the file named in errors
  Vocabulary vocab;
  std::unique_ptr<TextModel> model;
  // Special tokens that can appear in text, bucketed by first byte, longest first.
  std::array<std::vector<int32_t>, 256> specials_by_first_byte;
  std::optional<int32_t> bos;
  bool add_bos = false;
  std::vector<int32_t> eos;
  std::string template_text;
  ChatTemplate chat = ChatTemplate::None;
  std::string default_system;

  void check_id(int32_t id, const char* what) const {
    HOGWILD_CHECK(id >= 0 && id < vocab.size(), source, ": ", what, " id ", id,
                  " is outside the vocabulary of ", vocab.size(), " tokens");
  }
  void add_eos(int32_t id) {
    check_id(id, "eos");
    if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  }
  // Work shared by both loaders once the vocabulary, model and ids are known.
  void finish();
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;
};

void Tokenizer::Impl::finish() {
  // Chat models end a turn with a token other than the GGUF eos (Qwen's eos is <|endoftext|>
  // but a reply ends with <|im_end|>); generation must stop at any of them.
  for (std::string_view name : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>",
                                "<|end_of_text|>", "<|end|>", "<end_of_turn>"}) {
    if (auto id = vocab.find(name); id && vocab.is_special(*id)) add_eos(*id);
  }
  for (size_t id = 0; id < vocab.pieces.size(); ++id) {
    const TokenKind kind = vocab.kinds[id];
    const bool matchable =
        kind == TokenKind::Control || kind == TokenKind::UserDefined || kind == TokenKind::Unknown;
    if (matchable && !vocab.pieces[id].empty())
      specials_by_first_byte[static_cast<uint8_t>(vocab.pieces[id][0])].push_back(
          static_cast<int32_t>(id));
  }
  for (auto& bucket : specials_by_first_byte) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
      return vocab.pieces[a].size() > vocab.pieces[b].size();
    });
  }
  chat = detect_chat_template(template_text);
  if (chat == ChatTemplate::ChatML) default_system = hogwild::default_system_prompt(template_text);
}

std::vector<Fragment> Tokenizer::Impl::split_special(std::string_view text,
                                                     bool parse_special) const {
  std::vector<Fragment> fragments;
  size_t text_start = 0, pos = 0;
  while (pos < text.size()) {
    int32_t found = -1;
    for (int32_t id : specials_by_first_byte[static_cast<uint8_t>(text[pos])]) {
      // Without parse_special only user-defined tokens are recognised (they are ordinary
      // vocabulary the model was taught as one piece, not markup).
      if (!parse_special && vocab.kinds[id] != TokenKind::UserDefined) continue;
      if (text.compare(pos, vocab.pieces[id].size(), vocab.pieces[id]) == 0) {
        found = id;
        break;
      }
    }
    if (found < 0) {
      ++pos;
      continue;
    }
    if (pos > text_start) fragments.push_back({text.substr(text_start, pos - text_start)});
    fragments.push_back({{}, found});
    pos += vocab.pieces[found].size();
    text_start = pos;
  }
  if (text_start < text.size()) fragments.push_back({text.substr(text_start)});
  return fragments;
}

// ---- GGUF ----

namespace {

bool is_llama3_pre(const std::string& pre) {
  return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
}

std::optional<int32_t> optional_id(const GgufFile& file, const std::string& key) {
  const int64_t id = file.get_int_or(key, -1);
  // Some converters write -1 (or 2^32-1 as unsigned) for "none".
  if (id < 0 || id >= std::numeric_limits<int32_t>::max()) return std::nullopt;
  return static_cast<int32_t>(id);
}

std::vector<std::pair<std::string, std::string>> split_merges(const std::vector<std::string>& lines,
                                                              const std::string& source) {
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    // Search from 1: a byte-level piece never holds a raw space, but be lenient to a leading one.
    const size_t space = lines[i].find(' ', 1);
    HOGWILD_CHECK(space != std::string::npos, source, ": merge #", i, " '", lines[i],
                  "' is not two pieces separated by a space");
    merges.emplace_back(lines[i].substr(0, space), lines[i].substr(space + 1));
  }
  return merges;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  auto impl = std::make_unique<Impl>();
  impl->source = file.name();
  const std::string& source = impl->source;
  HOGWILD_CHECK(file.has("tokenizer.ggml.model"), source,
                ": has no tokenizer (metadata key 'tokenizer.ggml.model' is missing)");
  const std::string model = file.get_string("tokenizer.ggml.model");
  Vocabulary& vocab = impl->vocab;
  vocab.pieces = file.get_string_array("tokenizer.ggml.tokens");
  HOGWILD_CHECK(!vocab.pieces.empty(), source, ": 'tokenizer.ggml.tokens' is empty");
  HOGWILD_CHECK(vocab.pieces.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                source, ": vocabulary too large");
  vocab.kinds.assign(vocab.pieces.size(), TokenKind::Normal);
  if (file.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
    HOGWILD_CHECK(types.size() == vocab.pieces.size(), source, ": 'tokenizer.ggml.token_type' has ",
                  types.size(), " entries for ", vocab.pieces.size(), " tokens");
    for (size_t i = 0; i < types.size(); ++i) {
      HOGWILD_CHECK(types[i] >= 1 && types[i] <= 6, source, ": token ", i,
                    " has unknown token type ", types[i]);
      vocab.kinds[i] = static_cast<TokenKind>(types[i]);
    }
  }
  vocab.index();

  bool add_bos_default = false;
  if (model == "gpt2") {
    const std::string pre = file.get_string_or("tokenizer.ggml.pre", "default");
    HOGWILD_CHECK(file.has("tokenizer.ggml.merges"), source,
                  ": BPE tokenizer without 'tokenizer.ggml.merges'");
    const auto merges = split_merges(file.get_string_array("tokenizer.ggml.merges"), source);
    // Llama-3 ships with ignore_merges: a piece that is itself a vocabulary entry is one token.
    add_bos_default = is_llama3_pre(pre);
    impl->model = std::make_unique<BytePairModel>(
        vocab, merges, PreTokenizer::for_gguf(pre, source), is_llama3_pre(pre));
  } else if (model == "llama") {
    HOGWILD_CHECK(file.has("tokenizer.ggml.scores"), source,
                  ": SentencePiece tokenizer without 'tokenizer.ggml.scores'");
    vocab.scores = file.get_float_array("tokenizer.ggml.scores");
    HOGWILD_CHECK(vocab.scores.size() == vocab.pieces.size(), source,
                  ": 'tokenizer.ggml.scores' has ", vocab.scores.size(), " entries for ",
                  vocab.pieces.size(), " tokens");
    add_bos_default = true;
    const bool add_space_prefix = file.get_bool_or("tokenizer.ggml.add_space_prefix", true);
    impl->model = std::make_unique<SentencePieceModel>(
        vocab, optional_id(file, "tokenizer.ggml.unknown_token_id"), add_space_prefix);
  } else {
    fail(source, ": unsupported tokenizer model 'tokenizer.ggml.model' = '", model,
         "' (supported: gpt2 = byte-level BPE, llama = SentencePiece)");
  }

  impl->bos = optional_id(file, "tokenizer.ggml.bos_token_id");
  if (impl->bos) impl->check_id(*impl->bos, "bos");
  impl->add_bos = impl->bos && file.get_bool_or("tokenizer.ggml.add_bos_token", add_bos_default);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    if (auto id = optional_id(file, key)) impl->add_eos(*id);
  }
  impl->template_text = file.get_string_or("tokenizer.chat_template", "");
  impl->finish();
  return Tokenizer(std::move(impl));
}

// ---- Hugging Face directory ----

namespace {

// tokenizer.json and tokenizer_config.json of real models are a few MiB; a FIFO or a device in
// their place is refused at once instead of blocking.
constexpr size_t kMaxTokenizerJsonBytes = size_t{512} << 20;

Json read_json(const std::string& path) {
  const std::string text = read_regular_text_file(path, kMaxTokenizerJsonBytes);
  try {
    return Json::parse(text);
  } catch (const Json::exception& error) {
    fail(path, ": not valid JSON: ", error.what());
  }
}

// A value of a JSON config, with the file and key named when its type is wrong.
template <typename T>
T json_get(const Json& object, const char* key, const std::string& path) {
  try {
    return object.at(key).get<T>();
  } catch (const Json::exception& error) {
    fail(path, ": key '", key, "': ", error.what());
  }
}

// tokenizer_config.json writes special tokens as a string or as {"content": "..."}.
std::optional<std::string> token_text(const Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

// Escapes a literal for PCRE2 (a Split pre-tokenizer with a String pattern).
std::string regex_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80 && !std::isalnum(byte)) out += '\\';
    out += c;
  }
  return out;
}

// Maps a tokenizer.json pre_tokenizer onto our regex stages. Only what byte-level BPE models
// use is accepted; anything else is an error rather than a silently different tokenization.
void collect_pre_tokenizer(const Json& node, std::vector<std::string>& patterns, bool& byte_level,
                           const std::string& path) {
  const std::string type = json_get<std::string>(node, "type", path);
  HOGWILD_CHECK(!byte_level, path, ": pre-tokenizer '", type, "' after ByteLevel is not supported");
  if (type == "Sequence") {
    for (const Json& child : node.at("pretokenizers"))
      collect_pre_tokenizer(child, patterns, byte_level, path);
  } else if (type == "Split") {
    const Json& pattern = node.at("pattern");
    const std::string behavior = node.value("behavior", "Isolated");
    HOGWILD_CHECK(behavior == "Isolated" && !node.value("invert", false), path,
                  ": Split pre-tokenizer with behavior '", behavior,
                  "' / invert is not supported (only Isolated)");
    if (pattern.contains("Regex")) {
      patterns.push_back(json_get<std::string>(pattern, "Regex", path));
    } else {
      patterns.push_back(regex_escape(json_get<std::string>(pattern, "String", path)));
    }
  } else if (type == "Digits") {
    patterns.push_back(node.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "ByteLevel") {
    HOGWILD_CHECK(!node.value("add_prefix_space", false), path,
                  ": ByteLevel pre-tokenizer with add_prefix_space is not supported");
    if (node.value("use_regex", true)) patterns.emplace_back(kGpt2Pattern);
    byte_level = true;
  } else {
    fail(path, ": unsupported pre-tokenizer type '", type, "'");
  }
}

// Whether the post-processor puts the bos token first (Llama-3's TemplateProcessing).
bool post_processor_adds(const Json& node, const std::string& token) {
  if (!node.is_object()) return false;
  const std::string type = node.value("type", "");
  if (type == "Sequence" && node.contains("processors")) {
    for (const Json& child : node["processors"])
      if (post_processor_adds(child, token)) return true;
    return false;
  }
  if (type != "TemplateProcessing" || !node.contains("single")) return false;
  const Json& single = node["single"];
  return single.is_array() && !single.empty() && single[0].contains("SpecialToken") &&
         single[0]["SpecialToken"].value("id", "") == token;
}

}  // namespace

Tokenizer Tokenizer::from_path(const std::string& path) {
  if (std::filesystem::is_directory(path)) return from_hf_directory(path);
  return from_gguf(GgufFile::open(path));
}

Tokenizer Tokenizer::from_hf_directory(const std::string& directory) {
  namespace fs = std::filesystem;
  auto impl = std::make_unique<Impl>();
  const std::string path = (fs::path(directory) / "tokenizer.json").string();
  impl->source = path;
  HOGWILD_CHECK(fs::exists(path), path,
                ": not found (a Hugging Face tokenizer directory needs tokenizer.json)");
  const Json root = read_json(path);
  HOGWILD_CHECK(root.is_object() && root.contains("model"), path, ": no 'model' section");
  const Json& model = root["model"];
  const std::string type = model.value("type", "");
  HOGWILD_CHECK(type == "BPE", path, ": unsupported tokenizer model type '", type,
                "' (only byte-level BPE)");

  // Ids come from the vocab object and the added tokens; gaps become unused slots.
  const Json& vocab_json = model.at("vocab");
  HOGWILD_CHECK(vocab_json.is_object(), path, ": model.vocab is not an object");
  const Json added = root.value("added_tokens", Json::array());
  int64_t max_id = -1;
  const auto note_id = [&](const Json& id) {
    HOGWILD_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                      id.get<int64_t>() < std::numeric_limits<int32_t>::max(),
                  path, ": bad token id ", id.dump());
    max_id = std::max(max_id, id.get<int64_t>());
  };
  for (const auto& [piece, id] : vocab_json.items()) note_id(id);
  for (const Json& token : added) note_id(token.at("id"));
  HOGWILD_CHECK(max_id >= 0, path, ": empty vocabulary");
  Vocabulary& vocab = impl->vocab;
  vocab.pieces.assign(max_id + 1, std::string());
  vocab.kinds.assign(max_id + 1, TokenKind::Unused);
  for (const auto& [piece, id] : vocab_json.items()) {
    vocab.pieces[id.get<int32_t>()] = piece;
    vocab.kinds[id.get<int32_t>()] = TokenKind::Normal;
  }
  for (const Json& token : added) {
    const int32_t id = token.at("id").get<int32_t>();
    vocab.pieces[id] = json_get<std::string>(token, "content", path);
    vocab.kinds[id] = token.value("special", false) ? TokenKind::Control : TokenKind::UserDefined;
  }
  vocab.index();

  std::vector<std::pair<std::string, std::string>> merges;
  for (const Json& merge : model.value("merges", Json::array())) {
    if (merge.is_string()) {
      auto split = split_merges({merge.get<std::string>()}, path);
      merges.push_back(std::move(split[0]));
    } else {
      HOGWILD_CHECK(
          merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string(),
          path, ": a merge is neither \"a b\" nor [\"a\", \"b\"]: ", merge.dump());
      merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    }
  }

  const Json normalizer = root.value("normalizer", Json());
  // NFC is accepted but not applied: byte-level BPE sees the same bytes for text that is
  // already in NFC, which is nearly all text.
  HOGWILD_CHECK(normalizer.is_null() || normalizer.value("type", "") == "NFC", path,
                ": unsupported normalizer ", normalizer.dump());
  std::vector<std::string> patterns;
  bool byte_level = false;
  const Json pre = root.value("pre_tokenizer", Json());
  if (!pre.is_null()) collect_pre_tokenizer(pre, patterns, byte_level, path);
  HOGWILD_CHECK(byte_level, path,
                ": only byte-level BPE is supported (no ByteLevel pre-tokenizer found)");
  impl->model = std::make_unique<BytePairModel>(vocab, merges, PreTokenizer(patterns, path),
                                                model.value("ignore_merges", false));

  // tokenizer_config.json: special token names, add_bos_token and the chat template.
  const std::string config_path = (fs::path(directory) / "tokenizer_config.json").string();
  std::optional<bool> add_bos;
  if (fs::exists(config_path)) {
    const Json config = read_json(config_path);
    if (auto bos = token_text(config, "bos_token")) impl->bos = vocab.find(*bos);
    if (auto eos = token_text(config, "eos_token"); eos && vocab.find(*eos))
      impl->add_eos(*vocab.find(*eos));
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
      add_bos = config["add_bos_token"].get<bool>();
    if (auto it = config.find("chat_template"); it != config.end()) {
      if (it->is_string()) {
        impl->template_text = it->get<std::string>();
      } else if (it->is_array()) {  // named templates: [{"name": "default", "template": ...}]
        for (const Json& named : *it)
          if (named.value("name", "") == "default")
            impl->template_text = named.value("template", "");
      }
    }
  }
  if (!add_bos)
    add_bos = impl->bos &&
              post_processor_adds(root.value("post_processor", Json()), vocab.pieces[*impl->bos]);
  impl->add_bos = impl->bos && *add_bos;

  // generation_config.json: the ids generation stops at (one or a list).
  const std::string generation_path = (fs::path(directory) / "generation_config.json").string();
  if (fs::exists(generation_path)) {
    const Json generation = read_json(generation_path);
    const Json eos = generation.value("eos_token_id", Json());
    for (const Json& id : eos.is_array() ? eos : Json::array({eos})) {
      if (id.is_null()) continue;
      HOGWILD_CHECK(
          id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < vocab.size(),
          generation_path, ": eos_token_id ", id.dump(), " is not a token id");
      impl->add_eos(id.get<int32_t>());
    }
    const Json bos = generation.value("bos_token_id", Json());
    if (!impl->bos && bos.is_number_integer() && bos.get<int64_t>() >= 0 &&
        bos.get<int64_t>() < vocab.size())
      impl->bos = bos.get<int32_t>();
  }
  impl->finish();
  return Tokenizer(std::move(impl));
}

// ---- Tokenizer ----

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special,
                                       bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos && impl_->add_bos) ids.push_back(*impl_->bos);
  impl_->model->encode(impl_->split_special(text, parse_special), ids);
  return ids;
}

std::vector<int32_t> Tokenizer::encode(const std::vector<PromptPiece>& pieces, bool add_bos) const {
  // Each piece is split at its own specials inside the whole text; text fragments that meet at
  // a piece border are joined again, so the model encodes them as one stretch of text.
  const std::string text = join_text(pieces);
  const std::string_view all(text);
  std::vector<Fragment> fragments;
  size_t start = 0;
  for (const PromptPiece& piece : pieces) {
    for (const Fragment& fragment :
         impl_->split_special(all.substr(start, piece.text.size()), piece.parse_special)) {
      Fragment* last = fragments.empty() ? nullptr : &fragments.back();
      if (fragment.token < 0 && last != nullptr && last->token < 0 &&
          last->text.data() + last->text.size() == fragment.text.data()) {
        last->text = std::string_view(last->text.data(), last->text.size() + fragment.text.size());
      } else {
        fragments.push_back(fragment);
      }
    }
    start += piece.text.size();
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos && impl_->add_bos) ids.push_back(*impl_->bos);
  impl_->model->encode(fragments, ids);
  return ids;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  impl_->check_id(id, "token");
  if (impl_->vocab.kinds[id] != TokenKind::Normal && impl_->vocab.kinds[id] != TokenKind::Byte)
    return impl_->vocab.pieces[id];  // special tokens are plain text in every vocabulary
  return impl_->model->token_bytes(id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids) text += token_bytes(id);
  if (!ids.empty() && impl_->model->decode_strips_leading_space() && !is_special(ids[0]) &&
      !text.empty() && text[0] == ' ')
    text.erase(0, 1);
  return text;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab.size(); }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
bool Tokenizer::adds_bos() const { return impl_->add_bos; }
std::vector<int32_t> Tokenizer::eos_ids() const { return impl_->eos; }
bool Tokenizer::is_eos(int32_t id) const {
  return std::find(impl_->eos.begin(), impl_->eos.end(), id) != impl_->eos.end();
}
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->vocab.size() && impl_->vocab.is_special(id);
}
std::optional<int32_t> Tokenizer::find_token(std::string_view piece) const {
  return impl_->vocab.find(piece);
}

ChatTemplate Tokenizer::chat_template() const { return impl_->chat; }
const std::string& Tokenizer::chat_template_text() const { return impl_->template_text; }
const std::string& Tokenizer::default_system_prompt() const { return impl_->default_system; }

std::vector<PromptPiece> Tokenizer::chat_pieces(const std::vector<ChatMessage>& messages,
                                                bool add_generation_prompt) const {
  return render_chat(impl_->chat, impl_->default_system, messages, add_generation_prompt);
}

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const {
  return join_text(chat_pieces(messages, add_generation_prompt));
}

// ---- StreamDecoder ----

namespace {

// Moves the complete characters at the front of `pending` to the result; a well-formed but
// unfinished sequence at the end stays in `pending`, a byte that can never become UTF-8 is
// replaced by U+FFFD so the output is always printable.
std::string take_complete(std::string& pending) {
  std::string out;
  size_t pos = 0;
  while (pos < pending.size()) {
    const int length = utf8::sequence_at(pending, pos);
    if (length == utf8::kTruncated) break;
    if (length == utf8::kInvalid) {
      out += utf8::kReplacement;
      ++pos;
      continue;
    }
    out.append(pending, pos, length);
    pos += length;
  }
  pending.erase(0, pos);
  return out;
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_->token_bytes(id);
  return take_complete(pending_);
}

std::string StreamDecoder::flush() {
  std::string out = take_complete(pending_);
  if (!pending_.empty()) out += utf8::kReplacement;
  pending_.clear();
  return out;
}

}  // namespace hogwild
