// MPI communicators (host buffers) and the rank grid of docs/design.md §6: world = worker_groups ×
// tensor_parallel ranks; rank r is tensor shard r % T of worker group r / T. The tensor
// communicator joins the T ranks of one group; the worker communicator joins the G ranks that
// hold the same head slice in every group.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "comm/communicator.h"

namespace hogwild {

class Watchdog;

// Initialises MPI and makes MPI errors return codes, which every call checks. It asks for
// MPI_THREAD_MULTIPLE: the collectives stay on the main thread, but the watchdog thread asks and
// answers the other ranks' watchdogs on a communicator of its own while the main thread waits
// (without that level the watchdog cannot ask, and says so). A process started without a
// launcher is a world of 1.
void mpi_initialize(int* argc, char*** argv);
// True when an MPI launcher (mpirun, srun) started this process; plain runs skip MPI entirely.
bool launched_by_mpi();
void mpi_finalize();
int mpi_world_rank();
int mpi_world_size();
// Aborts every rank of the job with `message` (MPI_Abort): never a hang when one rank fails.
[[noreturn]] void mpi_abort_all(const std::string& message, int code);

// Every rank of the job (MPI_COMM_WORLD), unmonitored, for checks before the grid exists; a local
// communicator when MPI is not running.
std::unique_ptr<Communicator> make_world_communicator();

struct RankGrid {
  int world_rank = 0;
  int world_size = 1;
  int tensor_parallel = 1;
  int worker_groups = 1;
  int tensor_rank = 0;                    // which head/ffn slice this rank holds
  int group = 0;                          // which worker group this rank computes
  int local_rank = 0;                     // among the ranks of this node (GPU index)
  std::unique_ptr<Communicator> world;    // every rank
  std::unique_ptr<Communicator> tensor;   // the T ranks of my group
  std::unique_ptr<Communicator> workers;  // the G ranks with my head slice
  // The CUDA backend's axes (add_device_communicators): stream-ordered communicators on device
  // buffers over the same ranks as `tensor` / `workers`; null where the axis has one rank or the
  // run is on the CPU. Declared after the host axes: destroyed first.
  std::unique_ptr<Communicator> device_tensor;
  std::unique_ptr<Communicator> device_workers;
  // The watchdog the monitored axes report to (null without MPI) and their axis numbers in it.
  std::shared_ptr<Watchdog> watchdog;
  int tensor_axis = -1, workers_axis = -1;
};

// Splits MPI_COMM_WORLD into the grid; throws hogwild::Error (on every rank, with the same
// message) when tensor_parallel × worker_groups differs from the world size.
// The world, tensor and worker communicators are monitored (per-collective seconds); with
// timeout_seconds > 0 a watchdog ends the job when one collective waits longer, naming the ranks
// that have not reached it.
RankGrid make_rank_grid(int tensor_parallel, int worker_groups, double timeout_seconds = 0);

// Makes a device communicator over the ranks of a host axis communicator (collective on it).
using DeviceCommunicatorFactory =
    std::function<std::unique_ptr<Communicator>(Communicator& host_axis)>;
// Sets grid.device_tensor / grid.device_workers, for the axes of more than one rank, to `make`'s
// communicators over the same ranks (NCCL for the CUDA backend: experiment/runner.cpp), monitored
// by the grid's watchdog as the same axes, so a lost peer is named as on the host axes. Every rank
// calls it, in the same place.
void add_device_communicators(RankGrid& grid, const DeviceCommunicatorFactory& make);

}  // namespace hogwild
