// ResultsWriter checked from the outside: every attribute and dataset is read back with h5py (an
// independent reader) and the layout with h5dump; a run killed after write() keeps its problems;
// bad paths and duplicate ids are one-line hogwild::Errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/results.h"
#include "test_support.h"

namespace hogwild {
namespace {

using nlohmann::json;
using testing::CommandResult;
using testing::TempDir;

// Dumps the whole file as JSON: attributes with their HDF5 type facts, datasets with dtype/shape.
// NaN becomes null (JSON has no NaN).
constexpr const char* kReadScript = R"PY(
import h5py, json, math, sys

def number(value):
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value

def attributes(obj):
    out = {}
    for name in obj.attrs:
        kind = obj.attrs.get_id(name).get_type()
        value = obj.attrs[name]
        if kind.get_class() == h5py.h5t.STRING:
            out[name] = {"string": value.decode() if isinstance(value, bytes) else value,
                         "utf8": kind.get_cset() == h5py.h5t.CSET_UTF8,
                         "variable": kind.is_variable_str(),
                         "scalar": obj.attrs.get_id(name).shape == ()}
        else:
            out[name] = {"number": number(value), "dtype": value.dtype.str}
    return out

def string_dataset(dataset):
    return {"string": dataset.asstr()[()], "shape": list(dataset.shape),
            "utf8": h5py.check_string_dtype(dataset.dtype).encoding == "utf-8",
            "variable": h5py.check_string_dtype(dataset.dtype).length is None}

with h5py.File(sys.argv[1], "r") as f:
    out = {"root": attributes(f), "root_members": sorted(f.keys()), "problems": {}}
    for name, group in f["problems"].items():
        problem = {"attributes": attributes(group), "members": sorted(group.keys()), "workers": {}}
        for worker_name, worker in group["workers"].items():
            tokens = worker["tokens"]
            problem["workers"][worker_name] = {
                "members": sorted(worker.keys()),
                "tokens": tokens[()].tolist(), "tokens_dtype": tokens.dtype.str,
                "tokens_shape": list(tokens.shape), "text": string_dataset(worker["text"])}
        steps = group["steps"]
        problem["steps"] = {
            "fields": list(steps.dtype.names),
            "dtypes": [steps.dtype[field].str for field in steps.dtype.names],
            "shape": list(steps.shape),
            "rows": [[number(value) for value in row] for row in steps[()]]}
        problem["transcript"] = string_dataset(group["transcript"])
        out["problems"][name] = problem
print(json.dumps(out))
)PY";

bool h5py_available() {
  return testing::run_command(testing::python() + " -c 'import h5py' 2>/dev/null").exit_code == 0;
}

#define REQUIRE_H5PY()                                                                          \
  do {                                                                                          \
    if (!h5py_available())                                                                      \
      GTEST_SKIP() << testing::python() << " cannot import h5py: apt-get install python3-h5py"; \
  } while (0)

json read_with_h5py(const TempDir& dir, const std::string& hdf5_path) {
  const std::string script = dir / "read_results.py";
  std::ofstream(script) << kReadScript;
  // Without HDF5's lock: a file whose close failed on a full disk stays locked by this process.
  const CommandResult result = testing::run_command(
      "HDF5_USE_FILE_LOCKING=FALSE " + testing::python() + " " + script + " '" + hdf5_path + "'");
  if (result.exit_code != 0) {
    ADD_FAILURE() << "h5py could not read " << hdf5_path << ":\n" << result.output;
    return json::object();
  }
  return json::parse(result.output);
}

RunInfo sample_run() {
  RunInfo info;
  info.config_text = "model: demo.gguf\nworkers: [Alice, Bob]\nprompt: \"Résumé — 解く\"\n";
  info.model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  info.layout = "interleaved";
  info.workers = 2;
  return info;
}

// Three problems: ids with ':' and '/', unicode text, a worker with no tokens, a problem with no
// steps, and correct = 1 / 0 / -1.
std::vector<ProblemResult> sample_problems() {
  ProblemResult first;
  first.id = "gsm8k.jsonl:17";
  first.question = "Natalia sold clips to 48 of her friends… how many? ✓";
  first.reference_answer = "72";
  first.answer = "72";
  first.correct = 1;
  first.stop_reason = "answer";
  first.forward_passes = 11;
  first.generated_tokens = 7;
  first.seconds = 1.25;
  first.workers = {{"Alice", {101, 102, 103, 104}, "Ответ: 48 + 24 🚀"},
                   {"Bob", {-1, 0, 2147483647}, "\\boxed{72}"}};
  first.steps = {{0, 0, 0, 2, 3, 0.5}, {1, 0, 0, 3, 4, 0.75}, {0, 1, 2, 4, 11, 1.25}};
  first.transcript = "[Alice] Ответ: 48 + 24 🚀\n[Bob] \\boxed{72}";

  ProblemResult second;
  second.id = "math/algebra/3";
  second.question = "x² = 4, x > 0";
  second.reference_answer = "2";
  second.answer = "-2";
  second.correct = 0;
  second.stop_reason = "budget";
  second.forward_passes = 3;
  second.generated_tokens = 2;
  second.seconds = 0.5;
  second.workers = {{"Alice", {7, 8}, "x = -2"}, {"Bob", {}, ""}};
  second.transcript = "[Alice] x = -2\n";

  ProblemResult third;
  third.id = "free:prompt";
  third.question = "Write a haiku about caches.";
  third.correct = -1;
  third.stop_reason = "eos";
  third.forward_passes = 5;
  third.generated_tokens = 5;
  third.seconds = 0.25;
  third.workers = {{"Alice", {1, 2, 3, 4, 5}, "keys in shared rows"}};
  third.steps = {{0, 0, 0, 5, 5, 0.25}};
  third.transcript = "[Alice] keys in shared rows\n";
  return {first, second, third};
}

void expect_string(const json& entry, const std::string& expected, const std::string& where) {
  EXPECT_EQ(entry.value("string", std::string("<missing>")), expected) << where;
  EXPECT_TRUE(entry.value("utf8", false)) << where << " is not stored as UTF-8";
  EXPECT_TRUE(entry.value("variable", false)) << where << " is not a variable-length string";
}

void expect_number(const json& entry, double expected, const std::string& dtype,
                   const std::string& where) {
  ASSERT_TRUE(entry.contains("number")) << where << ": " << entry.dump();
  EXPECT_DOUBLE_EQ(entry["number"].get<double>(), expected) << where;
  EXPECT_EQ(entry["dtype"], dtype) << where;
}

void expect_problem(const json& stored, const ProblemResult& expected, int64_t index) {
  const std::string where = "problem " + expected.id;
  const json& attributes = stored["attributes"];
  expect_string(attributes["id"], expected.id, where + " id");
  expect_string(attributes["question"], expected.question, where + " question");
  expect_string(attributes["reference_answer"], expected.reference_answer, where + " reference");
  expect_string(attributes["answer"], expected.answer, where + " answer");
  expect_string(attributes["stop_reason"], expected.stop_reason, where + " stop_reason");
  expect_number(attributes["correct"], expected.correct, "|i1", where + " correct");
  expect_number(attributes["forward_passes"], static_cast<double>(expected.forward_passes), "<i8",
                where + " forward_passes");
  expect_number(attributes["generated_tokens"], static_cast<double>(expected.generated_tokens),
                "<i8", where + " generated_tokens");
  expect_number(attributes["seconds"], expected.seconds, "<f8", where + " seconds");
  expect_number(attributes["index"], static_cast<double>(index), "<i8", where + " index");
  expect_string(attributes["error"], expected.error, where + " error");
  expect_string(attributes["answer_source"], expected.answer_source, where + " answer_source");
  expect_number(attributes["answer_worker"], expected.answer_worker, "<i4",
                where + " answer_worker");
  EXPECT_EQ(attributes.size(), 13u) << attributes.dump();
  EXPECT_EQ(stored["members"],
            expected.checkpoints.empty()
                ? json({"events", "steps", "transcript", "workers"})
                : json({"checkpoints", "events", "steps", "transcript", "workers"}));

  ASSERT_EQ(stored["workers"].size(), expected.workers.size()) << where;
  for (const WorkerRecord& worker : expected.workers) {
    ASSERT_TRUE(stored["workers"].contains(worker.name)) << where << " worker " << worker.name;
    const json& folder = stored["workers"][worker.name];
    EXPECT_EQ(folder["members"], json({"text", "tokens"}));
    EXPECT_EQ(folder["tokens"].get<std::vector<int32_t>>(), worker.tokens) << worker.name;
    EXPECT_EQ(folder["tokens_dtype"], "<i4");
    EXPECT_EQ(folder["tokens_shape"], json({worker.tokens.size()}));
    expect_string(folder["text"], worker.text, where + " " + worker.name + " text");
    EXPECT_EQ(folder["text"]["shape"], json::array()) << "text must be a scalar";
  }

  const json& steps = stored["steps"];
  EXPECT_EQ(steps["fields"], json({"worker", "step", "first_token", "end_token", "finished_pass",
                                   "seconds", "started_pass"}));
  EXPECT_EQ(steps["dtypes"], json({"<i4", "<i4", "<i4", "<i4", "<i4", "<f8", "<i4"}));
  EXPECT_EQ(steps["shape"], json({expected.steps.size()}));
  ASSERT_EQ(steps["rows"].size(), expected.steps.size());
  for (size_t i = 0; i < expected.steps.size(); ++i) {
    const StepRecord& step = expected.steps[i];
    const json& row = steps["rows"][i];
    EXPECT_EQ(row[0], step.worker);
    EXPECT_EQ(row[1], step.step);
    EXPECT_EQ(row[2], step.first_token);
    EXPECT_EQ(row[3], step.end_token);
    EXPECT_EQ(row[4], step.finished_pass);
    EXPECT_DOUBLE_EQ(row[5].get<double>(), step.seconds);
    EXPECT_EQ(row[6], step.started_pass);
  }
  expect_string(stored["transcript"], expected.transcript, where + " transcript");
  EXPECT_EQ(stored["transcript"]["shape"], json::array());
}

void write_run(const std::string& hdf5_path, const std::string& transcript_path,
               const std::vector<ProblemResult>& problems, double total_seconds) {
  ResultsWriter writer(hdf5_path, transcript_path, sample_run());
  for (const ProblemResult& problem : problems) writer.write(problem);
  writer.close(total_seconds);
}

TEST(Results, EveryFieldReadsBackWithH5py) {
  REQUIRE_H5PY();
  TempDir dir;
  const std::string hdf5_path = dir / "out/results.h5";  // the folder does not exist yet
  const std::vector<ProblemResult> problems = sample_problems();
  write_run(hdf5_path, dir / "logs/transcript.txt", problems, 4.0);

  const json stored = read_with_h5py(dir, hdf5_path);
  ASSERT_TRUE(stored.contains("root")) << stored.dump();
  const json& root = stored["root"];
  const RunInfo info = sample_run();
  expect_string(root["config"], info.config_text, "config");
  expect_string(root["model"], info.model, "model");
  expect_string(root["layout"], info.layout, "layout");
  expect_string(root["hogwild_version"], "0.1.0", "hogwild_version");
  expect_number(root["workers"], 2, "<i8", "workers");
  const std::string created = root["created"].value("string", "");
  EXPECT_EQ(created.size(), 20u) << created;  // 2025-01-31T12:34:56Z
  EXPECT_EQ(created.back(), 'Z') << created;
  EXPECT_EQ(created[10], 'T') << created;
  expect_number(root["problems"], 3, "<i8", "problems");
  expect_number(root["accuracy"], 0.5, "<f8", "accuracy");  // 1 of the 2 with a reference
  expect_number(root["total_seconds"], 4.0, "<f8", "total_seconds");
  expect_number(root["generated_tokens"], 14, "<i8", "generated_tokens");
  expect_number(root["tokens_per_second"], 3.5, "<f8", "tokens_per_second");
  expect_number(root["failed_problems"], 0, "<i8", "failed_problems");
  expect_string(root["method"], "hogwild", "method");
  expect_number(root["complete"], 1, "|i1", "complete");
  EXPECT_EQ(root.size(), 22u) << root.dump();
  EXPECT_EQ(stored["root_members"], json({"problems"}));

  // '/' cannot be part of an HDF5 name; the original id lives on in the `id` attribute.
  const json& stored_problems = stored["problems"];
  EXPECT_EQ(stored_problems.size(), 3u);
  const std::vector<std::string> names = {"gsm8k.jsonl:17", "math_algebra_3", "free:prompt"};
  for (size_t i = 0; i < problems.size(); ++i) {
    ASSERT_TRUE(stored_problems.contains(names[i])) << stored_problems.dump();
    expect_problem(stored_problems[names[i]], problems[i], static_cast<int64_t>(i));
  }
}

TEST(Results, AccuracyIsNaNWithoutReferencesAndZeroTimeGivesZeroRate) {
  REQUIRE_H5PY();
  TempDir dir;
  std::vector<ProblemResult> problems = {sample_problems()[2]};
  write_run(dir / "r.h5", dir / "t.txt", problems, 0.0);
  const json root = read_with_h5py(dir, dir / "r.h5")["root"];
  EXPECT_TRUE(root["accuracy"]["number"].is_null()) << root.dump();
  expect_number(root["problems"], 1, "<i8", "problems");
  expect_number(root["tokens_per_second"], 0.0, "<f8", "tokens_per_second");
}

TEST(Results, EmptyRunHasSummaryAndNoProblems) {
  REQUIRE_H5PY();
  TempDir dir;
  write_run(dir / "r.h5", dir / "t.txt", {}, 1.0);
  const json stored = read_with_h5py(dir, dir / "r.h5");
  EXPECT_TRUE(stored["problems"].empty());
  expect_number(stored["root"]["problems"], 0, "<i8", "problems");
  EXPECT_TRUE(stored["root"]["accuracy"]["number"].is_null());
  EXPECT_EQ(testing::read_file(dir / "t.txt"), "");
}

// A run killed after write() (no close, no destructor) keeps the problem, readable and intact.
TEST(Results, ProblemSurvivesExitWithoutClosing) {
  REQUIRE_H5PY();
  TempDir dir;
  const std::string hdf5_path = dir / "crash.h5";
  const std::string transcript_path = dir / "crash.txt";
  const ProblemResult problem = sample_problems()[0];
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Leaked on purpose: _exit skips every destructor, as a crash (or SIGKILL) would.
    auto* writer = new ResultsWriter(hdf5_path, transcript_path, sample_run());
    try {
      writer->write(problem);
    } catch (...) {
      _exit(3);
    }
    _exit(1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 1) << "the child failed to write";

  const json stored = read_with_h5py(dir, hdf5_path);
  ASSERT_TRUE(stored.contains("problems")) << stored.dump();
  ASSERT_TRUE(stored["problems"].contains(problem.id));
  expect_problem(stored["problems"][problem.id], problem, 0);
  EXPECT_FALSE(stored["root"].contains("problems")) << "no summary without close()";
  expect_string(stored["root"]["model"], sample_run().model, "model");
  EXPECT_NE(testing::read_file(transcript_path).find(problem.transcript), std::string::npos);
}

TEST(Results, DestructorClosesWithoutSummary) {
  REQUIRE_H5PY();
  TempDir dir;
  {
    ResultsWriter writer(dir / "r.h5", dir / "t.txt", sample_run());
    writer.write(sample_problems()[1]);
  }
  const json stored = read_with_h5py(dir, dir / "r.h5");
  EXPECT_TRUE(stored["problems"].contains("math_algebra_3")) << stored.dump();
  EXPECT_FALSE(stored["root"].contains("accuracy"));
}

// A run killed between the packed file's rename and the parts folder's removal leaves the folder
// beside a complete file: it goes, the packed file stays byte for byte; a locked one stays.
TEST(Results, LeftoverPartsBesideAPackedFileAreRemovedUnlessLocked) {
  TempDir dir;
  const std::string hdf5_path = dir / "r.h5";
  {
    RunInfo info = sample_run();
    info.fingerprint = "a resumable run";
    ResultsWriter writer(hdf5_path, dir / "t.txt", info);
    for (const ProblemResult& problem : sample_problems()) writer.write(problem);
    writer.close(2.0);
  }
  const std::string parts = parts_folder(hdf5_path);
  ASSERT_FALSE(std::filesystem::exists(parts)) << "close() removes the parts";
  ASSERT_TRUE(read_existing_results(hdf5_path).complete);
  const std::string packed = testing::read_file(hdf5_path);

  EXPECT_FALSE(remove_leftover_parts(hdf5_path)) << "nothing to remove";
  std::filesystem::create_directories(parts);
  std::ofstream(parts + "/000001.h5") << "half-removed part";
  {
    // A live writer holds this lock for its whole life.
    const int fd = ::open(parts.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    EXPECT_FALSE(remove_leftover_parts(hdf5_path));
    EXPECT_TRUE(std::filesystem::exists(parts + "/000001.h5")) << "a locked folder stays";
    ::close(fd);
  }
  const ExistingResults existing = read_existing_results(hdf5_path);
  EXPECT_TRUE(existing.complete) << "the packed file is the whole run";
  EXPECT_EQ(existing.problems.size(), sample_problems().size());
  EXPECT_TRUE(remove_leftover_parts(hdf5_path));
  EXPECT_FALSE(std::filesystem::exists(parts));
  EXPECT_EQ(testing::read_file(hdf5_path), packed) << "the packed file is never touched";
}

TEST(Results, UnwritablePathsAreErrorsNamingThePath) {
  TempDir dir;
  ::testing::internal::CaptureStderr();
  try {
    ResultsWriter writer("/proc/forbidden/x.h5", dir / "t.txt", sample_run());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("/proc/forbidden/x.h5"), std::string::npos)
        << error.what();
  }
  try {
    ResultsWriter writer(dir / "r.h5", "/proc/forbidden/t.txt", sample_run());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("/proc/forbidden/t.txt"), std::string::npos)
        << error.what();
  }
  // A folder where the file should be: the failure comes from HDF5 itself.
  std::filesystem::create_directory(dir / "taken.h5");
  try {
    ResultsWriter writer(dir / "taken.h5", dir / "t.txt", sample_run());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(dir / "taken.h5"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  // A transcript path that is a folder.
  try {
    ResultsWriter writer(dir / "r.h5", dir.path(), sample_run());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(dir.path()), std::string::npos) << error.what();
  }
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "") << "HDF5 printed its error stack";
}

