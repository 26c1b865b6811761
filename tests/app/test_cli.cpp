// The `hogwild` binary as a user meets it: every bad flag, file or model gives a non-zero exit
// and one line "hogwild: error: …" naming the problem; good runs stream text and end with timings.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_support.h"

namespace hogwild {
namespace {

using testing::CommandResult;
using testing::TempDir;

CommandResult hogwild(const std::string& arguments) {
  return testing::run_command(std::string(HOGWILD_CLI) + " " + arguments + " </dev/null");
}

std::string demo() { return testing::demo_model_path(); }

// A failed run: exit code non-zero and a single line that starts with the error prefix and
// contains `needle`.
void expect_one_line_error(const CommandResult& result, const std::string& needle) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output.rfind("hogwild: error: ", 0), 0u) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
  EXPECT_NE(result.output.find(needle), std::string::npos)
      << "expected '" << needle << "' in: " << result.output;
}

TEST(Cli, HelpForEveryCommand) {
  for (const char* command : {"generate", "tokenize", "info"}) {
    const CommandResult result = hogwild(std::string(command) + " --help");
    EXPECT_EQ(result.exit_code, 0) << command;
    EXPECT_NE(result.output.find("usage: hogwild " + std::string(command)), std::string::npos);
  }
  EXPECT_EQ(hogwild("--help").exit_code, 0);
  EXPECT_NE(hogwild("").exit_code, 0);
}

TEST(Cli, BadFlagsAreOneLineErrors) {
  expect_one_line_error(hogwild("frobnicate"), "unknown command 'frobnicate'");
  expect_one_line_error(hogwild("generate --prompt hi"), "missing required flag --model");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt hi --bogus 1"),
                        "unknown flag --bogus");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt"), "--prompt needs a value");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt hi --max-tokens ten"),
                        "--max-tokens expects an integer");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt hi --max-tokens 0"),
                        "--max-tokens must be in");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt hi --temperature -1"),
                        "--temperature must be in");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt hi --top-p 2"),
                        "--top-p must be in");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt hi --seed -3"),
                        "--seed expects a non-negative integer");
  expect_one_line_error(hogwild("generate --model m.gguf"),
                        "exactly one of --prompt and --prompt-file");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt a --prompt-file b"),
                        "exactly one of --prompt and --prompt-file");
  expect_one_line_error(hogwild("generate --model m.gguf --prompt a --prompt b"), "given twice");
  expect_one_line_error(hogwild("tokenize --model m.gguf"), "missing required flag --file");
}

TEST(Cli, BadModelFilesAreOneLineErrors) {
  TempDir dir;
  expect_one_line_error(hogwild("info --model " + (dir / "absent.gguf")), "no such file");
  testing::run_command("printf 'NOTAGGUF and some bytes' > " + (dir / "bad.gguf"));
  expect_one_line_error(hogwild("info --model " + (dir / "bad.gguf")), "bad magic");
  testing::run_command(": > " + (dir / "empty.gguf"));
  expect_one_line_error(hogwild("info --model " + (dir / "empty.gguf")), "not a GGUF file");
  std::filesystem::create_directory(dir / "empty_dir");
  expect_one_line_error(hogwild("info --model " + (dir / "empty_dir")), "config.json");
  expect_one_line_error(
      hogwild("tokenize --model " + (dir / "bad.gguf") + " --file " + (dir / "bad.gguf")),
      "bad magic");
}

TEST(Cli, TruncatedDemoModelIsAnError) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  TempDir dir;
  // Cut the file in the middle of the tensor data: the header parses, the tensors do not fit.
  testing::run_command("head -c 50000000 " + demo() + " > " + (dir / "cut.gguf"));
  expect_one_line_error(hogwild("info --model " + (dir / "cut.gguf")), "truncated");
  // Cut inside the header (the vocabulary).
  testing::run_command("head -c 300000 " + demo() + " > " + (dir / "cut2.gguf"));
  expect_one_line_error(hogwild("info --model " + (dir / "cut2.gguf")), "truncated");
}

