// A run's outputs may not replace its inputs or each other: every collision, including through a
// symbolic link, a hard link, "..", and a file inside a checkpoint folder, is refused while the
// config loads, and the input files stay byte-identical.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/config.h"
#include "test_support.h"

namespace hogwild {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class OutputPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_ / "model.gguf";
    config_ = dir_ / "run.yaml";
    problems_ = dir_ / "problems.jsonl";
    write(model_, "GGUF not really a model");
    write(problems_, "{\"question\": \"1+1?\", \"answer\": \"#### 2\"}\n");
    write(config_, "model: " + model_ + "\nproblems: {file: " + problems_ + "}\n");
    fs::create_directory(dir_ / "out");
  }

  // The error loading the config with `overrides` gives, and a check that no input changed.
  std::string error_of(const std::vector<std::string>& overrides) {
    const std::string model = read_all(model_), config = read_all(config_),
                      problems = read_all(problems_);
    std::string message;
    try {
      load_run_config(config_, overrides);
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_EQ(read_all(model_), model);
    EXPECT_EQ(read_all(config_), config);
    EXPECT_EQ(read_all(problems_), problems);
    return message;
  }

  testing::TempDir dir_;
  std::string model_, config_, problems_;
};

TEST_F(OutputPaths, DistinctPathsAreAccepted) {
  const RunConfig config = load_run_config(config_, {"output=" + (dir_ / "out/r.h5")});
  EXPECT_EQ(config.transcript, dir_ / "out/r.txt");
}

TEST_F(OutputPaths, AnOutputThatIsAnInputIsRefused) {
  EXPECT_THAT(error_of({"output=" + model_}),
              HasSubstr("output '" + model_ + "' is the model ('" + model_ + "')"));
  EXPECT_THAT(error_of({"transcript=" + model_}),
              HasSubstr("transcript '" + model_ + "' is the model"));
  EXPECT_THAT(error_of({"output=" + config_}), HasSubstr("is the config"));
  EXPECT_THAT(error_of({"transcript=" + problems_}), HasSubstr("is the problems file"));
}

TEST_F(OutputPaths, LinksAndDotsAreResolved) {
  fs::create_symlink(model_, dir_ / "link.gguf");
  EXPECT_THAT(error_of({"output=" + (dir_ / "link.gguf")}), HasSubstr("is the model"));
  fs::create_hard_link(problems_, dir_ / "hard.jsonl");
  EXPECT_THAT(error_of({"output=" + (dir_ / "hard.jsonl")}), HasSubstr("is the problems file"));
  EXPECT_THAT(error_of({"output=" + (dir_ / "out/../model.gguf")}), HasSubstr("is the model"));
}

TEST_F(OutputPaths, OutputAndTranscriptMustDiffer) {
  // An output ending in .txt has itself as its default transcript.
  EXPECT_THAT(error_of({"output=" + (dir_ / "out/r.txt")}), HasSubstr("are the same file"));
  EXPECT_THAT(error_of({"output=" + (dir_ / "out/r.h5"), "transcript=" + (dir_ / "out/r.h5")}),
              HasSubstr("are the same file"));
}

TEST_F(OutputPaths, NothingInsideACheckpointFolder) {
  const std::string checkpoint = dir_ / "checkpoint";
  fs::create_directory(checkpoint);
  write(checkpoint + "/config.json", "{}");
  write(config_, "model: " + checkpoint + "\nproblems: [\"1+1?\"]\n");
  EXPECT_THAT(error_of({"output=" + checkpoint + "/config.json"}),
              HasSubstr("lies inside the model folder"));
  EXPECT_EQ(read_all(checkpoint + "/config.json"), "{}");
}

}  // namespace
}  // namespace hogwild
