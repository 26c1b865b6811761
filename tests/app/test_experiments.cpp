// The experiment layer end to end on the demo model (issue 12), with `weights: f32` so that a
// problem's tokens do not depend on which problems share its batches:
//  - a checkpoint's answer equals the final answer of a separate run with that budget, and the
//    checkpoints leave the run's own tokens as they were;
//  - a run killed (SIGKILL) at random moments and rerun ends with the content of an uninterrupted
//    run, and a finished run rerun computes nothing;
//  - an independent worker's tokens and log-probabilities do not depend on the other workers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "test_support.h"

namespace hogwild {
namespace {

using nlohmann::json;
using testing::CommandResult;
using testing::TempDir;

CommandResult hogwild(const std::string& arguments) {
  return testing::run_command(std::string(HOGWILD_CLI) + " " + arguments + " </dev/null 2>&1");
}

std::string demo_config() { return testing::source_dir() + "/configs/demo.yaml"; }

json read_results(const std::string& path) {
  const CommandResult dump = testing::run_command(testing::python() + " " + testing::source_dir() +
                                                  "/tests/app/h5_summary.py " + path + " 2>&1");
  EXPECT_EQ(dump.exit_code, 0) << dump.output;
  return dump.exit_code == 0 ? json::parse(dump.output) : json::object();
}

#define REQUIRE_PREREQUISITES()                                                       \
  do {                                                                                \
    HOGWILD_REQUIRE_DEMO_MODEL();                                                     \
    if (testing::run_command(testing::python() + " -c 'import h5py'").exit_code != 0) \
      GTEST_SKIP() << "h5py missing: run scripts/setup.sh";                           \
  } while (0)

// Everything a problem's content is, without the times and the finishing order.
json content(const json& problem) {
  json kept = {{"workers", problem["workers"]}, {"transcript", problem["transcript"]}};
  for (const char* key : {"answer", "answer_source", "answer_worker", "correct", "stop_reason",
                          "forward_passes", "generated_tokens", "question", "reference_answer"})
    kept[key] = problem["attrs"][key];
  json steps = json::array();
  for (json step : problem["steps"]) {
    step.erase("seconds");
    steps.push_back(step);
  }
  kept["steps"] = steps;
  if (problem.contains("checkpoints")) {
    json checkpoints = json::array();
    for (json row : problem["checkpoints"]) {
      row.erase("seconds");
      checkpoints.push_back(row);
    }
    kept["checkpoints"] = checkpoints;
  }
  return kept;
}

json contents(const json& results) {
  json all = json::object();
  for (const auto& [name, problem] : results["problems"].items()) all[name] = content(problem);
  return all;
}

const std::string kF32 = " weights=f32 --quiet";

TEST(Checkpoints, EachAnswerIsThatOfARunWithThatBudget) {
  REQUIRE_PREREQUISITES();
  struct Case {
    const char* overrides;
  };
  for (const char* overrides :
       {" layout=combined", " layout=interleaved prompts.finisher_mode=in_cache"}) {
    SCOPED_TRACE(overrides);
    TempDir dir;
    const std::string base = "run " + demo_config() + kF32 + overrides;
    const CommandResult forked =
        hogwild(base + " budget=30 checkpoints=[10,20,30] output=" + (dir / "ck.h5"));
    ASSERT_EQ(forked.exit_code, 0) << forked.output;
    const CommandResult plain = hogwild(base + " budget=30 output=" + (dir / "plain.h5"));
    ASSERT_EQ(plain.exit_code, 0) << plain.output;
    const json with = read_results(dir / "ck.h5")["problems"]["inline-0"];
    const json without = read_results(dir / "plain.h5")["problems"]["inline-0"];
    EXPECT_EQ(with["workers"], without["workers"]) << "the checkpoints changed the run's tokens";
    EXPECT_EQ(with["attrs"]["answer"], without["attrs"]["answer"]);
    ASSERT_EQ(with["checkpoints"].size(), 3u);
    EXPECT_EQ(with["checkpoints"][2]["answer"], without["attrs"]["answer"]);
    for (int budget : {10, 20}) {
      const std::string out = dir / ("b" + std::to_string(budget) + ".h5");
      const CommandResult separate =
          hogwild(base + " budget=" + std::to_string(budget) + " output=" + out);
      ASSERT_EQ(separate.exit_code, 0) << separate.output;
      const json alone = read_results(out)["problems"]["inline-0"]["attrs"];
      const json& row = with["checkpoints"][budget / 10 - 1];
      EXPECT_EQ(row["checkpoint"], budget);
      EXPECT_EQ(row["answer"], alone["answer"]) << "checkpoint " << budget;
      EXPECT_EQ(row["correct"], alone["correct"]) << "checkpoint " << budget;
      EXPECT_EQ(row["forward_passes"], alone["forward_passes"]) << "checkpoint " << budget;
    }
  }
}

TEST(Checkpoints, BadListsAreOneLineErrors) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  for (const auto& [value, expected] : std::vector<std::pair<std::string, std::string>>{
           {"[10,5]", "checkpoints[1] must be more than the checkpoint before it (10)"},
           {"[10,200]", "checkpoints has 200, more than the budget (128)"},
           {"[]", "checkpoints must be a non-empty list"},
           {"[0]", "checkpoints[0] must be in [1, 1000000000]"}}) {
    const CommandResult run =
        hogwild("run " + demo_config() + " checkpoints=" + value + " output=/nonexistent/never.h5");
    EXPECT_NE(run.exit_code, 0) << value;
    EXPECT_NE(run.output.find(expected), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find('\n'), run.output.size() - 1) << "one line: " << run.output;
  }
}

// Four problems from a JSONL file, two at a time: the kills land between, during and after them.
std::string four_problems(const TempDir& dir) {
  std::ofstream(dir / "four.jsonl")
      << R"({"question": "What is 2+3?", "answer": "#### 5"})"
      << "\n"
      << R"({"question": "What is 7*6?", "answer": "#### 42"})"
      << "\n"
      << R"({"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "#### 7"})"
      << "\n"
      << R"({"question": "What is 10-4?", "answer": "#### 6"})"
      << "\n";
  const std::string path = dir / "four.yaml";
  std::ofstream(path) << "model: " << testing::demo_model_path() << "\n"
                      << "workers: 2\nbudget: 16\nbatch_problems: 2\nweights: f32\n"
                      << "checkpoints: [8, 16]\n"
                      << "problems: {file: four.jsonl}\n";
  return path;
}