// Files take their names only with the first result: a file created meanwhile under that name is
// never replaced without `overwrite` (renameat2 RENAME_NOREPLACE), and this run's results stay
// in its staged file, named in the error.
TEST(Results, AFileThatAppearsMeanwhileIsNotReplaced) {
  TempDir dir;
  ResultsWriter writer(dir / "r.h5", dir / "t.txt", sample_run());
  EXPECT_FALSE(std::filesystem::exists(dir / "r.h5")) << "nothing has its name before a result";
  std::ofstream(dir / "r.h5") << "someone else's";
  try {
    writer.write(sample_problems()[0]);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("appeared while this run was going"),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find(".r.h5."), std::string::npos) << error.what();
  }
  EXPECT_EQ(testing::read_file(dir / "r.h5"), "someone else's");
}

TEST(Results, OverwriteReplacesAnExistingFile) {
  REQUIRE_H5PY();
  TempDir dir;
  std::ofstream(dir / "r.h5") << "old";
  std::ofstream(dir / "t.txt") << "old";
  {
    ResultsWriter writer(dir / "r.h5", dir / "t.txt", sample_run(), /*overwrite=*/true);
    EXPECT_EQ(testing::read_file(dir / "r.h5"), "old") << "replaced only with a result";
    writer.write(sample_problems()[0]);
    writer.close(1.0);
  }
  const json stored = read_with_h5py(dir, dir / "r.h5");
  EXPECT_TRUE(stored["problems"].contains(sample_problems()[0].id)) << stored.dump();
  EXPECT_NE(testing::read_file(dir / "t.txt").find(sample_problems()[0].transcript),
            std::string::npos);
}

