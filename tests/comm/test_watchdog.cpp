// The watchdog without MPI: its message names the ranks that have not reached the collective
// (from their answers, or their silence), never the rank that waits; its thread ends the process
// after the timeout, and not when the collective ends while it asks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "comm/monitored_communicator.h"

namespace hogwild {
namespace {

// Answers as scripted; counts the calls.
class FakeExchange final : public ProgressExchange {
 public:
  std::vector<std::optional<ProgressReport>> answers;
  std::function<void()> while_asking;
  std::atomic<int> served{0};
  std::atomic<int> asked{0};

  void serve(const ProgressReport&) override { ++served; }
  std::vector<std::optional<ProgressReport>> ask(const std::vector<int>& ranks, double,
                                                 const std::function<ProgressReport()>&) override {
    ++asked;
    if (while_asking) while_asking();
    EXPECT_EQ(ranks.size(), answers.size());
    return answers;
  }
};

// Rank `rank`'s answer: on axis 0 ("workers") it entered `entered` collectives; it may be
// waiting in a barrier on axis 1 ("tensor").
ProgressReport answer(int rank, uint64_t entered, bool waits_on_tensor = false) {
  ProgressReport report;
  report.world_rank = rank;
  report.axes = 2;
  report.entered[0] = entered;
  if (waits_on_tensor) {
    report.entered[1] = 9;
    report.current[1] = static_cast<int32_t>(CollectiveKind::Barrier);
    report.waited[1] = 42;
  }
  return report;
}

// Rank 0 waits in all_gather #5 on the workers axis of ranks 0..3.
struct Stalled {
  Watchdog watchdog{0, 5.0, nullptr};
  ProgressReport mine;
  Stalled() {
    watchdog.add_axis("workers", {0, 1, 2, 3});
    watchdog.add_axis("tensor", {0});
    for (int i = 0; i < 5; ++i) watchdog.enter(0, CollectiveKind::AllGather);
    mine = watchdog.report();
  }
};

TEST(Watchdog, ReportCountsCollectivesAndTheOneInFlight) {
  Watchdog watchdog(2, 0, nullptr);
  EXPECT_EQ(watchdog.add_axis("world", {0, 1, 2}), 0);
  EXPECT_EQ(watchdog.add_axis("tensor", {2}), 1);
  watchdog.enter(0, CollectiveKind::Broadcast);
  watchdog.leave(0);
  watchdog.enter(0, CollectiveKind::AllGather);
  const ProgressReport report = watchdog.report();
  EXPECT_EQ(report.world_rank, 2);
  EXPECT_EQ(report.axes, 2);
  EXPECT_EQ(report.entered[0], 2u);
  EXPECT_EQ(report.current[0], static_cast<int32_t>(CollectiveKind::AllGather));
  EXPECT_EQ(report.entered[1], 0u);
  EXPECT_EQ(report.current[1], -1);
  watchdog.leave(0);
  EXPECT_EQ(watchdog.report().current[0], -1);
}

TEST(Watchdog, NamesTheSilentRankNotTheWaitingOnes) {
  Stalled s;
  // Rank 1 is stopped (no answer); ranks 2 and 3 reached all_gather #5 and wait like rank 0.
  const std::string message =
      s.watchdog.stall_message(0, s.mine, {1, 2, 3}, {std::nullopt, answer(2, 5), answer(3, 5)});
  EXPECT_NE(message.find("rank 0: all_gather #5 on the workers axis waited"), std::string::npos)
      << message;
  EXPECT_NE(message.find("stuck: rank 1 does not answer (stopped or lost); aborting the job"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("rank 2"), std::string::npos) << message;
  EXPECT_EQ(message.find("rank 3"), std::string::npos) << message;
}

TEST(Watchdog, NamesTheRanksBehindAndWhatTheyDo) {
  Stalled s;
  // Rank 1 computes (4 entered: one behind); rank 3 waits in a tensor barrier; rank 2 is there.
  const std::string message = s.watchdog.stall_message(
      0, s.mine, {1, 2, 3}, {answer(1, 4), answer(2, 5), answer(3, 4, true)});
  EXPECT_NE(message.find("stuck: rank 1 has not reached it (it is computing, 1 collective(s) "
                         "behind on this axis); rank 3 has not reached it (it waits in barrier "
                         "#9 on the tensor axis for 42 s)"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("rank 2"), std::string::npos) << message;
}

TEST(Watchdog, SaysWhenNobodyCouldBeAskedOrEveryoneIsThere) {
  Stalled s;
  const std::string unasked = s.watchdog.stall_message(0, s.mine, {1, 2, 3}, {});
  EXPECT_NE(unasked.find("could not be asked"), std::string::npos) << unasked;
  EXPECT_NE(unasked.find("one of ranks 1, 2, 3 is lost or stuck"), std::string::npos) << unasked;
  const std::string all_there =
      s.watchdog.stall_message(0, s.mine, {1, 2, 3}, {answer(1, 5), answer(2, 5), answer(3, 5)});
  EXPECT_EQ(all_there.find("stuck:"), std::string::npos) << all_there;
  EXPECT_NE(all_there.find("reached it too"), std::string::npos) << all_there;
}

// Rank 1 waits in an all_gather of ranks 0..2 that rank 2 never joins (and never answers about).
void wait_for_a_silent_rank() {
  auto exchange = std::make_unique<FakeExchange>();
  exchange->answers = {answer(0, 1), std::nullopt};
  Watchdog watchdog(1, 0.3, std::move(exchange));
  watchdog.add_axis("workers", {0, 1, 2});
  watchdog.start();
  watchdog.enter(0, CollectiveKind::AllGather);
  std::this_thread::sleep_for(std::chrono::seconds(30));
  std::_Exit(0);  // not reached when the watchdog works
}

// The thread itself: after the timeout it asks the axis's other members and exits with code 3,
// printing the stuck rank (a death test: the process that exits is a child).
TEST(WatchdogDeathTest, EndsTheProcessNamingTheStuckRank) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(wait_for_a_silent_rank(), testing::ExitedWithCode(3),
              "rank 1: all_gather #1 on the workers axis waited [0-9]+ s \\(timeout 0.3 s\\); "
              "stuck: rank 2 does not answer");
}

TEST(Watchdog, ServesWhileIdleAndSparesACollectiveThatEndsWhileItAsks) {
  auto owned = std::make_unique<FakeExchange>();
  FakeExchange& exchange = *owned;
  exchange.answers = {std::nullopt};
  Watchdog watchdog(0, 0.2, std::move(owned));
  watchdog.add_axis("workers", {0, 1});
  std::atomic<bool> asking{false}, left{false};
  exchange.while_asking = [&] {
    asking = true;
    while (!left) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  watchdog.start();
  watchdog.enter(0, CollectiveKind::AllGather);
  while (!asking) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  watchdog.leave(0);  // the late rank arrived: the collective is over
  left = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(exchange.asked.load(), 1);  // and it did not exit (we are still here)
  EXPECT_GT(exchange.served.load(), 0);
}

}  // namespace
}  // namespace hogwild