TEST(Resume, KilledRunsEndWithTheUninterruptedContent) {
  REQUIRE_PREREQUISITES();
  TempDir dir;
  const std::string config = four_problems(dir);
  const CommandResult whole = hogwild("run " + config + " --quiet output=" + (dir / "whole.h5"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const json expected = contents(read_results(dir / "whole.h5"));
  ASSERT_EQ(expected.size(), 4u);

  // Kills (SIGKILL) at moments chosen by progress: during the first load, then a random time
  // after the 1st, 2nd and 3rd problem is on disk (0 s: while the index is being replaced), then
  // a run left to finish.
  std::mt19937 random(12345);
  std::uniform_real_distribution<double> delay(0.0, 1.5);
  const std::string run = std::string(HOGWILD_CLI) + " run " + config +
                          " --quiet output=" + (dir / "r.h5") + " </dev/null >/dev/null 2>&1";
  const std::string parts = dir / ".r.h5.parts";
  int kills = 0;
  for (const int finished : {0, 1, 2, 3}) {
    const double seconds = finished == 2 ? 0.0 : delay(random);
    const std::string script = run + " & pid=$!; while kill -0 $pid 2>/dev/null && [ $(ls " +
                               parts + " 2>/dev/null | grep -c '^[0-9]') -lt " +
                               std::to_string(finished) + " ]; do sleep 0.02; done; sleep " +
                               std::to_string(seconds) +
                               "; kill -9 $pid 2>/dev/null && echo killed; wait $pid; true";
    std::ofstream(dir / "kill.sh") << script << "\n";
    const CommandResult attempt = testing::run_command("bash " + (dir / "kill.sh"));
    if (attempt.output.find("killed") != std::string::npos) ++kills;
    // Whatever is on disk between kills reads (the index, or the packed file).
    if (std::filesystem::exists(dir / "r.h5")) {
      EXPECT_FALSE(read_results(dir / "r.h5").empty());
    }
  }
  const CommandResult last = testing::run_command(run);
  ASSERT_EQ(last.exit_code, 0) << last.output;
  EXPECT_GE(kills, 3) << "too few runs were killed: the test proved little";
  EXPECT_EQ(contents(read_results(dir / "r.h5")), expected);
  EXPECT_FALSE(std::filesystem::exists(dir / ".r.h5.parts")) << "the parts were packed";
  const std::string transcript = testing::read_file(dir / "r.txt");
  for (const auto& [name, problem] : expected.items())
    EXPECT_EQ(transcript.find("=== problem " + name + " ==="),
              transcript.rfind("=== problem " + name + " ==="))
        << name << " appears once in the transcript";

  // Done: a rerun loads nothing and changes nothing but the parts folder a kill right after the
  // packed file's rename leaves (made here by hand: the random kills land there only by chance).
  const std::string packed = testing::read_file(dir / "r.h5");
  std::filesystem::create_directories(dir / ".r.h5.parts");
  std::ofstream(dir / ".r.h5.parts/000003.h5") << "a part whose removal was cut short";
  const CommandResult again = hogwild("run " + config + " output=" + (dir / "r.h5"));
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("all 4 problems were already finished"), std::string::npos)
      << again.output;
  EXPECT_EQ(testing::read_file(dir / "r.h5"), packed);
  EXPECT_FALSE(std::filesystem::exists(dir / ".r.h5.parts")) << "the leftover parts were removed";
}

TEST(Resume, MoreProblemsExtendAFinishedRun) {
  REQUIRE_PREREQUISITES();
  TempDir dir;
  const std::string config = four_problems(dir);
  const std::string out = " --quiet output=" + (dir / "r.h5");
  ASSERT_EQ(hogwild("run " + config + out + " problems.limit=2").exit_code, 0);
  // problems.limit is not part of the fingerprint: the same run, two more problems.
  const CommandResult more = hogwild("run " + config + out);
  ASSERT_EQ(more.exit_code, 0) << more.output;
  EXPECT_NE(more.output.find("2 problems were already finished"), std::string::npos) << more.output;
  ASSERT_EQ(hogwild("run " + config + " --quiet output=" + (dir / "whole.h5")).exit_code, 0);
  EXPECT_EQ(contents(read_results(dir / "r.h5")), contents(read_results(dir / "whole.h5")));
}

// method: independent: each worker sees the problem and its own text only, so worker 0 writes
// the same tokens with the same log-probabilities however many others write beside it.
TEST(Methods, AnIndependentWorkerIgnoresTheOthers) {
  REQUIRE_PREREQUISITES();
  TempDir dir;
  const std::string base =
      "run " + demo_config() + kF32 +
      " method=independent budget=24 record_logprobs=3 sampling.temperature=0.8"
      " seed=3 names=";
  ASSERT_EQ(hogwild(base + "[Alice] workers=1 output=" + (dir / "one.h5")).exit_code, 0);
  const CommandResult three =
      hogwild(base + "[Alice,Bob,Carol] workers=3 output=" + (dir / "three.h5"));
  ASSERT_EQ(three.exit_code, 0) << three.output;
  const json one = read_results(dir / "one.h5")["problems"]["inline-0"]["workers"]["Alice"];
  const json many = read_results(dir / "three.h5")["problems"]["inline-0"];
  const json& alice = many["workers"]["Alice"];
  ASSERT_FALSE(one["tokens"].empty());
  // Worker 0's stream is the same in both runs; its text may end earlier in the team (another
  // worker's answer can stop it first), so compare what both wrote.
  const size_t shared = std::min(one["tokens"].size(), alice["tokens"].size());
  ASSERT_GT(shared, 0u);
  for (size_t i = 0; i < shared; ++i) {
    EXPECT_EQ(one["tokens"][i], alice["tokens"][i]) << "token " << i;
    EXPECT_EQ(one["logprobs"][i], alice["logprobs"][i]) << "token " << i;
  }
  EXPECT_NE(many["workers"]["Bob"]["tokens"], alice["tokens"]) << "the workers sample apart";
}

TEST(Methods, ContradictionsAreOneLineErrors) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  for (const auto& [overrides, expected] : std::vector<std::pair<std::string, std::string>>{
           {" method=single workers=4", "workers must be 1 with method single, got 4"},
           {" method=self_consistency",
            "sampling.temperature must be above 0 with method "
            "self_consistency"},
           {" vote=true", "vote applies to method independent"},
           {" method=bogus", "method must be hogwild, single, independent or self_consistency"}}) {
    const CommandResult run =
        hogwild("run " + demo_config() + overrides + " output=/nonexistent/never.h5");
    EXPECT_NE(run.exit_code, 0) << overrides;
    EXPECT_NE(run.output.find(expected), std::string::npos) << run.output;
  }
}

