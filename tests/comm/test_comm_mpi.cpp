// The MPI communicators and the rank grid, run under mpirun with 4 ranks (also valid for any
// world size): collectives against values every rank can compute itself.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "comm/rank_agreement.h"
#include "common/error.h"
#include "mpi_test_main.h"

namespace hogwild {
namespace {

// What rank r contributes at index i: distinct, non-integer, so a wrong order shows in rounding.
float contribution(int rank, size_t i) {
  return 0.1f * static_cast<float>(rank + 1) + 1e-3f * static_cast<float>(i) +
         1e7f * static_cast<float>(rank == 0);
}

TEST(MpiComm, AllReduceSumsInRankOrderOnEveryRank) {
  RankGrid grid = make_rank_grid(mpi_world_size(), 1);
  Communicator& comm = *grid.world;
  std::vector<float> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = contribution(comm.rank(), i);
  comm.all_reduce_sum(data.data(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    float expected = contribution(0, i);
    for (int r = 1; r < comm.size(); ++r) expected += contribution(r, i);
    ASSERT_EQ(data[i], expected) << "index " << i;  // bit for bit: the rank-order sum
  }
}

TEST(MpiComm, AllGatherConcatenatesByRank) {
  RankGrid grid = make_rank_grid(mpi_world_size(), 1);
  Communicator& comm = *grid.world;
  const int mine[3] = {comm.rank(), comm.rank() * 10, -comm.rank()};
  std::vector<int> all(3 * static_cast<size_t>(comm.size()));
  comm.all_gather(mine, all.data(), sizeof mine);
  for (int r = 0; r < comm.size(); ++r) {
    EXPECT_EQ(all[static_cast<size_t>(3 * r)], r);
    EXPECT_EQ(all[static_cast<size_t>(3 * r + 1)], 10 * r);
    EXPECT_EQ(all[static_cast<size_t>(3 * r + 2)], -r);
  }
  uint64_t seed = comm.rank() == 0 ? 0x1234567890ull : 0;
  comm.broadcast(&seed, sizeof seed, 0);
  EXPECT_EQ(seed, 0x1234567890ull);
  comm.barrier();
}

TEST(MpiComm, GridAxesJoinTheRightRanks) {
  const int world = mpi_world_size();
  for (int tensor = 1; tensor <= world; ++tensor) {
    if (world % tensor != 0) continue;
    const int groups = world / tensor;
    RankGrid grid = make_rank_grid(tensor, groups);
    EXPECT_EQ(grid.tensor->size(), tensor);
    EXPECT_EQ(grid.workers->size(), groups);
    EXPECT_EQ(grid.tensor->rank(), grid.tensor_rank);
    EXPECT_EQ(grid.workers->rank(), grid.group);
    // Ranks of my tensor group are world ranks group*T .. group*T+T-1.
    std::vector<int> members(static_cast<size_t>(tensor));
    grid.tensor->all_gather(&grid.world_rank, members.data(), sizeof(int));
    for (int i = 0; i < tensor; ++i)
      EXPECT_EQ(members[static_cast<size_t>(i)], grid.group * tensor + i);
    // Ranks holding my head slice: tensor_rank, tensor_rank + T, …
    std::vector<int> peers(static_cast<size_t>(groups));
    grid.workers->all_gather(&grid.world_rank, peers.data(), sizeof(int));
    for (int g = 0; g < groups; ++g)
      EXPECT_EQ(peers[static_cast<size_t>(g)], g * tensor + grid.tensor_rank);
  }
}

TEST(MpiComm, GridThatDoesNotMatchTheWorldIsRefused) {
  try {
    make_rank_grid(mpi_world_size() + 1, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("but the job has"), std::string::npos) << e.what();
  }
}

// What an MPI call returning MPI_ERR_ROOT looks like (a real bad root could hang or abort some
// MPI builds; the status is what the check family sees either way).
int pretend_broadcast_with_bad_root() { return MPI_ERR_ROOT; }

TEST(MpiComm, AFailedCallNamesHostPlaceCallMpiErrorAndRank) {
  int line = 0;
  try {
    line = __LINE__ + 1;
    HOGWILD_MPI_CHECK(pretend_broadcast_with_bad_root());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(host_name() + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("test_comm_mpi.cpp:" + std::to_string(line) +
                           ": pretend_broadcast_with_bad_root() failed: "),
              std::string::npos)
        << message;
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    MPI_Error_string(MPI_ERR_ROOT, text, &length);
    EXPECT_NE(message.find(std::string(text, static_cast<size_t>(length))), std::string::npos)
        << message;
    EXPECT_NE(message.find("(world rank " + std::to_string(mpi_world_rank()) + ")"),
              std::string::npos)
        << message;
  }
  EXPECT_NO_THROW(HOGWILD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)));
}

// The start-up check that every rank runs the same: entries every rank makes itself, with
// chosen ranks changed.
std::vector<AgreementEntry> entries_for(int workers, const std::string& system = "be brief") {
  return {{"model (files)", "91 bytes 0123", "91 bytes"},
          {"workers", std::to_string(workers), ""},
          {"prompts.system", system, ""}};
}

// The error every rank must throw, or "" when it throws none.
std::string agreement_error(Communicator& world, const std::vector<AgreementEntry>& entries) {
  try {
    check_ranks_agree(world, entries);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

TEST(RankAgreement, TheSameEntriesOnEveryRankPass) {
  auto world = make_world_communicator();
  EXPECT_EQ(agreement_error(*world, entries_for(2)), "");
}

TEST(RankAgreement, ADifferentValueNamesTheKeyAndWhichRanksHoldWhat) {
  auto world = make_world_communicator();
  const int size = world->size();
  if (size < 2) GTEST_SKIP() << "needs 2 ranks";
  const std::string message = agreement_error(*world, entries_for(world->rank() == 1 ? 3 : 2));
  std::string others = "rank 0";
  if (size == 3) others = "ranks 0, 2";
  if (size == 4) others = "ranks 0, 2, 3";
  if (size > 4) others = "ranks 0, 2-" + std::to_string(size - 1);
  EXPECT_NE(message.find("the ranks do not run the same configuration and model: workers=2 on " +
                         others + "; workers=3 on rank 1 (every rank must run the same"),
            std::string::npos)
      << message;
  // Every rank reached the same verdict (each one threw the same line).
  const uint64_t mine = fnv1a_64(message);
  std::vector<uint64_t> all(static_cast<size_t>(size));
  world->all_gather(&mine, all.data(), sizeof mine);
  for (uint64_t h : all) EXPECT_EQ(h, mine);
}

TEST(RankAgreement, TheFirstDifferingKeyIsNamedAndLongValuesKeepTheirDifference) {
  auto world = make_world_communicator();
  if (world->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  // The last rank differs in a long prompt only after 200 characters, and in nothing else.
  const std::string prompt(200, 'a');
  const bool last = world->rank() == world->size() - 1;
  const std::string message = agreement_error(*world, entries_for(2, last ? prompt + "b" : prompt));
  EXPECT_NE(message.find("prompts.system=aaaa"), std::string::npos) << message;
  EXPECT_EQ(message.find("workers="), std::string::npos) << message;
  EXPECT_NE(message.find("[hash "), std::string::npos) << message;
  EXPECT_NE(message.find("on rank " + std::to_string(world->size() - 1) + " (every"),
            std::string::npos)
      << message;
}

TEST(RankAgreement, AMissingEntryIsADifference) {
  auto world = make_world_communicator();
  if (world->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  std::vector<AgreementEntry> entries = entries_for(2);
  if (world->rank() == 1) entries.pop_back();
  const std::string message = agreement_error(*world, entries);
  EXPECT_NE(message.find("prompts.system=be brief on rank"), std::string::npos) << message;
  EXPECT_NE(message.find("(no entry 2) on rank 1"), std::string::npos) << message;
}

}  // namespace
}  // namespace hogwild

HOGWILD_MPI_TEST_MAIN()
