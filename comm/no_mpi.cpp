// Builds without MPI: a world of one process, so the same engine code runs unchanged.
#include <cstdio>
#include <cstdlib>

#include "comm/mpi_communicator.h"
#include "common/error.h"

namespace hogwild {

bool launched_by_mpi() { return false; }
void mpi_initialize(int*, char***) {}
void mpi_finalize() {}
int mpi_world_rank() { return 0; }
int mpi_world_size() { return 1; }

void mpi_abort_all(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::_Exit(code);
}

std::unique_ptr<Communicator> make_world_communicator() { return make_local_communicator(); }

RankGrid make_rank_grid(int tensor_parallel, int worker_groups, double) {
  HOGWILD_CHECK(tensor_parallel == 1 && worker_groups == 1,
                "this build has no MPI: parallel.tensor and parallel.worker_groups must be 1");
  RankGrid grid;
  grid.world = make_local_communicator();
  grid.tensor = make_local_communicator();
  grid.workers = make_local_communicator();
  return grid;
}

// A world of one process: every axis has one rank, there is nothing to connect.
void add_device_communicators(RankGrid&, const DeviceCommunicatorFactory&) {}

}  // namespace hogwild