// ---- hogwild sweep ----

std::string write_sweep(const TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir / name;
  std::ofstream(path) << "base_config: " << demo_config() << "\n" << body;
  return path;
}

TEST(Sweep, BadInputIsOneLineNamingTheKeyBeforeAnyModel) {
  TempDir dir;
  const std::string out = "output: " + (dir / "out") + "\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {out + "grids:\n  workers: [1]\n", "unknown sweep key 'grids'"},
      {out + "grid:\n  workers: []\n", "grid.workers is an empty list"},
      {out + "grid:\n  worker: [1, 2]\n", "grid.worker is not a run key"},
      {out + "grid:\n  output: [a, b]\n", "grid.output cannot vary"},
      {out + "zip:\n  workers: [1, 2]\n  layout: [combined]\n",
       "zip.layout has 1 values but zip.workers has 2"},
      {out + "grid:\n  workers: [1, 2]\nzip:\n  workers: [3, 4]\n",
       "workers is varied twice (in grid and zip)"},
      {out + "zip:\n  method: [single, single]\n  workers: [1, 4]\n",
       "sweep run method=single,workers=4"},
      {out + "grid:\n  budget: [8]\n  checkpoints: [[4, 16]]\n", "more than the budget (8)"},
      {"grid:\n  workers: [1]\n", "output is required"},
  };
  for (const auto& [body, expected] : cases) {
    const CommandResult run = hogwild("sweep " + write_sweep(dir, "s.yaml", body));
    EXPECT_NE(run.exit_code, 0) << body;
    EXPECT_NE(run.output.find(expected), std::string::npos) << body << "\n" << run.output;
    EXPECT_EQ(run.output.find('\n'), run.output.size() - 1) << "one line: " << run.output;
  }
  const std::string grid = write_sweep(dir, "g.yaml", out + "grid:\n  workers: [1, 2]\n");
  const CommandResult both = hogwild("sweep " + grid + " workers=3");
  EXPECT_NE(both.output.find("workers is both overridden (workers=3) and varied in grid"),
            std::string::npos)
      << both.output;
  // 1001 runs: refused without --yes.
  std::string seeds = "seeds: [0";
  for (int s = 1; s <= 1000; ++s) seeds += ", " + std::to_string(s);
  const CommandResult many = hogwild("sweep " + write_sweep(dir, "m.yaml", out + seeds + "]\n"));
  EXPECT_NE(many.output.find("has 1001 runs, more than 1000: add --yes"), std::string::npos)
      << many.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "out")) << "nothing is written before the runs";
}