TEST(Results, DuplicateIdIsAnError) {
  TempDir dir;
  ResultsWriter writer(dir / "r.h5", dir / "t.txt", sample_run());
  const ProblemResult problem = sample_problems()[0];
  writer.write(problem);
  try {
    writer.write(problem);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("gsm8k.jsonl:17"), std::string::npos) << message;
    EXPECT_NE(message.find("already written"), std::string::npos) << message;
    EXPECT_NE(message.find(dir / "r.h5"), std::string::npos) << message;
  }
  writer.close(1.0);
  EXPECT_THROW(writer.write(sample_problems()[1]), Error);
  EXPECT_THROW(writer.close(1.0), Error);
}

TEST(Results, TwoWorkersWithOneNameAreAnError) {
  TempDir dir;
  ResultsWriter writer(dir / "r.h5", dir / "t.txt", sample_run());
  ProblemResult problem = sample_problems()[1];
  problem.workers[1].name = "Alice";
  try {
    writer.write(problem);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("two workers named 'Alice'"), std::string::npos)
        << error.what();
  }
}

// "a/b" and "a_b" are different ids that sanitize to one name: both are kept.
TEST(Results, IdsThatSanitizeAlikeAreBothKept) {
  REQUIRE_H5PY();
  TempDir dir;
  ProblemResult slash = sample_problems()[2];
  slash.id = "a/b";
  ProblemResult underscore = slash;
  underscore.id = "a_b";
  ProblemResult numbered = slash;
  numbered.id = "a/b#2";  // takes the name the second "a_b" would get first
  ProblemResult dot = slash;
  dot.id = "..";
  write_run(dir / "r.h5", dir / "t.txt", {underscore, numbered, slash, dot}, 1.0);
  const json problems = read_with_h5py(dir, dir / "r.h5")["problems"];
  ASSERT_EQ(problems.size(), 4u) << problems.dump();
  std::vector<std::string> ids;
  for (const auto& [name, problem] : problems.items())
    ids.push_back(problem["attributes"]["id"]["string"]);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"..", "a/b", "a/b#2", "a_b"}));
  EXPECT_EQ(problems["a_b"]["attributes"]["id"]["string"], "a_b");
  EXPECT_EQ(problems["a_b#2"]["attributes"]["id"]["string"], "a/b#2");
  EXPECT_EQ(problems["a_b#3"]["attributes"]["id"]["string"], "a/b");
  EXPECT_EQ(problems["_.."]["attributes"]["id"]["string"], "..");
}

