// A tiny MPI program for watchdog_mpi.sh: every rank forms a grid of N worker groups with a
// short watchdog timeout, does a few collectives, and then world rank 1 misbehaves before the
// next all-gather on the workers axis, as named by argv[1]:
//   stop     SIGSTOP itself (every thread stops: its watchdog cannot answer)
//   compute  keep computing (its watchdog answers, one collective behind)
//   wait     wait in a barrier on the world axis that nobody else enters
//   none     behave: every rank exits 0
// The watchdogs must end the job naming rank 1, not the ranks that wait for it.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "comm/mpi_communicator.h"
#include "common/error.h"

int main(int argc, char** argv) {
  using namespace hogwild;
  if (argc != 3) {
    std::fprintf(stderr, "usage: watchdog_probe stop|compute|wait|none TIMEOUT_SECONDS\n");
    return 2;
  }
  const std::string mode = argv[1];
  try {
    mpi_initialize(&argc, &argv);
    RankGrid grid = make_rank_grid(1, mpi_world_size(), std::atof(argv[2]));
    std::vector<int> all(static_cast<size_t>(grid.world_size));
    for (int i = 0; i < 3; ++i) grid.workers->all_gather(&i, all.data(), sizeof i);
    grid.world->barrier();
    if (grid.world_rank == 1) {
      if (mode == "stop") std::raise(SIGSTOP);
      if (mode == "compute") std::this_thread::sleep_for(std::chrono::minutes(5));
      if (mode == "wait") {  // late, so that rank 0 times out first and speaks
        std::this_thread::sleep_for(std::chrono::duration<double>(0.75 * std::atof(argv[2])));
        grid.world->barrier();
      }
    }
    int value = grid.world_rank;
    grid.workers->all_gather(&value, all.data(), sizeof value);
    grid.world->barrier();
    if (grid.world_rank == 0) std::printf("watchdog_probe: every rank passed\n");
  } catch (const Error& e) {
    mpi_abort_all(cat("watchdog_probe: error: rank ", mpi_world_rank(), ": ", e.what()), 1);
  }
  mpi_finalize();
  return 0;
}
