// llama.cpp's tokenizer test vectors in ../shared/testdata/tokenizer: NAME.gguf.inp holds the
// inputs, each followed by a line "__ggml_vocab_test__" (so an input is split on
// "\n__ggml_vocab_test__\n", and the file ends with that separator); NAME.gguf.out holds one
// line of space-separated ids per input, made with add_special = false, parse_special = false.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_paths.h"

namespace hogwild::testing {

struct ReferenceCase {
  std::string text;
  std::vector<int32_t> ids;
};

inline std::string vocab_path(const std::string& name) {
  return shared_dir() + "/testdata/tokenizer/ggml-vocab-" + name + ".gguf";
}

inline std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::vector<ReferenceCase> load_reference_cases(const std::string& name) {
  const std::string raw = read_file_bytes(vocab_path(name) + ".inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<ReferenceCase> cases;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(separator, pos);
    if (next == std::string::npos) {
      cases.push_back({raw.substr(pos), {}});
      break;
    }
    cases.push_back({raw.substr(pos, next - pos), {}});
    pos = next + separator.size();
  }
  std::istringstream out(read_file_bytes(vocab_path(name) + ".out"));
  std::string line;
  for (size_t i = 0; std::getline(out, line); ++i) {
    if (i >= cases.size()) throw std::runtime_error(name + ": more outputs than inputs");
    std::istringstream ids(line);
    for (int64_t id; ids >> id;) cases[i].ids.push_back(static_cast<int32_t>(id));
  }
  return cases;
}

// The ids as a readable list for failure messages.
inline std::string show_ids(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
  out << ']';
  return out.str();
}

// gtest names may not hold '-': "llama-bpe" -> "llama_bpe".
inline std::string vocab_test_name(const ::testing::TestParamInfo<std::string>& param) {
  std::string name = param.param;
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

}  // namespace hogwild::testing