TEST(Results, TranscriptHasAHeaderAndAnswerPerProblem) {
  TempDir dir;
  const std::vector<ProblemResult> problems = sample_problems();
  write_run(dir / "r.h5", dir / "t.txt", problems, 4.0);
  const std::string text = testing::read_file(dir / "t.txt");
  const std::string expected =
      "=== problem gsm8k.jsonl:17 ===\n"
      "[Alice] Ответ: 48 + 24 🚀\n[Bob] \\boxed{72}\n"
      "=== answer: 72 (reference 72, correct); stop: answer; 7 tokens in 1.25 s ===\n\n"
      "=== problem math/algebra/3 ===\n"
      "[Alice] x = -2\n"
      "=== answer: -2 (reference 2, wrong); stop: budget; 2 tokens in 0.5 s ===\n\n"
      "=== problem free:prompt ===\n"
      "[Alice] keys in shared rows\n"
      "=== answer: (none); stop: eos; 5 tokens in 0.25 s ===\n\n";
  EXPECT_EQ(text, expected);
}

// The documented layout as HDF5's own tool prints it.
TEST(Results, H5dumpShowsTheDocumentedLayout) {
  if (testing::run_command("command -v h5dump >/dev/null").exit_code != 0)
    GTEST_SKIP() << "h5dump is absent: apt-get install hdf5-tools";
  TempDir dir;
  write_run(dir / "r.h5", dir / "t.txt", sample_problems(), 4.0);
  const CommandResult dump = testing::run_command("h5dump -H '" + (dir / "r.h5") + "'");
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  const std::string& text = dump.output;
  for (const char* needle : {"GROUP \"/\"",
                             "ATTRIBUTE \"config\"",
                             "ATTRIBUTE \"hogwild_version\"",
                             "ATTRIBUTE \"accuracy\"",
                             "GROUP \"problems\"",
                             "GROUP \"gsm8k.jsonl:17\"",
                             "GROUP \"math_algebra_3\"",
                             "GROUP \"free:prompt\"",
                             "GROUP \"workers\"",
                             "GROUP \"Alice\"",
                             "DATASET \"tokens\"",
                             "DATASET \"text\"",
                             "DATASET \"steps\"",
                             "DATASET \"transcript\"",
                             "H5T_COMPOUND",
                             "H5T_STD_I32LE \"finished_pass\";",
                             "H5T_IEEE_F64LE \"seconds\";",
                             "CSET H5T_CSET_UTF8",
                             "STRSIZE H5T_VARIABLE",
                             "DATASPACE  SCALAR",
                             "DATASPACE  SIMPLE { ( 4 ) / ( 4 ) }",
                             "DATASPACE  SIMPLE { ( 0 ) / ( 0 ) }"})
    EXPECT_NE(text.find(needle), std::string::npos) << "missing " << needle << " in:\n" << text;
  // The first DATATYPE after an object's header is that object's type.
  const auto type_of = [&](const std::string& header) {
    const size_t start = text.find(header);
    if (start == std::string::npos) return std::string("<no ") + header + ">";
    std::istringstream rest(text.substr(text.find("DATATYPE", start)));
    std::string keyword;
    std::string type;
    rest >> keyword >> type;
    return type;
  };
  EXPECT_EQ(type_of("ATTRIBUTE \"workers\""), "H5T_STD_I64LE");
  EXPECT_EQ(type_of("ATTRIBUTE \"accuracy\""), "H5T_IEEE_F64LE");
  EXPECT_EQ(type_of("ATTRIBUTE \"config\""), "H5T_STRING");
  EXPECT_EQ(type_of("ATTRIBUTE \"correct\""), "H5T_STD_I8LE");
  EXPECT_EQ(type_of("ATTRIBUTE \"index\""), "H5T_STD_I64LE");
  EXPECT_EQ(type_of("ATTRIBUTE \"seconds\""), "H5T_IEEE_F64LE");
  EXPECT_EQ(type_of("DATASET \"tokens\""), "H5T_STD_I32LE");
  EXPECT_EQ(type_of("DATASET \"text\""), "H5T_STRING");
  EXPECT_EQ(type_of("DATASET \"transcript\""), "H5T_STRING");
  EXPECT_EQ(type_of("DATASET \"steps\""), "H5T_COMPOUND");
}