TEST(Sweep, RunsLoadTheModelOnceAndResumeWithoutComputing) {
  REQUIRE_PREREQUISITES();
  TempDir dir;
  const std::string sweep = write_sweep(
      dir, "s.yaml", "output: " + (dir / "out") + "\ngrid:\n  workers: [1, 2]\nseeds: [3]\n");
  const std::string args = " budget=8 weights=f32 --plain";
  const CommandResult first = hogwild("sweep " + sweep + args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("[sweep: 2 runs, 2 problems in all"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("model loaded 1 time]"), std::string::npos) << first.output;
  const std::string one = dir / "out/workers=1,seed=3.h5", two = dir / "out/workers=2,seed=3.h5";
  const json results = read_results(one);
  EXPECT_EQ(results["attrs"]["run_id"], "workers=1,seed=3");
  EXPECT_EQ(results["attrs"]["varied"], R"({"workers":"1","seed":"3"})");
  EXPECT_EQ(results["attrs"]["workers"], 1);
  EXPECT_EQ(read_results(two)["attrs"]["workers"], 2);

  // The same sweep again: nothing is loaded or computed, nothing changes.
  const std::string before = testing::read_file(two);
  const CommandResult again = hogwild("sweep " + sweep + args);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("2 runs (2 already finished)"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("model loaded 0 times"), std::string::npos) << again.output;
  EXPECT_EQ(testing::read_file(two), before);

  // Another sweep into the same folder is refused, naming the folder.
  const CommandResult other = hogwild("sweep " + sweep + args + " budget=9");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("was written by another sweep"), std::string::npos) << other.output;

  // The plots of a real sweep (when matplotlib is there).
  if (testing::run_command(testing::python() + " -c 'import matplotlib'").exit_code == 0) {
    const CommandResult plot =
        testing::run_command(testing::python() + " " + testing::source_dir() + "/scripts/plot.py " +
                             (dir / "out") + " --out " + (dir / "plots") + " 2>&1");
    EXPECT_EQ(plot.exit_code, 0) << plot.output;
    for (const char* png : {"accuracy_vs_budget.png", "throughput.png"})
      EXPECT_GT(std::filesystem::file_size(dir / (std::string("plots/") + png)), 1000u) << png;
  }
}

}  // namespace
}  // namespace hogwild
