// scripts/hf_tokenizer_from_gguf.py writes a Hugging Face tokenizer directory from a GGUF
// vocabulary; loading that directory must give the same tokenizer as loading the GGUF.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "model/gguf.h"
#include "reference_cases.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace hogwild {
namespace {

namespace fs = std::filesystem;
using testing::load_reference_cases;
using testing::show_ids;

bool python_has_gguf() {
  static const bool available =
      std::system((testing::python() + " -c 'import gguf' >/dev/null 2>&1").c_str()) == 0;
  return available;
}

class HfExport : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!python_has_gguf())
      GTEST_SKIP() << testing::python() << " cannot import gguf (run scripts/setup.sh)";
    out_dir_ = fs::temp_directory_path() / ("hogwild_hf_export_" + std::to_string(::getpid()));
    fs::remove_all(out_dir_);
  }
  void TearDown() override { fs::remove_all(out_dir_); }

  // Exports `gguf_path` and checks the two loads agree on `texts` and on the special ids.
  void check_same(const std::string& gguf_path, const std::vector<testing::ReferenceCase>& cases) {
    const std::string command = testing::python() + " " + testing::source_dir() +
                                "/scripts/hf_tokenizer_from_gguf.py " + gguf_path + " " +
                                out_dir_.string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    const GgufFile file = GgufFile::open(gguf_path);
    const Tokenizer from_gguf = Tokenizer::from_gguf(file);
    const Tokenizer from_hf = Tokenizer::from_hf_directory(out_dir_.string());

    EXPECT_EQ(from_hf.vocab_size(), from_gguf.vocab_size());
    EXPECT_EQ(from_hf.bos_id(), from_gguf.bos_id());
    EXPECT_EQ(from_hf.adds_bos(), from_gguf.adds_bos());
    auto hf_eos = from_hf.eos_ids(), gguf_eos = from_gguf.eos_ids();
    std::sort(hf_eos.begin(), hf_eos.end());
    std::sort(gguf_eos.begin(), gguf_eos.end());
    EXPECT_EQ(hf_eos, gguf_eos);
    EXPECT_EQ(from_hf.chat_template(), from_gguf.chat_template());
    EXPECT_EQ(from_hf.default_system_prompt(), from_gguf.default_system_prompt());

    size_t same = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      for (bool parse_special : {false, true}) {
        const auto expected = from_gguf.encode(cases[i].text, parse_special, true);
        const auto got = from_hf.encode(cases[i].text, parse_special, true);
        if (got == expected) {
          same += parse_special;
        } else {
          ADD_FAILURE() << "case " << i << " '" << cases[i].text
                        << "' parse_special=" << parse_special << "\n  gguf " << show_ids(expected)
                        << "\n  hf   " << show_ids(got);
        }
      }
      // The reference ids themselves, where there are some.
      if (!cases[i].ids.empty() || cases[i].text.empty()) {
        EXPECT_EQ(from_hf.encode(cases[i].text, false), cases[i].ids) << "case " << i;
      }
    }
    std::printf("[ %s ] %zu/%zu inputs encode the same from tokenizer.json\n",
                fs::path(gguf_path).filename().c_str(), same, cases.size());
  }

  fs::path out_dir_;
};

TEST_P(HfExport, SameTokenizerAsGguf) {
  HOGWILD_REQUIRE_SHARED();
  const std::string name = GetParam();
  auto cases = load_reference_cases(name);
  cases.push_back({"<|im_start|>user\nhi<|im_end|><|endoftext|><|eot_id|>2024 x", {}});
  check_same(testing::vocab_path(name), cases);
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, HfExport, ::testing::Values("gpt-2", "llama-bpe", "qwen2"),
                         testing::vocab_test_name);

TEST(HfExportDemo, SmolLM2) {
  if (!python_has_gguf()) GTEST_SKIP() << testing::python() << " cannot import gguf";
  HOGWILD_REQUIRE_DEMO_MODEL();
  const fs::path out_dir =
      fs::temp_directory_path() / ("hogwild_hf_smol_" + std::to_string(::getpid()));
  const std::string command = testing::python() + " " + testing::source_dir() +
                              "/scripts/hf_tokenizer_from_gguf.py " + testing::demo_model_path() +
                              " " + out_dir.string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const GgufFile file = GgufFile::open(testing::demo_model_path());
  const Tokenizer from_gguf = Tokenizer::from_gguf(file);
  const Tokenizer from_hf = Tokenizer::from_hf_directory(out_dir.string());
  for (const char* text :
       {"Hello, world!", "In 2024, 3.14159 apples cost $12,345.", "<|im_start|>x",
        "  spaced\n\n\ttabs  ", "caf\xC3\xA9 \xE4\xB8\x96\xE7\x95\x8C"})
    EXPECT_EQ(from_hf.encode(text), from_gguf.encode(text)) << text;
  EXPECT_EQ(from_hf.apply_chat_template({{"user", "hi"}}),
            from_gguf.apply_chat_template({{"user", "hi"}}));
  fs::remove_all(out_dir);
}

}  // namespace
}  // namespace hogwild