TEST(Cli, BadCheckpointsAreOneLineErrors) {
  HOGWILD_REQUIRE_REFERENCE_PYTHON();
  HOGWILD_REQUIRE_DEMO_MODEL();
  TempDir dir;
  const auto made = testing::run_script("make_tiny_model.py --arch llama --out " + (dir / "m") +
                                        " --tokenizer-from " + demo());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // A config that does not match the tensors: the loader names the tensor and both shapes.
  testing::run_command("sed -i 's/\"intermediate_size\": 128/\"intermediate_size\": 96/' " +
                       (dir / "m/config.json"));
  expect_one_line_error(hogwild("generate --model " + (dir / "m") + " --prompt hi"), "has shape");
  testing::run_command("sed -i 's/LlamaForCausalLM/GPT2LMHeadModel/; s/\"llama\"/\"gpt2\"/' " +
                       (dir / "m/config.json"));
  expect_one_line_error(hogwild("info --model " + (dir / "m")),
                        "unsupported architecture 'GPT2LMHeadModel'");
}

TEST(Cli, TokenizeMatchesReferenceVector) {
  HOGWILD_REQUIRE_SHARED();
  TempDir dir;
  std::ofstream(dir / "text.txt", std::ios::binary) << "Hello world";
  const std::string vocab = testing::shared_dir() + "/testdata/tokenizer/ggml-vocab-gpt-2.gguf";
  const CommandResult result =
      hogwild("tokenize --model " + vocab + " --file " + (dir / "text.txt"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "15496 995\n");  // GPT-2's ids for "Hello" and " world"
}

// What cannot be written is an error: a full disk (/dev/full) and a closed standard output.
TEST(Cli, UnwritableStandardOutputIsAnError) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  TempDir dir;
  std::ofstream(dir / "text.txt", std::ios::binary) << "Hello world";
  const std::string tokenize = "tokenize --model " + demo() + " --file " + (dir / "text.txt");
  for (const char* redirect : {" >/dev/full", " >&-"}) {
    const CommandResult result = hogwild(tokenize + redirect);
    expect_one_line_error(result, "tokenize: cannot write to standard output");
  }
  const CommandResult generate =
      hogwild("generate --model " + demo() + " --prompt 'Once upon' --max-tokens 4 >/dev/full");
  EXPECT_NE(generate.exit_code, 0) << generate.output;
  EXPECT_NE(generate.output.find("generate: cannot write to standard output: No space left"),
            std::string::npos)
      << generate.output;
}

TEST(Cli, GenerateStreamsTextAndTimings) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  const std::string base = "generate --model " + demo() +
                           " --chat --prompt 'What is the capital of France?' --max-tokens 12";
  const CommandResult greedy = hogwild(base + " 2>/dev/null");
  ASSERT_EQ(greedy.exit_code, 0) << greedy.output;
  // The reference implementation's greedy answer (scripts/reference_forward.py on this prompt).
  EXPECT_NE(greedy.output.find("The capital of France is Paris."), std::string::npos)
      << greedy.output;

  const CommandResult timed = hogwild(base + " 2>&1 >/dev/null");
  EXPECT_NE(timed.output.find("[prefill: "), std::string::npos) << timed.output;
  EXPECT_NE(timed.output.find("tok/s"), std::string::npos) << timed.output;

  const std::string sampled = base + " --temperature 1.0 --top-p 0.95 --seed ";
  const CommandResult a = hogwild(sampled + "5 2>/dev/null"),
                      b = hogwild(sampled + "5 2>/dev/null");
  EXPECT_EQ(a.output, b.output) << "the same seed must give the same text";
}

// A FIFO given as the model fails at once (`timeout` turns a regression into exit 124, not a hung
// suite), with one line, and leaves the folder as it was.
TEST(Cli, FifoModelIsRefusedAtOnce) {
  TempDir dir;
  ASSERT_EQ(testing::run_command("mkfifo " + (dir / "model.gguf")).exit_code, 0);
  const auto listing = [&] { return testing::run_command("ls -l " + dir.path()).output; };
  const std::string before = listing();
  const CommandResult result =
      testing::run_command("timeout 20 " + std::string(HOGWILD_CLI) + " info --model " +
                           (dir / "model.gguf") + " </dev/null");
  EXPECT_NE(result.exit_code, 124) << "hogwild blocked on the FIFO";
  expect_one_line_error(result, "model.gguf: not a regular file (a FIFO)");
  EXPECT_EQ(listing(), before);
}

}  // namespace
}  // namespace hogwild