// Disk full. tests/io/disk_full.sh runs these on a small tmpfs of their own (HOGWILD_SMALL_FS
// names it); elsewhere they skip. A filler file leaves `free_bytes` free, so the failure comes
// where the test wants it: mid-run, or at the very first write.
class DiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* small = std::getenv("HOGWILD_SMALL_FS");
    if (small == nullptr)
      GTEST_SKIP() << "HOGWILD_SMALL_FS is not set: tests/io/disk_full.sh mounts a small tmpfs "
                      "and runs these tests there";
    folder_ = std::string(small) + "/results";
    std::filesystem::create_directories(folder_);
  }
  void TearDown() override {
    if (folder_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }
  // Fills the file system up to `free_bytes` left.
  void leave_free(uint64_t free_bytes) {
    struct statvfs fs {};
    ASSERT_EQ(statvfs(folder_.c_str(), &fs), 0);
    const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    ASSERT_GT(available, free_bytes) << "the small file system is already fuller than wanted";
    std::ofstream filler(folder_ + "/filler", std::ios::binary);
    const std::string chunk(4096, 'x');
    for (uint64_t left = available - free_bytes; left > 0;) {
      const auto count = static_cast<std::streamsize>(std::min<uint64_t>(left, chunk.size()));
      filler.write(chunk.data(), count);
      left -= static_cast<uint64_t>(count);
    }
    filler.close();
    ASSERT_TRUE(filler.good()) << "could not write the filler";
  }
  // A problem of about 16 KiB (4000 tokens).
  static ProblemResult big_problem(int index) {
    ProblemResult problem = sample_problems()[0];
    problem.id = "big-" + std::to_string(index);
    problem.workers[0].tokens.assign(4000, index);
    return problem;
  }
  static void expect_disk_full_message(const std::string& message) {
    EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "more than one line: " << message;
  }

  std::string folder_;
};

