// NCCL communicator for the CUDA backend: the same collectives on device buffers, on the
// backend's stream. Bootstrapped over an MPI axis communicator (the axis leader makes the
// ncclUniqueId, the axis broadcasts it), one NCCL communicator per axis (docs/design.md §6). NCCL's
// sums are deterministic run to run for a fixed grid, but not the rank-order sum of the MPI path.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "comm/communicator.h"

namespace hogwild {

// `axis` is the MPI communicator of the same ranks (used once, for the unique id). Every call of
// the returned communicator takes device pointers and completes before it returns.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& axis, int device,
                                                     cudaStream_t stream);

}  // namespace hogwild
