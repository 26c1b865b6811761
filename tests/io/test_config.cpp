// The run configuration: parsing, defaults, overrides, JSONL problems, and errors that name the
// file, the key and the line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/config.h"
#include "io/fingerprint.h"
#include "test_support.h"

namespace hogwild {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return path;
}

// The message of the hogwild::Error that loading throws ("" and a test failure if none).
std::string error_of(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_run_config(path, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loading " << path << " did not fail";
  return "";
}

// Runs a test body in another current folder, restoring the old one after.
class CurrentFolder {
 public:
  explicit CurrentFolder(const std::string& path) : previous_(fs::current_path()) {
    fs::current_path(path);
  }
  ~CurrentFolder() { fs::current_path(previous_); }
  CurrentFolder(const CurrentFolder&) = delete;
  CurrentFolder& operator=(const CurrentFolder&) = delete;

 private:
  fs::path previous_;
};

// Two valid lines; tests append keys from line 3 on.
constexpr const char* kMinimal = "model: m.gguf\nproblems: [Add 2 and 2.]\n";

class ConfigTest : public ::testing::Test {
 protected:
  // Writes x.yaml with `text` and returns its path.
  std::string yaml(const std::string& text) { return write_file(dir_ / "x.yaml", text); }
  // The error of kMinimal + `extra` (its first line is line 3).
  std::string error_with(const std::string& extra, const std::vector<std::string>& overrides = {}) {
    return error_of(yaml(std::string(kMinimal) + extra), overrides);
  }
  std::string path() const { return dir_ / "x.yaml"; }

  testing::TempDir dir_;
};

TEST_F(ConfigTest, ParsesEveryKey) {
  write_file(dir_ / "p.jsonl", "{\"q\": \"Q1\", \"a\": \"x #### 7\"}\n");
  const RunConfig config = load_run_config(yaml(R"(
model: models/m.gguf
workers: 3
names: [Ann, Ben, Cid]
layout: interleaved
budget: 256
seed: 18446744073709551615
sampling: {temperature: 0.7, top_k: 40, top_p: 0.9, min_p: 0.05}
problems:
  file: p.jsonl
  question_field: q
  answer_field: a
  offset: 0
  limit: 1
batch_problems: 2
output: out/r.h5
transcript: out/t.log
page_size: 64
max_tokens_per_problem: 4096
prompts:
  system: "Team {names}"
  history_header: "H\n"
  others_header: "O\n"
  own_header: "W\n"
  step_prefix: "{name}#{step}: "
  incomplete_marker: " ..."
  redundancy_check: "Redundant? "
  redundancy_interval: 0
  finisher: " Answer: \\boxed{"
  finisher_tokens: 8
  chat_template: false
  collaborate: no
)"),
                                           {});
  EXPECT_EQ(config.model, "models/m.gguf");
  EXPECT_EQ(config.workers, 3);
  EXPECT_EQ(config.names, (std::vector<std::string>{"Ann", "Ben", "Cid"}));
  EXPECT_EQ(config.layout, Layout::Interleaved);
  EXPECT_EQ(config.budget, 256);
  EXPECT_EQ(config.seed, 18446744073709551615ULL);
  EXPECT_DOUBLE_EQ(config.sampling.temperature, 0.7);
  EXPECT_EQ(config.sampling.top_k, 40);
  EXPECT_DOUBLE_EQ(config.sampling.top_p, 0.9);
  EXPECT_DOUBLE_EQ(config.sampling.min_p, 0.05);
  ASSERT_TRUE(config.problems_file.has_value());
  EXPECT_EQ(config.problems_file->path, dir_ / "p.jsonl");
  EXPECT_EQ(config.problems_file->question_field, "q");
  EXPECT_EQ(config.problems_file->answer_field, "a");
  EXPECT_EQ(config.problems_file->limit, 1);
  ASSERT_EQ(config.problems.size(), 1u);
  EXPECT_EQ(config.problems[0].id, "p.jsonl:1");
  EXPECT_EQ(config.problems[0].question, "Q1");
  EXPECT_EQ(config.problems[0].answer, "7");
  EXPECT_EQ(config.batch_problems, 2);
  EXPECT_EQ(config.output, "out/r.h5");
  EXPECT_EQ(config.transcript, "out/t.log");
  EXPECT_EQ(config.page_size, 64);
  EXPECT_EQ(config.max_tokens_per_problem, 4096);
  EXPECT_EQ(config.prompts.system, "Team {names}");
  EXPECT_EQ(config.prompts.history_header, "H\n");
  EXPECT_EQ(config.prompts.others_header, "O\n");
  EXPECT_EQ(config.prompts.own_header, "W\n");
  EXPECT_EQ(config.prompts.step_prefix, "{name}#{step}: ");
  EXPECT_EQ(config.prompts.incomplete_marker, " ...");
  EXPECT_EQ(config.prompts.redundancy_check, "Redundant? ");
  EXPECT_EQ(config.prompts.redundancy_interval, 0);
  EXPECT_EQ(config.prompts.finisher, " Answer: \\boxed{");
  EXPECT_EQ(config.prompts.finisher_tokens, 8);
  EXPECT_FALSE(config.prompts.chat_template);
  EXPECT_FALSE(config.prompts.collaborate);
  EXPECT_THAT(config.source_text, HasSubstr("workers: 3"));
  EXPECT_THAT(config.source_text, HasSubstr("layout: interleaved"));
}

TEST_F(ConfigTest, FillsDefaults) {
  const RunConfig config = load_run_config(yaml(kMinimal), {});
  const RunConfig defaults;
  EXPECT_EQ(config.workers, 2);
  EXPECT_EQ(config.names, (std::vector<std::string>{"Alice", "Bob"}));
  EXPECT_EQ(config.layout, Layout::Combined);
  EXPECT_EQ(config.budget, defaults.budget);
  EXPECT_EQ(config.seed, 0u);
  EXPECT_EQ(config.sampling.temperature, 0.0);
  EXPECT_EQ(config.sampling.top_k, 0);
  EXPECT_EQ(config.sampling.top_p, 1.0);
  EXPECT_EQ(config.sampling.min_p, 0.0);
  EXPECT_FALSE(config.problems_file.has_value());
  ASSERT_EQ(config.problems.size(), 1u);
  EXPECT_EQ(config.problems[0].id, "inline-0");
  EXPECT_EQ(config.problems[0].question, "Add 2 and 2.");
  EXPECT_EQ(config.problems[0].answer, "");
  EXPECT_EQ(config.batch_problems, 4);
  EXPECT_EQ(config.output, "results/run.h5");
  EXPECT_EQ(config.transcript, "results/run.txt");
  EXPECT_EQ(config.page_size, 32);
  EXPECT_EQ(config.max_tokens_per_problem, 8192);
  const PromptConfig prompts = default_prompts();
  EXPECT_EQ(config.prompts.system, prompts.system);
  EXPECT_EQ(config.prompts.step_prefix, prompts.step_prefix);
  EXPECT_EQ(config.prompts.finisher, prompts.finisher);
  EXPECT_TRUE(config.prompts.chat_template);
  EXPECT_TRUE(config.prompts.collaborate);
}

TEST_F(ConfigTest, DefaultNamesRunOutIntoNumberedWorkers) {
  const RunConfig config = load_run_config(yaml(kMinimal), {"workers=22"});
  ASSERT_EQ(config.names.size(), 22u);
  EXPECT_EQ(config.names[0], "Alice");
  EXPECT_EQ(config.names[2], "Carol");
  EXPECT_EQ(config.names[18], "Walter");
  EXPECT_EQ(config.names[19], "Wendy");
  EXPECT_EQ(config.names[20], "Worker21");
  EXPECT_EQ(config.names[21], "Worker22");
}

TEST_F(ConfigTest, TranscriptDefaultsToOutputWithTxt) {
  EXPECT_EQ(load_run_config(yaml(std::string(kMinimal) + "output: a/b.h5\n"), {}).transcript,
            "a/b.txt");
  EXPECT_EQ(
      load_run_config(yaml(std::string(kMinimal) + "output: a/b\ntranscript:\n"), {}).transcript,
      "a/b.txt");
}

TEST_F(ConfigTest, InlineProblemsAreQuestionsOrMaps) {
  const RunConfig config = load_run_config(yaml(R"(model: m
problems:
  - Just a question?
  - question: With a GSM8K answer?
    answer: "3 + 4 = 7\n#### 1,234"
  - {question: "With a number answer?", answer: 42}
  - What is 17 * 3?
)"),
                                           {});
  ASSERT_EQ(config.problems.size(), 4u);
  EXPECT_EQ(config.problems[0].id, "inline-0");
  EXPECT_EQ(config.problems[0].question, "Just a question?");
  EXPECT_EQ(config.problems[0].answer, "");
  EXPECT_EQ(config.problems[1].id, "inline-1");
  EXPECT_EQ(config.problems[1].answer, "1234");
  EXPECT_EQ(config.problems[2].answer, "42");
  EXPECT_EQ(config.problems[3].question, "What is 17 * 3?");
}

// ---- Overrides ----

TEST_F(ConfigTest, OverridesEveryForm) {
  write_file(dir_ / "p.jsonl",
             "{\"question\": \"a\"}\n{\"question\": \"b\"}\n{\"question\": \"c\"}\n");
  yaml("model: m\nsampling: {temperature: 0.0}\nproblems: {file: p.jsonl}\n");
  const RunConfig config = load_run_config(
      path(), {"workers=3", "names=[A,B,C]", "sampling.temperature=0.7", "layout=interleaved",
               "output=/tmp/r.h5", "problems.limit=2", "seed=7", "prompts.collaborate=false"});
  EXPECT_EQ(config.workers, 3);
  EXPECT_EQ(config.names, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_DOUBLE_EQ(config.sampling.temperature, 0.7);
  EXPECT_EQ(config.layout, Layout::Interleaved);
  EXPECT_EQ(config.output, "/tmp/r.h5");
  EXPECT_EQ(config.transcript, "/tmp/r.txt");
  EXPECT_EQ(config.problems.size(), 2u);
  EXPECT_EQ(config.seed, 7u);
  EXPECT_FALSE(config.prompts.collaborate);
  // The echoed YAML is the tree after overrides.
  EXPECT_THAT(config.source_text, HasSubstr("workers: 3"));
  EXPECT_THAT(config.source_text, HasSubstr("0.7"));
  EXPECT_THAT(config.source_text, HasSubstr("limit: 2"));
  const RunConfig reread = load_run_config(write_file(dir_ / "echo.yaml", config.source_text), {});
  EXPECT_EQ(reread.workers, 3);
  EXPECT_EQ(reread.layout, Layout::Interleaved);
  EXPECT_EQ(reread.problems.size(), 2u);
}

TEST_F(ConfigTest, OverrideCreatesMissingSection) {
  const RunConfig config =
      load_run_config(yaml(kMinimal), {"sampling.top_p=0.9", "prompts.finisher_tokens=4"});
  EXPECT_DOUBLE_EQ(config.sampling.top_p, 0.9);
  EXPECT_EQ(config.prompts.finisher_tokens, 4);
  EXPECT_EQ(config.prompts.system, default_prompts().system);
}

TEST_F(ConfigTest, OverrideReplacesWholeMapsAndLists) {
  const RunConfig config = load_run_config(
      yaml(kMinimal), {"sampling={temperature: 1.0, top_k: 5}", "problems=[One, Two]"});
  EXPECT_DOUBLE_EQ(config.sampling.temperature, 1.0);
  EXPECT_EQ(config.sampling.top_k, 5);
  ASSERT_EQ(config.problems.size(), 2u);
  EXPECT_EQ(config.problems[1].question, "Two");
}

TEST_F(ConfigTest, TextOverridesAreLiteralUnlessQuoted) {
  const RunConfig config =
      load_run_config(yaml(kMinimal), {"prompts.step_prefix=**{name} [{step}]:** ",
                                       "prompts.incomplete_marker= <...>",
                                       "prompts.own_header=\"\\n\\nOwn:\\n\"", "model=a b #c"});
  EXPECT_EQ(config.prompts.step_prefix, "**{name} [{step}]:** ");
  EXPECT_EQ(config.prompts.incomplete_marker, " <...>");
  EXPECT_EQ(config.prompts.own_header, "\n\nOwn:\n");
  EXPECT_EQ(config.model, "a b #c");
}

TEST_F(ConfigTest, OverrideOfUnknownKeyNamesTheOverride) {
  const std::string message = error_of(yaml(kMinimal), {"sampling.tempreature=1"});
  EXPECT_THAT(message, HasSubstr("override 'sampling.tempreature=1'"));
  EXPECT_THAT(message, HasSubstr("unknown key sampling.tempreature"));
  EXPECT_THAT(message, HasSubstr("did you mean sampling.temperature?"));
  EXPECT_THAT(error_of(path(), {"wrokers=3"}), HasSubstr("did you mean workers?"));
  EXPECT_THAT(error_of(path(), {"tempreature=1"}), HasSubstr("did you mean sampling.temperature?"));
  EXPECT_THAT(error_of(path(), {"top_k=1"}), HasSubstr("did you mean sampling.top_k?"));
  EXPECT_THAT(error_of(path(), {"budget.x=3"}), HasSubstr("unknown key budget.x"));
  EXPECT_THAT(error_of(path(), {"zzz=3"}), HasSubstr("known keys: model, workers"));
}

TEST_F(ConfigTest, MalformedOverrides) {
  yaml(kMinimal);
  EXPECT_THAT(error_of(path(), {"workers"}), HasSubstr("override 'workers': expected key=value"));
  EXPECT_THAT(error_of(path(), {"sampling..top_p=1"}), HasSubstr("malformed key"));
  EXPECT_THAT(error_of(path(), {"=1"}), HasSubstr("malformed key"));
  const std::string bad_yaml = error_of(path(), {"names=[A, B"});
  EXPECT_THAT(bad_yaml, HasSubstr("override 'names=[A, B'"));
  EXPECT_THAT(bad_yaml, HasSubstr("not valid YAML"));
  // problems.* keys describe a file; the YAML has an inline list.
  const std::string on_list = error_of(path(), {"problems.limit=10"});
  EXPECT_THAT(on_list, HasSubstr("override 'problems.limit=10'"));
  EXPECT_THAT(on_list, HasSubstr("problems is a list"));
}

TEST_F(ConfigTest, InvalidOverriddenValueSaysFromOverride) {
  const std::string message = error_of(yaml(kMinimal), {"sampling.top_p=1.5"});
  EXPECT_THAT(message,
              HasSubstr("x.yaml (from override): sampling.top_p must be in (0, 1], got 1.5"));
  EXPECT_THAT(error_of(path(), {"workers=four"}),
              HasSubstr("(from override): workers must be an integer, got 'four'"));
  EXPECT_THAT(error_of(path(), {"sampling={tempreture: 1}"}),
              HasSubstr("(from override): unknown key sampling.tempreture (did you mean "
                        "sampling.temperature?)"));
  EXPECT_THAT(error_of(path(), {"names=[A, A]"}), HasSubstr("(from override): names[1] repeats"));
}

// ---- Errors in the file: each names the key and its line ----

TEST_F(ConfigTest, SyntaxErrorNamesTheLine) {
  const std::string message = error_of(yaml("model: m\nproblems: [a]\nsampling: {top_p: 0.5\n"));
  EXPECT_THAT(message, HasSubstr(path() + ":"));
  EXPECT_THAT(message, HasSubstr("YAML syntax error"));
  const std::string tabs = error_of(yaml("model: m\nworkers: 2\n  budget: 3\n"));
  EXPECT_THAT(tabs, HasSubstr(path() + ":3: YAML syntax error"));
}

TEST_F(ConfigTest, UnknownKeysNameLineAndSuggest) {
  EXPECT_THAT(error_with("wrokers: 2\n"),
              HasSubstr(path() + ":3: unknown key wrokers (did you mean workers?)"));
  EXPECT_THAT(error_with("sampling:\n  top_p: 0.5\n  tempreature: 1\n"),
              HasSubstr(path() + ":5: unknown key sampling.tempreature (did you mean "
                                 "sampling.temperature?)"));
  EXPECT_THAT(error_with("temperature: 0.5\n"),
              HasSubstr(":3: unknown key temperature (did you mean sampling.temperature?)"));
  EXPECT_THAT(error_with("prompts:\n  finsher: x\n"),
              HasSubstr(":4: unknown key prompts.finsher (did you mean prompts.finisher?)"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems:\n  - {question: q, anwser: 3}\n")),
              HasSubstr(":3: unknown key problems[0].anwser (did you mean problems[0].answer?)"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems:\n  file: p.jsonl\n  limt: 3\n")),
              HasSubstr(":4: unknown key problems.limt (did you mean problems.limit?)"));
  EXPECT_THAT(error_with("something_else: 1\n"), HasSubstr("known keys: model, workers"));
}

TEST_F(ConfigTest, DuplicateKeyIsAnError) {
  EXPECT_THAT(error_with("workers: 2\nworkers: 3\n"),
              HasSubstr(":4: duplicate key workers (first given at line 3)"));
  EXPECT_THAT(error_with("sampling:\n  top_k: 2\n  top_k: 3\n"),
              HasSubstr(":5: duplicate key sampling.top_k (first given at line 4)"));
  EXPECT_THAT(error_with("", {"sampling={top_k: 1, top_k: 2}"}),
              HasSubstr("(from override): duplicate key sampling.top_k"));
  EXPECT_THAT(error_with("sampling:\n  [a]: 1\n"),
              HasSubstr(":4: keys of sampling must be plain names"));
}

TEST_F(ConfigTest, WrongTypesNameKeyAndLine) {
  EXPECT_THAT(error_with("workers: four\n"),
              HasSubstr(path() + ":3: workers must be an integer, got 'four'"));
  EXPECT_THAT(error_with("workers: \"4\"\n"), HasSubstr(":3: workers must be an integer"));
  EXPECT_THAT(error_with("workers: 2.5\n"), HasSubstr(":3: workers must be an integer"));
  EXPECT_THAT(error_with("workers:\n"), HasSubstr(":3: workers must be an integer, got nothing"));
  EXPECT_THAT(error_with("budget: [1]\n"), HasSubstr(":3: budget must be an integer, got a list"));
  EXPECT_THAT(error_with("seed: -1\n"), HasSubstr(":3: seed must be an unsigned 64-bit integer"));
  EXPECT_THAT(error_with("sampling: 3\n"), HasSubstr(":3: sampling must be a map of keys"));
  EXPECT_THAT(error_with("sampling:\n  temperature: hot\n"),
              HasSubstr(":4: sampling.temperature must be a finite number, got 'hot'"));
  EXPECT_THAT(error_with("names: Alice\n"), HasSubstr(":3: names must be a list"));
  EXPECT_THAT(error_with("output: {a: 1}\n"), HasSubstr(":3: output must be text, got a map"));
  EXPECT_THAT(error_with("layout: mixed\n"),
              HasSubstr(":3: layout must be contiguous, interleaved or combined, got 'mixed'"));
  EXPECT_THAT(error_with("prompts:\n  collaborate: maybe\n"),
              HasSubstr(":4: prompts.collaborate must be true or false, got 'maybe'"));
  EXPECT_THAT(error_with("prompts:\n  system: [a]\n"),
              HasSubstr(":4: prompts.system must be text"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems: 3\n")),
              HasSubstr(":2: problems must be a list of questions or a map"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems:\n  - [a, b]\n")),
              HasSubstr(":3: problems[0] must be a question or a map"));
  EXPECT_THAT(error_of(yaml("- model: m\n")), HasSubstr(":1: the configuration must be a map"));
}

TEST_F(ConfigTest, OutOfRangeValuesNameKeyAndLine) {
  const auto expect = [&](const std::string& extra, const std::string& text) {
    EXPECT_THAT(error_with(extra), HasSubstr(path() + ":" + text)) << extra;
  };
  expect("workers: 0\n", "3: workers must be in [1, 64], got 0");
  expect("workers: 65\n", "3: workers must be in [1, 64], got 65");
  expect("budget: 0\n", "3: budget must be in [1, 1000000000], got 0");
  expect("batch_problems: 0\n", "3: batch_problems must be in [1, 4096], got 0");
  expect("sampling:\n  top_p: 1.5\n", "4: sampling.top_p must be in (0, 1], got 1.5");
  expect("sampling:\n  top_p: 0\n", "4: sampling.top_p must be in (0, 1], got 0");
  expect("sampling:\n  temperature: -0.1\n",
         "4: sampling.temperature must be in [0, 1000], got -0.1");
  expect("sampling:\n  temperature: .inf\n", "4: sampling.temperature must be a finite number");
  expect("sampling:\n  top_k: -1\n",
         "4: sampling.top_k must be in [0, 2147483647] (0 = off), got -1");
  expect("sampling:\n  min_p: 1\n", "4: sampling.min_p must be in [0, 1), got 1");
  expect("page_size: 48\n", "3: page_size must be a power of two in [8, 256], got 48");
  expect("page_size: 4\n", "3: page_size must be a power of two in [8, 256], got 4");
  expect("page_size: 512\n", "3: page_size must be a power of two in [8, 256], got 512");
  expect("max_tokens_per_problem: 100\n",
         "3: max_tokens_per_problem must be in [256, 16777216], got 100");
  expect("prompts:\n  redundancy_interval: -5\n",
         "4: prompts.redundancy_interval must be in [0, 1000000000] (0 = never), got -5");
  expect("prompts:\n  finisher_tokens: -1\n",
         "4: prompts.finisher_tokens must be in [0, 65536], got -1");
  expect("output: \"\"\n", "3: output must not be empty");
  expect("threads: 0\n", "3: threads must be in [1, 1024], got 0");
  expect("threads: -2\n", "3: threads must be in [1, 1024], got -2");
  expect("threads: 1025\n", "3: threads must be in [1, 1024], got 1025");
  expect("threads: two\n", "3: threads must be an integer, got 'two'");
}

TEST_F(ConfigTest, ThreadsKeyAndItsDefault) {
  EXPECT_EQ(load_run_config(yaml(kMinimal), {}).threads, 0) << "0 = the backend's default";
  EXPECT_EQ(load_run_config(yaml(std::string(kMinimal) + "threads: 7\n"), {}).threads, 7);
  EXPECT_EQ(load_run_config(yaml(kMinimal), {"threads=1024"}).threads, 1024);
  EXPECT_THAT(error_of(path(), {"threads=0"}),
              HasSubstr("(from override): threads must be in [1, 1024], got 0"));
}

// dtype (f32 | bf16) and cuda_graphs: defaults, values, overrides and the errors naming the key.
TEST_F(ConfigTest, DtypeAndCudaGraphsKeys) {
  const RunConfig defaults = load_run_config(yaml(kMinimal), {});
  EXPECT_EQ(defaults.dtype, "f32");
  EXPECT_TRUE(defaults.cuda_graphs);
  const RunConfig set =
      load_run_config(yaml(std::string(kMinimal) + "dtype: bf16\ncuda_graphs: false\n"), {});
  EXPECT_EQ(set.dtype, "bf16");
  EXPECT_FALSE(set.cuda_graphs);
  EXPECT_EQ(load_run_config(yaml(kMinimal), {"dtype=bf16"}).dtype, "bf16");
  EXPECT_FALSE(load_run_config(yaml(kMinimal), {"cuda_graphs=off"}).cuda_graphs);
  EXPECT_THAT(error_with("dtype: fp16\n"), HasSubstr(":3: dtype must be f32 or bf16, got 'fp16'"));
  EXPECT_THAT(error_with("dtype: BF16\n"), HasSubstr(":3: dtype must be f32 or bf16, got 'BF16'"));
  EXPECT_THAT(error_of(path(), {"dtype=f16"}),
              HasSubstr("(from override): dtype must be f32 or bf16, got 'f16'"));
  EXPECT_THAT(error_with("cuda_graphs: 2\n"), HasSubstr(":3: cuda_graphs must be"));
}

// A resume compares fingerprints: dtype changes the tokens (part of it), cuda_graphs does not.
TEST_F(ConfigTest, FingerprintHasDtypeButNotCudaGraphs) {
  const std::string base = run_fingerprint(load_run_config(yaml(kMinimal), {}));
  EXPECT_EQ(run_fingerprint(load_run_config(path(), {"cuda_graphs=false"})), base);
  const std::string bf16 = run_fingerprint(load_run_config(path(), {"dtype=bf16"}));
  EXPECT_NE(bf16, base);
  EXPECT_THAT(fingerprint_difference(base, bf16), HasSubstr("dtype (was not set, now bf16)"));
}

// The values seen to overflow later arithmetic (sizing, the memory plan, the finisher's reserve)
// or to be truncated (top_k to 32 bits) are refused when the config is read, before any model.
TEST_F(ConfigTest, HugeNumbersAreRefusedBeforeAnythingIsLoaded) {
  const auto expect = [&](const std::string& extra, const std::string& text) {
    EXPECT_THAT(error_with(extra), HasSubstr(path() + ":" + text)) << extra;
  };
  expect("sampling:\n  top_k: 9223372036854775807\n",
         "4: sampling.top_k must be in [0, 2147483647] (0 = off), got 9223372036854775807");
  expect("sampling:\n  top_k: 2147483648\n",
         "4: sampling.top_k must be in [0, 2147483647] (0 = off), got 2147483648");
  expect("sampling:\n  temperature: 1e39\n", "4: sampling.temperature must be in [0, 1000]");
  expect("max_tokens_per_problem: 4611686018427387904\n",
         "3: max_tokens_per_problem must be in [256, 16777216], got 4611686018427387904");
  expect("max_tokens_per_problem: 9223372036854775807\n",
         "3: max_tokens_per_problem must be in [256, 16777216]");
  expect("prompts:\n  finisher_tokens: 9223372036854775807\n",
         "4: prompts.finisher_tokens must be in [0, 65536]");
  expect("budget: 9223372036854775807\n", "3: budget must be in [1, 1000000000]");
  expect("batch_problems: 1000000\n", "3: batch_problems must be in [1, 4096], got 1000000");
  expect("prompts:\n  redundancy_interval: 9223372036854775807\n",
         "4: prompts.redundancy_interval must be in [0, 1000000000]");
  // Past int64 altogether: not a number we can hold.
  EXPECT_THAT(error_with("budget: 99999999999999999999\n"), HasSubstr(":3: budget must be"));
}

TEST_F(ConfigTest, MissingModelOrProblems) {
  EXPECT_THAT(error_of(yaml("problems: [a]\n")), HasSubstr(path() + ": model is required"));
  EXPECT_THAT(error_of(yaml("")), HasSubstr("model is required"));
  EXPECT_THAT(error_of(yaml("model: m\n")), HasSubstr(path() + ": problems is required"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems: []\n")), HasSubstr(":2: problems is empty"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems:\n")), HasSubstr(":2: problems is empty"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems:\n  - question: \"\"\n")),
              HasSubstr(":3: problems[0].question must not be empty"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems:\n  - {answer: 3}\n")),
              HasSubstr(":3: problems[0] has no question"));
  EXPECT_THAT(error_of(yaml("model: m\nproblems:\n  limit: 3\n")),
              HasSubstr(":2: problems needs a file"));
}

TEST_F(ConfigTest, NamesMustMatchWorkers) {
  EXPECT_THAT(error_with("workers: 3\nnames: [A, B]\n"),
              HasSubstr(path() + ":4: names has 2 names but workers is 3"));
  EXPECT_THAT(error_with("names: [A, B, C]\n"),
              HasSubstr(":3: names has 3 names but workers is 2"));
  EXPECT_THAT(error_with("names: [A, A]\n"), HasSubstr(":3: names[1] repeats the name 'A'"));
  EXPECT_THAT(error_with("names: [A, \"a/b\"]\n"), HasSubstr(":3: names[1] must not contain '/'"));
  EXPECT_THAT(error_with("names: [A, \"..\"]\n"),
              HasSubstr(":3: names[1] must not be made of dots only, got '..'"));
}

// ---- Problems from a JSONL file ----

constexpr const char* kJsonl =
    "{\"question\": \"Q1\", \"answer\": \"r #### 1\"}\n"
    "{\"question\": \"Q2\", \"answer\": \"r #### 2\"}\n"
    "\n"
    "{\"question\": \"Q3\", \"answer\": \"r #### 3,000\"}\r\n"
    "{\"question\": \"Q4\", \"answer\": 4}\n"
    "{\"question\": \"Q5\"}\n";

TEST_F(ConfigTest, JsonlWithOffsetAndLimit) {
  write_file(dir_ / "p.jsonl", kJsonl);
  const RunConfig config =
      load_run_config(yaml("model: m\nproblems:\n  file: p.jsonl\n  offset: 1\n  limit: 3\n"), {});
  ASSERT_EQ(config.problems.size(), 3u);
  EXPECT_EQ(config.problems[0].id, "p.jsonl:2");
  EXPECT_EQ(config.problems[0].question, "Q2");
  EXPECT_EQ(config.problems[0].answer, "2");
  EXPECT_EQ(config.problems[1].id, "p.jsonl:4");  // the blank line 3 is not a problem
  EXPECT_EQ(config.problems[1].question, "Q3");
  EXPECT_EQ(config.problems[1].answer, "3000");
  EXPECT_EQ(config.problems[2].id, "p.jsonl:5");
  EXPECT_EQ(config.problems[2].answer, "4");
  EXPECT_EQ(config.problems_file->offset, 1);
  EXPECT_EQ(config.problems_file->limit, 3);

  const RunConfig all = load_run_config(path(), {"problems.offset=0", "problems.limit=-1"});
  ASSERT_EQ(all.problems.size(), 5u);
  EXPECT_EQ(all.problems[4].id, "p.jsonl:6");
  EXPECT_EQ(all.problems[4].answer, "");

  const RunConfig tail = load_run_config(path(), {"problems.offset=4"});
  ASSERT_EQ(tail.problems.size(), 1u);
  EXPECT_EQ(tail.problems[0].question, "Q5");

  EXPECT_THAT(error_of(path(), {"problems.offset=5"}),
              HasSubstr("has no problems after skipping 5"));
  EXPECT_THAT(error_of(path(), {"problems.limit=0"}),
              HasSubstr("problems.limit must be in [1, 1000000000000], or -1 for all"));
}

TEST_F(ConfigTest, JsonlPathFromCurrentFolderFirstThenBesideTheYaml) {
  // Beside the YAML: the current folder has no p.jsonl.
  write_file(dir_ / "p.jsonl", "{\"question\": \"beside\"}\n");
  yaml("model: m\nproblems: {file: p.jsonl}\n");
  testing::TempDir cwd;
  {
    const CurrentFolder in(cwd.path());
    EXPECT_EQ(load_run_config(path(), {}).problems[0].question, "beside");
    // The current folder wins when it has the file.
    write_file(cwd / "p.jsonl", "{\"question\": \"current\"}\n");
    const RunConfig config = load_run_config(path(), {});
    EXPECT_EQ(config.problems[0].question, "current");
    EXPECT_EQ(config.problems_file->path, "p.jsonl");
  }
}

TEST_F(ConfigTest, JsonlErrorsNameFileAndLine) {
  yaml("model: m\nproblems:\n  file: p.jsonl\n");
  write_file(dir_ / "p.jsonl", "{\"question\": \"ok\"}\n{\"question\": \"bad\"\n");
  std::string message = error_of(path());
  EXPECT_THAT(message, HasSubstr(dir_ / "p.jsonl" + ":2: not valid JSON"));

  write_file(dir_ / "p.jsonl", "{\"question\": \"ok\"}\n\n{\"prompt\": \"no question\"}\n");
  message = error_of(path());
  EXPECT_THAT(message, HasSubstr(dir_ / "p.jsonl" + ":3: no text field 'question'"));
  EXPECT_THAT(message, HasSubstr("problems.question_field"));

  write_file(dir_ / "p.jsonl", "[1, 2]\n");
  EXPECT_THAT(error_of(path()), HasSubstr(":1: expected a JSON object, got array"));

  write_file(dir_ / "p.jsonl", "{\"question\": \"q\", \"answer\": [1]}\n");
  EXPECT_THAT(error_of(path()), HasSubstr(":1: field 'answer' must be text or a number"));

  write_file(dir_ / "p.jsonl", "\n\n");
  EXPECT_THAT(error_of(path()), HasSubstr(":3: problems.file '"));

  message = error_of(yaml("model: m\nproblems:\n  file: missing.jsonl\n"));
  EXPECT_THAT(message, HasSubstr(path() + ":3: problems.file 'missing.jsonl' not found"));
}

TEST_F(ConfigTest, RealGsm8kFirstFive) {
  HOGWILD_REQUIRE_SHARED();
  const std::string gsm8k = testing::shared_dir() + "/data/gsm8k/test.jsonl";
  if (!fs::exists(gsm8k)) GTEST_SKIP() << gsm8k << " is absent";
  const RunConfig config =
      load_run_config(yaml("model: m\nproblems:\n  file: " + gsm8k + "\n  limit: 5\n"), {});
  ASSERT_EQ(config.problems.size(), 5u);
  EXPECT_EQ(config.problems[0].id, "test.jsonl:1");
  EXPECT_THAT(config.problems[0].question, HasSubstr("Janet"));
  EXPECT_EQ(config.problems[0].answer, "18");
  for (const Problem& problem : config.problems) {
    EXPECT_FALSE(problem.question.empty());
    EXPECT_FALSE(problem.answer.empty());
    EXPECT_EQ(problem.answer.find("####"), std::string::npos);
  }
  const RunConfig skipped = load_run_config(path(), {"problems.offset=1", "problems.limit=2"});
  ASSERT_EQ(skipped.problems.size(), 2u);
  EXPECT_EQ(skipped.problems[0].id, "test.jsonl:2");
  EXPECT_EQ(skipped.problems[0].question, config.problems[1].question);
}

// ---- The shipped configurations ----

TEST(ShippedConfigs, DemoParses) {
  const RunConfig config = load_run_config(testing::source_dir() + "/configs/demo.yaml", {});
  EXPECT_EQ(config.model, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
  EXPECT_EQ(config.workers, 2);
  EXPECT_EQ(config.layout, Layout::Combined);
  EXPECT_EQ(config.budget, 128);
  EXPECT_EQ(config.sampling.temperature, 0.0);
  ASSERT_EQ(config.problems.size(), 1u);
  EXPECT_FALSE(config.problems[0].answer.empty());
  EXPECT_EQ(config.output, "results/demo.h5");
  EXPECT_EQ(config.transcript, "results/demo.txt");
}

TEST(ShippedConfigs, Gsm8kParses) {
  HOGWILD_REQUIRE_SHARED();
  const std::string gsm8k = testing::shared_dir() + "/data/gsm8k/test.jsonl";
  if (!fs::exists(gsm8k)) GTEST_SKIP() << gsm8k << " is absent";
  // Users run from the repository root; ../shared is then found from the current folder.
  const CurrentFolder in(testing::source_dir());
  std::vector<std::string> overrides;
  if (!fs::exists("../shared/data/gsm8k/test.jsonl")) overrides.push_back("problems.file=" + gsm8k);
  const RunConfig config = load_run_config("configs/gsm8k.yaml", overrides);
  EXPECT_EQ(config.workers, 4);
  EXPECT_EQ(config.budget, 512);
  EXPECT_EQ(config.names, (std::vector<std::string>{"Alice", "Bob", "Carol", "Dave"}));
  ASSERT_EQ(config.problems.size(), 20u);
  EXPECT_EQ(config.problems[0].answer, "18");
  EXPECT_EQ(config.transcript, "results/gsm8k.txt");
}

// ---- What a team gets ----

TEST_F(ConfigTest, TeamSettingsCarryTheRun) {
  const RunConfig config =
      load_run_config(yaml(kMinimal), {"layout=interleaved", "names=[Ann, Ben]", "budget=77",
                                       "seed=9", "sampling.top_k=5", "max_tokens_per_problem=512",
                                       "parallel.worker_groups=2", "prompts.step_prefix=> "});
  const TeamSettings settings = team_settings(config);
  EXPECT_EQ(settings.layout, Layout::Interleaved);
  EXPECT_EQ(settings.names, (std::vector<std::string>{"Ann", "Ben"}));
  EXPECT_EQ(settings.prompts.step_prefix, "> ");
  EXPECT_EQ(settings.prompts.system, default_prompts().system);
  EXPECT_EQ(settings.sampling.top_k, 5);
  EXPECT_EQ(settings.budget, 77);
  EXPECT_EQ(settings.max_tokens, 512);
  EXPECT_EQ(settings.seed, 9u);
  EXPECT_EQ(settings.worker_groups, 2);
}

// ---- Helpers ----

TEST(LayoutName, NamesEachLayout) {
  EXPECT_STREQ(layout_name(Layout::Contiguous), "contiguous");
  EXPECT_STREQ(layout_name(Layout::Interleaved), "interleaved");
  EXPECT_STREQ(layout_name(Layout::Combined), "combined");
}

TEST(DefaultPrompts, DescribeTheCollaboration) {
  // Compact: the prompt is the system message and names the history's title.
  const PromptConfig compact = default_prompts(PromptStyle::Compact);
  for (const char* part : {"{names}", "{count}", "### Past steps", "### Work in progress (others)",
                           "### Work in progress (own)", "<...>", "\\boxed{", "same thing"}) {
    EXPECT_THAT(compact.system, HasSubstr(part));
  }
  EXPECT_EQ(compact.style, PromptStyle::Compact);
  EXPECT_EQ(compact.user, "");
  EXPECT_EQ(compact.history_header, "### Past steps\n\n");
  EXPECT_EQ(compact.incomplete_marker, " <...>");
  EXPECT_EQ(compact.lead_step_prefix, "");
  EXPECT_EQ(compact.redundancy_interval, 1024);
  EXPECT_EQ(compact.stop_rule, StopRule::AnyBoxed);
  // Paper (the default): the authors' format; the prompt (our words) goes into the user message
  // and never names a history title, which the model does not see.
  const PromptConfig prompts = default_prompts();
  EXPECT_EQ(prompts.style, PromptStyle::Paper);
  EXPECT_EQ(prompts.system, "");
  for (const char* part : {"{names}", "{count}", "### Work in progress (others)",
                           "### Work in progress (own)", "<...>", "\\boxed{", "same thing"}) {
    EXPECT_THAT(prompts.user, HasSubstr(part));
  }
  EXPECT_THAT(prompts.user, ::testing::Not(HasSubstr("### Past steps")));
  EXPECT_EQ(prompts.history_header, "");
  EXPECT_EQ(prompts.others_header, "\n\n### Work in progress (others)\n\n");
  EXPECT_EQ(prompts.own_header, "### Work in progress (own)\n\n");  // after marker + "\n\n"
  EXPECT_EQ(prompts.first_step_prefix, "**{name} [{step}]:** Hi, I'm {name}.");
  EXPECT_EQ(prompts.lead_step_prefix, "**{name} [{step}]:** Hi, I'm {name}. Here's how we can");
  EXPECT_EQ(prompts.step_prefix, "**{name} [{step}]:** ");
  EXPECT_EQ(prompts.incomplete_marker, "<...>");
  EXPECT_EQ(prompts.redundancy_check, "Quick check: am I doing redundant work? (yes/no): ");
  EXPECT_EQ(prompts.redundancy_interval, 256);
  EXPECT_EQ(prompts.stop_rule, StopRule::NumberAtStepEnd);
  EXPECT_THAT(prompts.finisher, HasSubstr("I have to give an answer right now"));
  EXPECT_TRUE(prompts.finisher.ends_with("\\boxed{"));
  EXPECT_EQ(prompts.finisher_tokens, 16);
  EXPECT_TRUE(prompts.chat_template);
  EXPECT_TRUE(prompts.collaborate);
}

// prompts.style sets the defaults of the other prompts.* keys, which still replace single texts,
// wherever style appears in the map.
TEST_F(ConfigTest, PromptStyleSetsTheDefaultsOfTheOtherPromptKeys) {
  const RunConfig paper = load_run_config(yaml(kMinimal), {});
  EXPECT_EQ(paper.prompts.style, PromptStyle::Paper);
  EXPECT_EQ(paper.prompts.user, default_prompts(PromptStyle::Paper).user);
  const RunConfig compact = load_run_config(
      yaml(std::string(kMinimal) + "prompts:\n  incomplete_marker: ' [...]'\n  style: compact\n"),
      {});
  EXPECT_EQ(compact.prompts.style, PromptStyle::Compact);
  EXPECT_EQ(compact.prompts.system, default_prompts(PromptStyle::Compact).system);
  EXPECT_EQ(compact.prompts.history_header, "### Past steps\n\n");
  EXPECT_EQ(compact.prompts.stop_rule, StopRule::AnyBoxed);
  EXPECT_EQ(compact.prompts.incomplete_marker, " [...]") << "a given key wins over the style";
  const RunConfig overridden = load_run_config(
      yaml(kMinimal), {"prompts.style=compact", "prompts.stop_rule=number_at_step_end"});
  EXPECT_EQ(overridden.prompts.redundancy_interval, 1024);
  EXPECT_EQ(overridden.prompts.stop_rule, StopRule::NumberAtStepEnd);
  EXPECT_THAT(error_with("prompts:\n  style: papr\n"),
              HasSubstr("x.yaml:4: prompts.style must be paper or compact, got 'papr'"));
  EXPECT_THAT(error_with("prompts:\n  stop_rule: boxed\n"),
              HasSubstr("prompts.stop_rule must be number_at_step_end or any_boxed"));
}

// A prompt text from a file, byte for byte (any text: the authors' prompt can be used as written
// without being shipped); every failure one line naming the key and the path.
TEST_F(ConfigTest, PromptTextsFromFiles) {
  const std::string text = "Line one {names}.\n\n<|im_start|>user\nLine \xc3\xa9 two\n";
  write_file(dir_ / "user.txt", text);
  write_file(dir_ / "system.txt", "S");
  testing::TempDir cwd;
  const CurrentFolder in(cwd.path());  // relative paths: beside the YAML when not in the cwd
  RunConfig config = load_run_config(
      yaml(std::string(kMinimal) +
           "prompts:\n  user_file: user.txt\n  system_file: " + (dir_ / "system.txt") + "\n"),
      {});
  EXPECT_EQ(config.prompts.user, text);
  EXPECT_EQ(config.prompts.system, "S");
  EXPECT_EQ(config.prompt_files.user, "user.txt");
  // With an override, and in the current folder first.
  write_file(cwd / "user.txt", "from the current folder");
  EXPECT_EQ(load_run_config(yaml(kMinimal), {"prompts.user_file=user.txt"}).prompts.user,
            "from the current folder");

  std::string message = error_with("prompts:\n  system_file: missing.txt\n");
  EXPECT_THAT(message, HasSubstr("x.yaml:4: prompts.system_file 'missing.txt' not found"));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  fs::create_directory(dir_ / "folder");
  EXPECT_THAT(error_with("prompts:\n  user_file: " + (dir_ / "folder") + "\n"),
              HasSubstr("prompts.user_file '" + (dir_ / "folder") + "' is not a regular file"));
  EXPECT_THAT(error_with("prompts:\n  user_file: ''\n"), HasSubstr("prompts.user_file is empty"));
  EXPECT_THAT(error_with("prompts:\n  user: hi\n  user_file: user.txt\n"),
              HasSubstr("x.yaml:5: prompts.user_file and prompts.user are both given"));
  if (geteuid() != 0) {  // root reads any file
    write_file(dir_ / "locked.txt", "x");
    fs::permissions(dir_ / "locked.txt", fs::perms::none);
    message = error_with("prompts:\n  system_file: " + (dir_ / "locked.txt") + "\n");
    EXPECT_THAT(message, HasSubstr("prompts.system_file cannot read the prompt: " +
                                   (dir_ / "locked.txt") + ": cannot open"));
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST_F(ConfigTest, WatchdogTimeoutMustBePositive) {
  // 0 would silently turn the watchdog off; the documented range is "> 0".
  EXPECT_THAT(error_of(yaml(kMinimal), {"parallel.timeout_seconds=0"}),
              HasSubstr("parallel.timeout_seconds must be"));
  EXPECT_DOUBLE_EQ(
      load_run_config(yaml(kMinimal), {"parallel.timeout_seconds=0.5"}).parallel.timeout_seconds,
      0.5);
}

}  // namespace
}  // namespace hogwild