TEST_F(DiskFull, MidRunIsOneLineAndEveryFinishedProblemStaysReadable) {
  REQUIRE_H5PY();
  TempDir scripts;  // on the ordinary /tmp: the reader needs no room on the full file system
  leave_free(96 * 1024);
  const std::string hdf5_path = folder_ + "/r.h5";
  const std::string transcript_path = folder_ + "/r.txt";
  std::vector<ProblemResult> written;
  std::string message;
  ::testing::internal::CaptureStderr();
  {
    ResultsWriter writer(hdf5_path, transcript_path, sample_run());
    for (int index = 0; index < 100 && message.empty(); ++index) {
      try {
        writer.write(big_problem(index));
        written.push_back(big_problem(index));
      } catch (const Error& error) {
        message = error.what();
      }
    }
  }  // the destructor closes a file whose last write failed: no crash, no HDF5 stack
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "HDF5 printed its error stack";
  ASSERT_FALSE(message.empty()) << "100 problems of 16 KiB fitted in 96 KiB";
  expect_disk_full_message(message);
  EXPECT_NE(message.find(hdf5_path), std::string::npos) << message;
  ASSERT_GE(written.size(), 1u) << "the test wants the disk to fill after the first problem";

  std::filesystem::remove(folder_ + "/filler");
  const json stored = read_with_h5py(scripts, hdf5_path);
  ASSERT_TRUE(stored.contains("problems")) << stored.dump();
  EXPECT_EQ(stored["problems"].size(), written.size()) << "a half-written problem is visible";
  for (size_t i = 0; i < written.size(); ++i) {
    ASSERT_TRUE(stored["problems"].contains(written[i].id)) << written[i].id;
    const json& tokens = stored["problems"][written[i].id]["workers"]["Alice"]["tokens"];
    EXPECT_EQ(tokens.get<std::vector<int32_t>>(), written[i].workers[0].tokens) << written[i].id;
  }
  const std::string transcript = testing::read_file(transcript_path);
  for (const ProblemResult& problem : written)
    EXPECT_NE(transcript.find("=== problem " + problem.id + " ==="), std::string::npos);
}

