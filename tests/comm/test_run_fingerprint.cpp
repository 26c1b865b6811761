// What the ranks of a distributed run compare at start-up (experiment/rank_agreement.h): every
// configuration key after overrides, one entry each, so that changing any one key changes
// exactly its entry; the model and the problems by content, not by path.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "experiment/rank_agreement.h"
#include "io/config_keys.h"
#include "test_support.h"

namespace hogwild {
namespace {

class RunFingerprintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HOGWILD_REQUIRE_DEMO_MODEL();
    write(dir_ / "problems.jsonl",
          "{\"question\": \"What is 2+3?\", \"answer\": \"5\"}\n"
          "{\"question\": \"What is 7*8?\", \"answer\": \"56\"}\n");
    write(dir_ / "run.yaml",
          "model: " + testing::demo_model_path() + "\nproblems:\n  file: problems.jsonl\n");
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  std::vector<AgreementEntry> fingerprint(const std::vector<std::string>& overrides) {
    return run_fingerprint(load_run_config(dir_ / "run.yaml", overrides));
  }
  // The keys whose entries differ between two fingerprints.
  static std::set<std::string> differing(const std::vector<AgreementEntry>& a,
                                         const std::vector<AgreementEntry>& b) {
    EXPECT_EQ(a.size(), b.size());
    std::set<std::string> keys;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      EXPECT_EQ(a[i].key, b[i].key);
      if (a[i].value != b[i].value) keys.insert(a[i].key);
    }
    return keys;
  }

  testing::TempDir dir_;
};

TEST_F(RunFingerprintTest, HasOneEntryPerKeyInTableOrderThenTheModel) {
  const std::vector<AgreementEntry> entries = fingerprint({});
  std::vector<std::string> expected;
  for (const ConfigKey& row : config_keys()) {
    const std::string key(row.key);
    if (row.kind == KeyKind::kSection || key.find("[]") != std::string::npos || key == "model" ||
        key == "problems.file" || key == "prompts.system_file" || key == "prompts.user_file")
      continue;
    expected.push_back(key);
  }
  expected.push_back("model (architecture)");
  expected.push_back("model (files)");
  std::vector<std::string> keys;
  for (const AgreementEntry& entry : entries) keys.push_back(entry.key);
  EXPECT_EQ(keys, expected);
  for (const AgreementEntry& entry : entries) {
    if (entry.key == "workers") {
      EXPECT_EQ(entry.value, "2");
    }
  }
  EXPECT_NE(entries[entries.size() - 2].value.find("llama layers 30"), std::string::npos)
      << entries[entries.size() - 2].value;
}

TEST_F(RunFingerprintTest, EachOverrideChangesExactlyItsKey) {
  const std::vector<AgreementEntry> base = fingerprint({});
  // Each override and the keys it changes: itself, and what is derived from it (default names
  // from the worker count, the transcript from the output, the problems from their file's keys).
  using Keys = std::set<std::string>;
  const std::vector<std::pair<std::string, Keys>> cases = {
      {"workers=3", {"workers", "names"}},
      {"parallel.worker_groups=2", {"parallel.worker_groups"}},
      {"parallel.tensor=3", {"parallel.tensor"}},
      {"parallel.sync=step", {"parallel.sync"}},
      {"parallel.timeout_seconds=7", {"parallel.timeout_seconds"}},
      {"layout=interleaved", {"layout"}},
      {"budget=7", {"budget"}},
      {"sampling.temperature=0.7", {"sampling.temperature"}},
      {"sampling.top_p=0.5", {"sampling.top_p"}},
      {"seed=5", {"seed"}},
      {"page_size=64", {"page_size"}},
      {"prompts.collaborate=false", {"prompts.collaborate"}},
      {"prompts.system=Be brief.", {"prompts.system"}},
      {"prompts.finisher_tokens=3", {"prompts.finisher_tokens"}},
      {"backend=cuda", {"backend"}},
      {"dtype=bf16", {"dtype"}},
      {"cuda_graphs=false", {"cuda_graphs"}},
      {"output=/tmp/elsewhere.h5", {"output", "transcript"}},
      {"transcript=/tmp/elsewhere.txt", {"transcript"}},
      {"names=[Ann, Ben]", {"names"}},
      {"problems.question_field=answer", {"problems.question_field", "problems"}},
      {"problems.limit=1", {"problems.limit", "problems"}},
  };
  for (const auto& [override_text, keys] : cases)
    EXPECT_EQ(differing(base, fingerprint({override_text})), keys) << override_text;
}

TEST_F(RunFingerprintTest, TheModelAndProblemsCountByContentNotByPath) {
  const std::vector<AgreementEntry> base = fingerprint({});
  // The same files under other names.
  std::filesystem::create_symlink(testing::demo_model_path(), dir_ / "other-name.gguf");
  std::filesystem::copy_file(dir_ / "problems.jsonl", dir_ / "copy.jsonl");
  EXPECT_TRUE(differing(base, fingerprint({"model=" + (dir_ / "other-name.gguf"),
                                           "problems.file=copy.jsonl"}))
                  .empty());
  // A model that differs in its last byte only differs in its files.
  std::filesystem::copy_file(testing::demo_model_path(), dir_ / "changed.gguf");
  {
    std::fstream file(dir_ / "changed.gguf", std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(-1, std::ios::end);
    const char last = static_cast<char>(file.get());
    file.seekp(-1, std::ios::end);
    file.put(static_cast<char>(last ^ 1));
  }
  EXPECT_EQ(differing(base, fingerprint({"model=" + (dir_ / "changed.gguf")})),
            std::set<std::string>{"model (files)"});
  // Other problems with the same count differ in "problems".
  write(dir_ / "other.jsonl",
        "{\"question\": \"What is 2+4?\", \"answer\": \"6\"}\n"
        "{\"question\": \"What is 7*8?\", \"answer\": \"56\"}\n");
  EXPECT_EQ(differing(base, fingerprint({"problems.file=other.jsonl"})),
            std::set<std::string>{"problems"});
}

TEST_F(RunFingerprintTest, PromptFilesCountByContentNotByPath) {
  write(dir_ / "prompt.txt", "Work together, {names}.");
  write(dir_ / "copy.txt", "Work together, {names}.");
  write(dir_ / "other.txt", "Work together, {names}!");
  const std::vector<AgreementEntry> base = fingerprint({"prompts.user_file=prompt.txt"});
  // The same text under another path, or written in the config, is the same prompt.
  EXPECT_TRUE(differing(base, fingerprint({"prompts.user_file=copy.txt"})).empty());
  EXPECT_TRUE(differing(base, fingerprint({"prompts.user=Work together, {names}."})).empty());
  // Another text (same path on another node, here another file) differs in prompts.user only,
  // and the message shows the file's path, size and hash, not the whole prompt.
  const std::vector<AgreementEntry> other = fingerprint({"prompts.user_file=other.txt"});
  EXPECT_EQ(differing(base, other), std::set<std::string>{"prompts.user"});
  for (const AgreementEntry& entry : other) {
    if (entry.key != "prompts.user") continue;
    EXPECT_EQ(entry.shown.find("23 bytes, hash "), 0u) << entry.shown;
    EXPECT_TRUE(entry.shown.ends_with(" from prompts.user_file 'other.txt'")) << entry.shown;
  }
  write(dir_ / "system.txt", "Be brief.");
  EXPECT_EQ(differing(base, fingerprint({"prompts.user_file=prompt.txt",
                                         "prompts.system_file=system.txt"})),
            std::set<std::string>{"prompts.system"});
}

}  // namespace
}  // namespace hogwild