TEST_F(DiskFull, AtTheFirstProblemIsOneLineAndLeavesNoFile) {
  leave_free(8 * 1024);
  const std::string hdf5_path = folder_ + "/r.h5";
  std::string message;
  ::testing::internal::CaptureStderr();
  try {
    ResultsWriter writer(hdf5_path, folder_ + "/r.txt", sample_run());
    for (int index = 0; index < 100; ++index) writer.write(big_problem(index));
  } catch (const Error& error) {
    message = error.what();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "HDF5 printed its error stack";
  expect_disk_full_message(message);
  // Nothing was finished: no results file, and no staged file left behind.
  for (const auto& entry : std::filesystem::directory_iterator(folder_))
    EXPECT_EQ(entry.path().filename(), "filler") << "left behind: " << entry.path();
}

// Text from data is stored whole: a NUL inside a question (JSONL "\u0000"), a reference, a
// worker's text or the transcript survives in the HDF5 file and the transcript file, while text
// without one keeps its variable-length type.
TEST(Results, NulInsideTextIsKeptWhole) {
  REQUIRE_H5PY();
  TempDir dir;
  ProblemResult problem;
  problem.id = "nul.jsonl:1";
  problem.question = std::string("before") + '\0' + "after";
  problem.reference_answer = std::string("4") + '\0' + "2";
  problem.answer = "4";
  problem.correct = 0;
  problem.stop_reason = "answer";
  problem.workers = {{"Alice", {1, 0, 2}, std::string("a") + '\0' + "b"}};
  problem.transcript = "Question: " + problem.question + "\n\na" + std::string(1, '\0') + "b\n";
  write_run(dir / "r.h5", dir / "r.txt", {problem}, 1.0);

  const json stored = read_with_h5py(dir, dir / "r.h5");
  ASSERT_TRUE(stored.contains("problems")) << stored.dump();
  const json& group = stored["problems"]["nul.jsonl:1"];
  const json& attributes = group["attributes"];
  EXPECT_EQ(attributes["question"]["string"].get<std::string>(), problem.question);
  EXPECT_EQ(attributes["question"]["string"].get<std::string>().size(), 12u);
  EXPECT_TRUE(attributes["question"]["utf8"].get<bool>());
  EXPECT_EQ(attributes["reference_answer"]["string"].get<std::string>(), problem.reference_answer);
  expect_string(attributes["answer"], "4", "answer");  // no NUL: variable-length as always
  expect_string(attributes["id"], problem.id, "id");
  EXPECT_EQ(group["workers"]["Alice"]["text"]["string"].get<std::string>(),
            problem.workers[0].text);
  EXPECT_EQ(group["transcript"]["string"].get<std::string>(), problem.transcript);

  const std::string transcript = testing::read_file(dir / "r.txt");
  EXPECT_NE(transcript.find(problem.transcript), std::string::npos) << transcript;
  EXPECT_NE(transcript.find("(reference " + problem.reference_answer), std::string::npos);
}

// record_logprobs: per worker, logprobs [n] float32 and top_ids / top_logprobs [n, K] aligned
// with tokens (NaN and -1 kept for forced tokens), read back with h5py; a worker with no tokens
// gets empty [0] / [0, K] datasets; without logprobs (top_k 0) none of the three exists; records
// out of line with the tokens are refused naming the worker.
constexpr const char* kLogprobsScript = R"PY(
import h5py, json, math, sys

def clean(values):
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]

out = {}
with h5py.File(sys.argv[1], "r") as f:
    for name, worker in f["problems/p/workers"].items():
        entry = {"members": sorted(worker.keys())}
        if "logprobs" in worker:
            entry["logprobs"] = clean(worker["logprobs"][()].tolist())
            entry["logprobs_dtype"] = worker["logprobs"].dtype.str
            entry["top_ids_shape"] = list(worker["top_ids"].shape)
            entry["top_ids_dtype"] = worker["top_ids"].dtype.str
            entry["top_ids"] = worker["top_ids"][()].tolist()
            entry["top_logprobs_shape"] = list(worker["top_logprobs"].shape)
            entry["top_logprobs_dtype"] = worker["top_logprobs"].dtype.str
            entry["top_logprobs"] = [clean(row) for row in worker["top_logprobs"][()].tolist()]
        out[name] = entry
print(json.dumps(out))
)PY";

TEST(Results, LogprobsAreStoredAlignedWithTheTokens) {
  REQUIRE_H5PY();
  TempDir dir;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ProblemResult problem;
  problem.id = "p";
  problem.stop_reason = "budget";
  WorkerRecord alice;
  alice.name = "Alice";
  alice.tokens = {5, 6, 9};  // 5 and 6 forced (a step prefix), 9 sampled
  alice.text = "abc";
  alice.top_k = 2;
  alice.logprobs = {nan, nan, -0.25f};
  alice.top_ids = {-1, -1, -1, -1, 9, 3};
  alice.top_logprobs = {nan, nan, nan, nan, -0.25f, -1.5f};
  WorkerRecord bob;
  bob.name = "Bob";
  bob.top_k = 2;
  WorkerRecord carol;  // recorded without logprobs
  carol.name = "Carol";
  carol.tokens = {1};
  carol.text = "x";
  problem.workers = {alice, bob, carol};
  write_run(dir / "r.h5", dir / "r.txt", {problem}, 1.0);

  const std::string script = dir / "read_logprobs.py";
  std::ofstream(script) << kLogprobsScript;
  const CommandResult read =
      testing::run_command(testing::python() + " " + script + " '" + (dir / "r.h5") + "'");
  ASSERT_EQ(read.exit_code, 0) << read.output;
  const json stored = json::parse(read.output);
  const json& a = stored["Alice"];
  EXPECT_EQ(a["members"], json({"logprobs", "text", "tokens", "top_ids", "top_logprobs"}));
  EXPECT_EQ(a["logprobs"], json::parse("[null, null, -0.25]"));
  EXPECT_EQ(a["logprobs_dtype"], "<f4");
  EXPECT_EQ(a["top_ids_shape"], json({3, 2}));
  EXPECT_EQ(a["top_ids_dtype"], "<i4");
  EXPECT_EQ(a["top_ids"], json::parse("[[-1, -1], [-1, -1], [9, 3]]"));
  EXPECT_EQ(a["top_logprobs_shape"], json({3, 2}));
  EXPECT_EQ(a["top_logprobs_dtype"], "<f4");
  EXPECT_EQ(a["top_logprobs"], json::parse("[[null, null], [null, null], [-0.25, -1.5]]"));
  EXPECT_EQ(stored["Bob"]["logprobs"], json::array());
  EXPECT_EQ(stored["Bob"]["top_ids_shape"], json({0, 2}));
  EXPECT_EQ(stored["Bob"]["top_logprobs_shape"], json({0, 2}));
  EXPECT_EQ(stored["Carol"]["members"], json({"text", "tokens"}));

  // Out of line with the tokens: refused, naming the worker, and no file left behind.
  problem.workers = {alice};
  problem.workers[0].top_ids.pop_back();
  try {
    ResultsWriter writer(dir / "bad.h5", dir / "bad.txt", sample_run());
    writer.write(problem);
    ADD_FAILURE() << "misaligned logprobs were written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("worker 'Alice': 3 logprobs and 5 top ids (top_k 2) for "
                                         "3 tokens"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.h5"));
}

}  // namespace
}  // namespace hogwild
